//! Smoke tests of the test world itself: the registry serves every image the
//! manifest names at the recorded digest, and the library images keep the contracts the tool relies
//! on (the official postgres image's env, Prosody on 5222, Caddy serving HTTP). They drive the real
//! `docker` CLI and fail, never skip, when the world is missing.

use crate::support::world;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use world::World;

const MOVIM_TAGS: [&str; 5] = [
    "v0.29.2",
    "v0.30.0",
    "v0.30.1-daemon-exits",
    "v0.30.2-migration-fails",
    "v0.30.3-never-healthy",
];
const MOVIM_COMPONENTS: [&str; 3] = ["web", "fpm", "daemon"];
const LIBRARY_IMAGES: [&str; 5] = [
    "debian:bookworm",
    "postgres:15",
    "postgres:17",
    "prosody:0.12",
    "caddy:2",
];

// ---- docker as a subprocess -------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// Runs docker and returns its stdout, or panics with the command and its stderr.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or concurrent run) uses.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "movim-world-infra-{what}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Containers and networks a test created; removed when the test ends, passed or failed.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Cleanup {
    fn network(&mut self) -> String {
        let name = unique("net");
        docker_ok(&["network", "create", &name]);
        self.networks.push(name.clone());
        name
    }

    /// `docker run -d --name <unique> <args…>`; returns the container's name.
    fn run(&mut self, what: &str, args: &[&str]) -> String {
        let name = unique(what);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        // Registered before it runs, so a half-created container is removed too.
        self.containers.push(name.clone());
        docker_ok(&full);
        name
    }

    /// Logs of every container, for a failure message.
    fn logs(&self) -> String {
        self.containers
            .iter()
            .map(|c| {
                let out = docker(&["logs", "--tail", "40", c]);
                format!(
                    "--- logs of {c}\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .collect()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

/// Polls `probe` until it returns Some or `limit` passes.
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

/// The loopback address docker published for `port` of `container`.
fn published(container: &str, port: &str) -> SocketAddr {
    let out = docker_ok(&["port", container, port]);
    out.lines()
        .find_map(|l| {
            l.trim()
                .parse::<SocketAddr>()
                .ok()
                .filter(SocketAddr::is_ipv4)
        })
        .unwrap_or_else(|| panic!("no IPv4 address published for {container} {port}: {out}"))
}

/// Sends `request` to `addr` and returns what came back until the peer closed, `until` was seen,
/// or a short read timeout passed.
fn exchange(addr: SocketAddr, request: &[u8], until: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains(until) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.contains(until).then_some(text)
}

/// The digest the registry serves now for `reference` (`127.0.0.1:5000/name:tag`).
fn registry_digest(world: &World, reference: &str) -> Option<String> {
    let path = reference
        .strip_prefix(&format!("{}/", world.registry))
        .unwrap_or_else(|| panic!("{reference} is not in the world's registry"));
    let (name, tag) = path.rsplit_once(':').expect("reference has a tag");
    let out = Command::new("curl")
        .args([
            "-sSI",
            "--max-time",
            "10",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.oci.image.index.v1+json",
            &format!("http://{}/v2/{name}/manifests/{tag}", world.registry),
        ])
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout);
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_owned())
    })
}

// ---- the tests --------------------------------------------------------------------------------

