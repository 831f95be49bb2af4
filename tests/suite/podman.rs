//! Podman as a first-class engine, against the real test world: rootful Podman 4.3
//! through its Docker-compatible API socket, podman-compose 1.6, images from the world's registry.
//! The same promises as on Docker — `init` reaches a verified websocket handshake, `doctor` finds
//! nothing wrong, `upgrade` succeeds and a faulty release rolls back — plus what is Podman's own:
//! health checks that nothing runs without systemd, and a socket that is often not served.
//!
//! The tests talk to the system socket `/run/podman/podman.sock`, as a user's would. If nothing
//! serves it, the first test starts `podman system service` there and the last one stops it again
//! (only the process it started, by its handle). Never skipped: without Podman the tests fail and
//! say why.

use crate::support::cli;
use crate::support::podman as podman_env;
use crate::support::web;
use crate::support::world;
use crate::support::world::caused_by_the_world;

use cli::{Project, Setup, free_port, tree};
use podman_env::{PodmanSocket, on_podman, one_stack_at_a_time, podman};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `init --yes` for the world's v0.29.2 images on Podman, web on a loopback `port`.
fn init(dir: &Path, project: &Project, port: u16) -> Setup {
    cli::init_world(dir, project, port, &[]).args(podman_env::flags())
}

/// A websocket handshake through web, done by the test itself; returns the status line.
/// `/infos` when it answers 200, `None` while web cannot reach fpm yet (502).
fn try_infos(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET /infos HTTP/1.0\r\nHost: movim.test\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The release `/infos` reports through web (it must answer).
fn infos_version(port: u16) -> String {
    web::infos_version(port).expect("/infos through web")
}

/// Whether the daemon of `project` lost a name lookup to aardvark-dns 1.4's known race.
fn daemon_lost_a_lookup(project: &Project) -> bool {
    podman_env::daemon_lost_a_lookup(&container(project, "daemon"))
}

/// `doctor --json` on Podman: exit 0, and nothing but the world's unresolvable names is not ok —
/// except a restart warning when the restart came from aardvark-dns's known lookup race (the
/// tool's retry said so in `previous`, its stderr, or the daemon's own logs show the lost lookup).
#[track_caller]
fn assert_doctor_healthy(dir: &Path, project: &Project, previous: &str) {
    let raced = previous.contains("a known Podman DNS race") || daemon_lost_a_lookup(project);
    let run = on_podman("doctor", dir).arg("--json").run();
    let json: Value = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}):\n{}{}",
            run.stdout(),
            run.stderr()
        )
    });
    let problems: Vec<String> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] != "ok")
        .filter(|f| {
            !caused_by_the_world(
                f["id"].as_str().unwrap_or_default(),
                f["severity"].as_str().unwrap_or_default(),
            )
        })
        .filter(|f| {
            !(raced
                && f["severity"] == "warn"
                && f["id"].as_str().is_some_and(|id| id.ends_with(".restarts")))
        })
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["summary"]))
        .collect();
    assert!(problems.is_empty(), "doctor on Podman: {problems:#?}");
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr());
    let engine = json["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == "engine.reachable"))
        .map(|f| f["summary"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert!(engine.starts_with("podman 4."), "{engine}");
}

/// The container of `service` in the project (podman-compose names them `<project>_<service>_1`).
fn container(project: &Project, service: &str) -> String {
    podman(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ])
}

fn psql(project: &Project, sql: &str) -> String {
    psql_in(&container(project, "postgres"), sql)
}

/// psql as Movim's database user in the PostgreSQL `container`.
fn psql_in(container: &str, sql: &str) -> String {
    podman(&[
        "exec", container, "psql", "-U", "movim", "-d", "movim", "-At", "-c", sql,
    ])
}

fn deployment() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    (tmp, dir)
}

