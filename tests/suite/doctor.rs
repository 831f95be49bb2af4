//! `movim-setup doctor`: the report's two renderings as snapshots, and the real thing against the
//! test world — one healthy stack, then each fault a self-hoster meets injected one at a time (and
//! undone), asserting the exact finding id, severity and exit code. All faults share one stack on
//! purpose: a stack takes a minute to come up on a 2-core machine. Secrets must never appear in the
//! text, the JSON or the bundle, and doctor must never change the deployment directory.

use crate::support::cli;
use crate::support::podman as podman_env;
use crate::support::world::caused_by_the_world;

use cli::{Project, Setup, free_port, tree};
use movim_setup::doctor::report::{Area, Finding, Report};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The report, rendered.

fn sample() -> Report {
    let mut r = Report::new("0.1.0", "/srv/movim");
    r.push(Finding::ok(
        Area::Engine,
        "engine.reachable",
        "docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock",
    ));
    r.push(Finding::ok(
        Area::Engine,
        "compose.tool",
        "docker compose (Compose v2 plugin) 2.40.3",
    ));
    r.push(
        Finding::warn(Area::Files, "drift.compose.yaml", "compose.yaml differs from what init writes")
            .details([
                "--- compose.yaml (on disk)".to_owned(),
                "+++ compose.yaml (what init writes)".to_owned(),
                "   daemon:".to_owned(),
                "-    image: ghcr.io/nadiamoe/movim-daemon:v0.29.2".to_owned(),
                "+    image: ghcr.io/nadiamoe/movim-daemon:v0.29.2@sha256:0123abcd".to_owned(),
                "     restart: unless-stopped".to_owned(),
            ])
            .hint("if the change was not on purpose, let init write it again (the current file is kept in backups/files/): movim-setup init --dir /srv/movim"),
    );
    r.push(
        Finding::error(
            Area::Env,
            "env.mode",
            "movim.env is mode 0644: other local users can read the database password",
        )
        .hint("chmod 600 /srv/movim/movim.env"),
    );
    r.push(Finding::ok(Area::Env, "env.keys", "all 11 keys valid"));
    r.push(
        Finding::error(
            Area::Containers,
            "container.daemon.restarts",
            "daemon (movim-daemon-1) is restarting in a loop: 7 restarts, last exit code 0",
        )
        .detail("Movim's daemon exits with code 0 when migrations are pending or DAEMON_URL is missing, and its restart policy starts it again")
        .hint("read why in its log, and if migrations are pending apply them: docker compose -f /srv/movim/compose.yaml -p movim run --rm --no-deps -T --entrypoint php daemon vendor/bin/phinx migrate && docker compose -f /srv/movim/compose.yaml -p movim restart daemon"),
    );
    r.push(Finding::ok(
        Area::Database,
        "db.reachable",
        "PostgreSQL 15.8 at 172.18.0.2:5432/movim as movim",
    ));
    r.push(
        Finding::warn(
            Area::Xmpp,
            "xmpp.dns",
            "example.org does not resolve inside movim-daemon-1: nobody can log in until it does",
        )
        .hint("publish DNS for example.org (A/AAAA, or SRV _xmpp-client._tcp.example.org), then check: docker compose -f /srv/movim/compose.yaml -p movim exec daemon getent hosts example.org"),
    );
    r.push(Finding::ok(
        Area::Upgrade,
        "upgrade.journal",
        "no interrupted upgrade",
    ));
    r
}

#[test]
fn the_text_report_groups_areas_and_numbers_problems_with_their_fix() {
    insta::assert_snapshot!("text_report", sample().to_text());
}

#[test]
fn the_json_report_follows_schema_1() {
    let json = sample().to_json();
    insta::assert_snapshot!("json_report", json);
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["schema"], 1);
}

// ---------------------------------------------------------------------------------------------
// The real world.