#[test]
fn registry_serves_every_image_of_the_world_at_its_recorded_digest() {
    let world = World::get();
    assert_eq!(world.registry, "127.0.0.1:5000");
    assert!(
        world.ca_cert.is_file(),
        "CA certificate {:?} missing",
        world.ca_cert
    );
    assert!(world.ca_key.is_file(), "CA key {:?} missing", world.ca_key);
    assert!(
        world.compose_v2.is_file(),
        "compose v2 {:?} missing",
        world.compose_v2
    );
    assert!(
        world.compose_v1.is_file(),
        "compose v1 {:?} missing",
        world.compose_v1
    );
    if let Some(podman_compose) = &world.podman_compose {
        assert!(
            podman_compose.is_file(),
            "podman-compose {podman_compose:?} missing"
        );
    }
    assert!(
        world.ca_cert.starts_with(world.dir()),
        "the CA belongs to the world in {:?}",
        world.dir()
    );

    let mut expected: Vec<String> = LIBRARY_IMAGES
        .iter()
        .map(|i| world.library_image(i))
        .collect();
    for tag in MOVIM_TAGS {
        for component in MOVIM_COMPONENTS {
            expected.push(world.movim_image(component, tag));
        }
    }
    for reference in &expected {
        assert!(
            world.images.contains_key(reference),
            "world.json lacks {reference}; re-run provision.sh"
        );
    }
    for (reference, digest) in &world.images {
        assert!(
            digest.starts_with("sha256:"),
            "{reference} has digest {digest}"
        );
        assert_eq!(
            registry_digest(world, reference).as_deref(),
            Some(digest.as_str()),
            "the registry does not serve {reference} at the digest world.json records"
        );
    }
}

#[test]
fn a_tag_digest_from_the_registry_equals_what_docker_pull_records() {
    let world = World::get();
    // Untagging the base drops its local digest reference but keeps its layers (movim-world/debian
    // still names them), so the pull below really resolves the tag at the registry.
    let reference = world.library_image("debian:bookworm");
    let repository = reference.rsplit_once(':').expect("tagged").0.to_owned();
    let _ = docker(&["rmi", &reference]);
    docker_ok(&["pull", &reference]);
    let served = registry_digest(world, &reference).expect("the registry serves the base");
    assert_eq!(served, world.digest(&reference));

    let recorded: Vec<String> = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &reference,
    ]))
    .expect("RepoDigests is a JSON list");
    assert!(
        recorded.contains(&format!("{repository}@{served}")),
        "docker pull recorded {recorded:?}, the registry serves {served}"
    );

    // The same for a stand-in image the tool pins.
    let daemon = world.movim_image("daemon", "v0.29.2");
    docker_ok(&["pull", &daemon]);
    let recorded: Vec<String> = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &daemon,
    ]))
    .expect("RepoDigests is a JSON list");
    let want = format!(
        "{}@{}",
        daemon.rsplit_once(':').expect("tagged").0,
        world.digest(&daemon)
    );
    assert!(
        recorded.contains(&want),
        "docker pull recorded {recorded:?}, want {want}"
    );
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn postgres_accepts_the_official_env_login_over_a_user_network() {
    let world = World::get();
    let image = world.library_image("postgres:15");
    let mut c = Cleanup::default();
    let net = c.network();
    let server = c.run(
        "postgres",
        &[
            "--network",
            &net,
            "-e",
            "POSTGRES_USER=movim",
            "-e",
            "POSTGRES_PASSWORD=s3cret pass",
            "-e",
            "POSTGRES_DB=movimdb",
            &image,
        ],
    );
    // TCP answers only once init is over (the init server listens on the socket alone).
    let ready = wait_for(Duration::from_secs(60), || {
        docker(&[
            "exec",
            &server,
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-U",
            "movim",
            "-d",
            "movimdb",
        ])
        .status
        .success()
        .then_some(())
    });
    assert!(ready.is_some(), "postgres never became ready\n{}", c.logs());

    let psql = |password: &str, sql: &str| {
        docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "-e",
            &format!("PGPASSWORD={password}"),
            &image,
            "psql",
            "-h",
            &server,
            "-U",
            "movim",
            "-d",
            "movimdb",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
    };
    let out = psql(
        "s3cret pass",
        "create extension if not exists pgcrypto; \
         select current_user || ' ' || current_database() || ' ' || \
         encode(digest('movim', 'sha256'), 'hex')",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "password login over TCP failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    assert_eq!(
        stdout.lines().last(),
        Some("movim movimdb 422b8df38a95184d3eee6a0bc45cb478dafb330ebd882aa1a76e412d6cc6cc83"),
        "unexpected psql output {stdout:?}"
    );

    let wrong = psql("wrong", "select 1");
    assert!(
        !wrong.status.success(),
        "a wrong password was accepted over TCP"
    );
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "unexpected refusal: {}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let tools = docker_ok(&[
        "exec",
        &server,
        "sh",
        "-c",
        "for t in pg_dump pg_restore psql pg_isready; do command -v $t; done && echo $PGDATA && stat -c %U /proc/1",
    ]);
    assert_eq!(
        tools.lines().count(),
        6,
        "pg tools, PGDATA or server user missing: {tools}"
    );
    assert!(
        tools.contains("/var/lib/postgresql/data\npostgres\n"),
        "{tools}"
    );
    assert!(tools.contains("/pg_restore\n"), "{tools}");
}

