//! The upgrade and rollback plans as plain data, computed from what was observed, with one stable
//! text printout. Pure: no I/O, so every refusal and every printout is unit- and snapshot-tested
//! (`tests/plan.rs`), and `--dry-run` prints exactly what a real run would follow (after
//! docker/compose's `plan.go`).
//!
//! Also here because they are decisions, not effects: which steps a resumed run still has to do,
//! which release a rollback returns to and which dump it needs, which backups retention removes,
//! and what `phinx status` said.

use crate::core::deployment::MovimTag;
use crate::core::lockfile::{BackupRef, Release};
use crate::core::movim::{self, PhinxStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Extra room a backup needs beyond the database's own size estimate (the custom-format dump is
/// compressed, so `size × 1.2 + 64 MiB` is a comfortable upper bound).
pub const BACKUP_MARGIN_BYTES: u64 = 64 << 20;

/// One step of an upgrade or rollback. The journal records them by these names, and each has a
/// checkpoint `after-<name>` a test can kill the process at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Prepull,
    Stop,
    Backup,
    Write,
    Migrate,
    Restore,
    Start,
    Prove,
}

impl Step {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Prepull => "prepull",
            Self::Stop => "stop",
            Self::Backup => "backup",
            Self::Write => "write",
            Self::Migrate => "migrate",
            Self::Restore => "restore",
            Self::Start => "start",
            Self::Prove => "prove",
        }
    }

    /// The checkpoint reached when this step is done (`after-backup`).
    #[must_use]
    pub fn checkpoint(self) -> String {
        format!("after-{}", self.name())
    }
}

/// What the run does: move to a newer release (migrating), or back to a recorded one (restoring
/// the database when the older code cannot read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Upgrade,
    Rollback,
}

impl Kind {
    #[must_use]
    pub fn steps(self) -> &'static [Step] {
        match self {
            Self::Upgrade => &[
                Step::Prepull,
                Step::Stop,
                Step::Backup,
                Step::Write,
                Step::Migrate,
                Step::Start,
                Step::Prove,
            ],
            Self::Rollback => &[
                Step::Prepull,
                Step::Stop,
                Step::Backup,
                Step::Write,
                Step::Restore,
                Step::Start,
                Step::Prove,
            ],
        }
    }

    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade",
            Self::Rollback => "rollback",
        }
    }
}

/// The steps a resumed run still has to do, given those the journal records as done. A step that
/// was started but not recorded as done is done again: every step is idempotent.
#[must_use]
pub fn remaining(kind: Kind, done: &[Step]) -> Vec<Step> {
    kind.steps()
        .iter()
        .copied()
        .filter(|s| !done.contains(s))
        .collect()
}

/// What the target release's code says about the database (`phinx status` of its daemon image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Migrations {
    /// Not asked yet: the images are not pulled (`--dry-run`).
    Unknown,
    /// The code and the database agree.
    UpToDate,
    /// Migrations the code would apply (`<version> <name>`).
    Pending(Vec<String>),
    /// Applied migrations the code does not know: the database is newer than the code.
    Newer(Vec<String>),
}

/// What the target release's code says about the database, from its `phinx status`
/// ([`movim::phinx_status`]); an error when it could not tell.
pub fn parse_phinx_status(code: i32, output: &str) -> Result<Migrations, String> {
    match movim::phinx_status(code, output) {
        PhinxStatus::UpToDate => Ok(Migrations::UpToDate),
        PhinxStatus::Pending(rows) => Ok(Migrations::Pending(rows)),
        PhinxStatus::Newer(rows) => Ok(Migrations::Newer(rows)),
        PhinxStatus::Failed { code, tail } => Err(format!(
            "`phinx status` exited {code}: {}",
            tail.join(" / ").trim()
        )),
    }
}

/// Whether the stack serves now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy(String),
}

