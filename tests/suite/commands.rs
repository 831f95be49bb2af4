//! Each command run whole, its arguments parsed by clap as a user's would be, on fakes
//! (`support/fakes.rs`): `init`, `upgrade` and `rollback` in milliseconds, with no engine, registry
//! or database; what reached the world is read from the fakes' shared log. Doctor's facts are
//! gathered from the same fakes and judged by its checks.

use crate::support::fakes;

use clap::Parser as _;
use fakes::{FROM, FakeDb, FakeEngine, FakeWeb, Log, TO, context, installed_dir};
use movim_setup::adapters::engine::EngineKind;
use movim_setup::adapters::runner::compose::ComposeTool;
use movim_setup::adapters::signals::Signal;
use movim_setup::adapters::store::Dir;
use movim_setup::cli::Cli;
use movim_setup::commands;
use movim_setup::core::journal::JOURNAL_FILE;
use movim_setup::core::lockfile::Lock;
use movim_setup::doctor::report::{Report, Severity};
use movim_setup::doctor::{checks, facts, gather};
use movim_setup::error::{ExitStatus, Failure};
use std::path::{Path, PathBuf};

/// `movim-setup <args> --dir <dir>` on the fakes.
async fn run(dir: &Path, log: &Log, args: &[&str]) -> Result<ExitStatus, Failure> {
    let mut argv = vec!["movim-setup"];
    argv.extend_from_slice(args);
    let dir_text = dir.display().to_string();
    argv.extend(["--dir", &dir_text]);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    commands::run(&context(dir, log), cli.command).await
}

fn lock(dir: &Path) -> Lock {
    let text =
        std::fs::read_to_string(dir.join("movim-setup.lock")).unwrap_or_else(|e| panic!("{e}"));
    Lock::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// `init --yes` for a new deployment on the fakes, web on `port`.
fn init_args(port: &str) -> [&str; 10] {
    [
        "init",
        "--yes",
        "--domain",
        "movim.example.org",
        "--http-port",
        port,
        "--image-repository",
        "registry.test/movim",
        "--library-repository",
        "registry.test/library",
    ]
}

/// A free port on the loopback, for web to publish.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or_else(|e| panic!("{e}"), |a| a.port())
}

#[tokio::test]
async fn init_pins_writes_migrates_starts_in_order_and_proves_then_a_rerun_changes_nothing() {
    let log = Log::default();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("movim");
    let port = free_port().to_string();
    let args = init_args(&port);

    let status = run(&dir, &log, &args).await;

    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    let pinned = lock(&dir);
    assert_eq!(pinned.movim, FROM);
    assert!(
        pinned.images.values().all(|i| i.contains("@sha256:")),
        "{pinned:?}"
    );
    log.assert_in_order(&[
        "resolve",
        "pull",
        "up postgres",
        "prepare_volumes",
        "php vendor/bin/phinx migrate",
        "up fpm,daemon",
        "up web",
    ]);
    let env = std::fs::read_to_string(dir.join("movim.env")).unwrap_or_else(|e| panic!("{e}"));

    // Again: nothing to write, nothing to start, the same secrets; the stack is proven.
    let before = log.calls().len();
    let again = run(&dir, &log, &args).await;
    assert!(matches!(again, Ok(ExitStatus::Success)), "{again:?}");
    let rerun = &log.calls()[before..];
    assert!(!rerun.iter().any(|c| c.starts_with("up ")), "{rerun:?}");
    assert!(!rerun.iter().any(|c| c.starts_with("resolve")), "{rerun:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("movim.env")).unwrap_or_else(|e| panic!("{e}")),
        env
    );
}