#[test]
fn prosody_starts_and_speaks_xmpp_on_5222() {
    let world = World::get();
    let mut c = Cleanup::default();
    let prosody = c.run(
        "prosody",
        &[
            "-p",
            "127.0.0.1::5222",
            &world.library_image("prosody:0.12"),
        ],
    );
    let addr = published(&prosody, "5222/tcp");
    let header = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    let reply = wait_for(Duration::from_secs(30), || {
        exchange(addr, header.as_bytes(), "</stream:features>")
    });
    let reply = reply.unwrap_or_else(|| panic!("no XMPP stream on {addr}\n{}", c.logs()));
    assert!(
        reply.contains("urn:ietf:params:xml:ns:xmpp-sasl"),
        "{reply}"
    );

    let user = docker_ok(&["exec", &prosody, "sh", "-c", "stat -c %U /proc/1"]);
    assert_eq!(user.trim(), "prosody", "prosody must run as user prosody");
}

#[test]
fn caddy_starts_and_serves_http() {
    let world = World::get();
    let mut c = Cleanup::default();
    let caddy = c.run(
        "caddy",
        &["-p", "127.0.0.1::80", &world.library_image("caddy:2")],
    );
    let addr = published(&caddy, "80/tcp");
    let reply = wait_for(Duration::from_secs(30), || {
        exchange(
            addr,
            b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
            "Caddy works",
        )
    });
    let reply = reply.unwrap_or_else(|| panic!("caddy never served {addr}\n{}", c.logs()));
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );

    let env = docker_ok(&[
        "exec",
        &caddy,
        "sh",
        "-c",
        "echo $XDG_DATA_HOME $XDG_CONFIG_HOME",
    ]);
    assert_eq!(env.trim(), "/data /config");
}

/// Podman's networks resolve container names (netavark + aardvark-dns). With the CNI plugins
/// (what apt picks when netavark is not named) a network has no DNS and every Podman test would
/// time out waiting for `postgres` to resolve; this says why at once.
#[test]
fn podman_networks_resolve_container_names() {
    let world = World::get();
    let podman = |args: &[&str]| -> String {
        let out = Command::new("podman")
            .args(args)
            .output()
            .expect("podman is part of the test world (tests/world/provision.sh installs it)");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        podman(&["info", "--format", "{{.Host.NetworkBackend}}"]),
        "netavark",
        "re-run tests/world/provision.sh: it installs netavark and aardvark-dns and switches to them"
    );
    let net = unique("dnsnet");
    let server = unique("dnsserver");
    podman(&["network", "create", &net]);
    let image = world.library_image("debian:bookworm");
    podman(&[
        "run",
        "-d",
        "--name",
        &server,
        "--network",
        &net,
        &image,
        "sleep",
        "60",
    ]);
    let outcome = Command::new("podman")
        .args([
            "run",
            "--rm",
            "--network",
            &net,
            &image,
            "getent",
            "hosts",
            &server,
        ])
        .output();
    let _ = Command::new("podman")
        .args(["rm", "-f", "-t", "0", &server])
        .output();
    let _ = Command::new("podman")
        .args(["network", "rm", "-f", &net])
        .output();
    let out = outcome.expect("podman run");
    assert!(
        out.status.success(),
        "a container does not resolve another by name on a Podman network: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