/// Everything the plan is computed from, read by the command beforehand.
#[derive(Debug, Clone)]
pub struct Observed {
    pub kind: Kind,
    pub project: String,
    pub current: MovimTag,
    /// Service → pinned image, as the lock records them now.
    pub current_images: BTreeMap<String, String>,
    pub target: MovimTag,
    pub target_images: BTreeMap<String, String>,
    pub health: Health,
    pub force: bool,
    /// Applied migrations (`phinxlog` rows).
    pub applied_migrations: Option<usize>,
    /// The target code's view of the database.
    pub migrations: Migrations,
    /// `pg_database_size`.
    pub db_bytes: u64,
    /// `SHOW server_version`, as the server says it.
    pub db_version: String,
    /// Its major release ([`crate::core::deployment::postgres_major`]): the `pg_dump` an external
    /// database is backed up with.
    pub db_major: Option<String>,
    /// Free bytes where `backups/` lives.
    pub free_bytes: u64,
    /// Rollback only: the dump taken when the deployment left the target release, if still kept.
    pub target_backup: Option<BackupRef>,
    /// Things the user should know that do not stop the run (hand edits that will be replaced, …).
    pub notes: Vec<String>,
}

/// One service's image, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub service: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Why the run stops before changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target runs already.
    NothingToDo,
    /// `upgrade` to an older release: that is `rollback`.
    Older,
    /// `rollback` to a newer release: that is `upgrade`.
    Newer,
    /// The target code does not know migrations the database has.
    DatabaseNewer(Vec<String>),
    /// A rollback needs the dump taken when leaving the target, and it is gone (pruned: the target
    /// is further back than `--keep-backups` releases, or removed by hand).
    NoBackup,
    Unhealthy(String),
    Disk {
        needed: u64,
        free: u64,
    },
}

impl Refusal {
    /// One line for the user.
    #[must_use]
    pub fn message(&self, p: &Plan) -> String {
        match self {
            Self::NothingToDo => format!("Movim {} runs already: nothing to do", p.to),
            Self::Older => format!(
                "{} is older than the running {}: going back is `rollback`",
                p.to, p.from
            ),
            Self::Newer => format!(
                "{} is newer than the running {}: going forward is `upgrade`",
                p.to, p.from
            ),
            Self::DatabaseNewer(m) => format!(
                "the database has {} migration(s) that {} does not know ({})",
                m.len(),
                p.to,
                m.join(", ")
            ),
            Self::NoBackup => format!(
                "the database has migrations {to} does not know, and the dump taken when leaving {to} is no longer kept: dumps are kept for going back --keep-backups releases, older ones are pruned",
                to = p.to
            ),
            Self::Unhealthy(why) => {
                format!("the stack is not healthy now ({why}); fix it first, or pass --force")
            }
            Self::Disk { needed, free } => format!(
                "the backup needs up to {} but only {} is free where backups/ lives",
                human(*needed),
                human(*free)
            ),
        }
    }
}

/// The plan: what will change, in which steps, or why nothing will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kind: Kind,
    pub project: String,
    pub from: MovimTag,
    pub to: MovimTag,
    pub images: Vec<ImageChange>,
    pub applied_migrations: Option<usize>,
    pub migrations: Migrations,
    pub db_bytes: u64,
    pub backup_needed: u64,
    pub free_bytes: u64,
    /// Rollback: the dump restored when the older code cannot read the database.
    pub restore: Option<BackupRef>,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub refusal: Option<Refusal>,
}

/// Upper bound of a dump's size.
#[must_use]
pub fn backup_needed(db_bytes: u64) -> u64 {
    db_bytes.saturating_mul(6) / 5 + BACKUP_MARGIN_BYTES
}

