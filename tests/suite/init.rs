//! `movim-setup init` against the real test world: a real engine, registry, compose tools,
//! PostgreSQL, nginx and php-fpm (only Movim is a stand-in). Each test names the promise it
//! checks; bad input must leave the deployment directory untouched.

use crate::support::browser;
use crate::support::cli;
use crate::support::web;
use crate::support::world;

use cli::{Project, Setup, free_port, tree};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// `init --yes` for the world's images with the proxy TLS mode on a free loopback port; each
/// `(flag, value)` of `overrides` replaces the default of that flag.
fn init_with(dir: &Path, project: &Project, port: u16, overrides: &[(&str, &str)]) -> Setup {
    cli::init_world(dir, project, port, overrides)
}

fn init(dir: &Path, project: &Project, port: u16) -> Setup {
    init_with(dir, project, port, &[])
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
    let lock: serde_json::Value = yaml_serde::from_str(&text).expect("lock is YAML");
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
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert!(web::handshake(port, "https://evil.test").refused_after_upgrade());
    assert_eq!(infos(port)["version"], "v0.29.2");

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
fn a_second_layout_in_one_directory_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let project = Project::new("layout");
    for (held, file, asked) in [
        ("compose", "compose.yaml", "kube"),
        ("kube", "kube/podman.yaml", "compose"),
    ] {
        let dir = tmp.path().join(held);
        std::fs::create_dir_all(dir.join("kube")).expect("mkdir");
        std::fs::write(dir.join(file), "# a deployment\n").expect("write");
        let before = tree(&dir);
        init(&dir, &project, free_port())
            .args(["--target", asked])
            .run()
            .code(2)
            .stderr_has(&format!("holds a --target {held} deployment ({file})"))
            .stderr_has(&format!("--target {held}   (re-run as it is)"));
        assert_eq!(tree(&dir), before, "{held}: nothing may be written");
    }
}

/// The README's first command takes the default `--dir ./movim` from wherever the user stands:
/// every path handed to compose must be absolute, or compose reads `./movim/movim/compose.yaml`.
/// Then doctor from inside the deployment directory (`--dir .`) and from another one.
#[test]
fn init_with_the_default_directory_from_a_fresh_working_directory_reaches_health() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let project = Project::new("cwd");
    let port = free_port();
    let run = cli::with_world_flags(Setup::from_cwd("init", cwd.path()), &project, port, &[])
        .run()
        .success();
    assert!(
        run.stderr().contains("websocket: HTTP 101"),
        "{}",
        run.stderr()
    );
    let dir = cwd.path().join("movim");
    assert!(dir.join("compose.yaml").exists());
    for (from, arg) in [(dir.as_path(), "."), (cwd.path(), "movim")] {
        Setup::from_cwd("doctor", from)
            .arg("--dir")
            .arg(arg)
            .run()
            .success();
    }
}

/// Two deployment directories with the same name make the same default project: the second
/// `init` must not take over the first's containers (its database with other credentials).
#[test]
fn a_project_created_from_another_directory_is_refused_naming_project() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let project = Project::new("owner");
    init(&first.path().join("movim"), &project, free_port())
        .run()
        .success();
    let dir = second.path().join("movim");
    init(&dir, &project, free_port())
        .run()
        .code(2)
        .stderr_has("belongs to another deployment")
        .stderr_has("--project");
    assert!(!dir.exists(), "nothing may be written");
}

/// Settings movim-setup does not manage reach movim.env and survive a re-run; one it manages is
/// refused with the flag named, and nothing is written.
#[test]
fn extra_movim_env_settings_are_kept_and_managed_ones_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("menv");
    let port = free_port();
    init(&dir, &project, port)
        .args(["--movim-env", "DAEMON_URL=https://elsewhere.test/"])
        .run()
        .code(2)
        .stderr_has("--movim-env");
    assert!(!dir.exists());
    init(&dir, &project, port)
        .args(["--movim-env", "CACHE_PATH=/var/www/movim/cache/"])
        .run()
        .success();
    init(&dir, &project, port).run().success();
    let env = std::fs::read_to_string(dir.join("movim.env")).expect("movim.env");
    assert!(
        env.contains("\nCACHE_PATH=/var/www/movim/cache/\n"),
        "a re-run must keep it: {env}"
    );
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
        .args(["--release", "v9.9.9"])
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

