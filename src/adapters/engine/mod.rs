//! The container engine (Docker, or Podman's Docker-compatible socket) through bollard: pulling by
//! digest and proving the engine holds that digest, reading the state of a compose project's
//! containers, and running commands inside them (health probes, migrations, `pg_dump` streamed to a
//! file). Compose itself stays with the compose tool; this is what needs the engine's API.
//!
//! The API version is negotiated with the daemon: the test machines run Docker 20.10 (API 1.41)
//! while users run 24–28, so nothing here relies on anything newer than 1.41.
//!
//! Podman answers the same API on its socket, with one difference that matters here: it runs
//! health checks from systemd timers, so without systemd (containers, minimal servers, WSL) a
//! health status stays `starting` forever. [`Engine::wait_healthy`] therefore runs the check itself
//! through Podman's own API (`GET /v4.0.0/libpod/containers/{id}/healthcheck`, what `podman
//! healthcheck run` calls) on the socket it already talks to: no `podman` binary needed, the same
//! rootful/rootless store and remote endpoints, and Podman records the result so `podman ps` and
//! `doctor` see it too. With systemd the extra runs are harmless.
//!
//! Split by what it does: `endpoint` (where the engine is, starting Podman's API), `exec`
//! (commands run in containers, streamed), `build` (images built and pushed: `images build`),
//! `port` (the [`ContainerEngine`] trait the rest of the
//! tool drives it through).

mod build;
mod endpoint;
mod exec;
mod port;
mod rootless;

pub use build::{BuildProgress, BuildRequest, build_context};
pub use endpoint::{PodmanService, podman_endpoint, podman_service_command, start_podman_service};
use endpoint::{candidate_endpoints, libpod_get, normalise_endpoint, socket_exists, start_hint};
#[cfg(test)]
use exec::TailBuffer;
use exec::exec_what;
pub use port::ContainerEngine;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder,
};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::adapters::env;
use crate::adapters::registry::docker_config_credentials;
use crate::core::containers::{ContainerInfo, MountInfo};
use crate::core::image_ref::ImageRef;
use crate::core::layout::{self, KUBE_INSTANCE_LABEL, Layout};

/// Compose's labels; podman-compose sets the same ones.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// Where compose ran when it created a container (compose v2, docker-compose v1, podman-compose).
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";

const DOCKER_SOCKET: &str = "unix:///var/run/docker.sock";
const PODMAN_SYSTEM_SOCKET: &str = "unix:///run/podman/podman.sock";
/// Connecting and the first answers must be quick; a silent socket is a dead engine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `wait_healthy` looks, and how long a container without a healthcheck must stay up.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const SETTLE_TIME: Duration = Duration::from_secs(2);
/// The engines' health-check interval when the container names none.
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// Podman answers a health-check request only once the check has run; its own timeout applies first.
const PODMAN_CHECK_TIMEOUT: Duration = Duration::from_secs(90);
/// A pull that reports nothing for this long is stuck (the engine reports every layer's bytes).
const PULL_STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How much stderr a streamed exec keeps for its error message.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// Which engine the user runs (also `--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    /// Whether this tool can offer to start the engine's API service when it does not answer
    /// (Podman's is often not served: systemd starts it on demand, and without systemd nothing does).
    #[must_use]
    pub fn serves_on_demand(self) -> bool {
        self == Self::Podman
    }

    /// Whether the engine's DNS can drop a name lookup while containers join a network (Podman's
    /// aardvark-dns 1.4: <https://github.com/containers/aardvark-dns/issues/389>).
    #[must_use]
    pub fn drops_lookups_on_join(self) -> bool {
        self == Self::Podman
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        })
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            other => Err(format!(
                "unknown engine `{other}` (expected docker or podman)"
            )),
        }
    }
}

/// One connected engine, with what it said about itself.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
    kind: EngineKind,
    version: String,
    api_version: String,
    /// The Podman API service this run started for itself, stopped with the last clone.
    service: Option<std::sync::Arc<endpoint::PodmanService>>,
    /// Run by an unprivileged user in its own user namespace (rootless Podman or Docker).
    rootless: Option<rootless::Rootless>,
}

impl Engine {
    /// This engine, keeping `service` (the API service started for this run) alive as long as it.
    #[must_use]
    pub fn holding(mut self, service: Option<endpoint::PodmanService>) -> Self {
        self.service = service.map(std::sync::Arc::new);
        self
    }