#[test]
fn a_directory_that_is_not_a_deployment_cannot_be_checked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    Setup::new("doctor", &tmp.path().join("nope"))
        .run()
        .code(2)
        .stderr_has("does not exist");
    Setup::new("doctor", tmp.path())
        .run()
        .code(2)
        .stderr_has("has no movim-setup.yaml");
}

/// The engine a real-world test runs on: Docker with Compose v2, or Podman with podman-compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Docker,
    Podman,
}

impl On {
    fn cli(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// `movim-setup <verb>` on this engine.
    fn setup(self, verb: &str, dir: &Path) -> Setup {
        match self {
            Self::Docker => Setup::new(verb, dir),
            Self::Podman => podman_env::on_podman(verb, dir),
        }
    }

    fn setup_init(self, dir: &Path, project: &Project, port: u16) -> Setup {
        let init = cli::init_world(dir, project, port, &[]);
        match self {
            Self::Docker => init,
            Self::Podman => init.args(podman_env::flags()),
        }
    }
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn container(on: On, project: &Project, service: &str) -> String {
    let id = sh(
        on.cli(),
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", project.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ],
    );
    let id = id.lines().next().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "no container for {service}");
    id
}

fn wait_healthy(on: On, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if on == On::Podman {
            // Nothing runs Podman's checks without systemd: run one (it fails while starting).
            let _ = Command::new("podman")
                .args(["healthcheck", "run", id])
                .output();
        }
        let state = sh(
            on.cli(),
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                id,
            ],
        );
        if state == "running healthy" {
            return;
        }
        assert!(Instant::now() < deadline, "{id} not healthy: {state}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Restarts the daemon, then web: nginx resolves the daemon's address when it starts, and a
/// restarted container may get a new one (Podman's netavark hands out the next free address).
fn restart_daemon_then_web(on: On, project: &Project) {
    for service in ["daemon", "web"] {
        let id = container(on, project, service);
        sh(on.cli(), &["restart", &id]);
        wait_healthy(on, &id);
    }
}

/// Whether Podman's known DNS race (https://github.com/containers/aardvark-dns/issues/389) restarted the daemon: never on
/// Docker; on Podman, when its logs show the lost lookup.
fn lost_a_lookup(on: On, project: &Project) -> bool {
    on == On::Podman && podman_env::daemon_lost_a_lookup(&container(on, project, "daemon"))
}

fn psql(on: On, pg: &str, sql: &str) {
    sh(
        on.cli(),
        &[
            "exec",
            pg,
            "psql",
            "-U",
            "movim",
            "-d",
            "movim",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ],
    );
}

/// One doctor run with `--json`: its exit code and report. Every run also proves that the
/// password never shows.
struct Doctor {
    code: i32,
    json: Value,
}

impl Doctor {
    fn run(on: On, dir: &Path, password: &str) -> Self {
        let run = on.setup("doctor", dir).arg("--json").run();
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(!all.contains(password), "the password leaked:\n{all}");
        let json: Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}):\n{all}"));
        Self {
            code: run.output.status.code().unwrap_or(-1),
            json,
        }
    }

    fn findings(&self) -> &Vec<Value> {
        self.json["findings"].as_array().expect("findings")
    }