#[test]
fn init_on_podman_reaches_a_verified_websocket_handshake_and_doctor_finds_nothing() {
    let _one = one_stack_at_a_time();
    let _socket = PodmanSocket::acquire();
    let (_tmp, dir) = deployment();
    let project = Project::new("init");
    let port = free_port();

    let started = Instant::now();
    let run = init(&dir, &project, port).run().success();
    eprintln!("init on Podman: healthy in {:?}", started.elapsed());
    let out = run.stderr();
    assert!(out.contains("engine: podman 4."), "{out}");
    assert!(out.contains("compose: podman-compose 1."), "{out}");
    assert!(out.contains("websocket: HTTP 101"), "{out}");

    // The proof, re-done by the test: 101 with the right Origin only, and the pinned version.
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert!(web::handshake(port, "https://evil.test").refused_after_upgrade());
    assert_eq!(infos_version(port), "v0.29.2");

    // Podman recorded the health checks movim-setup ran (nothing else runs them without systemd).
    for service in ["postgres", "fpm", "daemon", "web"] {
        let health = podman(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &container(&project, service),
        ]);
        assert_eq!(health, "healthy", "{service}");
    }

    assert_doctor_healthy(&dir, &project, &out);

    // A re-run changes nothing.
    let before = tree(&dir);
    let again = init(&dir, &project, port).run().success();
    assert!(again.stderr().contains("up to date"), "{}", again.stderr());
    assert_eq!(tree(&dir), before);
}

#[test]
fn upgrade_on_podman_succeeds_and_a_release_whose_daemon_dies_rolls_back() {
    let _one = one_stack_at_a_time();
    let _socket = PodmanSocket::acquire();
    let (_tmp, dir) = deployment();
    let project = Project::new("upg");
    let port = free_port();
    init(&dir, &project, port).run().success();
    psql(
        &project,
        "create table podman_marker (v text); insert into podman_marker values ('kept')",
    );

    let started = Instant::now();
    let run = on_podman("upgrade", &dir)
        .args(["--yes", "--to", "v0.30.0"])
        .run()
        .success();
    eprintln!("upgrade on Podman: {:?}", started.elapsed());
    assert!(
        run.stderr()
            .contains("Movim v0.30.0 is up and healthy (upgraded from v0.29.2)"),
        "{}",
        run.stderr()
    );
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert_eq!(infos_version(port), "v0.30.0");
    assert_doctor_healthy(&dir, &project, &run.stderr());

    // The daemon of this release exits 0 a second after starting: Podman restarts it at once, and
    // a health check run too early would pass it. The gate must catch it and roll back.
    let started = Instant::now();
    let run = on_podman("upgrade", &dir)
        .args(["--yes", "--to", "v0.30.1-daemon-exits"])
        .run()
        .code(1);
    eprintln!(
        "faulty upgrade on Podman, rolled back in {:?}",
        started.elapsed()
    );
    let err = run.stderr();
    assert!(err.contains("failed at step `start`"), "{err}");
    assert!(
        err.contains("rolled back: Movim v0.30.0 runs again and is healthy"),
        "{err}"
    );
    assert_eq!(infos_version(port), "v0.30.0");
    assert_eq!(psql(&project, "select v from podman_marker"), "kept");
    assert_doctor_healthy(&dir, &project, &err);
}

#[test]
fn a_podman_socket_nobody_serves_is_reported_then_served_for_one_run_with_podman_service() {
    let _one = one_stack_at_a_time();
    let (tmp, dir) = deployment();
    let socket = tmp.path().join("run/podman.sock");
    let endpoint = format!("unix://{}", socket.display());
    let project = Project::new("nosock");
    let port = free_port();
    let run = init(&dir, &project, port)
        .env("CONTAINER_HOST", &endpoint)
        .run()
        .code(1);
    run.stderr_has("Podman's API socket is not answering")
        .stderr_has(&format!("podman system service --time=0 {endpoint}"))
        .stderr_has("--podman-service");
    assert!(!dir.exists(), "nothing may be written");

    // Unattended, with --podman-service: served for the run, to a verified handshake, then
    // stopped again: the machine is left as it was found.
    let run = init(&dir, &project, port)
        .env("CONTAINER_HOST", &endpoint)
        .arg("--podman-service")
        .run()
        .success();
    run.stderr_has("serving Podman's API for this run");
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_err(),
        "the service started for the run must be stopped when the run ends"
    );
}