    /// Connects to the engine the environment points at (`DOCKER_HOST`, then `CONTAINER_HOST`),
    /// else to the usual socket of `kind` (Docker's, then Podman's, when `kind` is `None`).
    pub async fn connect(kind: Option<EngineKind>) -> anyhow::Result<Self> {
        let candidates = candidate_endpoints(kind, &|key| env::var(key));
        // Every socket that exists, in order: a user may see the system's sockets (Docker's,
        // rootful Podman's) without being allowed to use them, and be served by its own rootless
        // Podman. The first error names the socket most likely meant.
        let mut first_error = None;
        for endpoint in candidates.iter().filter(|e| socket_exists(e)) {
            match Self::connect_to(endpoint, kind).await {
                Ok(engine) => return Ok(engine),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let endpoint = candidates
            .first()
            .cloned()
            .unwrap_or_else(|| DOCKER_SOCKET.to_owned());
        Self::connect_to(&endpoint, kind).await
    }

    /// Connects to one endpoint (`unix:///…`, `tcp://…`, `http://…`), negotiates the API version
    /// and asks the engine what it is. `kind` only shapes the hint when it does not answer: the
    /// engine's own version answer decides [`Engine::kind`].
    pub async fn connect_to(endpoint: &str, kind: Option<EngineKind>) -> anyhow::Result<Self> {
        let endpoint = normalise_endpoint(endpoint);
        let unreachable = |cause: String| {
            anyhow::anyhow!(
                "cannot reach the container engine at {endpoint}: {cause}; {}",
                start_hint(kind, &endpoint)
            )
        };
        let docker = match Docker::connect_with_host(&endpoint) {
            Ok(docker) => docker,
            Err(BollardError::SocketNotFoundError(path)) => {
                return Err(unreachable(format!("the socket {path} does not exist")));
            }
            Err(e) => return Err(unreachable(e.to_string())),
        };
        let talk = async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            let version = docker.version().await?;
            let info = docker.info().await?;
            Ok::<_, BollardError>((docker, version, info))
        };
        let (docker, version, info) = match tokio::time::timeout(CONNECT_TIMEOUT, talk).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(unreachable(bollard_chain(&e))),
            Err(_) => return Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        };
        let is_podman = version
            .components
            .iter()
            .flatten()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"))
            || version
                .platform
                .as_ref()
                .is_some_and(|p| p.name.to_ascii_lowercase().contains("podman"));
        let client = docker.client_version();
        let rootless = rootless::detect(
            info.security_options.as_deref().unwrap_or_default(),
            is_podman,
            &endpoint,
        )
        .await;
        Ok(Self {
            endpoint,
            kind: if is_podman {
                EngineKind::Podman
            } else {
                EngineKind::Docker
            },
            version: version.version.unwrap_or_else(|| "unknown".to_owned()),
            api_version: format!("{}.{}", client.major_version, client.minor_version),
            docker,
            service: None,
            rootless,
        })
    }