#[tokio::test]
async fn a_ca_bundle_named_relatively_is_read_from_the_deployments_copy_by_every_later_run() {
    let log = Log::default();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("movim");
    let source = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        source.path().join("private-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The bundle named relative to the working directory, as a user standing beside it would.
    let cwd = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = format!(
        "{up}{}/private-ca.pem",
        source.path().display().to_string().trim_start_matches('/')
    );
    let port = free_port().to_string();
    let mut args = init_args(&port).to_vec();
    args.extend(["--ca-bundle", &relative]);

    let status = run(&dir, &log, &args).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    let answers =
        std::fs::read_to_string(dir.join("movim-setup.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let recorded = answers
        .lines()
        .find_map(|l| l.strip_prefix("ca_bundle: "))
        .map(PathBuf::from);
    assert!(
        recorded.as_ref().is_some_and(|p| p.is_absolute()
            && std::fs::canonicalize(p).ok()
                == std::fs::canonicalize(source.path().join("private-ca.pem")).ok()),
        "recorded as a path any directory finds: {answers}"
    );
    let copy = std::fs::read_to_string(dir.join("ca.pem")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        copy.starts_with("-----BEGIN CERTIFICATE-----\nMIIBfake"),
        "{copy}"
    );

    // From another working directory the name leads nowhere: here, the file is gone.
    drop(source);
    let trusted = format!("trust {}", dir.join("ca.pem").display());
    let before = log.calls().len();
    let again = run(&dir, &log, &init_args(&port)).await;
    assert!(matches!(again, Ok(ExitStatus::Success)), "{again:?}");
    let rerun = &log.calls()[before..];
    assert!(rerun.contains(&trusted), "{rerun:?}");
    assert!(!rerun.iter().any(|c| c.starts_with("up ")), "{rerun:?}");
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read("ca.pem"), copy, "the copy is kept as it is");
    assert_eq!(
        read("movim-setup.yaml"),
        answers,
        "a re-run changes nothing"
    );

    let before = log.calls().len();
    let upgraded = run(&dir, &log, &["upgrade", "--yes", "--to", TO]).await;
    assert!(matches!(upgraded, Ok(ExitStatus::Success)), "{upgraded:?}");
    assert!(
        log.calls()[before..].contains(&trusted),
        "{:?}",
        log.calls()
    );
    assert_eq!(read("ca.pem"), copy);
    let answers = read("movim-setup.yaml");
    let again = run(&dir, &log, &init_args(&port)).await;
    assert!(matches!(again, Ok(ExitStatus::Success)), "{again:?}");
    assert_eq!(read("ca.pem"), copy);
    assert_eq!(
        read("movim-setup.yaml"),
        answers,
        "a re-run changes nothing"
    );
}

#[tokio::test]
async fn upgrade_without_to_goes_to_the_newest_release_and_dry_run_changes_nothing() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let dry = run(dir.path(), &log, &["upgrade", "--dry-run"]).await;
    assert!(matches!(dry, Ok(ExitStatus::Success)), "{dry:?}");
    assert!(
        !log.has("stop_movim") && !log.has("pull"),
        "{:?}",
        log.calls()
    );
    assert_eq!(lock(dir.path()).movim, FROM);

    let status = run(dir.path(), &log, &["upgrade", "--yes"]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert_eq!(lock(dir.path()).movim, TO);
}

#[tokio::test]
async fn an_older_target_is_refused_as_bad_usage_naming_rollback() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let failure = run(dir.path(), &log, &["upgrade", "--to", "v0.28.0"])
        .await
        .expect_err("an older release is a rollback");

    assert_eq!(failure.status, ExitStatus::CouldNotRun);
    assert!(
        failure
            .next
            .iter()
            .any(|n| n.starts_with("movim-setup rollback")),
        "{failure}"
    );
    assert!(
        log.calls().iter().all(|c| !c.starts_with("stop")),
        "{:?}",
        log.calls()
    );
}

/// An external PostgreSQL 17 is backed up with `pg_dump` 17: when `postgres:17` cannot be had
/// from the library repository, the upgrade is refused before anything stops, naming the
/// server's version, the image and how to make it available; once it can be, the upgrade backs
/// the database up with it.
#[tokio::test]
async fn an_external_database_whose_pg_dump_cannot_be_had_is_refused_before_anything_stops() {
    let log = Log::default();
    let mut d = fakes::deployment();
    d.database = movim_setup::core::deployment::Database::External {
        host: "10.0.0.5".to_owned(),
        port: 5432,
        name: "movim".to_owned(),
        user: "movim".to_owned(),
    };
    let dir = fakes::installed_dir_of(&log, &d);
    let tool = "registry.test/library/postgres:17";
    log.state().server_version = Some("17.2 (Debian 17.2-1.pgdg120+1)".to_owned());
    log.state().unresolvable = vec![tool.to_owned()];
    let lock_before =
        std::fs::read(dir.path().join("movim-setup.lock")).unwrap_or_else(|e| panic!("{e}"));

    let failure = run(dir.path(), &log, &["upgrade", "--yes", "--to", TO])
        .await
        .expect_err("pg_dump 17 cannot be had");

    let said = failure.to_string();
    assert!(
        failure.what.contains("PostgreSQL 17.2") && failure.what.contains(tool),
        "{said}"
    );
    assert!(
        failure
            .details
            .iter()
            .any(|d| d == "nothing was stopped or changed"),
        "{said}"
    );
    assert!(
        failure
            .next
            .iter()
            .any(|n| n.contains(&format!("make {tool} available"))
                && n.contains(&format!(
                    "movim-setup upgrade --dir {} --to {TO}",
                    dir.path().display()
                ))),
        "{said}"
    );
    assert!(
        failure
            .next
            .iter()
            .any(|n| n.contains("--library-repository")),
        "{said}"
    );
    assert!(
        !log.has("stop") && !log.has("dump") && !log.has("pull"),
        "{:?}",
        log.calls()
    );
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    assert_eq!(
        std::fs::read(dir.path().join("movim-setup.lock")).unwrap_or_else(|e| panic!("{e}")),
        lock_before
    );

    // Made available: the upgrade pulls it, backs the database up with it, and succeeds.
    log.state().unresolvable.clear();
    let status = run(dir.path(), &log, &["upgrade", "--yes", "--to", TO]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert!(
        log.has(&format!(
            "pull registry.test/library/postgres@{}",
            fakes::digest_of(tool)
        )),
        "{:?}",
        log.calls()
    );
    assert_eq!(lock(dir.path()).movim, TO);
}

#[tokio::test]
async fn resume_without_an_interrupted_upgrade_is_bad_usage() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let failure = run(dir.path(), &log, &["upgrade", "--resume"])
        .await
        .expect_err("nothing to resume");

    assert_eq!(failure.status, ExitStatus::CouldNotRun);
    assert!(failure.what.contains("no interrupted upgrade"), "{failure}");
}

#[tokio::test]
async fn rollback_returns_to_the_previous_release_and_restores_its_dump_when_its_code_is_behind() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().probe_status = (3, "down  20250101000000  CreateSomething\n".to_owned());
    let up = run(dir.path(), &log, &["upgrade", "--to", TO]).await;
    assert!(matches!(up, Ok(ExitStatus::Success)), "{up:?}");
    // v0.29.2's code does not know the migration v0.30.0 ran.
    log.state().probe_status = (
        2,
        "up  20250101000000  ** MISSING MIGRATION **\n".to_owned(),
    );

    let status = run(dir.path(), &log, &["rollback"]).await;

    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    let back = lock(dir.path());
    assert_eq!(back.movim, FROM);
    assert_eq!(
        back.history.last().map(|r| r.outcome.as_str()),
        Some("rolled-back")
    );
    assert!(
        log.has("restore backups/db-fake-v0.29.2.dump"),
        "{:?}",
        log.calls()
    );
    assert_eq!(log.state().running.as_deref(), Some("0.29.2"));
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn a_rollback_further_back_than_keep_backups_is_refused_before_anything_stops_naming_it() {
    let log = Log::default();
    let dir = installed_dir(&log);
    for to in [TO, "v0.31.0", "v0.32.0", "v0.33.0"] {
        let up = run(dir.path(), &log, &["upgrade", "--yes", "--to", to]).await;
        assert!(matches!(up, Ok(ExitStatus::Success)), "{to}: {up:?}");
    }
    // Retention (the default 3) kept the dumps for going back 3 releases; FROM's is gone.
    let dumps: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dump"))
        .collect();
    assert_eq!(dumps.len(), 3, "backups/ stays bounded: {dumps:?}");
    assert!(
        !dumps.contains(&format!("db-fake-{FROM}.dump")),
        "{dumps:?}"
    );
    // FROM's code does not know the migrations run since.
    log.state().probe_status = (
        2,
        "up  20250101000000  ** MISSING MIGRATION **\n".to_owned(),
    );
    let before = log.calls().len();

    let failure = run(dir.path(), &log, &["rollback", "--yes", "--to", FROM])
        .await
        .expect_err("its dump was pruned");

    assert!(
        failure.what.contains("no longer kept") && failure.what.contains("--keep-backups"),
        "names why and the setting: {failure}"
    );
    let calls = &log.calls()[before..];
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("stop") || c.starts_with("restore")),
        "{calls:?}"
    );
    assert_eq!(log.state().running.as_deref(), Some("0.33.0"));
    assert_eq!(lock(dir.path()).movim, "v0.33.0");
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    // Going back 3 releases still restores its dump.
    let status = run(dir.path(), &log, &["rollback", "--yes", "--to", TO]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert!(
        log.has("restore backups/db-fake-v0.30.0.dump"),
        "{:?}",
        log.calls()
    );
}

