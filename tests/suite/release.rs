//! The release transition (`upgrade` and `rollback`) on fakes: every step, refusal and undo runs
//! against a real deployment directory and fake adapters (`support/fakes.rs`), in milliseconds,
//! with no engine. What reaches the world is read from the fakes' shared log.

use crate::support::fakes;

use fakes::{FROM, Log, TO, context, installed_dir, tools};
use movim_setup::adapters::store::Saved;
use movim_setup::core::deployment::MovimTag;
use movim_setup::core::journal::JOURNAL_FILE;
use movim_setup::core::lockfile::Lock;
use movim_setup::core::plan::Kind;
use movim_setup::error::{ExitStatus, Failure};
use movim_setup::release::observe::{Target, observe};
use movim_setup::release::pin::pin_target;
use movim_setup::release::preflight::{installed, password};
use movim_setup::release::run::plan_and_execute;
use std::path::Path;

/// `upgrade --to TO` as the command runs it, past the argument handling: pin, observe, plan,
/// execute.
async fn upgrade(dir: &Path, log: &Log, force: bool) -> Result<ExitStatus, Failure> {
    let ctx = context(dir, log);
    let tools = tools(dir, log);
    let saved = Saved::load(dir)?;
    let (d, lock) = installed(&ctx, &saved)?;
    let password = password(&ctx, &saved)?;
    let mut to = d.clone();
    to.version = MovimTag::parse(TO).unwrap_or_else(|e| panic!("{e}"));
    let images = pin_target(&ctx, &to, &lock).await?;
    let observed = observe(
        &ctx,
        &tools,
        Target {
            kind: Kind::Upgrade,
            d: &d,
            lock: &lock,
            password: &password,
            to,
            images,
            force,
            backup: None,
        },
    )
    .await?;
    plan_and_execute(&ctx, &tools, &d, &password, observed, 3).await
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn runs(dir: &Path, tag: &str) -> bool {
    read(dir, "compose.yaml").contains(&format!("movim-daemon:{tag}@"))
}

#[tokio::test]
async fn a_refused_plan_stops_nothing() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let before = read(dir.path(), "compose.yaml");
    log.state().stopped = vec!["daemon".to_owned()];

    let failure = upgrade(dir.path(), &log, false)
        .await
        .expect_err("an unhealthy stack is not upgraded without --force");

    assert!(failure.what.contains("not healthy"), "{failure}");
    assert!(
        failure
            .details
            .iter()
            .any(|d| d == "nothing was stopped or changed"),
        "{failure}"
    );
    assert!(
        failure.next.iter().any(|n| n.contains("--force")),
        "{failure}"
    );
    assert!(!log.has("stop_movim"), "{:?}", log.calls());
    assert!(!log.has("pull"), "{:?}", log.calls());
    assert!(!log.has("dump"), "{:?}", log.calls());
    assert_eq!(read(dir.path(), "compose.yaml"), before);
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn an_upgrade_ends_healthy_on_the_new_release_with_the_old_database_kept() {
    let log = Log::default();
    let dir = installed_dir(&log);
    log.state().probe_status = (3, "down  20250101000000  CreateSomething\n".to_owned());

    let status = upgrade(dir.path(), &log, false).await;

    assert!(matches!(status, Ok(ExitStatus::Success)), "{status:?}");
    assert!(runs(dir.path(), TO));
    let lock = Lock::parse(&read(dir.path(), "movim-setup.lock")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lock.movim, TO);
    let last = lock.history.last().unwrap_or_else(|| panic!("no history"));
    assert_eq!(last.outcome, "upgraded");
    assert_eq!(
        last.backup.as_ref().map(|b| b.file.as_str()),
        Some("backups/db-fake-v0.29.2.dump")
    );
    assert_eq!(log.state().running.as_deref(), Some("0.30.0"));
    // Pulled while the old release served, then stopped, dumped, migrated, started.
    log.assert_in_order(&[
        "pull",
        "stop_movim",
        "dump",
        "php vendor/bin/phinx migrate (0.30.0)",
        "up fpm,daemon (0.30.0)",
    ]);
    assert!(!log.has("restore"), "{:?}", log.calls());
    assert!(!dir.path().join(JOURNAL_FILE).exists());
}

#[tokio::test]
async fn a_failing_start_rolls_back_and_restores_the_dump() {
    let log = Log::default();
    let dir = installed_dir(&log);
    let before = read(dir.path(), "compose.yaml");
    log.state().fail_start_of = Some("0.30.0".to_owned());
    log.state().probe_status = (3, "down  20250101000000  CreateSomething\n".to_owned());

    let failure = upgrade(dir.path(), &log, false)
        .await
        .expect_err("a release that does not start is rolled back");

    assert!(
        failure
            .what
            .starts_with("upgrade to v0.30.0 failed at step `start`"),
        "{failure}"
    );
    assert!(
        failure
            .details
            .iter()
            .any(|d| d.starts_with("rolled back: Movim v0.29.2 runs again")),
        "{failure}"
    );
    assert!(
        log.has("restore backups/db-fake-v0.29.2.dump"),
        "{:?}",
        log.calls()
    );
    assert_eq!(read(dir.path(), "compose.yaml"), before);
    let lock = Lock::parse(&read(dir.path(), "movim-setup.lock")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lock.movim, FROM);
    assert_eq!(log.state().running.as_deref(), Some("0.29.2"));
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    // The dump the rollback restored is kept.
    assert!(dir.path().join("backups/db-fake-v0.29.2.dump").is_file());
}
