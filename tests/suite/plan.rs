//! The upgrade and rollback plans are data with a stable printout: these
//! snapshots are the printout a user reads before anything is stopped, for every kind of plan
//! and every refusal.

use movim_setup::core::deployment::MovimTag;
use movim_setup::core::lockfile::BackupRef;
use movim_setup::core::plan::{self, Health, Kind, Migrations, Observed, Refusal};
use std::collections::BTreeMap;

const D: &str = "sha256:";

fn images(tag: &str, movim_hex: char) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in ["daemon", "fpm", "web"] {
        out.insert(
            c.to_owned(),
            format!(
                "ghcr.io/nadiamoe/movim-{c}:{tag}@{D}{}",
                movim_hex.to_string().repeat(64)
            ),
        );
    }
    out.insert(
        "postgres".to_owned(),
        format!("docker.io/library/postgres:15@{D}{}", "p".repeat(64)),
    );
    out
}

fn observed() -> Observed {
    Observed {
        kind: Kind::Upgrade,
        project: "movim".into(),
        current: MovimTag::parse("v0.29.2").expect("tag"),
        current_images: images("v0.29.2", 'a'),
        target: MovimTag::parse("v0.30.0").expect("tag"),
        target_images: images("v0.30.0", 'b'),
        health: Health::Healthy,
        force: false,
        applied_migrations: Some(5),
        migrations: Migrations::Pending(vec!["20250415093000 AddThreadToMessagesTable".into()]),
        db_bytes: 104_857_600,
        db_version: "15.8".into(),
        db_major: Some("15".into()),
        free_bytes: 50 << 30,
        target_backup: None,
        notes: vec![],
    }
}

#[test]
fn an_upgrade_with_a_pending_migration() {
    let p = plan::compute(&observed());
    assert_eq!(p.refusal, None);
    insta::assert_snapshot!("upgrade_pending_migration", p.render());
}

#[test]
fn a_dry_run_does_not_know_the_migrations_yet() {
    let mut o = observed();
    o.migrations = Migrations::Unknown;
    insta::assert_snapshot!("upgrade_dry_run", plan::compute(&o).render());
}

#[test]
fn an_older_target_is_a_rollback() {
    let mut o = observed();
    std::mem::swap(&mut o.current, &mut o.target);
    std::mem::swap(&mut o.current_images, &mut o.target_images);
    let p = plan::compute(&o);
    assert_eq!(p.refusal, Some(Refusal::Older));
    insta::assert_snapshot!("refused_older", p.render());
}

#[test]
fn a_disk_that_cannot_hold_the_backup_is_refused() {
    let mut o = observed();
    o.free_bytes = 1 << 20;
    let p = plan::compute(&o);
    assert!(matches!(p.refusal, Some(Refusal::Disk { .. })));
    insta::assert_snapshot!("refused_disk", p.render());
}

#[test]
fn an_unhealthy_stack_is_refused_unless_forced() {
    let mut o = observed();
    o.health = Health::Unhealthy("daemon is restarting".into());
    let p = plan::compute(&o);
    insta::assert_snapshot!("refused_unhealthy", p.render());
    o.force = true;
    assert_eq!(plan::compute(&o).refusal, None);
}

#[test]
fn a_database_newer_than_the_target_is_refused() {
    let mut o = observed();
    o.migrations = Migrations::Newer(vec!["20250601100000".into()]);
    insta::assert_snapshot!("refused_database_newer", plan::compute(&o).render());
}

#[test]
fn the_same_release_is_nothing_to_do() {
    let mut o = observed();
    o.target = o.current.clone();
    o.target_images = o.current_images.clone();
    assert_eq!(plan::compute(&o).refusal, Some(Refusal::NothingToDo));
}

#[test]
fn a_rollback_restores_the_dump_taken_when_leaving_its_target() {
    let mut o = observed();
    o.kind = Kind::Rollback;
    std::mem::swap(&mut o.current, &mut o.target);
    std::mem::swap(&mut o.current_images, &mut o.target_images);
    o.applied_migrations = Some(6);
    o.migrations = Migrations::Newer(vec!["20250415093000".into()]);
    o.health = Health::Unhealthy("daemon is restarting".into());
    o.force = true;
    o.target_backup = Some(BackupRef {
        file: "backups/db-2026-01-01T000000Z-v0.29.2.dump".into(),
        bytes: 20_000,
        sha256: "c".repeat(64),
        tool: None,
    });
    let p = plan::compute(&o);
    assert_eq!(p.refusal, None);
    insta::assert_snapshot!("rollback_restore", p.render());
    o.target_backup = None;
    assert_eq!(plan::compute(&o).refusal, Some(Refusal::NoBackup));
}