#[tokio::test]
async fn an_upgrade_whose_rollback_failed_too_is_settled_by_rollback() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().fail_start_of = Some("0.30.0".to_owned());
    log.state().fail_restore = true;
    log.state().probe_status = (3, "down  20250101000000  CreateSomething\n".to_owned());

    let failure = run(dir.path(), &log, &["upgrade", "--to", TO])
        .await
        .expect_err("the start fails, and so does the automatic rollback");
    assert!(
        failure
            .details
            .iter()
            .any(|d| d.contains("the automatic rollback to v0.29.2 failed too")),
        "{failure}"
    );
    assert!(
        failure
            .next
            .iter()
            .any(|n| n.starts_with("movim-setup rollback")),
        "{failure}"
    );
    assert!(
        dir.path().join(JOURNAL_FILE).exists(),
        "the journal is kept"
    );

    // Doctor names the interrupted run; a second upgrade refuses to start beside it.
    assert_eq!(
        severity_of(&doctor(dir.path(), &log).await, "upgrade.journal"),
        Severity::Error
    );
    let refused = run(dir.path(), &log, &["upgrade", "--to", TO])
        .await
        .expect_err("an interrupted run must be settled first");
    assert!(refused.what.contains("an interrupted upgrade"), "{refused}");
    // Nor may init migrate and start half of it: bad usage, naming both ways out.
    let calls = log.calls().len();
    let refused = run(dir.path(), &log, &["init", "--yes"])
        .await
        .expect_err("init must not run beside an interrupted upgrade");
    assert_eq!(refused.status, ExitStatus::CouldNotRun, "{refused}");
    let next = refused.next.join("\n");
    assert!(
        next.contains("upgrade --resume") && next.contains("rollback"),
        "{refused}"
    );
    assert_eq!(log.calls().len(), calls, "nothing reached the world");

    log.state().fail_restore = false;
    let status = run(dir.path(), &log, &["rollback"]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert_eq!(lock(dir.path()).movim, FROM);
    assert!(
        log.has("restore backups/db-fake-v0.29.2.dump"),
        "{:?}",
        log.calls()
    );
    assert_eq!(log.state().running.as_deref(), Some("0.29.2"));
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

/// What doctor reports about the deployment in `dir`, its stack read from the fakes.
async fn doctor(dir: &Path, log: &Log) -> Report {
    let setup = Dir::read(dir);
    let d = setup.deployment.clone().unwrap_or_else(|e| panic!("{e}"));
    let stack = gather::gather_stack(
        &FakeEngine(log.clone()),
        &FakeDb(log.clone()),
        &FakeWeb(log.clone()),
        None,
        &setup,
        &d,
        false,
    )
    .await;
    let mut f = gather::local(setup);
    f.engine = Ok(facts::EngineInfo {
        kind: EngineKind::Docker,
        version: "fake".to_owned(),
        api_version: "1.41".to_owned(),
        endpoint: "unix:///fake.sock".to_owned(),
    });
    f.stack = Some(stack);
    checks::report(&f, "test")
}

fn severity_of(report: &Report, id: &str) -> Severity {
    report
        .get(id)
        .unwrap_or_else(|| panic!("no finding {id} in\n{}", report.to_text()))
        .severity
}

#[tokio::test]
async fn doctor_reads_a_serving_stack_as_healthy_and_changes_nothing() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let report = doctor(dir.path(), &log).await;

    for id in [
        "files.answers",
        "files.env",
        "files.lock",
        "env.mode",
        "env.keys",
        "images.pinned",
        "drift",
        "container.web.running",
        "container.daemon.running",
        "db.reachable",
        "db.migrations",
        "web.websocket",
        "web.infos",
        "movim.log",
        "upgrade.journal",
    ] {
        assert_eq!(
            severity_of(&report, id),
            Severity::Ok,
            "{id}:\n{}",
            report.to_text()
        );
    }
    // The public name does not resolve here: a warning, and its certificate was not asked for.
    assert_eq!(severity_of(&report, "web.dns"), Severity::Warn);
    assert!(report.get("web.tls").is_none());
    // Read-only: nothing was started, stopped or pulled.
    assert!(
        log.calls().iter().all(|c| c.starts_with("exec ")),
        "{:?}",
        log.calls()
    );
}

