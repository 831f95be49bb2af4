//! Smoke tests of the Movim stand-in (its contract: `docs/movim-contract.md`; what it imitates and
//! from which upstream file: `tests/world/movim/README.md`): the pushed `movim-web`, `movim-fpm` and
//! `movim-daemon` images keep the contract movim-setup is built against — Phinx's `phinxlog` and exit
//! codes, the daemon's start-up checks and exit codes per release, `VERSION` and `/infos` through real
//! nginx and php-fpm, Ratchet's handshake and Movim's Origin rule behind `/ws/` (101 to every Origin,
//! then a close frame for an untrusted one), the session workers' explicit environment and their
//! logging under LOG_PATH, uid 82 on a read-only root filesystem, and the faulty releases failing the
//! way their tags say. Each test runs its own PostgreSQL on its own user network through the real
//! `docker` CLI, cleans up after itself, and fails, never skips, without the world.

use crate::support::browser::{Next, login_message, next, next_json, send_text, session_id};
use crate::support::world;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use world::World;

const BASELINE: &str = "v0.29.2";
const NEWER: &str = "v0.30.0";
/// A release named like upstream's (`v0.30`, not `v0.30.0`): file logging, no start-up log check.
const TWO_PART: &str = "v0.30";
/// The newest stand-in release: behaves as v0.33+ (directory checks, `public/images`, packed workers).
const LATEST: &str = "v0.34.1";
const DAEMON_EXITS: &str = "v0.30.1-daemon-exits";
const MIGRATION_FAILS: &str = "v0.30.2-migration-fails";
const NEVER_HEALTHY: &str = "v0.30.3-never-healthy";

/// The public host of every test deployment; `DAEMON_URL` is `https://movim.test/`.
const PUBLIC_HOST: &str = "movim.test";
const DB_PASSWORD: &str = "stand-in-s3cret";
/// Ratchet's `X-Powered-By` on every handshake answer (`\Ratchet\VERSION`).
const RATCHET: &str = "Ratchet/1.0.3";
/// What Monolog says when the log directory cannot be created on a read-only root.
const NO_LOG_DIR: &str = "There is no existing directory at \"/var/www/movim/log\" and it could not \
                          be created: Read-only file system";

/// Migrations of the baseline (v0.29.2), the one v0.30.0 adds, and the two of the migration-fails
/// release (the first succeeds, the second fails half-way).
const BASELINE_MIGRATIONS: usize = 5;
const NEWER_MIGRATION: &str = "20250415093000";
const FAULT_FIRST: &str = "20250601100000";
const FAULT_SECOND: &str = "20250601100001";

// ---- docker as a subprocess -------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// Runs docker and returns its stdout, or panics with the command and its output.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr of a finished command, for assertion messages.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A name no other test (or concurrent run) uses; short, because it is also a DNS name on the
/// test's network (`DB_HOST`, `FPM_HOST`, `DAEMON_HOST`).
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "msi-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `probe` every 200 ms until it returns Some or `limit` passes.
fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---- one test's deployment --------------------------------------------------------------------

/// A test's private deployment: a user network with PostgreSQL, a `movim.env`, the shared volumes Movim
/// needs (`docs/movim-contract.md`), and the Movim containers the test starts. Everything is removed on drop, so a
/// failing test leaves nothing behind.
struct Site {
    world: &'static World,
    network: String,
    postgres: String,
    env_dir: tempfile::TempDir,
    /// `cache/`, `public/cache/`, `public/images/` and `log/`, shared by fpm and daemon (web: ro,
    /// and no `log/`).
    cache: String,
    public_cache: String,
    public_images: String,
    log: String,
    /// Which of those volumes `start` mounts (a test leaves some out to see Movim fail).
    mount_public_images: bool,
    mount_log: bool,
    containers: Vec<String>,
    volumes: Vec<String>,
}

/// The three services of a running stack and where web's port 80 is published.
struct Stack {
    daemon: String,
    fpm: String,
    web: String,
    addr: SocketAddr,
}