/// Podman users often drive it with Docker's compose (what `podman compose` runs when
/// docker-compose is installed): the generated file must mean the same there, health checks
/// included (Podman 4.3 joins an exec-form check's words into one shell line).
fn init_on_podman_with(compose: &str, upgrade: bool) {
    let _one = one_stack_at_a_time();
    let _socket = PodmanSocket::acquire();
    let (_tmp, dir) = deployment();
    let project = Project::new("pdc");
    let port = free_port();
    let run = cli::init_world(&dir, &project, port, &[])
        .args(["--engine", "podman", "--compose", compose])
        .run()
        .success();
    assert!(
        run.stderr().contains("engine: podman 4."),
        "{}",
        run.stderr()
    );
    assert!(web::handshake(port, "https://movim.test").trusted());
    if upgrade {
        Setup::new("upgrade", &dir)
            .args(["--engine", "podman", "--compose", compose])
            .args(["--yes", "--to", "v0.30.0"])
            .run()
            .success();
        assert!(web::handshake(port, "https://movim.test").trusted());
        assert_eq!(infos_version(port), "v0.30.0");
    }
}

#[test]
fn init_and_upgrade_on_podman_with_docker_compose_v2() {
    init_on_podman_with("docker compose", true);
}

#[test]
fn init_on_podman_with_docker_compose_v1() {
    let w = world::World::get();
    init_on_podman_with(&w.compose_v1.display().to_string(), false);
}

/// What `podman kube play` made for a project, removed when dropped: its pods (their containers),
/// the volumes named after the project, the network.
struct KubePlay {
    project: String,
}

