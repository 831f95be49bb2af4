//! What this tool relies on of Movim itself, said once: the uid its PHP runs as, how its daemon
//! behaves when it cannot start, and how its migration tool (Phinx) reports the database. Each is
//! read in Movim's own code at the supported releases (see `docs/movim-contract.md`).

/// The uid Movim's fpm and daemon run as (`www-data` on Alpine): it must read `movim.env` and own
/// the shared volumes.
pub const MOVIM_UID: u32 = 82;

/// The directories of Movim's tree that fpm and the daemon share and must be able to write:
/// its caches, the images it publishes (v0.33+), and its log files (v0.30+, `LOG_PATH`).
pub const SHARED_DIRS: [&str; 4] = [
    "/var/www/movim/cache",
    "/var/www/movim/public/cache",
    "/var/www/movim/public/images",
    LOG_DIR,
];

/// Where Movim (v0.30+) writes its log files (`LOG_PATH`): a volume writable by fpm and the
/// daemon. `movim.env` names it, because the daemon's session workers read only that file.
pub const LOG_DIR: &str = "/var/www/movim/log";

/// The log file Movim writes its errors to, in [`LOG_DIR`].
pub const ERROR_LOG: &str = "errors.log";

/// Why a daemon that exits with code 0 is not done: it does so when migrations are pending or
/// `DAEMON_URL` is missing, and its restart policy starts it again.
pub const DAEMON_EXIT_QUIRK: &str = "Movim's daemon exits with code 0 when migrations are pending or DAEMON_URL is missing, and its restart policy starts it again";

/// Why a daemon that exits with another code stopped: it failed while starting, and Movim
/// (v0.30+) writes why to its error log rather than to its output.
pub const DAEMON_FAILED: &str = "Movim's daemon failed while starting (a directory it cannot create, a missing PHP extension, a setting it refuses); from v0.30 it writes why to log/errors.log in its log volume, which doctor shows";

/// What an exit of Movim's daemon with `code` says, beyond its output.
#[must_use]
pub fn daemon_exit_meaning(code: Option<i64>) -> &'static str {
    if code == Some(0) {
        DAEMON_EXIT_QUIRK
    } else {
        DAEMON_FAILED
    }
}

/// Loads `.env` as a session worker does (immutably, with putenv): the prelude of every probe run
/// through [`as_session_worker`].
pub const WORKER_ENV_PHP: &str = include_str!("probes/worker_env.php");

/// Whether a session worker can write its log (`LOG_PATH`), and the last lines of `errors.log`.
/// Exit 0 when it can; its output is read by [`worker_log`].
pub const WORKER_LOG_PHP: &str = include_str!("probes/worker_log.php");

/// The argv that runs `code` (PHP without its opening tag) in a Movim container the way Movim's
/// daemon starts its session workers: a replaced environment (only `PATH` here, to find PHP), no
/// php.ini (`-n`), extensions loaded by flag, and then `.env` read by the code itself. A check run
/// with `docker exec` alone would see the container's environment and php.ini, which the workers
/// never do: `SSL_CERT_FILE` or `LOG_PATH` set there pass the check and fail every login.
#[must_use]
pub fn as_session_worker(code: &str, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "env",
        "-i",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "php",
        "-n",
        // Movim loads each extension it needs this way; where PHP has openssl built in (Debian)
        // the flag only warns at start-up, which is kept off the probe's output.
        "-d",
        "display_startup_errors=0",
        "-d",
        "extension=openssl.so",
        "-r",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.push(format!("{WORKER_ENV_PHP}\n{code}"));
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

/// What [`WORKER_LOG_PHP`] found: where the workers log, whether they can, the last errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLog {
    pub dir: String,
    /// `None` when the worker can write there; otherwise why not.
    pub problem: Option<String>,
    pub last_errors: Vec<String>,
}

/// Reads [`WORKER_LOG_PHP`]'s output.
#[must_use]
pub fn worker_log(output: &str) -> WorkerLog {
    let mut log = WorkerLog {
        dir: String::new(),
        problem: Some("the log probe said nothing".to_owned()),
        last_errors: Vec::new(),
    };
    for line in output.lines() {
        if let Some(dir) = line.strip_prefix("log_path ") {
            dir.clone_into(&mut log.dir);
        } else if line == "log ok" {
            log.problem = None;
        } else if line == "log missing" {
            log.problem = Some(format!("{} does not exist", log.dir));
        } else if let Some(why) = line.strip_prefix("log unwritable") {
            log.problem = Some(format!("cannot write {}: {}", log.dir, why.trim()));
        } else if let Some(l) = line.strip_prefix("errors| ") {
            log.last_errors.push(l.to_owned());
        }
    }
    log
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_log_probe_reads_as_where_whether_and_what() {
        let ok =
            worker_log("log_path /var/www/movim/log/\nlog ok\nerrors| [x] XEP-0390: Wrong hash\n");
        assert_eq!(ok.problem, None);
        assert_eq!(ok.last_errors, ["[x] XEP-0390: Wrong hash"]);
        let ro = worker_log(
            "log_path /var/www/movim/log/\nlog unwritable fopen(): Read-only file system\n",
        );
        assert!(
            ro.problem
                .as_deref()
                .is_some_and(|p| p.contains("Read-only")),
            "{ro:?}"
        );
        assert!(worker_log("PHP Fatal error").problem.is_some());
    }

    #[test]
    fn a_daemon_exit_is_explained_by_its_code() {
        assert!(daemon_exit_meaning(Some(0)).contains("migrations are pending"));
        for code in [Some(1), Some(255), None] {
            let why = daemon_exit_meaning(code);
            assert!(
                why.contains("errors.log") && !why.contains("pending"),
                "{why}"
            );
        }
    }

    #[test]
    fn probes_run_as_a_session_worker_without_the_containers_environment() {
        let argv = as_session_worker("echo 1;", &["5"]);
        assert_eq!(&argv[..2], ["env", "-i"]);
        assert!(argv[2].starts_with("PATH="));
        assert!(argv.contains(&"-n".to_owned()));
        assert!(
            argv.iter()
                .any(|a| a.contains("putenv") && a.ends_with("echo 1;"))
        );
        assert_eq!(argv.last().map(String::as_str), Some("5"));
    }
}