impl Site {
    /// A network with a ready PostgreSQL and a `movim.env` for `DAEMON_URL=https://movim.test/`.
    fn new() -> Site {
        let world = World::get();
        let mut site = Site {
            world,
            network: unique("net"),
            postgres: unique("pg"),
            env_dir: tempfile::tempdir().expect("a temporary directory"),
            cache: unique("cache"),
            public_cache: unique("pcache"),
            public_images: unique("pimages"),
            log: unique("log"),
            mount_public_images: true,
            mount_log: true,
            containers: Vec::new(),
            volumes: Vec::new(),
        };
        docker_ok(&["network", "create", &site.network]);
        for volume in [
            &site.cache,
            &site.public_cache,
            &site.public_images,
            &site.log,
        ] {
            site.volumes.push(volume.clone());
            docker_ok(&["volume", "create", volume]);
        }
        site.prepare_volumes();
        site.containers.push(site.postgres.clone());
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &site.postgres,
            "--network",
            &site.network,
            "-e",
            "POSTGRES_USER=movim",
            "-e",
            &format!("POSTGRES_PASSWORD={DB_PASSWORD}"),
            "-e",
            "POSTGRES_DB=movim",
            &world.library_image("postgres:15"),
        ]);
        site.write_env(&[], &[]);
        // TCP answers only once initdb is over.
        let ready = wait_for(Duration::from_secs(60), || {
            docker(&[
                "exec",
                &site.postgres,
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-U",
                "movim",
            ])
            .status
            .success()
            .then_some(())
        });
        assert!(
            ready.is_some(),
            "postgres never became ready\n{}",
            site.logs()
        );
        site
    }

    /// What movim-setup's `prepare` does: the fresh volumes belong to uid 82 (the images ship
    /// neither `public/images/` nor, from v0.30, `log/`, so docker creates them root-owned).
    fn prepare_volumes(&self) {
        let image = self.world.movim_image("daemon", BASELINE);
        let mut args = vec!["run", "--rm", "--user", "0", "--entrypoint", "chown"];
        let mounts: Vec<String> = [
            &self.cache,
            &self.public_cache,
            &self.public_images,
            &self.log,
        ]
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{v}:/v{i}"))
        .collect();
        for m in &mounts {
            args.extend_from_slice(&["-v", m]);
        }
        args.extend_from_slice(&[&image, "82:82", "/v0", "/v1", "/v2", "/v3"]);
        docker_ok(&args);
    }

    /// Writes `movim.env` (the keys Movim reads, `docs/movim-contract.md`), leaving out the keys in
    /// `without` and adding `extra`.
    fn write_env(&self, without: &[&str], extra: &[(&str, &str)]) {
        let pairs = [
            ("DB_DRIVER", "pgsql".to_owned()),
            ("DB_HOST", self.postgres.clone()),
            ("DB_PORT", "5432".to_owned()),
            ("DB_DATABASE", "movim".to_owned()),
            ("DB_USERNAME", "movim".to_owned()),
            ("DB_PASSWORD", DB_PASSWORD.to_owned()),
            ("DAEMON_URL", format!("https://{PUBLIC_HOST}/")),
            ("DAEMON_PORT", "8080".to_owned()),
            ("DAEMON_INTERFACE", "0.0.0.0".to_owned()),
            ("DAEMON_DEBUG", "false".to_owned()),
            ("DAEMON_VERBOSE", "false".to_owned()),
        ];
        let body: String = pairs
            .iter()
            .filter(|(k, _)| !without.contains(k))
            .map(|(k, v)| format!("{k}={v}\n"))
            .chain(extra.iter().map(|(k, v)| format!("{k}={v}\n")))
            .collect();
        let path = self.env_path();
        std::fs::write(&path, body).expect("movim.env is written");
        // Readable by uid 82 inside the containers (this test runs as another user).
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("movim.env mode is set");
    }

    fn env_path(&self) -> PathBuf {
        self.env_dir.path().join("movim.env")
    }

    fn env_mount(&self) -> String {
        format!("{}:/var/www/movim/.env:ro", self.env_path().display())
    }

    /// `php <args>` in a one-shot container of the daemon image (like the tool's migration step:
    /// the image's entrypoint ignores arguments, so the command goes through `--entrypoint`), with
    /// a read-only root and only `.env` mounted.
    fn php(&self, tag: &str, args: &[&str]) -> Output {
        let image = self.world.movim_image("daemon", tag);
        let env = self.env_mount();
        let mut full = vec![
            "run",
            "--rm",
            "--network",
            &self.network,
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-v",
            &env,
            "--entrypoint",
            "php",
            &image,
        ];
        full.extend_from_slice(args);
        docker(&full)
    }

    /// `phinx <command>`'s exit code and output.
    fn phinx(&self, tag: &str, command: &str) -> (i32, String) {
        let out = self.php(tag, &["vendor/bin/phinx", command]);
        (out.status.code().unwrap_or(-1), text(&out))
    }

    fn migrate(&self, tag: &str) {
        let (code, out) = self.phinx(tag, "migrate");
        assert_eq!(code, 0, "phinx migrate with {tag} failed:\n{out}");
    }

    /// One `psql -Atc` query over TCP inside the postgres container.
    fn sql(&self, query: &str) -> String {
        docker_ok(&[
            "exec",
            "-e",
            &format!("PGPASSWORD={DB_PASSWORD}"),
            &self.postgres,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "movim",
            "-d",
            "movim",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            query,
        ])
        .trim()
        .to_owned()
    }

    /// Versions recorded in `phinxlog`, oldest first.
    fn phinxlog(&self) -> Vec<String> {
        self.sql("select version from phinxlog order by version")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The volume mounts of a service as the compose file has them (`ro` for web, which has no
    /// `log/`), minus the ones this site leaves out.
    fn mounts(&self, what: &str) -> Vec<String> {
        let ro = if what == "web" { ":ro" } else { "" };
        let mut mounts = vec![
            format!("{}:/var/www/movim/cache{ro}", self.cache),
            format!("{}:/var/www/movim/public/cache{ro}", self.public_cache),
        ];
        if self.mount_public_images {
            mounts.push(format!(
                "{}:/var/www/movim/public/images{ro}",
                self.public_images
            ));
        }
        if self.mount_log && what != "web" {
            mounts.push(format!("{}:/var/www/movim/log", self.log));
        }
        mounts
    }

    /// Starts a container as the compose file would: read-only root, tmpfs /tmp, the env file and
    /// the shared volumes.
    fn start(&mut self, what: &str, image: &str, extra: &[&str]) -> String {
        let name = unique(what);
        let env = self.env_mount();
        let mounts = self.mounts(what);
        let mut full = vec!["run", "-d", "--name", &name, "--network", &self.network];
        for m in &mounts {
            full.extend_from_slice(&["-v", m]);
        }
        if what != "web" {
            full.extend_from_slice(&["--read-only", "--tmpfs", "/tmp", "-v", &env]);
        }
        full.extend_from_slice(extra);
        full.push(image);
        // Registered before it runs, so a half-created container is removed too.
        self.containers.push(name.clone());
        docker_ok(&full);
        name
    }

    fn start_daemon(&mut self, tag: &str) -> String {
        self.start_daemon_with(tag, &[])
    }

    fn start_daemon_with(&mut self, tag: &str, extra: &[&str]) -> String {
        let image = self.world.movim_image("daemon", tag);
        self.start("daemon", &image, extra)
    }

    /// A daemon whose websocket port is published on loopback, for tests that talk to it directly.
    fn start_published_daemon(&mut self, tag: &str, extra: &[&str]) -> (String, SocketAddr) {
        let mut args = vec!["-p", "127.0.0.1::8080"];
        args.extend_from_slice(extra);
        let daemon = self.start_daemon_with(tag, &args);
        let out = docker_ok(&["port", &daemon, "8080/tcp"]);
        let addr = out
            .lines()
            .find_map(|l| l.trim().parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("the daemon's port 8080 is not published: {out}"));
        let up = wait_for(Duration::from_secs(60), || {
            Self::sessions_tree(&daemon).status.success().then_some(())
        });
        assert!(up.is_some(), "the daemon never answered\n{}", self.logs());
        (daemon, addr)
    }

    fn start_fpm(&mut self, tag: &str) -> String {
        let image = self.world.movim_image("fpm", tag);
        self.start("fpm", &image, &["-e", "FPM_LISTEN=0.0.0.0"])
    }

    /// web on a random loopback port; nginx resolves FPM_HOST and DAEMON_HOST at start, so both
    /// must be running.
    fn start_web(&mut self, tag: &str, fpm: &str, daemon: &str) -> (String, SocketAddr) {
        let image = self.world.movim_image("web", tag);
        let fpm_host = format!("FPM_HOST={fpm}");
        let daemon_host = format!("DAEMON_HOST={daemon}");
        let web = self.start(
            "web",
            &image,
            &["-e", &fpm_host, "-e", &daemon_host, "-p", "127.0.0.1::80"],
        );
        let out = docker_ok(&["port", &web, "80/tcp"]);
        let addr = out
            .lines()
            .find_map(|l| l.trim().parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("web's port 80 is not published: {out}"));
        (web, addr)
    }

    /// Whether `php daemon.php sessionsTree` succeeds in `container` (the daemon answers its socket).
    fn sessions_tree(container: &str) -> Output {
        docker(&["exec", container, "php", "daemon.php", "sessionsTree"])
    }

    /// Migrates, then starts daemon, fpm and web of `tag` and waits until `/infos` answers.
    fn start_stack(&mut self, tag: &str, daemon_must_answer: bool) -> Stack {
        self.migrate(tag);
        let daemon = self.start_daemon(tag);
        let fpm = self.start_fpm(tag);
        if daemon_must_answer {
            let up = wait_for(Duration::from_secs(60), || {
                Self::sessions_tree(&daemon).status.success().then_some(())
            });
            assert!(up.is_some(), "the daemon never answered\n{}", self.logs());
        }
        let (web, addr) = self.start_web(tag, &fpm, &daemon);
        let infos = wait_for(Duration::from_secs(60), || {
            get(addr, "/infos").filter(|r| r.status == 200)
        });
        assert!(
            infos.is_some(),
            "/infos never answered 200\n{}",
            self.logs()
        );
        Stack {
            daemon,
            fpm,
            web,
            addr,
        }
    }

    /// A file of the `log/` volume, read by a one-shot container (empty when missing).
    fn read_log(&self, file: &str) -> String {
        let image = self.world.movim_image("daemon", BASELINE);
        let mount = format!("{}:/l:ro", self.log);
        let path = format!("/l/{file}");
        let out = docker(&[
            "run",
            "--rm",
            "-v",
            &mount,
            "--entrypoint",
            "cat",
            &image,
            &path,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `container` has exited; returns its exit code and its whole log.
    fn wait_exit(&self, container: &str) -> (i64, String) {
        let exited = wait_for(Duration::from_secs(60), || {
            let state = docker_ok(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                container,
            ]);
            let mut parts = state.split_whitespace();
            (parts.next() == Some("exited"))
                .then(|| parts.next().and_then(|c| c.parse::<i64>().ok()))
                .flatten()
        });
        let code = exited.unwrap_or_else(|| panic!("{container} did not exit\n{}", self.logs()));
        (code, text(&docker(&["logs", container])))
    }

    /// The last log lines of every container, for failure messages.
    fn logs(&self) -> String {
        self.containers
            .iter()
            .map(|c| {
                format!(
                    "--- logs of {c}\n{}",
                    text(&docker(&["logs", "--tail", "30", c]))
                )
            })
            .collect()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

// ---- HTTP and websocket from the test ---------------------------------------------------------

struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    /// What followed the head: the body, or the first websocket bytes after a 101.
    rest: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn body(&self) -> String {
        String::from_utf8_lossy(&self.rest).into_owned()
    }
}

/// Sends `request` and reads the response: up to the end of the head for a 101 (the stream stays
/// open and is returned), to the end of the stream otherwise.
fn exchange(addr: SocketAddr, request: &str, patience: Duration) -> Option<(Response, TcpStream)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(patience)).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut head_end = None;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if head_end.is_none() {
            head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        }
        if head_end.is_some() && got.starts_with(b"HTTP/1.1 101") {
            break;
        }
    }
    let end = head_end?;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = got[end + 4..].to_vec();
    Some((
        Response {
            status,
            headers,
            rest,
        },
        stream,
    ))
}

/// `GET path` through web (HTTP/1.0: nginx answers without chunking and closes).
fn get(addr: SocketAddr, path: &str) -> Option<Response> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {PUBLIC_HOST}\r\n\r\n");
    exchange(addr, &request, Duration::from_secs(10)).map(|(r, _)| r)
}

