//! Crash safety for `upgrade` and `rollback`: the journal `<dir>/upgrade.journal` says what a run
//! set out to do, which steps are done and which one was under way, and holds everything needed
//! to finish or undo it (the previous files, the backup); it is written atomically before each
//! step, so a kill -9 anywhere leaves a journal that `upgrade --resume` or `rollback` acts on. The
//! run lock `<dir>/movim-setup.run-lock` stops two runs at once. `doctor` reads both files by name.
//!
//! Also the named checkpoints (style.md practice 5, after rustup's `checkpoint`): a test sets
//! `MOVIM_SETUP_CRASH_AT=after-backup` and the process kills itself with SIGKILL there.

use crate::adapters::fsx;
use crate::core::lockfile::BackupRef;
use crate::core::plan::{Kind, Step};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Kept as doctor knows them (`src/commands/doctor.rs`).
pub const JOURNAL_FILE: &str = "upgrade.journal";
pub const RUN_LOCK_FILE: &str = "movim-setup.run-lock";

/// Test-only: the checkpoint at which the process kills itself (see [`checkpoint`]).
pub const CRASH_ENV: &str = "MOVIM_SETUP_CRASH_AT";

const FORMAT: u32 = 1;

/// The three files an upgrade or rollback rewrites, as text (none holds a secret: the password is
/// in `movim.env`, which neither changes). A kube-played deployment's Kubernetes rendering
/// (`kube/movim.yaml`, which holds its Secret) is not kept: it is rendered again from these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// What runs: `compose.yaml`, or `kube/podman.yaml` ([`crate::core::layout::Layout::main_file`]).
    #[serde(alias = "compose")]
    pub main: String,
    pub answers: String,
    pub lock: String,
}

/// One side of a run: a release and its pinned images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    pub movim: String,
    pub images: BTreeMap<String, String>,
}

/// What an unfinished run set out to do and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    pub kind: Kind,
    /// The process that wrote it last, and when the run started.
    pub pid: u32,
    pub started_at: String,
    pub updated_at: String,
    pub from: Side,
    pub to: Side,
    /// The files of `from`, put back by a rollback.
    pub previous: Files,
    /// Done, in order.
    pub done: Vec<Step>,
    /// Started and not known to be done (it may be half done).
    pub current: Option<Step>,
    /// The dump of the database taken in the `backup` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRef>,
    /// Rollback runs: the dump that brings the database back to `to` (when its code needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<BackupRef>,
    /// External databases: the pinned postgres image whose `pg_dump` takes the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_tool: Option<String>,
}

impl Journal {
    #[must_use]
    pub fn new(kind: Kind, from: Side, to: Side, previous: Files) -> Self {
        let now = crate::core::lockfile::now_rfc3339();
        Self {
            format: FORMAT,
            kind,
            pid: std::process::id(),
            started_at: now.clone(),
            updated_at: now,
            from,
            to,
            previous,
            done: Vec::new(),
            current: None,
            backup: None,
            restore: None,
            backup_tool: None,
        }
    }

    /// Whether `step` was at least started: its effects may be there.
    #[must_use]
    pub fn touched(&self, step: Step) -> bool {
        self.done.contains(&step) || self.current == Some(step)
    }

    /// The journal of `dir`, if a run left one.
    ///
    /// # Errors
    /// It exists but cannot be read or parsed.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(JOURNAL_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is not a journal this version reads", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Records that `step` starts now (written atomically before the step does anything).
    ///
    /// # Errors
    /// The journal cannot be written (then the step must not run).
    pub fn begin(&mut self, dir: &Path, step: Step) -> anyhow::Result<()> {
        self.current = Some(step);
        self.save(dir)
    }

    /// Records that `step` is done.
    ///
    /// # Errors
    /// The journal cannot be written.
    pub fn finish(&mut self, dir: &Path, step: Step) -> anyhow::Result<()> {
        if !self.done.contains(&step) {
            self.done.push(step);
        }
        self.current = None;
        self.save(dir)
    }

    /// Writes the journal atomically (0600: it names backups and the previous files).
    ///
    /// # Errors
    /// The disk refused it.
    pub fn save(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.pid = std::process::id();
        self.updated_at = crate::core::lockfile::now_rfc3339();
        let text = serde_json::to_string_pretty(self).context("cannot serialise the journal")?;
        fsx::write_atomic(&dir.join(JOURNAL_FILE), text.as_bytes(), 0o600)
    }

    /// The run is over (finished or undone): no journal is left.
    ///
    /// # Errors
    /// The journal exists and cannot be removed.
    pub fn remove(dir: &Path) -> anyhow::Result<()> {
        match std::fs::remove_file(dir.join(JOURNAL_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
                .with_context(|| format!("cannot remove {}", dir.join(JOURNAL_FILE).display())),
            _ => Ok(()),
        }
    }
}

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
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = String::new();
        // Unreadable content is treated as no holder: the flock decides.
        let _ = file.read_to_string(&mut text);
        let holder = Holder {
            pid: first_number(&text),
            text: text.trim().replace('\n', ", "),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(holder)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let ours = std::process::id();
        if let Some(pid) = holder.pid
            && pid != ours
            && alive(pid, start_ticks_in(&text))
        {
            return Ok(Err(holder));
        }
        let content = format!(
            "pid {ours}\nstarted {}\nproc-start {}\ncommand {command}\n",
            crate::core::lockfile::now_rfc3339(),
            proc_start_ticks(ours).map_or_else(|| "unknown".to_owned(), |t| t.to_string())
        );
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        Ok(Ok(Self { file, path }))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove first, then unlock: a run that opens the file meanwhile finds it still locked.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
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

/// A named point in a dangerous sequence. **Test-only hook:** when the environment variable
/// `MOVIM_SETUP_CRASH_AT` equals `name`, the process kills itself with SIGKILL right here (no
/// destructor, no flush: what a power cut or the OOM killer does), so crash tests can prove that
/// the journal lets the next run recover. Users never set it.
pub fn checkpoint(name: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == name) {
        eprintln!("checkpoint {name}: {CRASH_ENV} is set, killing this process with SIGKILL");
        let pid = std::process::id().to_string();
        // std has no kill(2); the `kill` program sends the real SIGKILL (abort() would be SIGABRT).
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        // The signal is asynchronous: never run past the checkpoint.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn journal() -> Journal {
        let side = |v: &str| Side {
            movim: v.into(),
            images: BTreeMap::new(),
        };
        Journal::new(
            Kind::Upgrade,
            side("v0.29.2"),
            side("v0.30.0"),
            Files {
                main: "c".into(),
                answers: "a".into(),
                lock: "l".into(),
            },
        )
    }

    #[test]
    fn the_journal_round_trips_and_tracks_steps() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), None);
        let mut j = journal();
        j.begin(dir.path(), Step::Prepull).unwrap();
        j.finish(dir.path(), Step::Prepull).unwrap();
        j.begin(dir.path(), Step::Stop).unwrap();
        let back = Journal::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.done, [Step::Prepull]);
        assert_eq!(back.current, Some(Step::Stop));
        assert!(back.touched(Step::Stop) && !back.touched(Step::Backup));
        Journal::remove(dir.path()).unwrap();
        assert!(!dir.path().join(JOURNAL_FILE).exists());
    }

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
}