/// Runs `docker` and returns trimmed stdout, failing the test on a non-zero exit.
fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The host's address on Docker's default bridge (docker0).
fn docker0_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("docker0 has no IPv4 address: {text}"));
    cidr.split('/').next().unwrap_or_default().to_owned()
}

/// Removes a container when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn an_external_database_with_an_awkward_password_works_end_to_end() {
    let w = world::World::get();
    let password = "p$a#s\"s' w";
    let name = format!("movim-extdb-{}", std::process::id());
    // The host's address on Docker's default bridge: reachable from the host (this tool) and
    // from the compose project's containers, and from nowhere else.
    let gateway = docker0_address();
    let port = free_port();
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "POSTGRES_USER=movimext",
        "-e",
        &format!("POSTGRES_PASSWORD={password}"),
        "-e",
        "POSTGRES_DB=movimext",
        "-p",
        &format!("{gateway}:{port}:5432"),
        &w.library_image("postgres:15"),
    ]);
    let _guard = Container(name.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::process::Command::new("docker")
        .args([
            "exec",
            &name,
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-U",
            "movimext",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "external postgres never became ready"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("ext");
    let http = free_port();
    let run = init(&dir, &project, http)
        .args([
            "--database",
            "external",
            "--db-host",
            &gateway,
            "--db-port",
            &port.to_string(),
        ])
        .args(["--db-name", "movimext", "--db-user", "movimext"])
        .env("MOVIM_DB_PASSWORD", password)
        .run()
        .success();
    assert!(
        run.stderr().contains("websocket: HTTP 101"),
        "{}",
        run.stderr()
    );
    // Movim (real phpdotenv) logged in with the password and migrated the external database.
    let applied = docker(&[
        "exec",
        &name,
        "psql",
        "-U",
        "movimext",
        "-d",
        "movimext",
        "-tAc",
        "select count(*) from phinxlog",
    ]);
    assert_eq!(applied, "5");
    assert_eq!(infos(http)["version"], "v0.29.2");
    // No bundled postgres, and the password is nowhere but in movim.env.
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose");
    assert!(!compose.contains("postgres:"), "{compose}");
    for file in [
        "compose.yaml",
        "movim-setup.yaml",
        "movim-setup.lock",
        ".env",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("file");
        assert!(!text.contains("p$a#s"), "{file} leaks the password");
    }
    assert!(
        !run.stderr().contains("p$a#s") && !run.stdout().contains("p$a#s"),
        "output leaks the password"
    );
}

#[test]
fn a_mutable_tag_re_pointed_at_the_registry_does_not_change_a_pinned_deployment() {
    let w = world::World::get();
    let scratch = format!("{}/scratch-init-{}", w.registry, std::process::id());
    let point = |tag: &str| {
        for c in ["web", "fpm", "daemon"] {
            let target = format!("{scratch}/movim-{c}:v0.29.2");
            docker(&["pull", "-q", &w.movim_image(c, tag)]);
            docker(&["tag", &w.movim_image(c, tag), &target]);
            docker(&["push", "-q", &target]);
        }
    };
    point("v0.29.2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("tag");
    let port = free_port();
    let with_scratch = || init_with(&dir, &project, port, &[("--image-repository", &scratch)]);
    with_scratch().run().success();
    let pinned = pinned_images(&dir);

    point("v0.30.0"); // the seed's tags are mutable: same tag, other content
    let again = with_scratch().run().success();
    assert!(again.stderr().contains("up to date"), "{}", again.stderr());
    assert_eq!(
        pinned_images(&dir),
        pinned,
        "the lock must keep the digests it pinned"
    );
    assert_eq!(
        infos(port)["version"],
        "v0.29.2",
        "the stack must keep running what it pinned"
    );
}

/// A key and certificate for `subject_alt_name` (openssl syntax), signed by the world's CA; the
/// files are `<dir>/<name>.key` and `<dir>/<name>.crt`.
fn world_certificate(
    dir: &Path,
    name: &str,
    subject_alt_name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let w = world::World::get();
    signed_certificate(dir, name, subject_alt_name, (&w.ca_cert, &w.ca_key))
}

fn openssl(args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new CA of the test's own, in no image's store: `<dir>/<name>.crt` and `.key`.
fn private_ca(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let os = std::ffi::OsStr::new;
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        crt.as_os_str(),
        os("-days"),
        os("30"),
        os("-subj"),
        os(&format!("/CN={name}")),
    ]);
    (crt, key)
}

/// As [`world_certificate`], signed by the CA `ca` (certificate, key).
fn signed_certificate(
    dir: &Path,
    name: &str,
    subject_alt_name: &str,
    ca: (&Path, &Path),
) -> (std::path::PathBuf, std::path::PathBuf) {
    let path = |ext: &str| dir.join(format!("{name}.{ext}"));
    let (key, csr, crt, ext) = (path("key"), path("csr"), path("crt"), path("cnf"));
    std::fs::write(&ext, format!("subjectAltName={subject_alt_name}\n")).expect("ext");
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let subject = format!("/CN={name}");
    openssl(&[
        os("req"),
        os("-new"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
        os("-subj"),
        std::ffi::OsStr::new(&subject),
    ]);
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.0.as_os_str(),
        os("-CAkey"),
        ca.1.as_os_str(),
        os("-CAcreateserial"),
        os("-out"),
        crt.as_os_str(),
        os("-days"),
        os("30"),
        os("-extfile"),
        ext.as_os_str(),
    ]);
    (crt, key)
}

#[test]
fn a_bundled_prosody_with_a_ca_signed_certificate_starts_with_the_stack() {
    let w = world::World::get();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("xmpp");
    let (crt, key) = world_certificate(
        tmp.path(),
        "example.test",
        "DNS:example.test,DNS:*.example.test",
    );
    let port = free_port();
    let run = init_with(&dir, &project, port, &[("--xmpp", "bundled")])
        .arg("--xmpp-cert")
        .arg(&crt)
        .arg("--xmpp-key")
        .arg(&key)
        .arg("--ca-bundle")
        .arg(&w.ca_cert)
        .run()
        .success();
    assert!(
        run.stderr().contains("prosody is healthy"),
        "{}",
        run.stderr()
    );
    // The daemon reaches Prosody by the XMPP domain (a network alias) and trusts its certificate
    // through the CA bundle movim-setup mounted.
    let daemon = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name),
        "--filter",
        "label=com.docker.compose.service=daemon",
    ]);
    let check = "$c = stream_context_create(['ssl' => ['cafile' => getenv('SSL_CERT_FILE'), 'peer_name' => 'example.test']]); \
                 $s = stream_socket_client('tcp://example.test:5222', $e, $m, 5, STREAM_CLIENT_CONNECT, $c); \
                 fwrite($s, \"<?xml version='1.0'?><stream:stream to='example.test' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\"); \
                 $r = fread($s, 4096); if (strpos($r, 'starttls') === false) { exit(1); } \
                 fwrite($s, \"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\"); fread($s, 4096); \
                 exit(stream_socket_enable_crypto($s, true, STREAM_CRYPTO_METHOD_TLS_CLIENT) ? 0 : 2);";
    let out = std::process::Command::new("docker")
        .args(["exec", &daemon, "php", "-r", check])
        .output()
        .expect("exec");
    assert!(
        out.status.success(),
        "TLS to the bundled Prosody from the daemon failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The session workers that log in see only `movim.env`: a private CA given with `--ca-bundle`
/// must reach them there (`SSL_CERT_FILE`), not only in the containers' environment. Doctor checks
/// the XMPP server's certificate as a worker would, so it passes with the file as written and
/// fails once the setting is taken out of it.
#[test]
fn a_private_ca_reaches_the_session_workers_through_movim_env() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("privca");
    let (ca, ca_key) = private_ca(tmp.path(), "private-ca");
    let (crt, key) = signed_certificate(
        tmp.path(),
        "example.test",
        "DNS:example.test,DNS:*.example.test",
        (&ca, &ca_key),
    );
    let port = free_port();
    init_with(
        &dir,
        &project,
        port,
        &[("--xmpp", "bundled"), ("--release", "v0.34.1")],
    )
    .arg("--xmpp-cert")
    .arg(&crt)
    .arg("--xmpp-key")
    .arg(&key)
    .arg("--ca-bundle")
    .arg(&ca)
    .run()
    .success();
    // A browser logs in: the session worker the daemon starts connects to Prosody with STARTTLS,
    // trusting the private CA only through movim.env.
    assert_eq!(login_tls(port, &project), "TLS enabled");
    let xmpp_tls = || {
        let run = Setup::new("doctor", &dir).arg("--json").run();
        let report: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("doctor --json ({e}): {}", run.stdout()));
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["id"] == "xmpp.tls")
            .unwrap_or_else(|| panic!("no xmpp.tls in {report}"))
            .clone()
    };
    let found = xmpp_tls();
    assert_eq!(found["severity"], "ok", "{found}");
    // What the worker logged after the login is in Movim's error log, which doctor shows; the
    // stand-in's PHP runs without OPcache, which doctor names.
    let report = Setup::new("doctor", &dir).arg("--json").run();
    let report: serde_json::Value = serde_json::from_str(&report.stdout()).expect("doctor --json");
    let finding = |id: &str| {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {report}"))
    };
    let errors = finding("movim.errors");
    assert!(
        errors["details"].to_string().contains("Login"),
        "the worker's log line: {errors}"
    );
    assert_eq!(finding("movim.opcache")["severity"], "warn");

    // Without SSL_CERT_FILE in movim.env the workers trust only the image's store.
    let env_path = dir.join("movim.env");
    let env = std::fs::read_to_string(&env_path).expect("movim.env");
    assert!(env.contains("\nSSL_CERT_FILE="), "{env}");
    let without: String = env
        .lines()
        .filter(|l| !l.starts_with("SSL_CERT_FILE="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&env_path, without).expect("edit movim.env");
    let found = xmpp_tls();
    assert_eq!(found["severity"], "error", "{found}");
    // And a login then fails TLS, once the daemon starts its workers with the edited file.
    for service in ["daemon", "web"] {
        let id = compose_container(&project, service);
        docker(&["restart", &id]);
    }
    assert_eq!(login_tls(port, &project), "TLS error");
}