#[tokio::test]
async fn doctor_names_a_stopped_daemon_and_fixes_it_with_the_runners_own_command() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().stopped = vec!["daemon".to_owned()];

    let report = doctor(dir.path(), &log).await;

    let f = report
        .get("container.daemon.running")
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(f.severity, Severity::Error);
    let start = ComposeTool::assumed()
        .commands(dir.path(), "movim")
        .start("daemon");
    assert!(
        f.hint
            .as_deref()
            .is_some_and(|h| h.starts_with(&format!("start it: {start}"))),
        "{f:?}"
    );
    assert!(
        f.details.iter().any(|d| d.contains("a fake log line")),
        "{f:?}"
    );
    assert_eq!(report.exit_status(), ExitStatus::Failed);
}

#[tokio::test]
async fn init_fails_its_proof_when_a_session_worker_cannot_log() {
    let log = Log::default();
    log.state().worker_cannot_log = true;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("movim");
    let port = free_port().to_string();
    let args = init_args(&port);

    let failure = run(&dir, &log, &args)
        .await
        .expect_err("the proof must fail");

    assert!(
        failure.what.contains("session workers") && failure.what.contains("Read-only"),
        "{failure}"
    );
    assert!(log.has("exec id-daemon session-worker log probe"));
    let env = std::fs::read_to_string(dir.join("movim.env")).unwrap_or_else(|e| panic!("{e}"));
    assert!(env.contains("\nLOG_PATH=/var/www/movim/log/\n"), "{env}");
}

#[tokio::test]
async fn doctor_reports_session_workers_that_cannot_log_as_an_error_naming_log_path() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().worker_cannot_log = true;

    let report = doctor(dir.path(), &log).await;

    let f = report
        .get("movim.log")
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(f.severity, Severity::Error, "{}", report.to_text());
    assert!(
        f.hint.as_deref().is_some_and(|h| h.contains("LOG_PATH=")),
        "{f:?}"
    );
    assert_eq!(report.exit_status(), ExitStatus::Failed);
}

