//! What this tool relies on of Movim itself, said once: the uid its PHP runs as, how its daemon
//! behaves when it cannot start, and how its migration tool (Phinx) reports the database. Each is
//! read in Movim's own code at the supported releases (see `docs/movim-contract.md`).

/// The uid Movim's fpm and daemon run as (`www-data` on Alpine): it must read `movim.env` and own
/// the shared volumes.
pub const MOVIM_UID: u32 = 82;

/// The directories of Movim's tree that fpm and the daemon share and must be able to write.
pub const SHARED_DIRS: [&str; 3] = [
    "/var/www/movim/cache",
    "/var/www/movim/public/cache",
    "/var/www/movim/public/images",
];

/// Why a daemon that exits with code 0 is not done: it does so when migrations are pending or
/// `DAEMON_URL` is missing, and its restart policy starts it again.
pub const DAEMON_EXIT_QUIRK: &str = "Movim's daemon exits with code 0 when migrations are pending or DAEMON_URL is missing, and its restart policy starts it again";

/// What `vendor/bin/phinx status` says about a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhinxStatus {
    /// Exit 0: the code and the database agree.
    UpToDate,
    /// Exit 3: migrations the code would apply (`<version> <name>`).
    Pending(Vec<String>),
    /// Exit 2: applied migrations the code does not know (their versions): the database is newer.
    Newer(Vec<String>),
    /// Any other exit: it could not tell; the last lines of its output.
    Failed { code: i32, tail: Vec<String> },
}

/// Reads `phinx status` by its exit code and its table rows, which say `down` for a pending
/// migration and `** MISSING MIGRATION **` for an applied one the code does not have.
#[must_use]
pub fn phinx_status(code: i32, output: &str) -> PhinxStatus {
    let rows = |want_missing: bool| -> Vec<String> {
        output
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let status = words.next()?;
                let version = words.next()?;
                if !version.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let missing = line.contains("MISSING MIGRATION");
                let name = line.split_whitespace().last().unwrap_or_default();
                match (want_missing, status, missing) {
                    (true, "up", true) => Some(version.to_owned()),
                    (false, "down", false) => Some(format!("{version} {name}")),
                    _ => None,
                }
            })
            .collect()
    };
    match code {
        0 => PhinxStatus::UpToDate,
        3 => PhinxStatus::Pending(rows(false)),
        2 => PhinxStatus::Newer(rows(true)),
        other => {
            let tail: Vec<String> = output.lines().rev().take(5).map(str::to_owned).collect();
            PhinxStatus::Failed {
                code: other,
                tail: tail.into_iter().rev().collect(),
            }
        }
    }
}