/// Computes the plan. Refusals come in the order a user would fix them.
#[must_use]
pub fn compute(o: &Observed) -> Plan {
    let services: BTreeSet<&String> = o
        .current_images
        .keys()
        .chain(o.target_images.keys())
        .collect();
    let images = services
        .into_iter()
        .map(|s| ImageChange {
            service: s.clone(),
            from: o.current_images.get(s).cloned(),
            to: o.target_images.get(s).cloned(),
        })
        .collect();
    let needed = backup_needed(o.db_bytes);
    let ordering = o.target.numbers().cmp(&o.current.numbers());
    let refusal = if o.current_images == o.target_images && o.current == o.target {
        Some(Refusal::NothingToDo)
    } else if o.kind == Kind::Upgrade && ordering.is_lt() {
        Some(Refusal::Older)
    } else if o.kind == Kind::Rollback && ordering.is_gt() {
        Some(Refusal::Newer)
    } else if let (Kind::Upgrade, Migrations::Newer(m)) = (o.kind, &o.migrations) {
        Some(Refusal::DatabaseNewer(m.clone()))
    } else if o.kind == Kind::Rollback
        && matches!(o.migrations, Migrations::Newer(_))
        && o.target_backup.is_none()
    {
        Some(Refusal::NoBackup)
    } else if let (Health::Unhealthy(why), false) = (&o.health, o.force) {
        Some(Refusal::Unhealthy(why.clone()))
    } else if o.free_bytes < needed {
        Some(Refusal::Disk {
            needed,
            free: o.free_bytes,
        })
    } else {
        None
    };
    let restore = match (o.kind, &o.migrations) {
        (Kind::Rollback, Migrations::Newer(_)) => o.target_backup.clone(),
        _ => None,
    };
    Plan {
        kind: o.kind,
        project: o.project.clone(),
        from: o.current.clone(),
        to: o.target.clone(),
        images,
        applied_migrations: o.applied_migrations,
        migrations: o.migrations.clone(),
        db_bytes: o.db_bytes,
        backup_needed: needed,
        free_bytes: o.free_bytes,
        restore,
        steps: o.kind.steps().to_vec(),
        notes: o.notes.clone(),
        refusal,
    }
}

/// `movim-daemon:v0.30.0@sha256:32d0e8e72075` — the last path part, the digest cut to 12 hex.
fn short_image(pinned: &str) -> String {
    let last = pinned.rsplit('/').next().unwrap_or(pinned);
    match last.split_once("@sha256:") {
        Some((name, hex)) => format!("{name}@sha256:{}", hex.chars().take(12).collect::<String>()),
        None => last.to_owned(),
    }
}

/// `7.6 MiB`
#[must_use]
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit < UNITS.len() - 1 && u128::from(bytes) >= 1u128 << (10 * (unit + 1)) {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let div = 1u128 << (10 * unit);
    let tenths = (u128::from(bytes) * 10 + div / 2) / div;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

impl Plan {
    /// What one step does, in the words the printout and the progress lines use.
    #[must_use]
    pub fn describe(&self, step: Step) -> String {
        match step {
            Step::Prepull => format!(
                "pull the images of {} by digest while {} keeps serving",
                self.to, self.from
            ),
            Step::Stop => "stop web, daemon and fpm (downtime starts)".to_owned(),
            Step::Backup => format!(
                "back up the database (pg_dump) to backups/db-<time>-{}.dump, with its size and sha256",
                self.from
            ),
            Step::Write => format!(
                "write compose.yaml, movim-setup.yaml and movim-setup.lock for {} (previous ones kept in backups/files/)",
                self.to
            ),
            Step::Migrate => "run the database migrations (one-shot daemon container)".to_owned(),
            Step::Restore => match &self.restore {
                Some(b) => format!(
                    "restore the database from {} (taken when leaving {}; what was written since stays only in the backup of step 3)",
                    b.file, self.to
                ),
                None => format!("keep the database ({} reads it as it is)", self.to),
            },
            Step::Start => "start fpm and daemon, then web".to_owned(),
            Step::Prove => format!(
                "prove it: a websocket handshake through web, and /infos reporting {}",
                self.to.version()
            ),
        }
    }

    /// The stable printout (snapshot-tested): no times, no absolute paths.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} plan for project {}: Movim {} -> {}",
            self.kind.verb(),
            self.project,
            self.from,
            self.to
        );
        let _ = writeln!(out, "images:");
        let width = self
            .images
            .iter()
            .map(|i| i.service.len())
            .max()
            .unwrap_or(0);
        for i in &self.images {
            let line = match (&i.from, &i.to) {
                (Some(a), Some(b)) if a == b => format!("{} (unchanged)", short_image(a)),
                (Some(a), Some(b)) => format!("{} -> {}", short_image(a), short_image(b)),
                (None, Some(b)) => format!("(new) {}", short_image(b)),
                (Some(a), None) => format!("{} (removed)", short_image(a)),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "  {:width$}  {line}", i.service);
        }
        let applied = self
            .applied_migrations
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let migrations = match &self.migrations {
            Migrations::Unknown => {
                "unknown until the images are pulled (a real run asks the new daemon image)"
                    .to_owned()
            }
            Migrations::UpToDate => format!("none pending for {}", self.to),
            Migrations::Pending(m) => {
                format!("{} pending in {}: {}", m.len(), self.to, m.join(", "))
            }
            Migrations::Newer(m) => format!(
                "the database has {} migration(s) {} does not know: {}",
                m.len(),
                self.to,
                m.join(", ")
            ),
        };
        let _ = writeln!(out, "migrations: {applied} applied; {migrations}");
        let _ = writeln!(
            out,
            "database: {}; backup needs up to {}, {} free",
            human(self.db_bytes),
            human(self.backup_needed),
            human(self.free_bytes)
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if let Some(r) = &self.refusal {
            let _ = writeln!(out, "refused: {}", r.message(self));
            return out;
        }
        let _ = writeln!(out, "steps:");
        for (n, step) in self.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {:8} {}",
                n + 1,
                step.name(),
                self.describe(*step)
            );
        }
        let _ = writeln!(
            out,
            "on failure from `stop` on: stop {to}, restore the database if it was changed, put back {from}'s files, start {from} and prove it healthy",
            to = self.to,
            from = self.from
        );
        out
    }
}