/// The running container of `service` in `project`.
fn compose_container(project: &Project, service: &str) -> String {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ])
}

/// A login through web's websocket as the page makes it, to `alice@example.test`: what the session
/// worker said of its TLS to the XMPP server (`TLS enabled` or `TLS error`) in the daemon's output.
fn login_tls(port: u16, project: &Project) -> &'static str {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Web may still be finding the restarted daemon: retry until the session starts.
    let (sid, mut ws, mut buf) = loop {
        let sid = browser::session_id();
        let opened = browser::try_browser_at(addr, "movim.test", &sid);
        let why = match opened {
            Ok((mut ws, mut buf)) => {
                match browser::next(&mut ws, &mut buf, Duration::from_secs(10)) {
                    browser::Next::Frame(0x1, payload)
                        if String::from_utf8_lossy(&payload).contains("\"started\"") =>
                    {
                        break (sid, ws, buf);
                    }
                    other => format!("{other:?}"),
                }
            }
            Err(e) => e,
        };
        assert!(
            std::time::Instant::now() < deadline,
            "no session started: {why}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    browser::send_text(&mut ws, r#"{"func":"register","host":"example.test"}"#);
    let registered = (0..30).any(|_| {
        matches!(browser::next(&mut ws, &mut buf, Duration::from_secs(1)),
            browser::Next::Frame(0x1, p) if String::from_utf8_lossy(&p).contains("\"registered\""))
    });
    assert!(registered, "the session registered");
    browser::send_text(&mut ws, &browser::login_message(&sid, "alice@example.test"));
    let daemon = compose_container(project, "daemon");
    while std::time::Instant::now() < deadline {
        let out = std::process::Command::new("docker")
            .args(["logs", &daemon])
            .output()
            .expect("docker logs runs");
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let outcome = logs
            .lines()
            .skip_while(|l| !l.contains(&sid))
            .find_map(|l| {
                if l.contains("TLS enabled") {
                    Some("TLS enabled")
                } else if l.contains("TLS error") {
                    Some("TLS error")
                } else {
                    None
                }
            });
        if let Some(outcome) = outcome {
            return outcome;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no TLS outcome for session {sid} in the daemon's output")
}

/// `init` run through a real terminal: `args` after the world's image flags, `script` the
/// prompts awaited and the keys typed.
fn init_on_a_terminal(
    dir: &std::path::Path,
    script: &serde_json::Value,
    args: &[&str],
) -> (Option<i32>, String) {
    let w = world::World::get();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/pty_drive.py"
        ))
        .arg(script.to_string())
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_movim-setup"))
        .args(["init", "--dir"])
        .arg(dir)
        .args(args)
        .args([
            "--release",
            "v0.29.2",
            "--image-repository",
            &w.movim_repository(),
        ])
        .args(["--library-repository", &format!("{}/library", w.registry)])
        .env("NO_COLOR", "1")
        .output()
        .expect("pty driver runs");
    let transcript = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), transcript)
}