    /// Docker or Podman, as the engine described itself.
    #[must_use]
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The engine's version (`20.10.24`, `4.3.1`, …).
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The API version negotiated with the engine (`1.41` on Docker 20.10).
    #[must_use]
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Where the engine was reached (`unix:///var/run/docker.sock`).
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Pulls `image` by `digest` (never by tag, so a re-pointed tag cannot slip in), reporting
    /// progress, then proves the engine now holds exactly that digest. Local tags are left alone:
    /// compose references images by digest.
    pub async fn pull(
        &self,
        image: &ImageRef,
        digest: &str,
        progress: &dyn PullProgress,
    ) -> anyhow::Result<()> {
        let wanted = image.by_digest(digest);
        let options = CreateImageOptionsBuilder::new()
            .from_image(&image.name())
            .tag(digest)
            .build();
        let credentials = docker_config_credentials(&image.registry).map(|c| DockerCredentials {
            username: Some(c.username),
            password: Some(c.password.expose().to_owned()),
            serveraddress: Some(image.registry.clone()),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        loop {
            let Ok(next) = tokio::time::timeout(PULL_STALL_TIMEOUT, stream.next()).await else {
                bail!(
                    "pulling {wanted} from {} stalled: no progress for {PULL_STALL_TIMEOUT:?}",
                    image.registry
                );
            };
            let Some(item) = next else { break };
            let info = item.map_err(|e| {
                anyhow::anyhow!(
                    "pulling {wanted} from {} failed: {}",
                    image.registry,
                    bollard_chain(&e)
                )
            })?;
            let (current, total) = info
                .progress_detail
                .as_ref()
                .map_or((None, None), |d| (to_u64(d.current), to_u64(d.total)));
            progress.update(
                &wanted,
                info.id.as_deref().unwrap_or(""),
                info.status.as_deref().unwrap_or(""),
                current,
                total,
            );
        }
        progress.done(&wanted);

        let inspected = self
            .docker
            .inspect_image(&wanted)
            .await
            .with_context(|| format!("{wanted} was pulled but the engine cannot show it"))?;
        let repo_digests = inspected.repo_digests.unwrap_or_default();
        let held = repo_digests.iter().any(|d| {
            ImageRef::parse(d).is_ok_and(|r| {
                r.registry == image.registry
                    && r.repository == image.repository
                    && r.digest.as_deref() == Some(digest)
            })
        });
        if !held {
            bail!(
                "the registry served another digest: after pulling {wanted} the engine holds {} \
                 instead",
                if repo_digests.is_empty() {
                    "no digest".to_owned()
                } else {
                    repo_digests.join(", ")
                }
            );
        }
        Ok(())
    }

    /// Whether the engine already holds `registry/repo@sha256:…`.
    pub async fn has_image(&self, repo_at_digest: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_image(repo_at_digest).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => {
                Err(anyhow::Error::new(e)
                    .context(format!("cannot look up the image {repo_at_digest}")))
            }
        }
    }

    /// Every container of a project, stopped ones included, sorted by service then name: a compose
    /// project's by its label, a kube-played one's by the pod label Podman copies onto its
    /// containers, each named back to its service ([`layout::kube_service`]; init containers
    /// have none).
    pub async fn service_containers(
        &self,
        project: &str,
        layout: Layout,
    ) -> anyhow::Result<Vec<ContainerInfo>> {
        let label = match layout {
            Layout::Compose => format!("{PROJECT_LABEL}={project}"),
            Layout::KubePlay => format!("{KUBE_INSTANCE_LABEL}={project}"),
        };
        let filters = HashMap::from([("label", vec![label])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .with_context(|| format!("cannot list the containers of the project {project}"))?;
        let mut containers = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            match self.inspect_settled(&id).await {
                Ok(mut info) => {
                    if layout == Layout::KubePlay {
                        info.service =
                            layout::kube_service(project, &info.name).map(|s| s.name().to_owned());
                    }
                    containers.push(info);
                }
                // Removed between the listing and the inspection: it is not part of the project now.
                Err(e) if e.downcast_ref::<BollardError>().is_some_and(is_not_found) => {}
                Err(e) => return Err(e),
            }
        }
        containers.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        Ok(containers)
    }

    /// [`Engine::inspect`], asked again a few times when the engine fails to answer for a
    /// container caught mid-transition (Podman can, while it restarts one in a loop). A container
    /// that is gone is reported at once.
    async fn inspect_settled(&self, id: &str) -> anyhow::Result<ContainerInfo> {
        let mut attempt = 0;
        loop {
            match self.inspect(id).await {
                Err(e)
                    if attempt < 4
                        && !e.downcast_ref::<BollardError>().is_some_and(is_not_found) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => return other,
            }
        }
    }

    /// The state of one container (by id or name).
    pub async fn inspect(&self, id: &str) -> anyhow::Result<ContainerInfo> {
        Ok(container_info(&self.inspect_raw(id).await?))
    }

    async fn inspect_raw(&self, id: &str) -> anyhow::Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| {
                let message = if is_not_found(&e) {
                    format!("there is no container {id}")
                } else {
                    format!("cannot inspect the container {id}")
                };
                anyhow::Error::new(e).context(message)
            })
    }

    /// The last `lines` lines of a container's stdout and stderr, interleaved as logged.
    pub async fn logs_tail(&self, id: &str, lines: usize) -> anyhow::Result<String> {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(false)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let item = item.with_context(|| format!("cannot read the logs of {id}"))?;
            out.extend_from_slice(&item.into_bytes());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs `cmd` in a running container as its default user; returns the exit code and stdout and
    /// stderr interleaved.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> anyhow::Result<(i64, String)> {
        let (exec_id, output) = self.start_exec(id, cmd, false).await?;
        let mut combined = Vec::new();
        let mut output = output;
        while let Some(item) = output.next().await {
            let item = item.with_context(|| exec_what(id, cmd, "reading the output of"))?;
            combined.extend_from_slice(&item.into_bytes());
        }
        let code = self.exec_exit_code(&exec_id, id, cmd).await?;
        Ok((code, String::from_utf8_lossy(&combined).into_owned()))
    }