#[tokio::test]
async fn init_fails_when_the_daemon_closes_the_websocket_it_upgraded_naming_daemon_url() {
    let log = Log::default();
    log.state().origin_refused = true;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("movim");
    let port = free_port().to_string();
    let args = init_args(&port);

    let failure = run(&dir, &log, &args)
        .await
        .expect_err("the proof must fail");

    let text = failure.to_string();
    assert!(text.contains("refused the public Origin"), "{text}");
    assert!(text.contains("DAEMON_URL"), "{text}");
}

#[tokio::test]
async fn doctor_reads_a_websocket_closed_at_once_as_a_refused_origin_fixed_in_daemon_url() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().origin_refused = true;

    let report = doctor(dir.path(), &log).await;

    let f = report
        .get("web.websocket")
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(f.severity, Severity::Error, "{}", report.to_text());
    assert!(
        f.hint
            .as_deref()
            .is_some_and(|h| h.contains("DAEMON_URL=https://")),
        "{f:?}"
    );
}

#[tokio::test]
async fn init_waits_for_no_one_and_refuses_beside_another_run_holding_the_lock() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let held = movim_setup::adapters::run_lock::RunLock::acquire(dir.path(), "upgrade")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|_| panic!("the lock is free"));

    let refused = run(dir.path(), &log, &["init", "--yes"])
        .await
        .expect_err("init must not run beside another run");
    assert!(
        refused.what.contains("another movim-setup run holds"),
        "{refused}"
    );
    drop(held);
}

#[tokio::test]
async fn upgrade_and_rollback_take_the_run_lock_before_reading_the_lock_file() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let held = movim_setup::adapters::run_lock::RunLock::acquire(dir.path(), "upgrade")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|_| panic!("the lock is free"));
    // The run holding the lock is half-way through rewriting the lock file.
    std::fs::write(dir.path().join("movim-setup.lock"), "movim: [")
        .unwrap_or_else(|e| panic!("{e}"));

    for args in [
        &["upgrade", "--to", TO, "--yes"][..],
        &["rollback", "--yes"],
    ] {
        let refused = run(dir.path(), &log, args)
            .await
            .expect_err("no run beside another run");
        assert!(
            refused.what.contains("another movim-setup run holds"),
            "{args:?}: {refused}"
        );
    }
    drop(held);
}

#[tokio::test]
async fn init_refuses_a_directory_podman_volume_cannot_name_before_writing_anything() {
    let log = Log::default();
    let parent = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for name in ["movim,prod", "movim:prod"] {
        let dir = parent.path().join(name);
        let refused = run(
            &dir,
            &log,
            &["init", "--yes", "--domain", "movim.example.org"],
        )
        .await
        .expect_err("no deployment podman cannot mount");
        assert!(
            refused
                .what
                .starts_with(&format!("--dir {} holds", dir.display())),
            "{refused}"
        );
        assert!(!dir.exists(), "nothing may be written");
    }
}

#[tokio::test]
async fn without_a_terminal_or_yes_an_upgrade_is_refused_before_anything_stops() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let mut ctx = context(dir.path(), &log);
    ctx.prompter = Box::new(movim_setup::core::answers::NoTerminal);
    let cli = Cli::try_parse_from(["movim-setup", "upgrade", "--to", TO])
        .unwrap_or_else(|e| panic!("{e}"));

    let refused = commands::run(&ctx, cli.command)
        .await
        .expect_err("nobody agreed to the downtime");

    assert_eq!(refused.status, ExitStatus::CouldNotRun, "{refused}");
    assert!(
        refused.next.iter().any(|n| n.contains("--yes")),
        "{refused}"
    );
    assert!(!log.has("stop"), "{:?}", log.calls());
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    assert_eq!(lock(dir.path()).movim, FROM);
}

/// A terminal's user who answers `no`, after noting whether a journal was on disk when asked.
struct SaysNo {
    journal: std::path::PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<Option<bool>>>,
}

impl movim_setup::core::answers::Prompter for SaysNo {
    fn text(
        &self,
        _q: &movim_setup::core::answers::Question,
        default: Option<&str>,
    ) -> Result<String, Failure> {
        Ok(default.unwrap_or_default().to_owned())
    }
    fn select(
        &self,
        _q: &movim_setup::core::answers::Question,
        _choices: &[&str],
        default: usize,
    ) -> Result<usize, Failure> {
        Ok(default)
    }
    fn password(&self, _q: &movim_setup::core::answers::Question) -> Result<String, Failure> {
        Ok(String::new())
    }
    fn interactive(&self) -> bool {
        true
    }
    fn confirm(&self, _prompt: &str, _default: bool) -> Result<bool, Failure> {
        *self.seen.lock().unwrap_or_else(|e| panic!("{e}")) = Some(self.journal.exists());
        Ok(false)
    }
}