#[test]
fn the_interactive_installer_asks_through_a_terminal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("tty");
    let port = free_port();
    // Everything but the domain and the port comes from flags; those two are typed at the
    // prompts, each first wrong: the prompt says why and asks again.
    let script = serde_json::json!([
        ["Public domain of Movim", "exa mple.test\r"],
        ["invalid label", "movim.test\r"],
        ["HTTPS", "\r"],
        ["Port on 127.0.0.1", "0\r"],
        ["port 0", format!("{port}\r")],
    ]);
    let flags = [
        "--project",
        &project.name,
        "--database",
        "bundled",
        "--xmpp",
        "external",
    ];
    let (code, transcript) = init_on_a_terminal(
        &dir,
        &script,
        &[&flags[..], &["--xmpp-domain", "example.test"]].concat(),
    );
    assert_eq!(code, Some(0), "interactive init failed: {transcript}");
    assert!(transcript.contains("websocket: HTTP 101"), "{transcript}");
    assert_eq!(infos(port)["version"], "v0.29.2");

    // A re-run that would change the running deployment shows what changes and asks; declined,
    // nothing is written.
    let before = tree(&dir);
    let script = serde_json::json!([["Write these changes", "n"]]);
    let (code, transcript) = init_on_a_terminal(
        &dir,
        &script,
        &[&flags[..], &["--xmpp-domain", "other.test"]].concat(),
    );
    assert_eq!(code, Some(1), "{transcript}");
    assert!(
        transcript.contains("update (old copy kept in backups/files/): movim-setup.yaml"),
        "{transcript}"
    );
    assert!(
        transcript.contains("-  domain: example.test"),
        "{transcript}"
    );
    assert!(transcript.contains("+  domain: other.test"), "{transcript}");
    assert!(
        transcript.contains("not confirmed: nothing was written"),
        "{transcript}"
    );
    assert_eq!(
        tree(&dir),
        before,
        "a declined re-run changed the directory"
    );
}

