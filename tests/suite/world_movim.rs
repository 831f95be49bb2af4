//! Smoke tests of the Movim stand-in (its contract: `docs/movim-contract.md`): the pushed `movim-web`,
//! `movim-fpm` and `movim-daemon` images keep the contract movim-setup is built against — Phinx's
//! `phinxlog` and exit codes, the daemon's exit-0 quirks, `/infos` through real nginx and php-fpm,
//! the websocket's Origin check behind `/ws/`, uid 82 on a read-only root filesystem, and the faulty
//! releases failing the way their tags say. Each test runs its own PostgreSQL on its own user network
//! through the real `docker` CLI, cleans up after itself, and fails, never skips, without the world.

use crate::support::world;

use std::collections::BTreeMap;
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
const DAEMON_EXITS: &str = "v0.30.1-daemon-exits";
const MIGRATION_FAILS: &str = "v0.30.2-migration-fails";
const NEVER_HEALTHY: &str = "v0.30.3-never-healthy";

/// The public host of every test deployment; `DAEMON_URL` is `https://movim.test/`.
const PUBLIC_HOST: &str = "movim.test";
const DB_PASSWORD: &str = "stand-in-s3cret";

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
    /// `cache/`, `public/cache/` and `public/images/`, shared by fpm and daemon (web: ro).
    cache: String,
    public_cache: String,
    public_images: String,
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
            containers: Vec::new(),
            volumes: Vec::new(),
        };
        docker_ok(&["network", "create", &site.network]);
        for volume in [&site.cache, &site.public_cache, &site.public_images] {
            site.volumes.push(volume.clone());
            docker_ok(&["volume", "create", volume]);
        }
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
        site.write_env(&[]);
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

    /// Writes `movim.env` (the keys Movim reads, `docs/movim-contract.md`), leaving out the keys in `without`.
    fn write_env(&self, without: &[&str]) {
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
    /// the image's entrypoint ignores arguments, so the command goes through `--entrypoint`).
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

    /// Starts a container as the compose file would: read-only root, tmpfs /tmp, the env file and
    /// the shared volumes (`ro` for web).
    fn start(&mut self, what: &str, image: &str, extra: &[&str]) -> String {
        let name = unique(what);
        let env = self.env_mount();
        let writable = if what == "web" { ":ro" } else { "" };
        let cache = format!("{}:/var/www/movim/cache{writable}", self.cache);
        let public_cache = format!(
            "{}:/var/www/movim/public/cache{writable}",
            self.public_cache
        );
        let public_images = format!(
            "{}:/var/www/movim/public/images{writable}",
            self.public_images
        );
        let mut full = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &self.network,
            "-v",
            &cache,
            "-v",
            &public_cache,
            "-v",
            &public_images,
        ];
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
        let image = self.world.movim_image("daemon", tag);
        self.start("daemon", &image, &[])
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
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let accept = accept_for(&key);
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /ws/ HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    );
    let (response, stream) =
        exchange(addr, &request, Duration::from_secs(10)).expect("/ws/ answers the handshake");
    (response, stream, accept)
}

/// Reads one unmasked server frame (small payloads only): (opcode, payload).
fn read_frame(stream: &mut TcpStream, already: &[u8]) -> (u8, Vec<u8>) {
    let mut got = already.to_vec();
    let mut buf = [0u8; 1024];
    loop {
        if got.len() >= 2 {
            let len = usize::from(got[1] & 0x7f);
            assert!(len < 126, "unexpectedly long frame from the daemon");
            if got.len() >= 2 + len {
                return (got[0] & 0x0f, got[2..2 + len].to_vec());
            }
        }
        let n = stream.read(&mut buf).expect("the websocket stays readable");
        assert!(n > 0, "the daemon closed the websocket early");
        got.extend_from_slice(&buf[..n]);
    }
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
    site.write_env(&["DAEMON_URL"]);
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
fn the_stack_answers_infos_and_the_websocket_through_real_nginx() {
    let mut site = Site::new();
    let stack = site.start_stack(NEWER, true);
    let logs = || site.logs();

    let infos = infos(stack.addr);
    assert_eq!(infos["version"], "0.30.0", "{infos}");
    assert!(infos["linked"].is_u64(), "daemon counters: {infos}");

    let css = get(stack.addr, "/theme/style.css").expect("static file answers");
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .is_some_and(|t| t.starts_with("text/css")),
        "served by nginx as a static file"
    );

    // The right Origin: 101 with the RFC 6455 accept, then the connection stays open.
    let (response, mut ws, accept) = handshake(stack.addr, Some(&format!("https://{PUBLIC_HOST}")));
    assert_eq!(response.status, 101, "right Origin\n{}", logs());
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some(accept.as_str())
    );
    let (opcode, _) = read_frame(&mut ws, &response.rest);
    assert_eq!(opcode, 0x1, "the daemon sends a text frame");
    assert_eq!(
        infos_linked(stack.addr),
        Some(1),
        "the open websocket counts"
    );
    // A masked close frame gets a close frame back.
    let mask = [1u8, 2, 3, 4];
    let code = [0x03u8 ^ mask[0], 0xe8 ^ mask[1]];
    ws.write_all(&[
        0x88, 0x82, mask[0], mask[1], mask[2], mask[3], code[0], code[1],
    ])
    .expect("close frame is sent");
    assert_eq!(read_frame(&mut ws, &[]).0, 0x8, "the daemon answers close");

    for origin in [
        Some("https://evil.test"),
        Some("http://movim.test.evil.test"),
        None,
    ] {
        let (response, _, _) = handshake(stack.addr, origin);
        assert_eq!(response.status, 403, "Origin {origin:?} must be refused");
    }

    let plain = get(stack.addr, "/ws/").expect("/ws/ answers");
    assert_eq!(plain.status, 426, "plain GET /ws/");

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
    assert_eq!(infos["version"], "0.29.2");
    assert!(
        infos["linked"].is_null(),
        "no counters without the daemon: {infos}"
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
    let exited = wait_for(Duration::from_secs(60), || {
        let state = docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &daemon,
        ]);
        state.starts_with("exited").then(|| state.trim().to_owned())
    });
    assert_eq!(exited.as_deref(), Some("exited 0"), "\n{}", site.logs());
    let logs = text(&docker(&["logs", &daemon]));
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
    assert_eq!(infos["version"], "0.30.3", "{infos}");
    let (response, _, _) = handshake(stack.addr, Some(&format!("https://{PUBLIC_HOST}")));
    assert_ne!(
        response.status, 101,
        "never-healthy must not complete a handshake"
    );
    assert!(Site::sessions_tree(&stack.daemon).status.success());
}
