//! Where the journal ([`crate::core::journal`]) meets the disk: read, written atomically before
//! each step, removed when the run is over; and the named checkpoints (after rustup's
//! `checkpoint`): a test sets `MOVIM_SETUP_CRASH_AT=after-backup` and the process kills itself with
//! SIGKILL there.

use crate::adapters::{clock, env, fsx};
use crate::core::journal::{self, JOURNAL_FILE, Journal, Unreadable};
use crate::core::plan::Step;
use anyhow::Context as _;
use std::path::Path;

/// Test-only: the checkpoint at which the process kills itself (see [`checkpoint`]).
pub const CRASH_ENV: &str = "MOVIM_SETUP_CRASH_AT";

/// Test-only: the point at which the process waits a while (see [`pause`]).
pub const PAUSE_ENV: &str = "MOVIM_SETUP_PAUSE_AT";

impl Journal {
    /// The journal of `dir`, if a run left one.
    ///
    /// # Errors
    /// It exists but cannot be read or parsed, or is of another format (the message names the
    /// file and what to do).
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(JOURNAL_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        journal::parse(&text).map(Some).map_err(|e| match e {
            Unreadable::Format(found) => anyhow::anyhow!(
                "{} is a journal of format {found}, and this movim-setup reads format {}: settle \
                 that run with the movim-setup that wrote it (upgrade --resume, or rollback), or, \
                 if nothing is under way, move the file aside (mv {0} {0}.old) and run \
                 movim-setup doctor",
                path.display(),
                journal::FORMAT
            ),
            Unreadable::Invalid(why) => anyhow::anyhow!(
                "{} is not a journal this version reads ({why}): run movim-setup doctor",
                path.display()
            ),
        })
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
        self.updated_at = clock::now_rfc3339();
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

/// Whether the test-only hook `name` is armed: only in a build with the `test-hooks` feature
/// (the suite's), where `value` (the variable, read only then) names it.
fn armed(name: &str, value: impl FnOnce() -> Option<String>) -> bool {
    cfg!(feature = "test-hooks") && value().is_some_and(|v| v == name)
}

/// A named point in a dangerous sequence. **Test-only hook:** when the environment variable
/// `MOVIM_SETUP_CRASH_AT` equals `name`, the process kills itself with SIGKILL right here (no
/// destructor, no flush: what a power cut or the OOM killer does), so crash tests can prove that
/// the journal lets the next run recover. Users never set it.
pub fn checkpoint(name: &str) {
    if armed(name, || env::var(CRASH_ENV)) {
        eprintln!("checkpoint {name}: {CRASH_ENV} is set, killing this process with SIGKILL");
        let pid = std::process::id().to_string();
        // std has no kill(2); the `kill` program sends the real SIGKILL (abort() would be SIGABRT).
        let _ = crate::adapters::subprocess::blocking_command("kill")
            .args(["-9", &pid])
            .status();
        // The signal is asynchronous: never run past the checkpoint.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// A named point where a signal test waits. **Test-only hook:** when `MOVIM_SETUP_PAUSE_AT` equals
/// `name`, the command says so on stderr and waits a few seconds there (as it would for the user
/// or an engine), so that a test can send it a real signal at a known point. Users never set it.
pub async fn pause(name: &str) {
    if armed(name, || env::var(PAUSE_ENV)) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "pause {name}: {PAUSE_ENV} is set, waiting 5s"
        );
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    /// Run in both builds by tests/run-all.sh: armed with the feature, inert (the variable not
    /// even read) without it.
    #[test]
    fn the_test_hooks_are_armed_only_in_a_build_with_the_test_hooks_feature() {
        let read = std::cell::Cell::new(false);
        let value = || {
            read.set(true);
            Some("after-backup".to_owned())
        };
        assert_eq!(armed("after-backup", value), cfg!(feature = "test-hooks"));
        assert_eq!(read.get(), cfg!(feature = "test-hooks"));
        assert!(!armed("after-stop", || Some("after-backup".to_owned())));
    }
    use crate::core::journal::{Files, Side};
    use crate::core::plan::{Kind, Step};
    use std::collections::BTreeMap;

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
            "2026-11-29T10:15:00Z",
            std::process::id(),
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
    fn a_journal_of_another_format_is_refused_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal();
        j.save(dir.path()).unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"format\": 1", "\"format\": 2")).unwrap();

        let e = format!("{:#}", Journal::load(dir.path()).unwrap_err());

        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(
            e.contains("format 2") && e.contains("reads format 1"),
            "{e}"
        );
        assert!(e.contains("rollback") && e.contains("mv "), "{e}");
    }
}