#[tokio::test]
async fn no_journal_is_written_before_the_user_agrees_nor_during_the_prepull() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut ctx = context(dir.path(), &log);
    ctx.prompter = Box::new(SaysNo {
        journal: dir.path().join(JOURNAL_FILE),
        seen: seen.clone(),
    });
    let cli = Cli::try_parse_from(["movim-setup", "upgrade", "--to", TO])
        .unwrap_or_else(|e| panic!("{e}"));

    let status = commands::run(&ctx, cli.command).await;

    assert!(matches!(status, Ok(ExitStatus::Failed)), "{status:?}");
    // A Ctrl-C at the prompt or during the pre-pull would have left what was on disk then.
    assert_eq!(
        *seen.lock().unwrap_or_else(|e| panic!("{e}")),
        Some(false),
        "a journal was on disk at the prompt"
    );
    assert!(log.has("probe"), "{:?}", log.calls());
    assert!(
        log.calls()
            .iter()
            .filter(|c| c.starts_with("probe"))
            .all(|c| c.ends_with("(journal: false)")),
        "a journal was on disk during the pre-pull: {:?}",
        log.calls()
    );
    assert!(!log.has("stop"), "{:?}", log.calls());
}

/// The journal an upgrade of `dir` to `TO` writes once agreed, with `done` done and `current`
/// under way (what a kill leaves).
fn left_journal(
    dir: &Path,
    done: &[movim_setup::core::plan::Step],
    current: Option<movim_setup::core::plan::Step>,
) -> movim_setup::core::journal::Journal {
    use movim_setup::core::journal::{Files, Journal, Side};
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    let from = lock(dir);
    let to_images = from
        .images
        .iter()
        .map(|(s, i)| {
            let reference = i.split('@').next().unwrap_or_default().replace(FROM, TO);
            (
                s.clone(),
                format!("{reference}@{}", fakes::digest_of(&reference)),
            )
        })
        .collect();
    let mut j = Journal::new(
        movim_setup::core::plan::Kind::Upgrade,
        Side {
            movim: FROM.to_owned(),
            images: from.images.clone(),
        },
        Side {
            movim: TO.to_owned(),
            images: to_images,
        },
        Files {
            main: read("compose.yaml"),
            answers: read("movim-setup.yaml"),
            lock: read("movim-setup.lock"),
        },
        "2026-12-01T09:00:00Z",
        1,
    );
    j.done = done.to_vec();
    j.current = current;
    j.save(dir).unwrap_or_else(|e| panic!("{e}"));
    j
}

