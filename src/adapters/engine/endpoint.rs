//! Where the engine is: the endpoints tried in order (the environment, then the usual sockets),
//! and Podman's API service started on demand and asked over its own (libpod) API.

use super::*;

/// The endpoints to try, in order, as `DOCKER_HOST`-style URLs. An explicit `DOCKER_HOST` or
/// `CONTAINER_HOST` wins; otherwise the usual sockets of the engine asked for (both when none was).
pub(super) fn candidate_endpoints(
    kind: Option<EngineKind>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let set = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    if let Some(host) = set("DOCKER_HOST").or_else(|| set("CONTAINER_HOST")) {
        return vec![host];
    }
    let mut podman = vec![PODMAN_SYSTEM_SOCKET.to_owned()];
    if let Some(runtime_dir) = set("XDG_RUNTIME_DIR") {
        podman.push(format!("unix://{runtime_dir}/podman/podman.sock"));
    }
    match kind {
        Some(EngineKind::Docker) => vec![DOCKER_SOCKET.to_owned()],
        Some(EngineKind::Podman) => podman,
        None => std::iter::once(DOCKER_SOCKET.to_owned())
            .chain(podman)
            .collect(),
    }
}

/// `/path` means `unix:///path`, as docker accepts it.
pub(super) fn normalise_endpoint(endpoint: &str) -> String {
    if endpoint.starts_with('/') {
        format!("unix://{endpoint}")
    } else {
        endpoint.to_owned()
    }
}

pub(super) fn socket_exists(endpoint: &str) -> bool {
    endpoint
        .strip_prefix("unix://")
        .is_none_or(|path| std::path::Path::new(path).exists())
}

/// What to run when the engine does not answer.
pub(super) fn start_hint(kind: Option<EngineKind>, endpoint: &str) -> String {
    match kind {
        Some(EngineKind::Podman) => format!(
            "start Podman's API socket: `{} &`, or `sudo systemctl start podman.socket` \
             (rootless: `systemctl --user start podman.socket`)",
            podman_service_command(endpoint)
        ),
        _ => "start it with `sudo systemctl start docker` (for Podman: `podman system service \
              --time=0 &`); if it runs, check that you may use its socket (the `docker` group)"
            .to_owned(),
    }
}

impl Engine {
    /// [`Engine::connect`], and when nothing answers and `serve` (`--podman-service`), Podman's
    /// API served for this run on the user's socket ([`podman_endpoint`]), stopped with the
    /// engine's last handle.
    ///
    /// # Errors
    /// Nothing answers and the service could not be started, or does not answer.
    pub async fn connect_serving(kind: Option<EngineKind>, serve: bool) -> anyhow::Result<Self> {
        let e = match Self::connect(kind).await {
            Ok(engine) => return Ok(engine),
            Err(e) => e,
        };
        if !serve || !kind.unwrap_or(EngineKind::Podman).serves_on_demand() {
            return Err(e);
        }
        let endpoint = podman_endpoint();
        let service = start_podman_service(&endpoint, true).await?;
        Ok(Self::connect_to(&endpoint, Some(EngineKind::Podman))
            .await?
            .holding(service))
    }
}

/// The socket Podman's API should be on for this user: `CONTAINER_HOST`/`DOCKER_HOST` when set,
/// else the system socket for root and the user's runtime directory for everyone else (rootless
/// Podman cannot serve the system socket).
#[must_use]
pub fn podman_endpoint() -> String {
    let env = |key: &str| env::var(key);
    let candidates = candidate_endpoints(Some(EngineKind::Podman), &env);
    let root = effective_uid() == 0;
    let pick = if root || candidates.len() == 1 {
        candidates.first()
    } else {
        candidates.last()
    };
    pick.cloned()
        .unwrap_or_else(|| PODMAN_SYSTEM_SOCKET.to_owned())
}

/// The effective uid of this process: /proc/self belongs to it (`u32::MAX` if unreadable).
fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// `podman system service --time=0 unix:///run/podman/podman.sock`: serves the API on `endpoint`
/// until stopped (`--time=0`: never exit when idle).
#[must_use]
pub fn podman_service_command(endpoint: &str) -> String {
    format!("podman system service --time=0 {endpoint}")
}