    fn problems(&self) -> String {
        self.findings()
            .iter()
            .filter(|f| f["severity"] != "ok")
            .map(|f| {
                format!(
                    "{} {}: {} ({}) {}",
                    f["severity"], f["id"], f["summary"], f["hint"], f["details"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts the finding `id` has `severity` and the run exited `code`; returns its summary.
    #[track_caller]
    fn expect(&self, id: &str, severity: &str, code: i32) -> String {
        let f = self
            .findings()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no finding {id}; problems:\n{}", self.problems()));
        assert_eq!(
            f["severity"],
            severity,
            "{id}: {f}\nproblems:\n{}",
            self.problems()
        );
        assert_eq!(self.code, code, "exit code; problems:\n{}", self.problems());
        assert_eq!(self.json["status"], code);
        let hint = f["hint"].as_str().unwrap_or_default();
        if severity != "ok" {
            assert!(!hint.is_empty(), "{id} has no fix");
        }
        f["summary"].as_str().unwrap_or_default().to_owned()
    }

    /// Healthy: exit 0 and nothing but what the world itself causes is not ok.
    ///
    /// `raced`: the daemon lost a name lookup to Podman's known DNS race and restarted once, so its
    /// `container.daemon.restarts` warning is Podman's, not a fault.
    #[track_caller]
    fn expect_healthy(&self, raced: bool) {
        for f in self.findings() {
            let id = f["id"].as_str().unwrap_or_default();
            let severity = f["severity"].as_str().unwrap_or_default();
            let race = raced && id == "container.daemon.restarts" && severity == "warn";
            assert!(
                severity == "ok" || race || caused_by_the_world(id, severity),
                "{id} is not ok: {f}\nproblems:\n{}",
                self.problems()
            );
        }
        assert_eq!(self.code, 0, "problems:\n{}", self.problems());
    }
}

#[test]
fn doctor_names_each_fault_and_its_fix_on_one_stack() {
    doctor_names_each_fault_and_its_fix(On::Docker);
}

#[test]
fn doctor_names_each_fault_and_its_fix_on_podman() {
    let _one = podman_env::one_stack_at_a_time();
    let _socket = podman_env::PodmanSocket::acquire();
    doctor_names_each_fault_and_its_fix(On::Podman);
}

#[allow(clippy::too_many_lines)] // one stack, every fault in turn: splitting would mean one stack each
fn doctor_names_each_fault_and_its_fix(on: On) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("doc");
    let port = free_port();
    on.setup_init(&dir, &project, port).run().success();
    let env_path = dir.join("movim.env");
    let env_text = std::fs::read_to_string(&env_path).expect("movim.env");
    let password = env_text
        .lines()
        .find_map(|l| l.strip_prefix("DB_PASSWORD="))
        .expect("DB_PASSWORD")
        .trim_matches(['\'', '"'])
        .to_owned();
    assert!(password.len() >= 16, "a generated password");

    // Healthy: exit 0, the text names every area, nothing changes in the directory.
    let before = tree(&dir);
    let started = Instant::now();
    let text = on.setup("doctor", &dir).run().code(0);
    let wall = started.elapsed();
    println!("doctor wall time on a healthy stack: {wall:?}");
    eprintln!("doctor wall time on a healthy stack: {wall:?}");
    let shown = text.stdout();
    assert!(!shown.contains(&password), "{shown}");
    for heading in [
        "Engine and compose tool",
        "Containers",
        "Database",
        "Web and websocket",
    ] {
        assert!(shown.contains(heading), "{heading} missing:\n{shown}");
    }
    let healthy = Doctor::run(on, &dir, &password);
    healthy.expect_healthy(lost_a_lookup(on, &project));
    let summary = &healthy.json["summary"];
    assert_eq!(
        summary["ok"].as_u64().unwrap_or(0)
            + summary["warn"].as_u64().unwrap_or(0)
            + summary["error"].as_u64().unwrap_or(0),
        healthy.findings().len() as u64
    );
    for id in [
        "engine.reachable",
        "compose.tool",
        "files.compose",
        "env.mode",
        "env.daemon_url.host",
        "images.pinned",
        "drift",
        "container.daemon.running",
        "mounts",
        "db.pgcrypto",
        "db.migrations",
        "web.websocket",
        "web.infos",
        "movim.log",
        "upgrade.journal",
    ] {
        healthy.expect(id, "ok", 0);
    }
    // The world's XMPP domain does not resolve: a warning (DNS often comes last), not an error.
    healthy.expect("xmpp.dns", "warn", 0);

    // The bundle: report, compose, env with secrets redacted, logs; the password nowhere.
    let bundle = tmp.path().join("bundle.tar.gz");
    on.setup("doctor", &dir)
        .arg("--bundle")
        .arg(&bundle)
        .run()
        .code(0);
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    sh(
        "tar",
        &[
            "-xzf",
            &bundle.display().to_string(),
            "-C",
            &unpacked.display().to_string(),
        ],
    );
    let files = tree(&unpacked.join("movim-doctor"));
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    for want in [
        "report.txt",
        "report.json",
        "compose.yaml",
        "movim.env",
        "movim-setup.lock",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("logs/") && n.contains("daemon")),
        "{names:?}"
    );
    for (name, content) in &files {
        let content = String::from_utf8_lossy(content);
        assert!(
            !content.contains(&password),
            "{} holds the password",
            name.display()
        );
    }
    let bundled_env = files
        .iter()
        .find(|(p, _)| p == Path::new("movim.env"))
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    assert!(
        bundled_env.contains("DB_PASSWORD=<redacted>"),
        "{bundled_env}"
    );
    assert!(
        bundled_env.contains("DAEMON_URL=https://movim.test/"),
        "{bundled_env}"
    );
    assert_eq!(
        tree(&dir),
        before,
        "doctor must not change the deployment directory"
    );

    // 1. A stopped container.
    let fpm = container(on, &project, "fpm");
    sh(on.cli(), &["stop", &fpm]);
    Doctor::run(on, &dir, &password).expect("container.fpm.running", "error", 1);
    sh(on.cli(), &["start", &fpm]);
    wait_healthy(on, &fpm);

    // 2. movim.env readable by everyone.
    sh("chmod", &["0644", &env_path.display().to_string()]);
    Doctor::run(on, &dir, &password).expect("env.mode", "error", 1);
    sh("chmod", &["0600", &env_path.display().to_string()]);

    // 3. compose.yaml edited by hand: the daemon's image unpinned.
    let compose_path = dir.join("compose.yaml");
    let compose = std::fs::read_to_string(&compose_path).expect("compose.yaml");
    let lock: Value =
        yaml_serde::from_str(&std::fs::read_to_string(dir.join("movim-setup.lock")).expect("lock"))
            .expect("lock YAML");
    let pinned = lock["images"]["daemon"].as_str().expect("daemon pinned");
    let unpinned = pinned.split('@').next().unwrap_or_default();
    std::fs::write(&compose_path, compose.replace(pinned, unpinned)).expect("edit");
    let d = Doctor::run(on, &dir, &password);
    d.expect("images.daemon.pinned", "error", 1);
    d.expect("drift.compose.yaml", "warn", 1);
    std::fs::write(&compose_path, &compose).expect("restore");

    // 4. pgcrypto dropped after the migrations that need it.
    let pg = container(on, &project, "postgres");
    psql(on, &pg, "drop extension pgcrypto");
    Doctor::run(on, &dir, &password).expect("db.pgcrypto", "error", 1);
    psql(on, &pg, "create extension pgcrypto");

    // 5. A pending migration: the last one's phinxlog row set aside.
    psql(
        on,
        &pg,
        "create table doctor_test_saved as select * from phinxlog where version = (select max(version) from phinxlog); \
         delete from phinxlog where version in (select version from doctor_test_saved)",
    );
    let summary = Doctor::run(on, &dir, &password).expect("db.migrations", "error", 1);
    assert!(summary.contains("pending"), "{summary}");
    psql(
        on,
        &pg,
        "insert into phinxlog select * from doctor_test_saved; drop table doctor_test_saved",
    );

    // 6. The daemon stopped: no websocket through web (nginx waits for it, then answers 504).
    let daemon = container(on, &project, "daemon");
    sh(on.cli(), &["stop", &daemon]);
    let d = Doctor::run(on, &dir, &password);
    d.expect("container.daemon.running", "error", 1);
    let summary = d.expect("web.websocket", "error", 1);
    assert!(summary.contains("daemon is not running"), "{summary}");
    sh(on.cli(), &["start", &daemon]);
    wait_healthy(on, &daemon);
    restart_daemon_then_web(on, &project);

    // 7. The /ws/ proxy broken: the daemon listens on loopback only, nginx answers 502.
    std::fs::write(
        &env_path,
        env_text.replace("DAEMON_INTERFACE=0.0.0.0", "DAEMON_INTERFACE=127.0.0.1"),
    )
    .expect("edit env");
    restart_daemon_then_web(on, &project);
    let d = Doctor::run(on, &dir, &password);
    let summary = d.expect("web.websocket", "error", 1);
    assert!(summary.contains("HTTP 502"), "{summary}\n{}", d.json);
    d.expect("env.key.DAEMON_INTERFACE", "error", 1);
    std::fs::write(&env_path, &env_text).expect("restore env");
    restart_daemon_then_web(on, &project);

    // 8. DAEMON_URL naming another host: every websocket would be refused.
    std::fs::write(
        &env_path,
        env_text.replace(
            "DAEMON_URL=https://movim.test/",
            "DAEMON_URL=https://wrong.test/",
        ),
    )
    .expect("edit env");
    Doctor::run(on, &dir, &password).expect("env.daemon_url.host", "error", 1);
    // Once the daemon reads it, Movim upgrades every websocket and closes it at once: the
    // handshake alone would pass; doctor must see the close and name DAEMON_URL.
    restart_daemon_then_web(on, &project);
    let d = Doctor::run(on, &dir, &password);
    let summary = d.expect("web.websocket", "error", 1);
    assert!(summary.contains("refuses the Origin"), "{summary}");
    let hint = d
        .findings()
        .iter()
        .find(|f| f["id"] == "web.websocket")
        .and_then(|f| f["hint"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(hint.contains("DAEMON_URL=https://movim.test/"), "{hint}");

    // 9. The daemon exiting 0 in a loop (DAEMON_URL missing).
    std::fs::write(
        &env_path,
        env_text
            .lines()
            .filter(|l| !l.starts_with("DAEMON_URL="))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .expect("edit env");
    sh(on.cli(), &["restart", &daemon]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sh(on.cli(), &["inspect", "-f", "{{.RestartCount}}", &daemon])
        .parse::<u32>()
        .unwrap_or(0)
        < 3
    {
        assert!(Instant::now() < deadline, "the daemon does not loop");
        std::thread::sleep(Duration::from_millis(500));
    }
    let d = Doctor::run(on, &dir, &password);
    d.expect("container.daemon.restarts", "error", 1);
    d.expect("env.key.DAEMON_URL", "error", 1);
    std::fs::write(&env_path, &env_text).expect("restore env");
    restart_daemon_then_web(on, &project);

    // 10. LOG_PATH where nothing can be written (not the log volume): the session workers
    // would die on their first logged error, right after a login.
    std::fs::write(
        &env_path,
        env_text.replace(
            "LOG_PATH=/var/www/movim/log/",
            "LOG_PATH=/var/www/movim/nolog/",
        ),
    )
    .expect("edit env");
    let d = Doctor::run(on, &dir, &password);
    let summary = d.expect("movim.log", "error", 1);
    assert!(summary.contains("/var/www/movim/nolog/"), "{summary}");
    d.expect("env.key.LOG_PATH", "error", 1);
    std::fs::write(&env_path, &env_text).expect("restore env");

    // 11. An interrupted upgrade.
    std::fs::write(dir.join("upgrade.journal"), "{}\n").expect("journal");
    let summary = Doctor::run(on, &dir, &password).expect("upgrade.journal", "error", 1);
    assert!(summary.contains("interrupted"), "{summary}");
    std::fs::remove_file(dir.join("upgrade.journal")).expect("rm journal");

    // 12. Another run holding the lock (this test's live pid stands in for it): a warning.
    let run_lock = dir.join("movim-setup.run-lock");
    std::fs::write(&run_lock, format!("pid {}\n", std::process::id())).expect("lock");
    Doctor::run(on, &dir, &password).expect("upgrade.run_lock", "warn", 0);
    std::fs::remove_file(&run_lock).expect("rm lock");

    // Every fault undone: healthy again.
    Doctor::run(on, &dir, &password).expect_healthy(lost_a_lookup(on, &project));
}