fn infos(addr: SocketAddr) -> serde_json::Value {
    let response = get(addr, "/infos").expect("/infos answers");
    assert_eq!(response.status, 200, "/infos: {}", response.body());
    serde_json::from_str(&response.body())
        .unwrap_or_else(|e| panic!("/infos is not JSON ({e}): {}", response.body()))
}

/// RFC 6455's `Sec-WebSocket-Accept` for a key.
fn accept_for(key: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(
        Sha1::new()
            .chain_update(key.as_bytes())
            .chain_update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
            .finalize(),
    )
}

/// The test's own expectation agrees with RFC 6455 §1.3's worked example, so a stand-in that
/// shares a wrong GUID with the test cannot pass.
#[test]
fn the_expected_accept_matches_the_rfc_example() {
    assert_eq!(
        accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

/// A websocket handshake on `/ws/` (RFC 6455) with `origin`; returns the response, the stream and
/// the `Sec-WebSocket-Accept` a correct server must send.
fn handshake(addr: SocketAddr, origin: Option<&str>) -> (Response, TcpStream, String) {
    let origin = origin.map(|o| ("Origin", o.to_owned()));
    handshake_with(addr, origin.as_slice())
}

/// A websocket handshake on `/ws/` with these extra header lines (no subprotocol).
fn handshake_with(addr: SocketAddr, headers: &[(&str, String)]) -> (Response, TcpStream, String) {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let accept = accept_for(&key);
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "GET /ws/ HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    let (response, stream) =
        exchange(addr, &request, Duration::from_secs(10)).expect("/ws/ answers the handshake");
    (response, stream, accept)
}

/// Movim's answer to an untrusted connection (`$conn->close()`): a close frame with code 1000 and
/// no reason, then the end of the TCP connection.
fn assert_closed_with_1000(stream: &mut TcpStream, mut buf: Vec<u8>, what: &str) {
    let first = next(stream, &mut buf, Duration::from_secs(5));
    assert_eq!(
        first,
        Next::Frame(0x8, vec![0x03, 0xe8]),
        "{what}: a close frame with code 1000 first"
    );
    assert_eq!(
        next(stream, &mut buf, Duration::from_secs(5)),
        Next::Eof,
        "{what}: then the TCP connection ends"
    );
}

/// A trusted connection without a session: open, and nothing is sent.
fn assert_open_and_silent(stream: &mut TcpStream, mut buf: Vec<u8>, what: &str) {
    assert_eq!(
        next(stream, &mut buf, Duration::from_secs(1)),
        Next::Silence,
        "{what}: the connection stays open and no frame comes"
    );
}

/// The trusted browser connection of a session: the public Origin and the session cookie.
fn browser(addr: SocketAddr, sid: &str) -> (TcpStream, Vec<u8>) {
    let (response, stream, _) = handshake_with(
        addr,
        &[
            ("Origin", format!("https://{PUBLIC_HOST}")),
            ("Cookie", format!("MOVIM_SESSION_ID={sid}")),
        ],
    );
    assert_eq!(response.status, 101, "the session's handshake");
    (stream, response.rest)
}

/// The session workers running in the daemon container: (their command line, the names of their
/// environment variables), read from /proc as the daemon's user.
fn workers(daemon: &str, script: &str) -> Vec<(String, BTreeSet<String>)> {
    let shell = format!(
        "for d in /proc/[0-9]*; do cmd=\"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\"; \
         case \"$cmd\" in /usr/bin/php*{script}*) echo \"$cmd\"; tr '\\0' '\\n' < $d/environ | cut -d= -f1 | tr '\\n' ' '; echo;; esac; done"
    );
    let out = docker_ok(&["exec", daemon, "sh", "-c", &shell]);
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| {
            (
                c[0].trim().to_owned(),
                c[1].split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The sessions tree the daemon reports: (workers, sessions), from `sessionsTree`'s first line.
fn tree_counts(daemon: &str) -> (u32, u32) {
    let out = Site::sessions_tree(daemon);
    assert!(out.status.success(), "sessionsTree: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.contains("Movim Daemon"))
        .unwrap_or_else(|| panic!("no tree: {stdout}"));
    let numbers: Vec<u32> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// uids of every process in `container`, as the host's `ps` sees them.
fn process_uids(container: &str) -> Vec<(String, String)> {
    docker_ok(&["top", container, "-o", "pid,uid,args"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let _pid = cols.next()?;
            let uid = cols.next()?.to_owned();
            Some((uid, cols.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

// ---- the tests --------------------------------------------------------------------------------

#[test]
fn phinx_status_is_3_before_and_0_after_migrate_and_the_daemon_exits_0_meanwhile() {
    let site = Site::new();

    let (code, out) = site.phinx(BASELINE, "status");
    assert_eq!(code, 3, "status on an empty database:\n{out}");

    let start = site.php(BASELINE, &["daemon.php", "start"]);
    assert_eq!(
        start.status.code(),
        Some(0),
        "the daemon must exit 0 on pending migrations:\n{}",
        text(&start)
    );
    assert!(
        text(&start).contains("php vendor/bin/phinx migrate"),
        "the daemon says how to migrate:\n{}",
        text(&start)
    );

    site.migrate(BASELINE);
    let (code, out) = site.phinx(BASELINE, "status");
    assert_eq!(code, 0, "status after migrate:\n{out}");
    assert_eq!(site.phinxlog().len(), BASELINE_MIGRATIONS);
    assert_eq!(
        site.sql("select extname from pg_extension where extname = 'pgcrypto'"),
        "pgcrypto"
    );
    assert_eq!(
        site.sql(
            "select count(*) from information_schema.columns where table_name = 'phinxlog' \
             and column_name in ('version', 'migration_name', 'start_time', 'end_time', 'breakpoint')"
        ),
        "5",
        "phinxlog has Phinx's columns"
    );

    // A missing DAEMON_URL is another exit-0 case.
    site.write_env(&["DAEMON_URL"], &[]);
    let start = site.php(BASELINE, &["daemon.php", "start"]);
    assert_eq!(start.status.code(), Some(0), "{}", text(&start));
    assert!(text(&start).contains("DAEMON_URL"), "{}", text(&start));
}

#[test]
fn phinx_status_is_2_when_the_database_is_newer_than_the_code() {
    let site = Site::new();
    site.migrate(BASELINE);
    let (code, out) = site.phinx(NEWER, "status");
    assert_eq!(code, 3, "v0.30.0 brings a migration:\n{out}");
    site.migrate(NEWER);
    assert!(site.phinxlog().contains(&NEWER_MIGRATION.to_owned()));
    assert_eq!(site.phinx(NEWER, "status").0, 0);

    let (code, out) = site.phinx(BASELINE, "status");
    assert_eq!(code, 2, "v0.29.2 on a v0.30.0 database:\n{out}");
    assert!(out.contains("MISSING"), "{out}");
}

#[test]
fn migration_fails_leaves_the_first_new_migration_recorded_and_exits_non_zero() {
    let site = Site::new();
    site.migrate(NEWER);

    let (code, out) = site.phinx(MIGRATION_FAILS, "migrate");
    assert!(
        code != 0,
        "the failing migration must fail the command:\n{out}"
    );
    let log = site.phinxlog();
    assert!(log.contains(&FAULT_FIRST.to_owned()), "{log:?}\n{out}");
    assert!(!log.contains(&FAULT_SECOND.to_owned()), "{log:?}\n{out}");
    // Half-way: the failed migration's first change stayed, unrecorded.
    assert_eq!(
        site.sql(
            "select count(*) from information_schema.columns \
             where table_name = 'messages' and column_name = 'retracted'"
        ),
        "1"
    );
    assert_eq!(site.phinx(MIGRATION_FAILS, "status").0, 3);
    assert_eq!(
        site.phinx(NEWER, "status").0,
        2,
        "the previous release sees a migration it does not know"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one stack, every answer a browser gets from it, in the order a browser meets them
fn the_stack_answers_infos_and_the_websocket_through_real_nginx() {
    let mut site = Site::new();
    let stack = site.start_stack(NEWER, true);
    let logs = || site.logs();

    let infos = infos(stack.addr);
    assert_eq!(infos["version"], "v0.30.0", "{infos}");
    assert_eq!(infos["linked"], 0, "no session yet: {infos}");
    for field in [
        "url",
        "language",
        "whitelist",
        "banner",
        "admins",
        "description",
        "unregister",
        "php_version",
        "population",
        "started",
        "connected",
        "commit",
        "statistics",
    ] {
        assert!(infos.get(field).is_some(), "/infos has `{field}`: {infos}");
    }
    for field in ["maxsessions", "database", "xmppdomain"] {
        assert!(
            infos.get(field).is_none(),
            "v0.30 has no `{field}`: {infos}"
        );
    }

    let css = get(stack.addr, "/theme/style.css").expect("static file answers");
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .is_some_and(|t| t.starts_with("text/css")),
        "served by nginx as a static file"
    );

    // The public Origin: 101 with the RFC 6455 accept and Ratchet's header, then open and silent.
    let (response, mut ws, accept) = handshake(stack.addr, Some(&format!("https://{PUBLIC_HOST}")));
    assert_eq!(response.status, 101, "right Origin\n{}", logs());
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some(accept.as_str())
    );
    assert_eq!(response.header("x-powered-by"), Some(RATCHET));
    let mut buf = response.rest;
    assert_eq!(
        next(&mut ws, &mut buf, Duration::from_secs(1)),
        Next::Silence,
        "a trusted connection without a session gets no frame\n{}",
        logs()
    );
    assert_eq!(infos_linked(stack.addr), Some(0), "a probe is no session");
    // A masked close frame gets a close frame back, then the end.
    let mask = [1u8, 2, 3, 4];
    let code = [0x03u8 ^ mask[0], 0xe8 ^ mask[1]];
    ws.write_all(&[
        0x88, 0x82, mask[0], mask[1], mask[2], mask[3], code[0], code[1],
    ])
    .expect("close frame is sent");
    assert_eq!(
        next(&mut ws, &mut buf, Duration::from_secs(5)),
        Next::Frame(0x8, vec![0x03, 0xe8]),
        "the daemon answers close"
    );

    // Every other Origin also gets its 101, then Movim closes it with code 1000.
    for origin in [
        Some("https://evil.test"),
        Some("http://movim.test.evil.test"),
        Some("https://MOVIM.TEST"),
        None,
    ] {
        let (response, mut ws, _) = handshake(stack.addr, origin);
        assert_eq!(response.status, 101, "Origin {origin:?} is upgraded first");
        assert_eq!(response.header("x-powered-by"), Some(RATCHET));
        assert_closed_with_1000(&mut ws, response.rest, &format!("Origin {origin:?}"));
    }

    // Sec-Fetch-Site decides alone when present: same-origin trusts any Origin, anything else none.
    let evil = ("Origin", "https://evil.test".to_owned());
    let (response, mut ws, _) = handshake_with(
        stack.addr,
        &[evil.clone(), ("Sec-Fetch-Site", "same-origin".to_owned())],
    );
    assert_eq!(response.status, 101);
    assert_open_and_silent(&mut ws, response.rest, "Sec-Fetch-Site: same-origin");
    let public = ("Origin", format!("https://{PUBLIC_HOST}"));
    for site in ["same-site", "cross-site", "none"] {
        let (response, mut ws, _) = handshake_with(
            stack.addr,
            &[public.clone(), ("Sec-Fetch-Site", site.to_owned())],
        );
        assert_eq!(response.status, 101);
        assert_closed_with_1000(&mut ws, response.rest, &format!("Sec-Fetch-Site: {site}"));
    }

    // Ratchet's refusals, each with its X-Powered-By.
    let plain = get(stack.addr, "/ws/").expect("/ws/ answers");
    assert_eq!(plain.status, 426, "plain GET /ws/");
    assert_eq!(plain.header("x-powered-by"), Some(RATCHET));
    assert_eq!(plain.header("sec-websocket-version"), Some("13"));
    let bad_key = format!(
        "GET /ws/ HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\nOrigin: https://{PUBLIC_HOST}\r\n\r\n"
    );
    let (response, _) =
        exchange(stack.addr, &bad_key, Duration::from_secs(10)).expect("a bad key is answered");
    assert_eq!(response.status, 400, "a key that is not 16 bytes");
    assert_eq!(response.header("x-powered-by"), Some(RATCHET));
    let (response, _, _) = handshake_with(
        stack.addr,
        &[
            public.clone(),
            ("Sec-WebSocket-Protocol", "xmpp".to_owned()),
        ],
    );
    assert_eq!(response.status, 426, "Movim declares no subprotocol");

    for container in [&stack.daemon, &stack.fpm] {
        let processes = process_uids(container);
        assert!(!processes.is_empty());
        for (uid, args) in &processes {
            assert_eq!(uid, "82", "{container}: `{args}` runs as uid {uid}");
        }
        assert!(
            processes[0].1.starts_with("tini"),
            "tini is PID 1 in {container}: {processes:?}"
        );
    }
    let cache = docker_ok(&["exec", &stack.fpm, "ls", "-ln", "/var/www/movim/cache"]);
    assert!(
        cache.contains("socketapi.sock") && cache.contains("vapid_keys.json"),
        "{cache}"
    );
    let wget = docker(&[
        "exec",
        &stack.web,
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1/infos",
    ]);
    assert!(
        wget.status.success(),
        "web's wget healthcheck: {}",
        text(&wget)
    );
}

fn infos_linked(addr: SocketAddr) -> Option<u64> {
    infos(addr)["linked"].as_u64()
}

/// `VERSION` holds the tag with its `v` and no newline, and `/infos` reports it; v0.33+ adds
/// `maxsessions` and `database`.
#[test]
fn version_files_and_infos_are_the_real_releases() {
    let world = World::get();
    for tag in [BASELINE, TWO_PART, LATEST, NEWER] {
        let image = world.movim_image("fpm", tag);
        let version = docker_ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            &image,
            "/var/www/movim/VERSION",
        ]);
        assert_eq!(version, tag, "VERSION of {tag}, byte for byte");
    }
    let mut site = Site::new();
    let stack = site.start_stack(LATEST, true);
    let infos = infos(stack.addr);
    assert_eq!(infos["version"], LATEST, "{infos}");
    assert_eq!(infos["maxsessions"], 0, "{infos}");
    assert_eq!(infos["database"], "pgsql", "{infos}");
    assert!(infos["banner"].is_null(), "{infos}");
    assert_eq!(infos["url"], format!("//{PUBLIC_HOST}/"), "{infos}");
}

#[test]
fn a_stopped_daemon_gives_502_and_a_restart_logs_everyone_out_but_keeps_its_keys() {
    let mut site = Site::new();
    let stack = site.start_stack(BASELINE, true);
    let vapid = || {
        docker_ok(&[
            "exec",
            &stack.fpm,
            "cat",
            "/var/www/movim/cache/vapid_keys.json",
        ])
    };
    let keys = vapid();

    docker_ok(&["stop", &stack.daemon]);
    assert!(
        !Site::sessions_tree(&stack.fpm).status.success(),
        "sessionsTree must fail while the daemon is down"
    );
    let infos = infos(stack.addr);
    assert_eq!(infos["version"], "v0.29.2");
    assert_eq!(
        infos["linked"], 0,
        "counters are 0 without the daemon: {infos}"
    );
    // nginx keeps the daemon's old address; the 502 comes once the kernel gives up on it.
    let bad_gateway = wait_for(Duration::from_secs(120), || {
        let request = format!("GET /ws/ HTTP/1.0\r\nHost: {PUBLIC_HOST}\r\n\r\n");
        exchange(stack.addr, &request, Duration::from_secs(90))
            .map(|(r, _)| r.status)
            .filter(|s| *s == 502)
    });
    assert_eq!(bad_gateway, Some(502), "\n{}", site.logs());

    site.sql("insert into users (id) values ('alice@movim.test')");
    site.sql("insert into sessions (id, user_id) values ('s1', 'alice@movim.test')");
    docker_ok(&["start", &stack.daemon]);
    let up = wait_for(Duration::from_secs(60), || {
        Site::sessions_tree(&stack.daemon)
            .status
            .success()
            .then_some(())
    });
    assert!(
        up.is_some(),
        "the daemon did not come back\n{}",
        site.logs()
    );
    assert_eq!(
        site.sql("select count(*) from sessions"),
        "0",
        "start wipes sessions"
    );
    assert_eq!(vapid(), keys, "vapid_keys.json survives a restart");
}

/// A session cookie on a trusted websocket starts a worker with only the keys Movim gives it
/// (nothing of the container's environment), counted in the sessions tree; the browser hears
/// `started`. v0.34.1 packs sessions into `sessionsworker.php`; v0.30 runs one `linker.php` each.
/// PHP's proc_open leaves out the keys whose value is empty — here DAEMON_DEBUG and DAEMON_VERBOSE
/// (false), and before v0.32 `verbose`, `debug` and `language` (no Accept-Language) — as it does
/// for upstream's React\ChildProcess\Process.
#[test]
fn a_session_starts_a_worker_with_an_explicit_environment() {
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            LATEST,
            "sessionsworker.php",
            &[
                "wid",
                "baseuri",
                "DAEMON_PORT",
                "DB_DATABASE",
                "DB_DRIVER",
                "DB_HOST",
                "DB_PASSWORD",
                "DB_PORT",
                "DB_USERNAME",
                "key",
            ],
        ),
        (TWO_PART, "linker.php", &["sid", "baseuri", "key", "port"]),
    ];
    for (tag, script, keys) in cases {
        let mut site = Site::new();
        site.migrate(tag);
        let (daemon, addr) = site.start_published_daemon(
            tag,
            &[
                "-e",
                "SSL_CERT_FILE=/tmp/ca.pem",
                "-e",
                "LOG_PATH=/var/www/movim/log/",
            ],
        );
        assert_eq!(tree_counts(&daemon), (0, 0), "{tag}: no session yet");

        let sid = session_id();
        let (mut ws, mut buf) = browser(addr, &sid);
        let started = next_json(&mut ws, &mut buf, Duration::from_secs(10));
        assert_eq!(
            started["func"],
            "started",
            "{tag}: {started}\n{}",
            site.logs()
        );
        assert_eq!(
            tree_counts(&daemon),
            (1, 1),
            "{tag}: one worker, one session"
        );

        let found = workers(&daemon, script);
        assert_eq!(found.len(), 1, "{tag}: {found:?}\n{}", site.logs());
        let (command, env) = &found[0];
        assert!(
            command.contains(" -n ") && command.contains("-dextension=pdo_pgsql.so"),
            "{tag}: php -n with the extensions named: {command}"
        );
        // The shell Movim starts the worker through may add its own PWD; nothing else.
        let mut env = env.clone();
        env.remove("PWD");
        assert_eq!(env, names(keys), "{tag}: the worker's environment");

        // A second session of the same worker (v0.33+) or a second linker (before).
        let (mut other, mut other_buf) = browser(addr, &session_id());
        assert_eq!(
            next_json(&mut other, &mut other_buf, Duration::from_secs(10))["func"],
            "started"
        );
        let expected = if tag == LATEST { (1, 2) } else { (2, 2) };
        assert_eq!(tree_counts(&daemon), expected, "{tag}: two sessions");
    }
}

/// Workers read LOG_PATH from `.env` only: with the daemon's own LOG_PATH writable but `.env`
/// silent, a worker on a read-only root cannot log, and dies at its first logged line (v0.30: at
/// boot, checkSystem's `@mkdir` of the log directory; v0.34.1: after the login). Its browser is
/// closed with 1000 and its session is gone; PHP's fatal error went to the worker's stdout, which
/// the daemon drops, so nothing of it shows in the daemon's output. With LOG_PATH in `.env` the same
/// line lands in errors.log and the worker lives on.
#[test]
fn a_worker_without_a_writable_log_path_dies_at_its_first_logged_line() {
    for tag in [TWO_PART, LATEST] {
        let mut site = Site::new();
        site.mount_log = false;
        site.migrate(tag);
        let (daemon, addr) = site.start_published_daemon(tag, &["-e", "LOG_PATH=/tmp/log/"]);
        let sid = session_id();
        let (mut ws, mut buf) = browser(addr, &sid);
        if tag == LATEST {
            assert_eq!(
                next_json(&mut ws, &mut buf, Duration::from_secs(10))["func"],
                "started"
            );
            send_text(&mut ws, &login_message(&sid, "alice@movim.test"));
        }
        assert_closed_with_1000(&mut ws, buf, &format!("{tag}: the dead worker's browser"));
        let gone = wait_for(Duration::from_secs(10), || {
            (tree_counts(&daemon) == (0, 0)).then_some(())
        });
        assert!(
            gone.is_some(),
            "{tag}: the session is gone\n{}",
            site.logs()
        );
        let logs = text(&docker(&["logs", &daemon]));
        assert!(
            !logs.contains("There is no existing directory"),
            "{tag}: the worker's fatal error is not in the daemon's output:\n{logs}"
        );

        // Same, with LOG_PATH in .env: the worker logs to the daemon's /tmp/log and keeps going.
        site.write_env(&[], &[("LOG_PATH", "/tmp/log/")]);
        let sid = session_id();
        let (mut ws, mut buf) = browser(addr, &sid);
        assert_eq!(
            next_json(&mut ws, &mut buf, Duration::from_secs(10))["func"],
            "started",
            "{tag}\n{}",
            site.logs()
        );
        send_text(&mut ws, &login_message(&sid, "alice@movim.test"));
        let logged = wait_for(Duration::from_secs(10), || {
            let out = docker(&["exec", &daemon, "cat", "/tmp/log/errors.log"]);
            let log = String::from_utf8_lossy(&out.stdout).into_owned();
            log.contains("does not authenticate").then_some(log)
        });
        assert!(logged.is_some(), "{tag}: errors.log\n{}", site.logs());
        assert_open_and_silent(&mut ws, buf, &format!("{tag}: the worker lives"));
    }
}

/// On a read-only root without a writable `log/`. v0.34.1's directory check `@mkdir`s the missing
/// ones; Movim's error handler logs even `@`-silenced warnings, so that warning cannot be logged and
/// Monolog's exception ends the start (exit 1). With `log/` writable, a missing `public/images/` is
/// logged and reported, exit 0. v0.30 checks nothing at start and fails only where it logs: an
/// invalid DAEMON_URL makes it warn during start (exit 1), an Origin-less websocket makes it warn
/// while serving ("An error has occurred: …", the connection left open). The seed's v0.29.2 logs to
/// stderr and needs no `log/`.
#[test]
fn without_a_writable_log_dir_each_release_fails_as_upstream_does() {
    let mut site = Site::new();
    site.mount_log = false;
    site.migrate(LATEST);
    let daemon = site.start_daemon(LATEST);
    let (code, logs) = site.wait_exit(&daemon);
    assert_eq!(code, 1, "v0.34.1 cannot log its failed mkdir:\n{logs}");
    assert!(
        logs.contains(NO_LOG_DIR)
            && logs.contains(
                "The exception occurred while attempting to log: mkdir(): Read-only file system"
            ),
        "Monolog's message:\n{logs}"
    );

    site.mount_log = true;
    site.mount_public_images = false;
    let daemon = site.start_daemon(LATEST);
    let (code, logs) = site.wait_exit(&daemon);
    assert_eq!(code, 0, "v0.34.1 exits 0 on its directory check:\n{logs}");
    assert!(
        logs.contains("Can’t create /var/www/movim/public/images/ directory")
            && logs.contains("In both case they should be writable"),
        "{logs}"
    );
    let errors = site.read_log("errors.log");
    assert!(
        errors.contains("movim.ERROR: mkdir(): Read-only file system"),
        "the warning is logged: {errors}"
    );

    // v0.30 starts and serves all the same.
    let mut site = Site::new();
    site.mount_log = false;
    site.migrate(TWO_PART);
    let (daemon, addr) = site.start_published_daemon(TWO_PART, &[]);
    let (response, mut ws, _) = handshake(addr, None);
    assert_eq!(response.status, 101);
    assert_open_and_silent(&mut ws, response.rest, "v0.30, no Origin, log failing");
    let logs = text(&docker(&["logs", &daemon]));
    assert!(
        logs.contains(&format!("An error has occurred: {NO_LOG_DIR}"))
            && logs
                .contains("The exception occurred while attempting to log: Undefined array key 0"),
        "Core::onError prints Monolog's failure:\n{logs}"
    );

    // An invalid DAEMON_URL: a warning during start, which cannot be logged: exit 1.
    site.write_env(&["DAEMON_URL"], &[("DAEMON_URL", "\"http://exa mple/\"")]);
    let out = site.php(TWO_PART, &["daemon.php", "start"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(NO_LOG_DIR), "{}", text(&out));

    // The seed's v0.29.2: the same warnings go to stderr, no log directory needed.
    let mut site = Site::new();
    site.mount_log = false;
    site.migrate(BASELINE);
    let (daemon, addr) = site.start_published_daemon(BASELINE, &[]);
    let (response, mut ws, _) = handshake(addr, None);
    assert_eq!(response.status, 101);
    assert_closed_with_1000(&mut ws, response.rest, "v0.29.2, no Origin");
    let logs = text(&docker(&["logs", &daemon]));
    assert!(
        logs.contains("movim.ERROR: Undefined array key 0"),
        "v0.29.2 logs to stderr:\n{logs}"
    );
}

/// With a writable `log/` volume v0.30 serves, and its errors land in `log/errors.log`.
#[test]
fn with_a_writable_log_volume_errors_land_in_errors_log() {
    let mut site = Site::new();
    site.migrate(TWO_PART);
    let (daemon, addr) = site.start_published_daemon(TWO_PART, &[]);
    let (response, mut ws, _) = handshake(addr, None);
    assert_eq!(response.status, 101);
    assert_closed_with_1000(&mut ws, response.rest, "no Origin, logged");
    let logged = wait_for(Duration::from_secs(10), || {
        let out = docker(&["exec", &daemon, "cat", "/var/www/movim/log/errors.log"]);
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        log.contains("movim.ERROR: Undefined array key 0")
            .then_some(log)
    });
    assert!(logged.is_some(), "errors.log\n{}", site.logs());
}

#[test]
fn set_admin_and_config_are_recorded_in_the_database() {
    let site = Site::new();
    site.migrate(BASELINE);
    let out = site.php(BASELINE, &["daemon.php", "setAdmin", "admin@movim.test"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = site.php(
        BASELINE,
        &["daemon.php", "config", "--xmppdomain=movim.test"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        site.sql("select id from users where admin"),
        "admin@movim.test"
    );
    assert_eq!(
        site.sql("select xmppdomain from configuration"),
        "movim.test"
    );
    let out = site.php(BASELINE, &["daemon.php", "config", "--nosuchkey=1"]);
    assert!(!out.status.success(), "unknown settings are refused");
}

#[test]
fn the_daemon_exits_fault_exits_0_soon_after_start() {
    let mut site = Site::new();
    site.migrate(DAEMON_EXITS);
    let daemon = site.start_daemon(DAEMON_EXITS);
    let (code, logs) = site.wait_exit(&daemon);
    assert_eq!(code, 0, "\n{}", site.logs());
    assert!(
        logs.contains("Movim daemon launched"),
        "it started first:\n{logs}"
    );
}

#[test]
fn the_never_healthy_fault_refuses_every_handshake_while_infos_works() {
    let mut site = Site::new();
    let stack = site.start_stack(NEVER_HEALTHY, true);
    let infos = infos(stack.addr);
    assert_eq!(infos["version"], "v0.30.3", "{infos}");
    let (response, _, _) = handshake(stack.addr, Some(&format!("https://{PUBLIC_HOST}")));
    assert_ne!(
        response.status, 101,
        "never-healthy must not complete a handshake"
    );
    assert!(Site::sessions_tree(&stack.daemon).status.success());
}

/// Runs `openssl` with these arguments, or panics with its stderr.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<dir>/<name>.crt` and `.key` for the DNS name `name`, signed by the CA (certificate, key).
fn certificate(dir: &std::path::Path, name: &str, ca: (&str, &str)) {
    let path = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    std::fs::write(path("cnf"), format!("subjectAltName=DNS:{name}\n"))
        .expect("openssl extensions");
    let subject = format!("/CN={name}");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &path("key"),
        "-out",
        &path("csr"),
        "-subj",
        &subject,
    ]);
    let serial = format!("0x{:016x}", rand::random::<u64>());
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("csr"),
        "-CA",
        ca.0,
        "-CAkey",
        ca.1,
        "-set_serial",
        &serial,
        "-out",
        &path("crt"),
        "-days",
        "2",
        "-extfile",
        &path("cnf"),
    ]);
}

/// The XMPP side of a session worker: `register` resolves and connects (`registered`), the login
/// opens the stream and, as the server requires it, STARTTLS with the login's domain as peer name,
/// verified against the image's own store — which holds the world's CA. A CA given to the daemon
/// through SSL_CERT_FILE does not reach the worker (its environment is explicit), so a server whose
/// certificate only that CA signs fails TLS.
#[test]
#[allow(clippy::too_many_lines)] // one login scenario: Prosody with a private certificate, then the worker's TLS with and without the CA
fn a_worker_starts_tls_with_the_xmpp_server_trusting_only_the_image_store() {
    let world = World::get();
    let certs = tempfile::tempdir().expect("a temporary directory");
    let dir = certs.path();
    let os = |p: &std::path::Path| p.display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &os(&dir.join("other-ca.key")),
        "-out",
        &os(&dir.join("other-ca.crt")),
        "-days",
        "2",
        "-subj",
        "/CN=a CA in no store",
    ]);
    certificate(dir, "xmpp.test", (&os(&world.ca_cert), &os(&world.ca_key)));
    let other = (os(&dir.join("other-ca.crt")), os(&dir.join("other-ca.key")));
    certificate(dir, "xmpp2.test", (&other.0, &other.1));
    let mut config = String::new();
    for host in ["xmpp.test", "xmpp2.test"] {
        config.push_str(&format!(
            "VirtualHost \"{host}\"\n  ssl = {{ certificate = \"/certs/{host}.crt\"; key = \"/certs/{host}.key\"; }}\n  \
             c2s_require_encryption = true\n"
        ));
    }
    std::fs::write(dir.join("hosts.cfg.lua"), config).expect("prosody's host file");
    for entry in std::fs::read_dir(dir).expect("the certificates") {
        let path = entry.expect("an entry").path();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("readable by prosody");
    }
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("the directory is readable");

    let mut site = Site::new();
    let prosody = unique("xmpp");
    site.containers.push(prosody.clone());
    let certs_mount = format!("{}:/certs:ro", os(dir));
    let hosts_mount = format!(
        "{}:/etc/prosody/conf.d/hosts.cfg.lua:ro",
        os(&dir.join("hosts.cfg.lua"))
    );
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &prosody,
        "--network",
        &site.network,
        "--network-alias",
        "xmpp.test",
        "--network-alias",
        "xmpp2.test",
        "-v",
        &certs_mount,
        "-v",
        &hosts_mount,
        &world.library_image("prosody:0.12"),
    ]);
    site.migrate(LATEST);
    let (daemon, addr) = site.start_published_daemon(
        LATEST,
        &[
            "-v",
            &certs_mount,
            "-e",
            "SSL_CERT_FILE=/certs/other-ca.crt",
        ],
    );

    for (host, outcome) in [("xmpp.test", "TLS enabled"), ("xmpp2.test", "TLS error")] {
        let sid = session_id();
        let (mut ws, mut buf) = browser(addr, &sid);
        assert_eq!(
            next_json(&mut ws, &mut buf, Duration::from_secs(10))["func"],
            "started"
        );
        send_text(
            &mut ws,
            &format!("{{\"func\":\"register\",\"host\":\"{host}\"}}"),
        );
        let registered = wait_for(Duration::from_secs(30), || {
            match next(&mut ws, &mut buf, Duration::from_secs(1)) {
                Next::Frame(0x1, payload) => {
                    let json: serde_json::Value =
                        serde_json::from_slice(&payload).expect("a JSON frame");
                    (json["func"] == "registered").then_some(json)
                }
                _ => None,
            }
        });
        assert!(registered.is_some(), "{host}: registered\n{}", site.logs());
        send_text(&mut ws, &login_message(&sid, "alice@movim.test"));
        let line = wait_for(Duration::from_secs(30), || {
            let logs = text(&docker(&["logs", &daemon]));
            logs.lines()
                .skip_while(|l| !l.contains(&sid))
                .find(|l| l.contains("TLS enabled") || l.contains("TLS error"))
                .map(str::to_owned)
        });
        let line = line.unwrap_or_else(|| panic!("{host}: no TLS outcome\n{}", site.logs()));
        assert!(line.contains(outcome), "{host}: {line}\n{}", site.logs());
    }
}