/// The newest release among a repository's `tags`: a plain `vX.Y[.Z]` tag (a suffixed one such
/// as `v0.31.0-rc1` is a pre-release or a build of its own and is never picked by itself), by
/// version; of two spellings of one version (`v0.30`, `v0.30.0`) the longer.
#[must_use]
pub fn newest_release(tags: &[String]) -> Option<MovimTag> {
    tags.iter()
        .filter_map(|t| MovimTag::parse(t).ok())
        .filter(|t| !t.as_str().contains('-'))
        .max_by_key(|t| (t.numbers(), t.as_str().len()))
}

/// The release `rollback` returns to: the last one recorded with tag `to` before the current one,
/// or the one before the current one. Returns its index in the history.
pub fn rollback_target(history: &[Release], to: Option<&str>) -> Result<usize, String> {
    let Some(current) = history.len().checked_sub(1) else {
        return Err("the lock records no release history".to_owned());
    };
    match to {
        None => current.checked_sub(1).ok_or_else(|| {
            format!(
                "the lock records only the current release ({}); there is nothing to go back to",
                history[current].movim
            )
        }),
        Some(tag) => {
            let wanted = MovimTag::parse(tag).map_or_else(|_| tag.to_owned(), |t| t.to_string());
            history[..current]
                .iter()
                .rposition(|r| r.movim == wanted)
                .ok_or_else(|| {
                    let known: Vec<&str> = history[..current]
                        .iter()
                        .map(|r| r.movim.as_str())
                        .collect();
                    format!(
                        "no release {wanted} is recorded before the current one (recorded: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )
                })
        }
    }
}

/// The dump that brings the database back to release `index`: the one taken when the deployment
/// left it (recorded on the next release).
#[must_use]
pub fn backup_leaving(history: &[Release], index: usize) -> Option<&BackupRef> {
    history.get(index + 1).and_then(|r| r.backup.as_ref())
}

/// Dumps retention removes: every `db-*.dump` except the `keep` newest (names sort by time) and the
/// protected ones (those for going back `keep` releases, or an unfinished run's). So `backups/`
/// stays bounded, and a release further back has no dump: a rollback to it is refused when its
/// code cannot read the database as it is ([`Refusal::NoBackup`]).
#[must_use]
pub fn prune(files: &[String], protected: &BTreeSet<String>, keep: usize) -> Vec<String> {
    let mut sorted: Vec<&String> = files.iter().collect();
    sorted.sort();
    let newest: BTreeSet<&String> = sorted.iter().rev().take(keep).copied().collect();
    sorted
        .into_iter()
        .filter(|f| !newest.contains(f) && !protected.contains(*f))
        .cloned()
        .collect()
}

/// The dumps retention must keep: those recorded on the last `keep` (at least one) releases of
/// the history, which are the dumps taken when leaving each of the `keep` releases before the
/// current one ([`backup_leaving`]) — what going back that far restores.
#[must_use]
pub fn protected_backups(history: &[Release], keep: usize) -> BTreeSet<String> {
    history
        .iter()
        .rev()
        .take(keep.max(1))
        .filter_map(|r| r.backup.as_ref().map(|b| b.file.clone()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    #[test]
    fn a_hand_edited_digest_that_is_not_ascii_is_shown_cut_without_panicking() {
        assert_eq!(
            short_image("ghcr.io/movim/movim-daemon:v0.30.0@sha256:32d0e8e72075ab"),
            "movim-daemon:v0.30.0@sha256:32d0e8e72075"
        );
        assert_eq!(
            short_image("r/movim-web:v1@sha256:0123456789aé0123"),
            "movim-web:v1@sha256:0123456789aé"
        );
    }

    #[test]
    fn the_newest_release_is_the_highest_plain_version_tag() {
        let tags: Vec<String> = [
            "latest",
            "v0.29.2",
            "v0.30.0",
            "v0.30.1-daemon-exits",
            "v0.31.0-rc1",
            "0.9.9",
            "v0.30",
            "main",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            newest_release(&tags).map(|t| t.to_string()).as_deref(),
            Some("v0.30.0")
        );
        assert_eq!(newest_release(&["latest".to_owned()]), None);
        assert_eq!(
            newest_release(&["v0.9.10".to_owned(), "v0.10.1".to_owned()])
                .map(|t| t.to_string())
                .as_deref(),
            Some("v0.10.1"),
            "versions compare as numbers, not text"
        );
    }

    #[test]
    fn phinx_status_is_read_by_exit_code_and_rows() {
        let out = " Status  [Migration ID]  Started              Finished             Migration Name \n\
                   ------\n\
                        up  20180314212906  2025-01-01 00:00:00  2025-01-01 00:00:00  EnablePgcrypto\n\
                      down  20250415093000                                            AddThreadToMessagesTable\n\n\
                   5 applied, 1 pending, 0 missing\n";
        assert_eq!(
            parse_phinx_status(3, out),
            Ok(Migrations::Pending(vec![
                "20250415093000 AddThreadToMessagesTable".into()
            ]))
        );
        let newer = "     up  20250415093000  2025-01-01 00:00:00  2025-01-01 00:00:00  ** MISSING MIGRATION **\n";
        assert_eq!(
            parse_phinx_status(2, newer),
            Ok(Migrations::Newer(vec!["20250415093000".into()]))
        );
        assert_eq!(parse_phinx_status(0, ""), Ok(Migrations::UpToDate));
        assert!(
            parse_phinx_status(1, "could not connect")
                .unwrap_err()
                .contains("could not connect")
        );
    }

    #[test]
    fn resuming_redoes_the_step_that_was_started() {
        assert_eq!(
            remaining(Kind::Upgrade, &[Step::Prepull, Step::Stop]),
            [
                Step::Backup,
                Step::Write,
                Step::Migrate,
                Step::Start,
                Step::Prove
            ]
        );
        assert_eq!(Step::Backup.checkpoint(), "after-backup");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(7_969_283), "7.6 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    fn release(movim: &str, backup: Option<&str>) -> Release {
        Release {
            movim: movim.into(),
            images: BTreeMap::new(),
            at: "t".into(),
            backup: backup.map(|f| BackupRef {
                file: f.into(),
                bytes: 1,
                sha256: "x".into(),
                tool: None,
            }),
            outcome: "upgraded".into(),
        }
    }

    #[test]
    fn rollback_goes_to_the_previous_release_or_the_named_one() {
        let h = vec![
            release("v0.29.2", None),
            release("v0.30.0", Some("backups/a.dump")),
            release("v0.30.1", Some("backups/b.dump")),
        ];
        assert_eq!(rollback_target(&h, None), Ok(1));
        assert_eq!(rollback_target(&h, Some("0.29.2")), Ok(0));
        assert_eq!(
            backup_leaving(&h, 0).map(|b| b.file.as_str()),
            Some("backups/a.dump")
        );
        assert!(
            rollback_target(&h, Some("v0.30.1"))
                .unwrap_err()
                .contains("recorded: v0.29.2, v0.30.0")
        );
        assert!(rollback_target(&h[..1], None).is_err());
    }

    /// Four upgrades (`v0` → `v4`), each recording the dump taken when leaving the one before.
    fn four_upgrades() -> Vec<Release> {
        vec![
            release("v0.29.0", None),
            release("v0.30.0", Some("backups/db-1-v0.29.0.dump")),
            release("v0.31.0", Some("backups/db-2-v0.30.0.dump")),
            release("v0.32.0", Some("backups/db-3-v0.31.0.dump")),
            release("v0.33.0", Some("backups/db-4-v0.32.0.dump")),
        ]
    }

    #[test]
    fn retention_keeps_the_dumps_for_going_back_keep_releases_and_no_further() {
        let h = four_upgrades();
        let files: Vec<String> = h
            .iter()
            .filter_map(|r| r.backup.as_ref().map(|b| b.file.clone()))
            .collect();
        let pruned = prune(&files, &protected_backups(&h, 3), 3);
        assert_eq!(
            pruned,
            ["backups/db-1-v0.29.0.dump"],
            "backups/ stays bounded"
        );
        for back in 1..=3 {
            let index = h.len() - 1 - back;
            let dump = backup_leaving(&h, index).map(|b| b.file.clone());
            assert!(
                dump.is_some_and(|f| !pruned.contains(&f)),
                "going back {back} release(s), to {}, finds its dump",
                h[index].movim
            );
        }
        assert_eq!(
            prune(&files, &protected_backups(&h, 0), 0),
            &files[..3],
            "at least the dump for going back one release is kept"
        );
    }

    #[test]
    fn a_rollback_past_the_kept_dumps_is_refused_naming_keep_backups() {
        let h = four_upgrades();
        let target = rollback_target(&h, Some("v0.29.0")).unwrap();
        let mut images = BTreeMap::new();
        images.insert(
            "daemon".to_owned(),
            "movim-daemon:v0.29.0@sha256:1".to_owned(),
        );
        let o = Observed {
            kind: Kind::Rollback,
            project: "movim".into(),
            current: MovimTag::parse("v0.33.0").unwrap(),
            current_images: BTreeMap::new(),
            target: MovimTag::parse(&h[target].movim).unwrap(),
            target_images: images,
            health: Health::Healthy,
            force: true,
            applied_migrations: Some(9),
            migrations: Migrations::Newer(vec!["20250101000000".into()]),
            db_bytes: 1,
            db_version: "15.8".into(),
            db_major: Some("15".into()),
            free_bytes: u64::MAX,
            // The dump the lock records is gone: retention pruned it.
            target_backup: None,
            notes: Vec::new(),
        };
        let p = compute(&o);
        assert_eq!(p.refusal, Some(Refusal::NoBackup));
        let said = p.render();
        assert!(said.contains("refused:"), "{said}");
        assert!(!said.contains("steps:"), "nothing is run: {said}");
        assert!(
            said.contains("no longer kept") && said.contains("--keep-backups"),
            "names why and the setting: {said}"
        );
    }

    #[test]
    fn retention_keeps_the_newest_and_the_needed() {
        let files: Vec<String> = ["db-1", "db-2", "db-3", "db-4", "db-5"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let protected = BTreeSet::from(["db-1".to_owned()]);
        assert_eq!(prune(&files, &protected, 3), ["db-2"]);
        assert!(prune(&files, &BTreeSet::new(), 9).is_empty());
    }
}
