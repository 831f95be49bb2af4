//! The wall clock: the one place the current time is read (the core formats times it is given).

use crate::core::lockfile;

/// What time it is, for what the tool records (the lock's history, file backups, the journal).
pub trait Clock: Send + Sync {
    /// The current time as RFC 3339 (UTC).
    fn now_rfc3339(&self) -> String;
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_rfc3339(&self) -> String {
        now_rfc3339()
    }
}

/// The current time as RFC 3339 (UTC), for the adapters that stamp what they write.
#[must_use]
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    lockfile::rfc3339(secs)
}