impl Drop for KubePlay {
    fn drop(&mut self) {
        let p = &self.project;
        let _ = Command::new("podman")
            .args(["pod", "rm", "-f", "-t", "0", p, &format!("{p}-postgres")])
            .output();
        let volumes = Command::new("podman")
            .args(["volume", "ls", "-q", "--filter", &format!("name=^{p}-")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for v in volumes.split_whitespace() {
            let _ = Command::new("podman")
                .args(["volume", "rm", "-f", v])
                .output();
        }
        let _ = Command::new("podman")
            .args(["network", "rm", "-f", p])
            .output();
    }
}

/// `init --target kube` in `dir`, then `podman kube play` of its Podman manifest as the summary
/// says, until the websocket answers 101 and `/infos` 200 through web (nothing runs probes
/// without systemd, and nothing orders the two pods: the handshake says when Movim is up).
fn init_and_play_kube(dir: &Path, project: &Project, port: u16) -> KubePlay {
    init(dir, project, port)
        .args(["--target", "kube"])
        .run()
        .success()
        .stderr_has("podman kube play --network");
    let played = KubePlay {
        project: project.name.clone(),
    };
    podman(&["network", "create", &project.name]);
    let started = Instant::now();
    podman(&[
        "kube",
        "play",
        "--network",
        &project.name,
        &dir.join("kube/podman.yaml").display().to_string(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = web::try_handshake(port, "https://movim.test");
        if status.as_ref().is_ok_and(web::Ws::trusted) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no websocket 101 through web after {:?} ({status:?}); daemon log:\n{}",
            started.elapsed(),
            podman(&["logs", "--tail", "30", &format!("{}-daemon", project.name)])
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // fpm is a container of its own and nothing gates it either: /infos answers once it listens.
    while try_infos(port).is_none() {
        assert!(
            Instant::now() < deadline,
            "/infos never answered through web"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "podman kube play: websocket 101 and /infos after {:?}",
        started.elapsed()
    );
    played
}

#[test]
fn init_target_kube_runs_under_podman_kube_play_to_a_verified_websocket_handshake() {
    let _one = one_stack_at_a_time();
    let w = world::World::get();
    let (_tmp, dir) = deployment();
    let project = Project::new("kube");
    let port = free_port();
    let _played = init_and_play_kube(&dir, &project, port);
    assert!(
        dir.join("kube/movim.yaml").is_file(),
        "the Kubernetes rendering"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let env = std::fs::metadata(dir.join("kube/movim.env")).expect("kube/movim.env");
        assert_eq!((env.mode() & 0o777, env.uid()), (0o600, 82));
    }
    assert!(web::handshake(port, "https://evil.test").refused_after_upgrade());
    assert_eq!(infos_version(port), "v0.29.2");

    // The pod runs exactly the pinned images, and the migrations ran as their own step.
    for component in ["web", "fpm", "daemon"] {
        let reference = w.movim_image(component, "v0.29.2");
        let image = podman(&[
            "inspect",
            "--format",
            "{{.ImageName}}",
            &format!("{}-{component}", project.name),
        ]);
        assert!(
            image.ends_with(&format!("@{}", w.digest(&reference))),
            "{image}"
        );
    }
    let migrate = podman(&["logs", &format!("{}-migrate", project.name)]);
    assert!(migrate.contains("All Done"), "{migrate}");
}

/// psql in the kube-played database.
fn kube_psql(project: &Project, sql: &str) -> String {
    psql_in(&format!("{}-postgres-postgres", project.name), sql)
}

#[test]
fn upgrade_of_a_kube_played_deployment_succeeds_and_faulty_releases_roll_back() {
    let _one = one_stack_at_a_time();
    let _socket = PodmanSocket::acquire();
    let w = world::World::get();
    let (_tmp, dir) = deployment();
    let project = Project::new("kupg");
    let port = free_port();
    let _played = init_and_play_kube(&dir, &project, port);
    kube_psql(
        &project,
        "create table kube_marker (v text); insert into kube_marker values ('kept')",
    );
    let manifest_before = std::fs::read_to_string(dir.join("kube/podman.yaml")).expect("read");

    let started = Instant::now();
    let run = on_podman("upgrade", &dir)
        .args(["--yes", "--to", "v0.30.0"])
        .run()
        .success();
    eprintln!(
        "upgrade of the kube-played deployment: {:?}",
        started.elapsed()
    );
    let out = run.stderr();
    assert!(
        out.contains("Movim v0.30.0 is up and healthy (upgraded from v0.29.2)"),
        "{out}"
    );
    assert!(out.contains("migration(s) applied now"), "{out}");
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert_eq!(infos_version(port), "v0.30.0");
    assert_eq!(kube_psql(&project, "select v from kube_marker"), "kept");
    // Both renderings name the new release's pins; the old manifest is kept.
    let daemon = w.movim_image("daemon", "v0.30.0");
    for file in ["kube/podman.yaml", "kube/movim.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("read");
        assert!(text.contains(w.digest(&daemon)), "{file} pins v0.30.0");
    }
    assert!(
        tree(&dir.join("backups"))
            .iter()
            .any(|(_, c)| c.as_slice() == manifest_before.as_bytes()),
        "the previous kube/podman.yaml is kept in backups/"
    );

    // Faulty releases: a daemon that exits 0 a second after starting (the start gate must catch
    // it), and a migration that fails half-way (the database comes back from the dump). Each
    // time v0.30.0 is put back: manifest, images and database, every row and migration kept.
    let v030 = std::fs::read_to_string(dir.join("kube/podman.yaml")).expect("read");
    let phinxlog = kube_psql(&project, "select count(*) from phinxlog");
    for (tag, failed_at, says) in [
        ("v0.30.1-daemon-exits", "failed at step `start`", "daemon"),
        (
            "v0.30.2-migration-fails",
            "failed at step `migrate`",
            "AddRetractedToMessagesTable",
        ),
    ] {
        let run = on_podman("upgrade", &dir)
            .args(["--yes", "--to", tag])
            .run()
            .code(1);
        let err = run.stderr();
        assert!(
            err.contains(failed_at) && err.contains(says),
            "{tag}: {err}"
        );
        assert!(
            err.contains("rolled back: Movim v0.30.0 runs again and is healthy"),
            "{tag}: {err}"
        );
        assert_eq!(infos_version(port), "v0.30.0", "{tag}");
        assert!(web::handshake(port, "https://movim.test").trusted());
        assert_eq!(kube_psql(&project, "select v from kube_marker"), "kept");
        assert_eq!(
            kube_psql(&project, "select count(*) from phinxlog"),
            phinxlog,
            "{tag}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("kube/podman.yaml")).expect("read"),
            v030,
            "{tag}"
        );
        assert!(!dir.join("upgrade.journal").exists(), "{tag}");
    }
}

// ---------------------------------------------------------------------------------------------
// doctor on a kube-played deployment.

/// A finding that is not ok: (id, severity, summary, hint).
type Problem = (String, String, String, String);

/// `doctor --json` on the deployment in `dir`: its exit code, and every finding that is not ok.
fn kube_doctor(dir: &Path) -> (Option<i32>, Vec<Problem>) {
    let run = on_podman("doctor", dir).arg("--json").run();
    let json: Value = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}):\n{}{}",
            run.stdout(),
            run.stderr()
        )
    });
    let text = |f: &Value, k: &str| f[k].as_str().unwrap_or_default().to_owned();
    let findings = json["findings"].as_array().expect("findings");
    assert!(
        findings.iter().all(|f| f["id"] != "compose.tool"),
        "a kube-played deployment needs no compose tool"
    );
    let problems = findings
        .iter()
        .filter(|f| f["severity"] != "ok")
        .map(|f| {
            (
                text(f, "id"),
                text(f, "severity"),
                text(f, "summary"),
                text(f, "hint"),
            )
        })
        .collect();
    (run.output.status.code(), problems)
}

#[test]
fn doctor_on_a_kube_played_deployment_finds_nothing_then_a_stopped_daemon_and_a_hand_edit() {
    let _one = one_stack_at_a_time();
    let _socket = PodmanSocket::acquire();
    let (_tmp, dir) = deployment();
    let project = Project::new("kdoc");
    let port = free_port();
    let _played = init_and_play_kube(&dir, &project, port);
    let daemon = format!("{}-daemon", project.name);

    // Healthy: only the world's unresolvable names are warnings.
    let (code, problems) = kube_doctor(&dir);
    let unexpected: Vec<_> = problems
        .iter()
        .filter(|(id, sev, ..)| !caused_by_the_world(id, sev))
        .collect();
    assert!(unexpected.is_empty(), "doctor on kube: {unexpected:#?}");
    assert_eq!(code, Some(0), "{problems:#?}");

    // The daemon stopped: an error whose fix is the podman command that starts it again.
    podman(&["stop", "-t", "5", &daemon]);
    let (code, problems) = kube_doctor(&dir);
    assert_eq!(code, Some(1), "{problems:#?}");
    let (_, sev, summary, hint) = problems
        .iter()
        .find(|(id, ..)| id == "container.daemon.running")
        .unwrap_or_else(|| panic!("no container.daemon.running: {problems:#?}"));
    assert_eq!(sev, "error", "{summary}");
    assert!(hint.contains(&format!("podman start {daemon}")), "{hint}");
    assert!(
        problems.iter().all(|(_, _, _, h)| !h.contains("compose")),
        "fixes name podman, not compose: {problems:#?}"
    );

    // The fix works; then a hand edit of the Podman manifest is drift (a warning: exit 0).
    podman(&["start", &daemon]);
    let manifest = dir.join("kube/podman.yaml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(
        &manifest,
        text.replacen("failureThreshold: 6", "failureThreshold: 9", 1),
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (code, problems) = loop {
        let (code, problems) = kube_doctor(&dir);
        let daemon_up = problems
            .iter()
            .all(|(id, ..)| !id.starts_with("container.daemon"))
            && problems.iter().all(|(id, ..)| id != "web.websocket");
        if daemon_up || Instant::now() > deadline {
            break (code, problems);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let (_, sev, _, hint) = problems
        .iter()
        .find(|(id, ..)| id == "drift.kube/podman.yaml")
        .unwrap_or_else(|| panic!("no drift.kube/podman.yaml: {problems:#?}"));
    assert_eq!(sev, "warn");
    assert!(hint.contains("movim-setup init --dir"), "{hint}");
    let others: Vec<_> = problems
        .iter()
        .filter(|(id, sev, ..)| !caused_by_the_world(id, sev) && id != "drift.kube/podman.yaml")
        .collect();
    assert!(others.is_empty(), "after podman start: {others:#?}");
    assert_eq!(code, Some(0));
}
