//! `host.disk` and `upgrade.*`: free space, an interrupted upgrade, a run holding the lock.

use crate::adapters::{fsx, run_lock};
use crate::core::journal::{JOURNAL_FILE, RUN_LOCK_FILE};
use crate::doctor::DISK_ERROR_BYTES;
use crate::doctor::DISK_WARN_BYTES;
use crate::doctor::report::{Area, Finding};
use std::path::Path;
use std::time::Duration;

pub fn check_disk(dir: &Path) -> Finding {
    match fsx::free_bytes(dir) {
        Ok(free) => {
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
            .detail(format!("{e:#}"))
            .hint(format!("df -h {}", dir.display())),
    }
}

/// An interrupted upgrade (its journal left behind) and a run holding the lock now.
pub fn check_upgrade(dir: &Path) -> Vec<Finding> {
    let holder = run_lock::live_holder(dir);
    let journal = dir.join(JOURNAL_FILE);
    let mut out = Vec::new();
    out.push(match (std::fs::metadata(&journal), holder) {
        (Err(_), _) => Finding::ok(Area::Upgrade, "upgrade.journal", "no interrupted upgrade"),
        (Ok(_), Some(pid)) => Finding::warn(
            Area::Upgrade,
            "upgrade.journal",
            format!("an upgrade or rollback is under way (pid {pid})"),
        )
        .hint("wait for it to finish, then run: movim-setup doctor"),
        (Ok(meta), None) => {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map_or_else(String::new, |a| {
                    format!(", last written {} ago", human_age(a))
                });
            Finding::error(
                Area::Upgrade,
                "upgrade.journal",
                format!("an upgrade was interrupted: {} exists{age}", journal.display()),
            )
            .details(journal_summary(&journal))
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

/// What an interrupted run was doing, from the journal's JSON (read loosely: the journal's own
/// module owns its format).
pub fn journal_summary(path: &Path) -> Vec<String> {
    let Ok(v) = std::fs::read_to_string(path)
        .map_err(|_| ())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
    else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    if let (Some(from), Some(to)) = (v.pointer("/from/movim"), v.pointer("/to/movim")) {
        let kind = v.get("kind").map_or_else(|| "run".to_owned(), text);
        out.push(format!("{kind} from Movim {} to {}", text(from), text(to)));
    }
    if let Some(step) = v.get("current").filter(|c| !c.is_null()) {
        out.push(format!("stopped during: {}", text(step)));
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
    use crate::core::journal::JOURNAL_FILE;
    use crate::doctor::report::Severity;

    #[test]
    fn an_interrupted_journal_says_what_it_was_doing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(
            &path,
            r#"{"kind": "upgrade", "from": {"movim": "v0.29.2"}, "to": {"movim": "v0.30.0"}, "current": "migrate"}"#,
        )
        .expect("write");
        assert_eq!(
            journal_summary(&path),
            [
                "upgrade from Movim v0.29.2 to v0.30.0",
                "stopped during: migrate"
            ]
        );
        std::fs::write(&path, "not json").expect("write");
        assert!(journal_summary(&path).is_empty());
        let f = check_upgrade(dir.path());
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[1].severity, Severity::Ok);
    }
}
