//! `host.disk` and `upgrade.*`: free space, an interrupted upgrade, a run holding the lock.

use crate::core::journal::{JOURNAL_FILE, Journal, RUN_LOCK_FILE};
use crate::core::trust::Untrusted;
use crate::doctor::DISK_ERROR_BYTES;
use crate::doctor::DISK_WARN_BYTES;
use crate::doctor::facts::LeftJournal;
use crate::doctor::report::{Area, Finding};
use std::path::Path;
use std::time::Duration;

/// `host.disk`: the free space in the deployment directory (`free`, or why it is not known).
pub fn check_disk(dir: &Path, free: &Result<u64, String>) -> Finding {
    match free {
        Ok(free) => {
            let free = *free;
            let shown = format!(
                "{:.1} GiB free in {}",
                free as f64 / f64::from(1u32 << 30),
                dir.display()
            );
            let fix = format!(
                "free space (backups live in {}/backups), then check: df -h {}",
                dir.display(),
                dir.display()
            );
            if free < DISK_ERROR_BYTES {
                Finding::error(
                    Area::Host,
                    "host.disk",
                    format!("only {shown}: PostgreSQL and backups will fail"),
                )
                .hint(fix)
            } else if free < DISK_WARN_BYTES {
                Finding::warn(
                    Area::Host,
                    "host.disk",
                    format!("only {shown}: an upgrade's backup may not fit"),
                )
                .hint(fix)
            } else {
                Finding::ok(Area::Host, "host.disk", shown)
            }
        }
        Err(e) => Finding::warn(Area::Host, "host.disk", "cannot tell the free space")
            .detail(e.clone())
            .hint(format!("df -h {}", dir.display())),
    }
}

/// The directory and those above it writable by no one but this user (and root): otherwise
/// upgrade, rollback and init refuse it.
pub fn check_trust(dir: &Path, untrusted: Option<&Untrusted>) -> Finding {
    match untrusted {
        None => Finding::ok(
            Area::Files,
            "files.trust",
            format!(
                "{} and the directories above it are writable only by you (and root)",
                dir.display()
            ),
        ),
        Some(u) => Finding::error(Area::Files, "files.trust", u.what.clone())
            .detail("upgrade, rollback and init refuse to run on it")
            .hint(u.fix.clone()),
    }
}

/// An interrupted upgrade (its journal left behind) and a run holding the lock now (`holder`,
/// the live process holding it; `journal`, the journal left, if any).
pub fn check_upgrade(
    dir: &Path,
    holder: Option<u32>,
    journal: Option<&LeftJournal>,
) -> Vec<Finding> {
    let path = dir.join(JOURNAL_FILE);
    let mut out = Vec::new();
    out.push(match (journal, holder) {
        (None, _) => Finding::ok(Area::Upgrade, "upgrade.journal", "no interrupted upgrade"),
        (Some(_), Some(pid)) => Finding::warn(
            Area::Upgrade,
            "upgrade.journal",
            format!("an upgrade or rollback is under way (pid {pid})"),
        )
        .hint("wait for it to finish, then run: movim-setup doctor"),
        (Some(left), None) if left.journal.as_ref().is_ok_and(Journal::changed_nothing) => {
            Finding::warn(
                Area::Upgrade,
                "upgrade.journal",
                format!(
                    "{} is left by a run that got no further than the pre-pull: nothing was stopped or changed",
                    path.display()
                ),
            )
            .hint(format!(
                "the next upgrade, rollback or init removes it; or now: rm {}",
                path.display()
            ))
        }
        (Some(left), None) => {
            let age = left.age.map_or_else(String::new, |a| {
                format!(", last written {} ago", human_age(a))
            });
            Finding::error(
                Area::Upgrade,
                "upgrade.journal",
                format!("an upgrade was interrupted: {} exists{age}", path.display()),
            )
            .details(left.journal.as_ref().map(journal_summary).unwrap_or_default())
            .hint(format!(
                "finish it: movim-setup upgrade --resume --dir {d}   (or undo it: movim-setup rollback --dir {d})",
                d = dir.display()
            ))
        }
    });
    out.push(match holder {
        Some(pid) => Finding::warn(
            Area::Upgrade,
            "upgrade.run_lock",
            format!(
                "movim-setup (pid {pid}) holds {}: what doctor saw may be changing under it",
                dir.join(RUN_LOCK_FILE).display()
            ),
        )
        .hint("wait for it to finish, then run: movim-setup doctor"),
        None => Finding::ok(
            Area::Upgrade,
            "upgrade.run_lock",
            "no other movim-setup run holds the lock",
        ),
    });
    out
}

/// What an interrupted run was doing.
#[must_use]
pub fn journal_summary(j: &Journal) -> Vec<String> {
    let mut out = vec![format!(
        "{} from Movim {} to {}",
        j.kind.verb(),
        j.from.movim,
        j.to.movim
    )];
    if let Some(step) = j.current {
        out.push(format!("stopped during: {}", step.name()));
    }
    out
}

pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Severity;

    #[test]
    fn an_interrupted_journal_says_what_it_was_doing() {
        use crate::core::journal::{Files, Side};
        use crate::core::plan::{Kind, Step};
        let side = |v: &str| Side {
            movim: v.into(),
            images: std::collections::BTreeMap::new(),
        };
        let files = Files {
            main: String::new(),
            answers: String::new(),
            lock: String::new(),
        };
        let mut j = Journal::new(
            Kind::Upgrade,
            side("v0.29.2"),
            side("v0.30.0"),
            files,
            "t",
            1,
        );
        j.current = Some(Step::Migrate);
        assert_eq!(
            journal_summary(&j),
            [
                "upgrade from Movim v0.29.2 to v0.30.0",
                "stopped during: migrate"
            ]
        );
        let dir = std::path::Path::new("/srv/movim");
        let left = LeftJournal {
            age: Some(Duration::from_secs(300)),
            journal: Ok(j),
        };
        let f = check_upgrade(dir, None, Some(&left));
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].summary.ends_with("last written 5 min ago"),
            "{}",
            f[0].summary
        );
        assert_eq!(f[1].severity, Severity::Ok);
        // A run holding the lock makes the journal its work in progress, not an interruption.
        let f = check_upgrade(dir, Some(42), Some(&left));
        assert_eq!(f[0].severity, Severity::Warn);
        assert_eq!(f[1].severity, Severity::Warn);
    }
}
