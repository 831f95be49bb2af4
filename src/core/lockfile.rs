//! `movim-setup.lock`: the images a deployment runs, each pinned as `repo:tag@sha256:…`, and the
//! history of releases (what ran, when, from which backup) that `rollback` can return to.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const LOCK_FILE: &str = "movim-setup.lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The Movim release tag running now (e.g. `v0.29.2`).
    pub movim: String,
    /// Service → pinned image.
    pub images: BTreeMap<String, String>,
    /// Releases this deployment ran, oldest first; the last one is the current one.
    #[serde(default)]
    pub history: Vec<Release>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub movim: String,
    pub images: BTreeMap<String, String>,
    /// RFC 3339 time the release became current.
    pub at: String,
    /// Database backup taken before leaving the previous release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRef>,
    /// `installed`, `upgrading` (written before the health gate), `upgraded`, `rolled-back`.
    pub outcome: String,
}

/// A database dump in `backups/`, as `upgrade` and `rollback` record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    /// Relative to the deployment directory: `backups/db-<time>-<version>.dump`.
    pub file: String,
    pub bytes: u64,
    /// Hex SHA-256 of the file, checked before it is restored.
    pub sha256: String,
    /// The pinned image whose `pg_dump` made it, when it was not the bundled postgres container
    /// (external databases): restores use the same tool.
    #[serde(
        default,
        rename = "backup-tool",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool: Option<String>,
}

impl Lock {
    pub fn parse(text: &str) -> Result<Self, String> {
        yaml_serde::from_str(text).map_err(|e| format!("{LOCK_FILE} is not valid: {e}"))
    }

    pub fn to_yaml(&self) -> Result<String, String> {
        let body = yaml_serde::to_string(self)
            .map_err(|e| format!("cannot serialise {LOCK_FILE}: {e}"))?;
        Ok(format!(
            "# Written by movim-setup: the pinned images of this deployment and its release history.\n{body}"
        ))
    }

    /// The digest part of a pinned reference.
    #[must_use]
    pub fn digest_of(pinned: &str) -> Option<&str> {
        pinned.split_once('@').map(|(_, d)| d)
    }
}

/// The pin `service` keeps: the one `locked` records, when its unpinned part is still
/// `reference` (the deployment asks for the same repository and tag); `None` when it must be
/// resolved again.
#[must_use]
pub fn kept_pin<'a>(
    locked: &'a BTreeMap<String, String>,
    service: &str,
    reference: &str,
) -> Option<&'a str> {
    locked
        .get(service)
        .filter(|p| p.split('@').next() == Some(reference))
        .map(String::as_str)
}

/// `secs` since the Unix epoch as RFC 3339 (UTC), without pulling in a date crate.
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }

    #[test]
    fn round_trips() {
        let lock = Lock {
            movim: "v0.29.2".into(),
            images: BTreeMap::from([("web".into(), "r/movim-web:v0.29.2@sha256:ab".into())]),
            history: vec![],
        };
        assert_eq!(Lock::parse(&lock.to_yaml().expect("yaml")), Ok(lock));
        assert_eq!(Lock::digest_of("r/x:t@sha256:ab"), Some("sha256:ab"));
    }

    #[test]
    fn a_pin_is_kept_while_the_reference_is_unchanged() {
        let locked = BTreeMap::from([("web".into(), "r/movim-web:v1@sha256:ab".into())]);
        assert_eq!(
            kept_pin(&locked, "web", "r/movim-web:v1"),
            Some("r/movim-web:v1@sha256:ab")
        );
        assert_eq!(kept_pin(&locked, "web", "r/movim-web:v2"), None);
        assert_eq!(kept_pin(&locked, "fpm", "r/movim-fpm:v1"), None);
    }
}