    /// Waits until the container is healthy (or, without a healthcheck, has stayed up for 2 s).
    /// Fails as soon as it exits or restarts, and after `timeout` with the last health-check output.
    #[allow(clippy::too_many_lines)] // one polling loop: exited, restarted, healthy, Podman's own checks and the deadline are judged together on each turn
    pub async fn wait_healthy(&self, id: &str, timeout: Duration) -> anyhow::Result<ContainerInfo> {
        let deadline = Instant::now() + timeout;
        // (started_at, restart_count) of the run being watched and when it was first seen up.
        let mut up_since: Option<((Option<String>, i64), Instant)> = None;
        // The restart count when first seen: a restart while we watch is a failure, even one too
        // quick to be seen as `restarting` (Podman restarts at once).
        let mut restarts: Option<i64> = None;
        // Podman without systemd: when we run the check next, and why it failed if it did.
        let mut next_check: Option<Instant> = None;
        let mut check_error: Option<String> = None;
        loop {
            let raw = self.inspect_raw(id).await?;
            let info = container_info(&raw);
            let who = info.describe();
            let restarted = *restarts.get_or_insert(info.restart_count) < info.restart_count;
            let status = if restarted {
                "restarted"
            } else {
                info.status.as_str()
            };
            match status {
                "exited" | "dead" | "restarting" | "restarted" => {
                    let code = info
                        .exit_code
                        .or_else(|| raw.state.as_ref().and_then(|s| s.exit_code))
                        .map_or_else(|| "unknown".to_owned(), |c| c.to_string());
                    let oom = if info.oom_killed {
                        " (killed: out of memory)"
                    } else {
                        ""
                    };
                    let movim = if info.service.as_deref() == Some("daemon") {
                        let code = info
                            .exit_code
                            .or_else(|| raw.state.as_ref().and_then(|s| s.exit_code));
                        format!(" {}.", crate::core::movim::daemon_exit_meaning(code))
                    } else {
                        String::new()
                    };
                    bail!(
                        "{who} stopped ({status}) with exit code {code}{oom} instead of becoming \
                         healthy.{movim} See `{} logs {}`.",
                        self.kind,
                        info.name
                    );
                }
                _ => {}
            }
            match info.health.as_deref() {
                Some("healthy") => return Ok(info),
                None if info.running => {
                    let run = (info.started_at.clone(), info.restart_count);
                    match &up_since {
                        Some((seen, since)) if *seen == run => {
                            if since.elapsed() >= SETTLE_TIME {
                                return Ok(info);
                            }
                        }
                        _ => up_since = Some((run, Instant::now())),
                    }
                }
                _ => {}
            }
            if self.kind == EngineKind::Podman && info.running && info.health.is_some() {
                // As the engine would with systemd: first after one interval, then every interval,
                // so a service that dies a moment after starting is not passed as healthy.
                let interval = health_interval(&raw);
                let due = *next_check.get_or_insert_with(|| Instant::now() + interval);
                if Instant::now() >= due && Instant::now() < deadline {
                    next_check = Some(Instant::now() + interval);
                    check_error = self
                        .run_podman_healthcheck(id)
                        .await
                        .err()
                        .map(|e| format!("{e:#}"));
                    // Look again at once: the check just recorded its result.
                    continue;
                }
            }
            if Instant::now() >= deadline {
                let last_check = raw
                    .state
                    .as_ref()
                    .and_then(|s| s.health.as_ref())
                    .and_then(|h| h.log.as_ref())
                    .and_then(|log| log.last())
                    .map(|r| {
                        format!(
                            "; last health check (exit {}): {}",
                            r.exit_code.unwrap_or(-1),
                            r.output.as_deref().unwrap_or("").trim()
                        )
                    })
                    .unwrap_or_default();
                let check_error = check_error
                    .map(|e| format!("; running the check through Podman's API failed: {e}"))
                    .unwrap_or_default();
                bail!(
                    "{who} is not healthy after {timeout:?} (status {}, health {}){last_check}{check_error}",
                    info.status,
                    info.health.as_deref().unwrap_or("none")
                );
            }
            tokio::time::sleep(
                POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }

    /// Whether a named volume exists.
    pub async fn volume_exists(&self, name: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("cannot look up the volume {name}")))
            }
        }
    }

    /// `c` with its health as the engine would know it with systemd: on Podman a running
    /// container still `starting` may simply never have been checked (nothing runs checks
    /// without systemd), so its check is run once now and the recorded result read back. Docker's
    /// own answer is taken as it is.
    pub async fn with_health_now(&self, c: ContainerInfo) -> ContainerInfo {
        if self.kind != EngineKind::Podman || !c.running || c.health.as_deref() != Some("starting")
        {
            return c;
        }
        if self.run_podman_healthcheck(&c.id).await.is_err() {
            return c;
        }
        // The service is the caller's knowledge (a kube-played container carries no compose
        // label): the fresh inspection keeps it.
        match self.inspect(&c.id).await {
            Ok(mut fresh) => {
                fresh.service.clone_from(&c.service);
                fresh
            }
            Err(_) => c,
        }
    }

    /// Runs a Podman container's health check now and lets Podman record the result (see the
    /// module doc for why).
    async fn run_podman_healthcheck(&self, id: &str) -> anyhow::Result<()> {
        let path = format!("/v4.0.0/libpod/containers/{id}/healthcheck");
        let (status, body) =
            tokio::time::timeout(PODMAN_CHECK_TIMEOUT, libpod_get(&self.endpoint, &path))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("GET {path}: no answer within {PODMAN_CHECK_TIMEOUT:?}")
                })??;
        if status != 200 {
            bail!("GET {path} answered HTTP {status}: {}", body.trim());
        }
        Ok(())
    }
}