/// A `podman system service` this run started for itself (`--podman-service`): stopped when the
/// last handle on the engine goes, so the run leaves the machine as it found it. The containers
/// keep running: Podman's API is not what runs them.
#[derive(Debug)]
pub struct PodmanService {
    child: std::sync::Mutex<std::process::Child>,
    /// Its log, removed with it.
    _log: tempfile::TempPath,
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `podman system service` on `endpoint` in the background and waits until it answers.
/// Detached from this process (it keeps serving after movim-setup exits, as the user asked), or,
/// `for_this_run`, held by the returned [`PodmanService`], which stops it.
///
/// # Errors
/// `podman` is not installed, exits at once (its log is quoted), or the socket never answers.
pub async fn start_podman_service(
    endpoint: &str,
    for_this_run: bool,
) -> anyhow::Result<Option<PodmanService>> {
    use std::os::unix::process::CommandExt as _;
    if let Some(dir) = endpoint
        .strip_prefix("unix://")
        .and_then(|p| std::path::Path::new(p).parent())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for the socket", dir.display()))?;
    }
    let (log_file, log) = service_log(&env::temp_dir())?;
    let mut child = crate::adapters::subprocess::blocking_command("podman")
        .args(["system", "service", "--time=0", endpoint])
        // The endpoint named in the user's environment is the one to serve, not one to be a
        // client of: with CONTAINER_HOST set, podman acts as a remote client and refuses the verb.
        .env_remove("CONTAINER_HOST")
        .env_remove("CONTAINER_CONNECTION")
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        // Its own process group: a Ctrl-C meant for movim-setup must not stop it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run `{}`", podman_service_command(endpoint)))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "`{}` exited with {status}: {}",
                podman_service_command(endpoint),
                text.trim()
            );
        }
        if let Ok((200, _)) = libpod_get(endpoint, "/_ping").await {
            if !for_this_run {
                // It serves on after this run, writing here.
                log.keep()?;
                return Ok(None);
            }
            return Ok(Some(PodmanService {
                child: std::sync::Mutex::new(child),
                _log: log,
            }));
        }
        if Instant::now() >= deadline {
            let log = log.keep()?;
            bail!(
                "`{}` started but {endpoint} did not answer within {CONNECT_TIMEOUT:?} (log: {})",
                podman_service_command(endpoint),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A new log file for `podman system service` in `dir`, created exclusively under a random name
/// (0600), never through a file or symbolic link planted at a name known in advance; removed when
/// the path is dropped unless kept.
fn service_log(dir: &std::path::Path) -> anyhow::Result<(std::fs::File, tempfile::TempPath)> {
    let log = tempfile::Builder::new()
        .prefix("movim-setup-podman-service-")
        .suffix(".log")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a log file in {}", dir.display()))?;
    Ok(log.into_parts())
}

/// A `GET` on Podman's own (libpod) API at `endpoint`, which bollard does not speak. HTTP/1.0, so
/// the server closes the connection after its answer and the body comes unchunked.
/// Bounded by [`LIBPOD_TIMEOUT`]: a socket that accepts and never answers is an error, not a hang.
pub(super) async fn libpod_get(endpoint: &str, path: &str) -> anyhow::Result<(u16, String)> {
    libpod_get_within(endpoint, path, LIBPOD_TIMEOUT).await
}

async fn libpod_get_within(
    endpoint: &str,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    tokio::time::timeout(timeout, libpod_get_unbounded(endpoint, path))
        .await
        .map_err(|_| anyhow::anyhow!("GET {path} on {endpoint}: no answer within {timeout:?}"))?
}

/// How long one call to Podman's own API may take.
const LIBPOD_TIMEOUT: Duration = Duration::from_secs(10);

async fn libpod_get_unbounded(endpoint: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: podman\r\n\r\n");
    let mut answer = Vec::new();
    if let Some(socket) = endpoint.strip_prefix("unix://") {
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .with_context(|| format!("cannot connect to {endpoint}"))?;
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_end(&mut answer).await?;
    } else if let Some(host) = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
    {
        let mut stream = tokio::net::TcpStream::connect(host.trim_end_matches('/'))
            .await
            .with_context(|| format!("cannot connect to {endpoint}"))?;
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_end(&mut answer).await?;
    } else {
        bail!("Podman's own API is reached over unix:// or tcp:// only, not {endpoint}");
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("GET {path} on {endpoint}: not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[tokio::test]
    async fn a_podman_socket_that_accepts_and_never_answers_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("podman.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let held = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            // Holds the connection open, silent.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        });
        let endpoint = format!("unix://{}", socket.display());
        let err = libpod_get_within(&endpoint, "/_ping", Duration::from_millis(300))
            .await
            .expect_err("no answer");
        assert!(err.to_string().contains("no answer within"), "{err}");
        held.abort();
    }

    #[test]
    fn a_link_planted_where_the_podman_service_log_went_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join(format!(
            "movim-setup-podman-service-{}.log",
            effective_uid()
        ));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        let (mut file, log) = service_log(dir.path()).unwrap();
        file.write_all(b"podman says").unwrap();

        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let mode = std::fs::symlink_metadata(&log)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let path = log.to_path_buf();
        drop(log);
        assert!(
            !path.exists(),
            "the log of a service stopped with the run is removed"
        );
    }
}