#[tokio::test]
async fn a_journal_holding_nothing_past_the_prepull_is_no_interrupted_upgrade() {
    use movim_setup::core::plan::Step;
    let log = Log::default();
    let dir = installed_dir(&log);

    // `rollback`: nothing to undo; the journal is removed, nothing stopped or restored.
    left_journal(dir.path(), &[Step::Prepull], None);
    let status = run(dir.path(), &log, &["rollback"]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    assert!(!log.has("stop") && !log.has("restore"), "{:?}", log.calls());
    assert_eq!(lock(dir.path()).movim, FROM);

    // `upgrade --resume`: nothing to resume, naming the upgrade to run instead.
    left_journal(dir.path(), &[], Some(Step::Prepull));
    let failure = run(dir.path(), &log, &["upgrade", "--resume"])
        .await
        .expect_err("nothing was under way");
    assert_eq!(failure.status, ExitStatus::CouldNotRun, "{failure}");
    assert!(
        failure
            .next
            .iter()
            .any(|n| n.contains(&format!("--to {TO}"))),
        "{failure}"
    );
    assert!(!dir.path().join(JOURNAL_FILE).exists());

    // `doctor`: a warning that names the file and who removes it, not an interrupted upgrade.
    left_journal(dir.path(), &[Step::Prepull], None);
    let report = doctor(dir.path(), &log).await;
    assert_eq!(severity_of(&report, "upgrade.journal"), Severity::Warn);
    assert!(
        dir.path().join(JOURNAL_FILE).exists(),
        "doctor changes nothing"
    );

    // A re-run of `init`: not refused; the journal is removed.
    let status = run(dir.path(), &log, &["init", "--yes"]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert!(!dir.path().join(JOURNAL_FILE).exists());

    // `upgrade`: runs as if there were none.
    left_journal(dir.path(), &[Step::Prepull], None);
    let status = run(dir.path(), &log, &["upgrade", "--yes", "--to", TO]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert_eq!(lock(dir.path()).movim, TO);
}

#[tokio::test]
async fn resume_checks_the_health_and_the_target_again_before_going_on() {
    use movim_setup::core::plan::Step;
    let log = Log::default();
    let dir = installed_dir(&log);
    left_journal(dir.path(), &[Step::Prepull, Step::Stop], Some(Step::Backup));
    log.state().stopped = ["web", "fpm", "daemon", "postgres"]
        .map(str::to_owned)
        .to_vec();

    let refused = run(dir.path(), &log, &["upgrade", "--resume"])
        .await
        .expect_err("the database is down");
    assert!(refused.what.contains("postgres is exited"), "{refused}");
    assert!(
        refused
            .next
            .iter()
            .any(|n| n.contains("--resume") && n.contains("--force")),
        "{refused}"
    );
    assert!(!log.has("dump") && !log.has("pull"), "{:?}", log.calls());
    assert!(
        dir.path().join(JOURNAL_FILE).exists(),
        "the journal is kept"
    );

    // The lock names neither side of the journal: the deployment changed since.
    let text = std::fs::read_to_string(dir.path().join("movim-setup.lock"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("movim-setup.lock"),
        text.replacen(&format!("movim: {FROM}"), "movim: v0.28.0", 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    log.state().stopped = ["web", "fpm", "daemon"].map(str::to_owned).to_vec();
    let refused = run(dir.path(), &log, &["upgrade", "--resume"])
        .await
        .expect_err("the lock moved");
    assert!(refused.what.contains("changed since"), "{refused}");
    std::fs::write(dir.path().join("movim-setup.lock"), text).unwrap_or_else(|e| panic!("{e}"));

    // Healthy again: the target's images are checked (pulled by digest), then it goes on.
    let status = run(dir.path(), &log, &["upgrade", "--resume"]).await;
    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    log.assert_in_order(&["pull", "dump"]);
    assert_eq!(lock(dir.path()).movim, TO);
}

#[tokio::test]
async fn rollback_after_a_crash_past_start_keeps_the_served_database_before_restoring() {
    use movim_setup::core::plan::Step;
    let log = Log::default();
    let dir = installed_dir(&log);
    let before = ["compose.yaml", "movim-setup.yaml", "movim-setup.lock"]
        .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap_or_else(|e| panic!("{e}")));
    log.state().probe_status = (3, "down  20250101000000  CreateSomething\n".to_owned());
    let up = run(dir.path(), &log, &["upgrade", "--yes", "--to", TO]).await;
    assert!(matches!(up, Ok(ExitStatus::Success)), "{up:?}");
    // What a kill right after `start` leaves: the new release served, the journal says so.
    let backup = lock(dir.path())
        .history
        .last()
        .and_then(|r| r.backup.clone());
    let after = ["compose.yaml", "movim-setup.yaml", "movim-setup.lock"]
        .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap_or_else(|e| panic!("{e}")));
    for (name, text) in ["compose.yaml", "movim-setup.yaml", "movim-setup.lock"]
        .iter()
        .zip(&before)
    {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut j = left_journal(
        dir.path(),
        &[
            Step::Prepull,
            Step::Stop,
            Step::Backup,
            Step::Write,
            Step::Migrate,
            Step::Start,
        ],
        None,
    );
    for (name, text) in ["compose.yaml", "movim-setup.yaml", "movim-setup.lock"]
        .iter()
        .zip(&after)
    {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    j.backup = backup;
    j.serving_since = Some("2026-12-01T09:30:00Z".to_owned());
    j.save(dir.path()).unwrap_or_else(|e| panic!("{e}"));

    let status = run(dir.path(), &log, &["rollback"]).await;

    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    log.assert_in_order(&[
        "dump backups/db-fake-v0.30.0.dump",
        "restore backups/db-fake-v0.29.2.dump",
    ]);
    assert!(dir.path().join("backups/db-fake-v0.30.0.dump").is_file());
    assert_eq!(log.state().running.as_deref(), Some("0.29.2"));
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn a_deployment_directory_others_can_write_to_is_refused_before_anything_changes() {
    use std::os::unix::fs::PermissionsExt as _;
    let log = Log::default();

    // An installed deployment made writable by everyone: upgrade and rollback refuse, naming the
    // chmod that fixes it; nothing is stopped or written.
    let dir = installed_dir(&log);
    let before =
        std::fs::read(dir.path().join("movim-setup.lock")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|e| panic!("{e}"));
    for args in [
        &["upgrade", "--yes", "--to", TO][..],
        &["rollback", "--yes"],
    ] {
        let failure = run(dir.path(), &log, args).await.expect_err("refused");
        assert_eq!(failure.status, ExitStatus::CouldNotRun, "{failure}");
        assert!(
            failure
                .next
                .iter()
                .any(|n| n == &format!("chmod go-w {}", dir.path().display())),
            "{failure}"
        );
    }
    assert!(!log.has("stop") && !log.has("pull"), "{:?}", log.calls());
    // Doctor says so, with the same fix.
    let report = doctor(dir.path(), &log).await;
    assert_eq!(severity_of(&report, "files.trust"), Severity::Error);
    assert_eq!(
        std::fs::read(dir.path().join("movim-setup.lock")).unwrap_or_else(|e| panic!("{e}")),
        before
    );

    // A new deployment under a directory another user owns (root installing into a user's home):
    // init refuses and creates nothing.
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::chown(home.path(), Some(4242), Some(4242)).unwrap_or_else(|e| panic!("{e}"));
    let target = home.path().join("movim");
    let port = free_port().to_string();
    let failure = run(&target, &log, &init_args(&port))
        .await
        .expect_err("refused");
    assert_eq!(failure.status, ExitStatus::CouldNotRun, "{failure}");
    assert!(failure.what.contains("uid 4242"), "{failure}");
    assert!(!target.exists(), "nothing may be created");
}

// ------------------------------------------------------------------------------------------
// Signals: a fake call raises the context's cancel, as SIGINT or SIGTERM would mid-call.

/// `movim-setup <args> --dir <dir>` on the fakes, `signal` arriving during the call `during`.
async fn run_signalled(
    dir: &Path,
    log: &Log,
    args: &[&str],
    during: &str,
    signal: Signal,
) -> Result<ExitStatus, Failure> {
    log.state().signal_during = Some((during.to_owned(), signal));
    run(dir, log, args).await
}

#[tokio::test]
async fn a_ctrl_c_while_movim_stops_finishes_the_stop_then_rolls_back_and_exits_130() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let outcome = run_signalled(
        dir.path(),
        &log,
        &["upgrade", "--yes", "--to", TO],
        "stop_movim",
        Signal::Interrupt,
    )
    .await;

    let failure = outcome.expect_err("interrupted");
    assert_eq!(failure.status, ExitStatus::Interrupted(130), "{failure}");
    assert!(failure.what.contains("SIGINT"), "{failure}");
    assert!(
        failure.details.iter().any(|d| d.starts_with("rolled back")),
        "{failure}"
    );
    // The stop was finished, nothing after it ran, and the old release serves again.
    log.assert_in_order(&["stop_movim", "up fpm,daemon (0.29.2)", "up web (0.29.2)"]);
    assert!(
        !log.has("php vendor/bin/phinx migrate"),
        "{:?}",
        log.calls()
    );
    assert_eq!(log.state().running.as_deref(), Some("0.29.2"));
    assert_eq!(lock(dir.path()).movim, FROM);
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn a_sigterm_during_the_migration_finishes_it_then_restores_the_database_and_exits_143() {
    let log = Log::default();
    let dir = installed_dir(&log);

    let outcome = run_signalled(
        dir.path(),
        &log,
        &["upgrade", "--yes", "--to", TO],
        "php vendor/bin/phinx migrate",
        Signal::Terminate,
    )
    .await;

    let failure = outcome.expect_err("terminated");
    assert_eq!(failure.status, ExitStatus::Interrupted(143), "{failure}");
    log.assert_in_order(&[
        "php vendor/bin/phinx migrate (0.30.0)",
        "restore",
        "up web (0.29.2)",
    ]);
    assert!(!log.has("up web (0.30.0)"), "{:?}", log.calls());
    assert_eq!(lock(dir.path()).movim, FROM);
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn a_signal_during_the_prepull_or_the_probe_stops_nothing_and_leaves_no_journal() {
    for (during, signal, code) in [
        ("pull", Signal::Interrupt, 130),
        ("probe", Signal::Terminate, 143),
    ] {
        let log = Log::default();
        let dir = installed_dir(&log);

        let outcome = run_signalled(
            dir.path(),
            &log,
            &["upgrade", "--yes", "--to", TO],
            during,
            signal,
        )
        .await;

        let failure = outcome.expect_err("interrupted");
        assert_eq!(failure.status, ExitStatus::Interrupted(code), "{failure}");
        assert!(
            failure
                .details
                .iter()
                .any(|d| d == "nothing was stopped or changed"),
            "{failure}"
        );
        assert!(!log.has("stop"), "{during}: {:?}", log.calls());
        assert!(!dir.path().join(JOURNAL_FILE).exists(), "{during}");
        assert_eq!(lock(dir.path()).movim, FROM);
    }
}

#[tokio::test]
async fn init_interrupted_before_its_write_writes_nothing_and_exits_130() {
    let log = Log::default();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("movim");
    let port = free_port().to_string();

    let outcome = run_signalled(&dir, &log, &init_args(&port), "pull", Signal::Interrupt).await;

    let failure = outcome.expect_err("interrupted");
    assert_eq!(failure.status, ExitStatus::Interrupted(130), "{failure}");
    assert!(!dir.join("movim-setup.lock").exists());
    assert!(!dir.join("compose.yaml").exists());
    assert!(!log.has("up "), "{:?}", log.calls());
}

#[tokio::test]
async fn a_failed_start_shows_the_services_last_log_lines_with_every_secret_redacted() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().fail_start_of = Some("0.30.0".to_owned());
    log.state().logs =
        Some("connecting as movim with password a-password\nthen failing\n".to_owned());

    let failure = run(dir.path(), &log, &["upgrade", "--yes", "--to", TO])
        .await
        .expect_err("the start fails");
    let shown = format!("{failure}\n{failure:?}");
    assert!(
        shown.contains("then failing"),
        "the log lines are shown: {shown}"
    );
    assert!(
        shown.contains("connecting as movim with password <redacted>"),
        "{shown}"
    );
    assert!(!shown.contains("a-password"), "{shown}");
}