/// Pebble (Let's Encrypt's test ACME server) on the docker0 address, so that the bundled Caddy
/// reaches it from its container; killed when dropped.
struct Pebble {
    child: std::process::Child,
    dir: tempfile::TempDir,
    address: String,
}

impl Pebble {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let address = docker0_address();
        // Pebble's own API certificate comes from the world CA, which Caddy trusts via --ca-bundle.
        let (crt, key) =
            world_certificate(dir.path(), "pebble", &format!("IP:{address},IP:127.0.0.1"));
        let config = dir.path().join("pebble.json");
        std::fs::write(
            &config,
            serde_json::json!({"pebble": {
                "listenAddress": format!("{address}:14000"),
                "managementListenAddress": format!("{address}:15000"),
                "certificate": crt, "privateKey": key,
                "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false
            }})
            .to_string(),
        )
        .expect("config");
        let child = std::process::Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pebble (Debian package `pebble`) runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((address.as_str(), 14000)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pebble did not listen on {address}:14000"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Self {
            child,
            dir,
            address,
        }
    }

    /// The root pebble signs certificates with (generated at each start).
    fn root(&self) -> std::path::PathBuf {
        let w = world::World::get();
        let path = self.dir.path().join("root.pem");
        let out = std::process::Command::new("curl")
            .args([
                "-fsS",
                "--cacert",
                &w.ca_cert.to_string_lossy(),
                "-o",
                &path.to_string_lossy(),
            ])
            .arg(format!("https://{}:15000/roots/0", self.address))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_bundled_caddy_obtains_a_real_acme_certificate_and_serves_movim_over_https() {
    let w = world::World::get();
    let pebble = Pebble::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("caddy");
    let acme = format!("https://{}:14000/dir", pebble.address);
    let run = init_with(&dir, &project, free_port(), &[("--tls", "caddy")])
        .args([
            "--acme-ca",
            &acme,
            "--acme-email",
            "admin@movim.test",
            "--ca-bundle",
        ])
        .arg(&w.ca_cert)
        .run()
        .success();
    assert!(
        run.stderr().contains("caddy is healthy"),
        "{}",
        run.stderr()
    );
    // Through Caddy on 443, with the certificate pebble issued for movim.test.
    let root = pebble.root();
    let curl = |extra: &[&str]| {
        let mut last = String::new();
        for _ in 0..60 {
            let out = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "-i",
                    "--http1.1",
                    "--max-time",
                    "3",
                    "--cacert",
                    &root.to_string_lossy(),
                ])
                .args(["--resolve", "movim.test:443:127.0.0.1"])
                .args(extra)
                .output()
                .expect("curl");
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if last.starts_with("HTTP/1.1 101") || last.starts_with("HTTP/1.1 200") {
                return last;
            }
            std::thread::sleep(Duration::from_millis(500)); // the certificate may still be on its way
        }
        panic!("no answer over HTTPS through Caddy: {last}");
    };
    let infos = curl(&["https://movim.test/infos"]);
    assert!(infos.contains("\"version\":\"v0.29.2\""), "{infos}");
    let ws = curl(&[
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "-H",
        "Origin: https://movim.test",
        "https://movim.test/ws/",
    ]);
    assert!(ws.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{ws}");
}

