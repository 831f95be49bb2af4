//! The wall clock: the one place the current time is read (the core formats times it is given).

use crate::core::lockfile;

/// The current time as RFC 3339 (UTC).
#[must_use]
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    lockfile::rfc3339(secs)
}