/// The container's health-check interval (nanoseconds in the API), at least the poll interval.
fn health_interval(c: &ContainerInspectResponse) -> Duration {
    c.config
        .as_ref()
        .and_then(|cfg| cfg.healthcheck.as_ref())
        .and_then(|h| h.interval)
        .and_then(|ns| u64::try_from(ns).ok())
        .filter(|&ns| ns > 0)
        .map_or(DEFAULT_HEALTH_INTERVAL, Duration::from_nanos)
        .max(POLL_INTERVAL)
}

/// Receives pull progress; the terminal UI draws bars from it, plain output prints lines.
pub trait PullProgress: Send + Sync {
    /// One status line from the engine: `layer` is empty for image-level lines, `current`/`total`
    /// are bytes when downloading or extracting.
    fn update(
        &self,
        image: &str,
        layer: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
    );
    /// The pull of `image` finished.
    fn done(&self, image: &str);
}

/// What the engine says about a container, reduced to [`ContainerInfo`].
fn container_info(c: &ContainerInspectResponse) -> ContainerInfo {
    let state = c.state.as_ref();
    let status = state
        .and_then(|s| s.status)
        .map_or_else(String::new, |s| s.to_string());
    let stopped = matches!(
        state.and_then(|s| s.status),
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
    );
    let health = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
        .filter(|s| !matches!(s, HealthStatusEnum::NONE | HealthStatusEnum::EMPTY))
        .map(|s| s.to_string());
    let labels = c.config.as_ref().and_then(|cfg| cfg.labels.as_ref());
    let mounts = c
        .mounts
        .iter()
        .flatten()
        .map(|m| MountInfo {
            destination: m.destination.clone().unwrap_or_default(),
            source: m.source.clone().unwrap_or_default(),
            volume_name: m.name.clone().filter(|n| !n.is_empty()),
            read_write: m.rw.unwrap_or(false),
        })
        .collect();
    let mut ips: Vec<(String, IpAddr)> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|(network, endpoint)| {
            [
                endpoint.ip_address.as_deref(),
                endpoint.global_ipv6_address.as_deref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .map(|ip| (network.clone(), ip))
            .collect::<Vec<_>>()
        })
        .collect();
    ips.sort();
    ContainerInfo {
        id: c.id.clone().unwrap_or_default(),
        name: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        service: labels.and_then(|l| l.get(SERVICE_LABEL)).cloned(),
        working_dir: labels.and_then(|l| l.get(WORKING_DIR_LABEL)).cloned(),
        image: c
            .config
            .as_ref()
            .and_then(|cfg| cfg.image.clone())
            .unwrap_or_default(),
        running: state.and_then(|s| s.running).unwrap_or(false),
        status,
        exit_code: if stopped {
            state.and_then(|s| s.exit_code)
        } else {
            None
        },
        health,
        restart_count: c.restart_count.unwrap_or(0),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        // The engine's zero time means "never started".
        started_at: state
            .and_then(|s| s.started_at.clone())
            .filter(|t| !t.is_empty() && !t.starts_with("0001-01-01")),
        mounts,
        ips,
    }
}

