//! The run lock `<dir>/movim-setup.run-lock`: one `upgrade` or `rollback` at a time. Taken with an
//! exclusive `flock` by a run; read, never locked, by `doctor`, so that it never gets in a real
//! run's way. Both ask the same question of the file: which live process holds it.

use crate::adapters::clock;
use crate::core::journal::RUN_LOCK_FILE;
use anyhow::Context as _;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Who holds the run lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The holder's own description (`pid … started … command …`).
    pub text: String,
}

/// The run lock, held until dropped: an exclusive `flock` on `<dir>/movim-setup.run-lock`, whose
/// content names the holder (pid, start time, command). The flock dies with its process, so a
/// killed run never blocks the next; a file naming a live pid that is not ours also counts as held
/// (another tool version, or a test holding it by hand), and one naming a dead pid is stale.
#[derive(Debug)]
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock for `command`, or says who holds it.
    ///
    /// # Errors
    /// `Ok(Err(holder))` when another live run holds it; `Err` when the file cannot be used.
    pub fn acquire(dir: &Path, command: &str) -> anyhow::Result<Result<Self, Holder>> {
        let path = dir.join(RUN_LOCK_FILE);
        // A holder that lets go removes the file before unlocking it: a flock won on the file it
        // removed locks nothing anyone else opens, so the file at the path is opened again.
        for _ in 0..MAX_ATTEMPTS {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            if let Some(taken) = Self::take(file, &path, command)? {
                return Ok(taken);
            }
        }
        anyhow::bail!(
            "{} was replaced {MAX_ATTEMPTS} times while it was being locked; try again",
            path.display()
        )
    }

    /// Locks the `file` opened at `path`: `None` when the flock was won on a file no longer at
    /// `path` (removed or replaced meanwhile), which holds nothing.
    fn take(
        mut file: std::fs::File,
        path: &Path,
        command: &str,
    ) -> anyhow::Result<Option<Result<Self, Holder>>> {
        let mut text = String::new();
        // Unreadable content is treated as no holder: the flock decides.
        let _ = file.read_to_string(&mut text);
        let holder = Holder {
            pid: first_number(&text),
            text: text.trim().replace('\n', ", "),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Some(Err(holder))),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if !is_at(&file, path)? {
            return Ok(None);
        }
        let ours = std::process::id();
        if let Some(pid) = holder.pid
            && pid != ours
            && alive(pid, start_ticks_in(&text))
        {
            return Ok(Some(Err(holder)));
        }
        let content = format!(
            "pid {ours}\nstarted {}\nproc-start {}\ncommand {command}\n",
            clock::now_rfc3339(),
            proc_start_ticks(ours).map_or_else(|| "unknown".to_owned(), |t| t.to_string())
        );
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        Ok(Some(Ok(Self {
            file,
            path: path.to_owned(),
        })))
    }
}

/// How often a lock file replaced while being locked is opened again before giving up.
const MAX_ATTEMPTS: usize = 10;

/// Whether the open `file` is the one at `path` (same device and inode), not one removed from it.
fn is_at(file: &std::fs::File, path: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let opened = file
        .metadata()
        .with_context(|| format!("cannot stat the open {}", path.display()))?;
    match std::fs::metadata(path) {
        Ok(there) => Ok(there.dev() == opened.dev() && there.ino() == opened.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove first, then unlock: a run that opens the file meanwhile finds it still locked.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The live process, other than this one, that holds the lock in `dir`, read from the file without
/// locking it: what `doctor` reports and what a run refuses to start beside. A file left by a
/// killed run names a dead process (or a zombie), and so no holder.
#[must_use]
pub fn live_holder(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(RUN_LOCK_FILE)).ok()?;
    let pid = first_number(&text)?;
    (pid != std::process::id() && alive(pid, start_ticks_in(&text))).then_some(pid)
}

fn first_number(text: &str) -> Option<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
}

fn start_ticks_in(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("proc-start "))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether `pid` runs (and is the process that wrote the lock, when its start time is known: pids
/// are reused). Zombies count as gone. Without `/proc` (not Linux), a pid is assumed alive.
fn alive(pid: u32, start_ticks: Option<u64>) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return true;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return false;
    }
    match (
        start_ticks,
        fields.get(19).and_then(|t| t.parse::<u64>().ok()),
    ) {
        (Some(wanted), Some(actual)) => wanted == actual,
        _ => true,
    }
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn proc_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
#[allow(clippy::disallowed_methods)] // the tests start a process of their own to watch it die
mod tests {
    use super::*;

    #[test]
    fn the_run_lock_excludes_a_live_holder_and_ignores_a_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "upgrade").unwrap().unwrap();
        // A second open file description cannot take the flock.
        let held = RunLock::acquire(dir.path(), "upgrade")
            .unwrap()
            .unwrap_err();
        assert_eq!(held.pid, Some(std::process::id()));
        drop(lock);
        assert!(!dir.path().join(RUN_LOCK_FILE).exists());

        // A live pid written by hand (pid 1 always runs) holds it; a dead one is stale.
        std::fs::write(dir.path().join(RUN_LOCK_FILE), "pid 1\n").unwrap();
        assert!(RunLock::acquire(dir.path(), "upgrade").unwrap().is_err());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join(RUN_LOCK_FILE), format!("pid {dead}\n")).unwrap();
        let taken = RunLock::acquire(dir.path(), "upgrade").unwrap().unwrap();
        let text = std::fs::read_to_string(dir.path().join(RUN_LOCK_FILE)).unwrap();
        assert!(
            text.starts_with(&format!("pid {}\n", std::process::id())),
            "{text}"
        );
        drop(taken);
    }

    #[test]
    fn a_flock_won_on_a_lock_file_removed_meanwhile_is_not_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_LOCK_FILE);
        let first = RunLock::acquire(dir.path(), "upgrade").unwrap().unwrap();
        // A second run opens the file just before the first lets go (remove, then unlock)...
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        drop(first);
        // ...and then wins the flock on the removed file: that holds nothing.
        assert!(RunLock::take(opened, &path, "upgrade").unwrap().is_none());
        // The file at the path is the lock, and it excludes a third run.
        let second = RunLock::acquire(dir.path(), "upgrade").unwrap().unwrap();
        assert!(RunLock::acquire(dir.path(), "upgrade").unwrap().is_err());
        drop(second);
    }

    #[test]
    fn doctor_and_a_run_agree_on_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(live_holder(dir.path()), None);
        // A live pid that is not ours holds it, as it stops a run.
        std::fs::write(
            dir.path().join(RUN_LOCK_FILE),
            "pid 1
",
        )
        .unwrap();
        assert_eq!(live_holder(dir.path()), Some(1));
        // A zombie (exited, not yet reaped) is gone for both.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let zombie = child.id();
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(
            dir.path().join(RUN_LOCK_FILE),
            format!(
                "pid {zombie}
"
            ),
        )
        .unwrap();
        assert_eq!(live_holder(dir.path()), None);
        assert!(RunLock::acquire(dir.path(), "upgrade").unwrap().is_ok());
        child.wait().unwrap();
        // Our own lock is not another run's.
        let _held = RunLock::acquire(dir.path(), "upgrade").unwrap().unwrap();
        assert_eq!(live_holder(dir.path()), None);
    }
}