#[test]
fn a_re_run_with_a_changed_answer_keeps_the_secret_and_backs_up_what_it_replaces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("rerun");
    init(&dir, &project, free_port())
        .arg("--no-start")
        .run()
        .success();
    let env_before = std::fs::read_to_string(dir.join("movim.env")).expect("env");
    let compose_before = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose");

    // The new port comes from an answers file; everything else from the saved answers.
    let new_port = free_port();
    let answers = tmp.path().join("answers.yaml");
    std::fs::write(&answers, format!("http_port: {new_port}\n")).expect("answers");
    let run = Setup::init(&dir)
        .args(["--yes", "--no-start", "--answers"])
        .arg(&answers)
        .run()
        .success();
    assert!(
        run.stderr()
            .contains("update (old copy kept in backups/files/): compose.yaml"),
        "{}",
        run.stderr()
    );

    assert_eq!(
        std::fs::read_to_string(dir.join("movim.env")).expect("env"),
        env_before,
        "secrets must be kept"
    );
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose");
    assert!(
        compose.contains(&format!("127.0.0.1:{new_port}:80")),
        "{compose}"
    );
    let backups: Vec<_> = std::fs::read_dir(dir.join("backups/files"))
        .expect("backups")
        .collect();
    assert_eq!(backups.len(), 1);
    let kept = backups[0]
        .as_ref()
        .expect("entry")
        .path()
        .join("compose.yaml");
    assert_eq!(
        std::fs::read_to_string(kept).expect("backup"),
        compose_before
    );
}

/// Unmounts a tmpfs when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_nearly_full_disk_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let small = tmp.path().join("small");
    std::fs::create_dir_all(&small).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "mounting a 16 MiB tmpfs needs root (the test world runs as root)"
    );
    let _guard = Tmpfs(small.clone());
    let dir = small.join("movim");
    let project = Project::new("disk");
    init(&dir, &project, free_port())
        .run()
        .code(1)
        .stderr_has("MiB free on")
        .stderr_has("at least 1 GiB");
    assert!(!dir.exists());
}
