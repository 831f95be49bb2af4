//! `movim-setup init` against the real test world: a real engine, registry, compose tools,
//! PostgreSQL, nginx and php-fpm (only Movim is a stand-in). Each test names the promise it
//! checks; bad input must leave the deployment directory untouched.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/world.rs"]
mod world;

use cli::{Project, Setup, free_port, tree};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// `init --yes` for the world's images with the proxy TLS mode on a free loopback port.
fn init(dir: &Path, project: &Project, port: u16) -> Setup {
    let w = world::World::get();
    Setup::init(dir).args([
        "--yes",
        "--project",
        &project.name,
        "--domain",
        "movim.test",
        "--tls",
        "proxy",
        "--http-port",
        &port.to_string(),
        "--xmpp",
        "external",
        "--xmpp-domain",
        "example.test",
        "--image-repository",
        &w.movim_repository(),
        "--library-repository",
        &format!("{}/library", w.registry),
    ])
}

/// A websocket handshake through web, done by the test itself (not by the tool under test).
fn handshake_status(port: u16, origin: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to web");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /ws/ HTTP/1.1\r\nHost: movim.test\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("send");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).expect("read");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    if status.contains(" 101 ") {
        assert!(
            text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "accept header wrong: {text}"
        );
    }
    status
}

fn infos(port: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to web");
    write!(s, "GET /infos HTTP/1.0\r\nHost: movim.test\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("/infos is not JSON ({e}): {text}"))
}

fn pinned_images(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("movim-setup.lock")).expect("lock exists");
    let lock: serde_json::Value = serde_norway::from_str(&text).expect("lock is YAML");
    lock["images"].clone()
}

fn healthy_stack_with(compose: &str) {
    let w = world::World::get();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("init");
    let port = free_port();
    let run = init(&dir, &project, port)
        .args(["--compose", compose])
        .run()
        .success();
    assert!(
        run.stderr().contains("websocket: HTTP 101"),
        "{}",
        run.stderr()
    );

    // Every image pinned to exactly the digest the registry serves.
    let images = pinned_images(&dir);
    for component in ["web", "fpm", "daemon"] {
        let reference = w.movim_image(component, "v0.29.2");
        assert_eq!(
            images[component],
            format!("{reference}@{}", w.digest(&reference))
        );
    }
    let pg = w.library_image("postgres:15");
    assert_eq!(images["postgres"], format!("{pg}@{}", w.digest(&pg)));

    // The proof, re-done by the test: 101 with the right Origin, refused with another.
    assert!(handshake_status(port, "https://movim.test").contains(" 101 "));
    assert!(!handshake_status(port, "https://evil.test").contains(" 101 "));
    assert_eq!(infos(port)["version"], "0.29.2");

    // movim.env is private and belongs to Movim's uid.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join("movim.env")).expect("env");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 82);

    // A re-run changes nothing and keeps the secret.
    let before = tree(&dir);
    let again = init(&dir, &project, port)
        .args(["--compose", compose])
        .run()
        .success();
    assert!(again.stderr().contains("up to date"), "{}", again.stderr());
    assert_eq!(
        tree(&dir),
        before,
        "a re-run with the same answers must not touch the directory"
    );
}

#[test]
fn init_reaches_a_verified_websocket_handshake_with_compose_v2() {
    healthy_stack_with("docker compose");
}

#[test]
fn init_reaches_a_verified_websocket_handshake_with_compose_v1() {
    let w = world::World::get();
    healthy_stack_with(&w.compose_v1.display().to_string());
}

#[test]
fn a_bad_domain_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("bad");
    for domain in [
        "192.168.1.10",
        "localhost",
        "movim.test:8443",
        "movim.test/sub",
    ] {
        init(&dir, &project, free_port())
            .args(["--domain", domain])
            .run()
            .code(2)
            .stderr_has("--domain");
        assert!(!dir.exists(), "{domain}: the directory must not be created");
    }
}

#[test]
fn a_taken_port_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("port");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    init(&dir, &project, port)
        .run()
        .code(2)
        .stderr_has(&format!("port {port} on 127.0.0.1 is taken"));
    assert!(!dir.exists());
}

#[test]
fn an_unreachable_engine_is_reported_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("eng");
    init(&dir, &project, free_port())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run()
        .code(1)
        .stderr_has("container engine is not reachable")
        .stderr_has("/nonexistent/docker.sock");
    assert!(!dir.exists());
}

#[test]
fn a_tag_the_registry_does_not_have_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("tag");
    init(&dir, &project, free_port())
        .args(["--version", "v9.9.9"])
        .run()
        .code(1)
        .stderr_has("cannot resolve")
        .stderr_has("movim-web:v9.9.9");
    assert!(!dir.exists());
}

#[test]
fn a_missing_answer_names_its_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    Setup::init(&dir)
        .arg("--yes")
        .run()
        .code(2)
        .stderr_has("--domain")
        .stderr_has("MOVIM_DOMAIN");
    assert!(!dir.exists());
}

#[test]
fn an_unreachable_external_database_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("xdb");
    // A port nothing listens on, on this machine.
    let port = free_port();
    init(&dir, &project, free_port())
        .args([
            "--database",
            "external",
            "--db-host",
            "127.0.0.2",
            "--db-port",
            &port.to_string(),
        ])
        .args(["--db-name", "movim", "--db-user", "movim"])
        .env("MOVIM_DB_PASSWORD", "whatever")
        .run()
        .code(2)
        .stderr_has("cannot log in to the external database");
    assert!(!dir.exists());
}