fn to_u64(n: Option<i64>) -> Option<u64> {
    n.and_then(|n| u64::try_from(n).ok())
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// bollard's messages hide the cause (permission denied, connection refused) in the chain.
fn bollard_chain(e: &BollardError) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn engine_kind_round_trips() {
        for kind in [EngineKind::Docker, EngineKind::Podman] {
            assert_eq!(kind.to_string().parse::<EngineKind>(), Ok(kind));
        }
        assert_eq!("Podman".parse::<EngineKind>(), Ok(EngineKind::Podman));
        assert!(
            "containerd"
                .parse::<EngineKind>()
                .unwrap_err()
                .contains("docker or podman")
        );
    }

    #[test]
    fn endpoints_follow_the_environment_then_the_engine() {
        let host = env(&[
            ("DOCKER_HOST", "tcp://10.0.0.2:2375"),
            ("CONTAINER_HOST", "unix:///x"),
        ]);
        assert_eq!(
            candidate_endpoints(Some(EngineKind::Podman), &host),
            ["tcp://10.0.0.2:2375"]
        );
        let container_host = env(&[
            ("DOCKER_HOST", ""),
            ("CONTAINER_HOST", "unix:///run/p.sock"),
        ]);
        assert_eq!(
            candidate_endpoints(None, &container_host),
            ["unix:///run/p.sock"]
        );

        let xdg = env(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            candidate_endpoints(Some(EngineKind::Docker), &xdg),
            [DOCKER_SOCKET]
        );
        assert_eq!(
            candidate_endpoints(Some(EngineKind::Podman), &xdg),
            [
                PODMAN_SYSTEM_SOCKET,
                "unix:///run/user/1000/podman/podman.sock"
            ]
        );
        assert_eq!(
            candidate_endpoints(None, &xdg),
            [
                DOCKER_SOCKET,
                PODMAN_SYSTEM_SOCKET,
                "unix:///run/user/1000/podman/podman.sock"
            ]
        );
        assert_eq!(normalise_endpoint("/var/run/docker.sock"), DOCKER_SOCKET);
    }

    #[test]
    fn podman_names_a_pinned_image_without_its_tag() {
        let info = |image: &str| ContainerInfo {
            id: String::new(),
            name: String::new(),
            service: None,
            working_dir: None,
            image: image.to_owned(),
            running: true,
            status: "running".to_owned(),
            exit_code: None,
            health: None,
            restart_count: 0,
            oom_killed: false,
            started_at: None,
            mounts: Vec::new(),
            ips: Vec::new(),
        };
        let digest = format!("sha256:{}", "a".repeat(64));
        let other = format!("sha256:{}", "b".repeat(64));
        let pinned = format!("ghcr.io/nadiamoe/movim-web:v0.29.2@{digest}");
        assert!(info(&pinned).runs_image(&pinned), "Docker keeps it whole");
        assert!(info(&format!("ghcr.io/nadiamoe/movim-web@{digest}")).runs_image(&pinned));
        assert!(!info(&format!("ghcr.io/nadiamoe/movim-web@{other}")).runs_image(&pinned));
        assert!(!info(&format!("ghcr.io/nadiamoe/movim-fpm@{digest}")).runs_image(&pinned));
        assert!(!info("ghcr.io/nadiamoe/movim-web:v0.29.2").runs_image(&pinned));
    }

    #[test]
    fn podman_hint_names_the_exact_command() {
        let hint = start_hint(Some(EngineKind::Podman), "unix:///run/podman/podman.sock");
        assert!(
            hint.contains("`podman system service --time=0 unix:///run/podman/podman.sock &`"),
            "{hint}"
        );
    }

    #[test]
    fn tail_buffer_keeps_the_end() {
        let mut t = TailBuffer::new(5);
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.into_string(), "cdefg");
        let mut t = TailBuffer::new(3);
        t.push(b"0123456789");
        assert_eq!(t.into_string(), "789");
    }
}
