//! Rootless Podman, the way most Podman users run it, against the real test world: the built
//! binary run as the world's unprivileged user (`movimtest`), its own Podman (user namespace,
//! native overlay, netavark networks in the user's network namespace, ports published by
//! rootlessport), podman-compose 1.6, images from the world's registry. The same promises as
//! rootful — `init` to a verified websocket handshake, `doctor` clean, `upgrade`, an automatic
//! rollback — with what rootless cannot do refused up front: a published port below
//! `net.ipv4.ip_unprivileged_port_start`, and Caddy mode, whose proof reaches web at its
//! container address. Never skipped: without the user the tests fail naming provision.sh.

use crate::support::cli::{self, Project, Setup, free_port};
use crate::support::podman::{one_stack_at_a_time, pings};
use crate::support::rootless::{User, UserProject, UserService, reachable_by_others};
use crate::support::web;
use crate::support::world::caused_by_the_world;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// `movim-setup <verb>` as the user; its podman-compose named (installed in its own venv).
fn as_user(user: &User, setup: Setup) -> Setup {
    setup
        .args(["--compose", &user.podman_compose()])
        .run_as(user, &user.env())
}

/// The daemon's own log (as the user's Podman keeps it), and whether it shows a name lookup lost
/// to aardvark-dns's known race (then a restart that followed is Podman's, not a fault).
fn daemon_log(user: &User, project: &UserProject) -> (String, bool) {
    let out = user.podman_output(&["logs", &project.container("daemon")]);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let raced = log.contains("Temporary failure in name resolution")
        || log.contains("could not translate host name");
    (log, raced)
}

/// `doctor --json` as the user: exit 0, and nothing not ok but what the world itself causes, or a
/// daemon restart that followed a lookup lost to Podman's DNS race (its log says so).
#[track_caller]
fn assert_doctor_clean(user: &User, project: &UserProject, dir: &Path, extra: &[&str]) {
    let (log, raced) = daemon_log(user, project);
    let run = as_user(user, Setup::new("doctor", dir).arg("--json").args(extra)).run();
    let json: Value = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "doctor --json is not JSON ({e}):\n{}{}",
            run.stdout(),
            run.stderr()
        )
    });
    let findings = json["findings"].as_array().expect("findings");
    let problems: Vec<String> = findings
        .iter()
        .filter(|f| f["severity"] != "ok")
        .filter(|f| {
            let (id, severity) = (
                f["id"].as_str().unwrap_or_default(),
                f["severity"].as_str().unwrap_or_default(),
            );
            let race = raced && id == "container.daemon.restarts" && severity == "warn";
            !caused_by_the_world(id, severity) && !race
        })
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["summary"]))
        .collect();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(
        problems.is_empty(),
        "doctor as {}: {problems:#?}\nthe daemon's last log lines (newest first):\n{}",
        user.name,
        tail.join("\n")
    );
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr());
    // The database was read from inside its container (its address is not reachable from here).
    let db = findings
        .iter()
        .find(|f| f["id"] == "db.reachable")
        .map(|f| f["summary"].to_string())
        .unwrap_or_default();
    assert!(db.contains("PostgreSQL 15"), "{db}");
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn rootless_podman_init_doctor_upgrade_and_a_rollback_as_an_unprivileged_user() {
    let _one = one_stack_at_a_time();
    let user = User::get();
    let binary = Path::new(env!("CARGO_BIN_EXE_movim-setup"));
    assert!(
        reachable_by_others(binary),
        "{} must be reachable by {}",
        binary.display(),
        user.name
    );
    let tmp = user.tempdir();
    let dir = tmp.path().join("movim");
    let project = Project::new("rl");
    let guard = UserProject::new(&user, &project);
    let port = free_port();

    // The user's own API socket, found without --engine (the system's Docker socket is there,
    // but not the user's to use).
    let service = UserService::start(&user);
    let started = Instant::now();
    let run = as_user(&user, cli::init_world(&dir, &project, port, &[]))
        .run()
        .success();
    eprintln!("rootless init: healthy in {:?}", started.elapsed());
    let out = run.stderr();
    assert!(out.contains("engine: podman 4."), "{out}");
    assert!(out.contains("websocket: HTTP 101"), "{out}");
    assert!(
        out.contains("session workers: can write their log"),
        "{out}"
    );
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert_eq!(web::infos_version(port).as_deref(), Some("v0.29.2"));
    // The volumes were handed to uid 82 inside the user namespace: on the host, a subordinate id.
    let owner = user.podman(&[
        "exec",
        &guard.container("daemon"),
        "stat",
        "-c",
        "%u",
        "/var/www/movim/log",
    ]);
    assert_eq!(owner, "82");
    assert_doctor_clean(&user, &guard, &dir, &[]);
    drop(service);

    // From here the API is served for each run only (--podman-service), as unattended runs do.
    let started = Instant::now();
    let run = as_user(
        &user,
        Setup::new("upgrade", &dir).args(["--yes", "--to", "v0.30.0", "--podman-service"]),
    )
    .run()
    .success();
    eprintln!("rootless upgrade: {:?}", started.elapsed());
    run.stderr_has("serving Podman's API for this run")
        .stderr_has("Movim v0.30.0 is up and healthy (upgraded from v0.29.2)");
    assert_eq!(web::infos_version(port).as_deref(), Some("v0.30.0"));

    let started = Instant::now();
    let run = as_user(
        &user,
        Setup::new("upgrade", &dir).args([
            "--yes",
            "--to",
            "v0.30.1-daemon-exits",
            "--podman-service",
        ]),
    )
    .run()
    .code(1);
    eprintln!(
        "rootless faulty upgrade, rolled back in {:?}",
        started.elapsed()
    );
    run.stderr_has("failed at step `start`")
        .stderr_has("rolled back: Movim v0.30.0 runs again and is healthy");
    assert_eq!(web::infos_version(port).as_deref(), Some("v0.30.0"));
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert_doctor_clean(
        &user,
        &guard,
        &dir,
        &["--engine", "podman", "--podman-service"],
    );
    assert!(
        !pings(&user.socket().display().to_string()),
        "the API served for a run must be stopped when the run ends"
    );
}

#[test]
fn rootless_podman_refuses_up_front_what_it_cannot_publish() {
    // Its --podman-service serves the user's one socket: never while another test uses it.
    let _one = one_stack_at_a_time();
    let user = User::get();
    let tmp = user.tempdir();
    let dir = tmp.path().join("movim");
    let project = Project::new("rlport");
    let _gone = UserProject::new(&user, &project);
    let serve = ["--engine", "podman", "--podman-service"];

    // Caddy's 80 and 443.
    let caddy = cli::init_world(&dir, &project, 8080, &[("--tls", "caddy")]).args(serve);
    as_user(&user, caddy)
        .run()
        .code(2)
        .stderr_has("the engine runs rootless and cannot publish port 80 (caddy), 443 (caddy)")
        .stderr_has("net.ipv4.ip_unprivileged_port_start is 1024 on this machine")
        .stderr_has("--tls proxy --http-port 8080, with a reverse proxy on the host")
        .stderr_has("sudo sysctl net.ipv4.ip_unprivileged_port_start=80");
    assert!(!dir.exists(), "nothing may be written");

    // A proxy port below 1024.
    let low = cli::init_world(&dir, &project, 81, &[]).args(serve);
    as_user(&user, low)
        .run()
        .code(2)
        .stderr_has("cannot publish port 81 (web)")
        .stderr_has("sysctl net.ipv4.ip_unprivileged_port_start=81");
    assert!(!dir.exists(), "nothing may be written");
}
