//! Crash safety for `upgrade` and `rollback`, as data: the journal `<dir>/upgrade.journal` says
//! what a run set out to do, which steps are done and which one was under way, and holds
//! everything needed to finish or undo it (the previous files, the backup). It is written
//! atomically before each step (by [`crate::adapters::journal`]), so a kill -9 anywhere leaves a
//! journal that `upgrade --resume` or `rollback` acts on.

use crate::core::deployment::MovimTag;
use crate::core::lockfile::BackupRef;
use crate::core::plan::{self, Health, Kind, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const JOURNAL_FILE: &str = "upgrade.journal";
/// The run lock (see [`crate::adapters::run_lock`]).
pub const RUN_LOCK_FILE: &str = "movim-setup.run-lock";

/// The journal format this version reads and writes; a journal of another format is refused
/// rather than misread ([`parse`]).
pub const FORMAT: u32 = 1;

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
    /// The dump of the database as `to` left it, taken before going back over it (an undo after
    /// `to` served): what users wrote since [`Self::serving_since`]. Kept, never restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<BackupRef>,
    /// When `to` was started (RFC 3339): from then on users may have written to its database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_since: Option<String>,
}

impl Journal {
    /// A journal started `now` (RFC 3339) by the process `pid`.
    #[must_use]
    pub fn new(kind: Kind, from: Side, to: Side, previous: Files, now: &str, pid: u32) -> Self {
        let now = now.to_owned();
        Self {
            format: FORMAT,
            kind,
            pid,
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
            kept: None,
            serving_since: None,
        }
    }

    /// Whether `step` was at least started: its effects may be there.
    #[must_use]
    pub fn touched(&self, step: Step) -> bool {
        self.done.contains(&step) || self.current == Some(step)
    }

    /// Whether the run changed nothing: it got no further than the pre-pull (nothing was stopped,
    /// dumped or written), so the journal stands for no interrupted run.
    #[must_use]
    pub fn changed_nothing(&self) -> bool {
        self.current.is_none_or(|s| s == Step::Prepull)
            && self.done.iter().all(|s| *s == Step::Prepull)
    }

    /// Whether the run reached the write of the new release's files (they must be put back).
    #[must_use]
    pub fn wrote_files(&self) -> bool {
        [
            Step::Write,
            Step::Migrate,
            Step::Restore,
            Step::Start,
            Step::Prove,
        ]
        .into_iter()
        .any(|s| self.touched(s))
    }

    /// Whether the run may have changed the database (migrations or what followed them).
    #[must_use]
    pub fn changed_database(&self) -> bool {
        [Step::Migrate, Step::Restore, Step::Start, Step::Prove]
            .into_iter()
            .any(|s| self.touched(s))
    }

    /// Whether the release gone to was started: users may have written to the database since
    /// ([`Self::serving_since`]), so going back over it must keep a dump of it first.
    #[must_use]
    pub fn served(&self) -> bool {
        self.touched(Step::Start) || self.touched(Step::Prove)
    }

    /// Since when the release gone to may have served users (its start, or the journal's last
    /// write when an older journal did not record it).
    #[must_use]
    pub fn served_since(&self) -> &str {
        self.serving_since.as_deref().unwrap_or(&self.updated_at)
    }
}

impl Journal {
    /// The plan of undoing this run (going back to `from`), as printed before it starts; `main` is
    /// the file that runs the deployment (`compose.yaml`). Stable text: no absolute paths.
    #[must_use]
    pub fn undo_plan(&self, project: &str, main: &str) -> String {
        let (from, to) = (&self.from.movim, &self.to.movim);
        let (wrote, changed) = (self.wrote_files(), self.changed_database());
        let at = self
            .current
            .or_else(|| self.done.last().copied())
            .map_or("the start", Step::name);
        let mut steps: Vec<(&str, String)> = Vec::new();
        if wrote {
            steps.push(("stop", format!("stop web, daemon and fpm of {to}")));
        }
        if self.served() {
            steps.push((
                "keep",
                format!(
                    "dump the database as {to} left it: rows written on {to} since {} are kept in backups/db-<time>-{to}.dump (not pruned by this run)",
                    self.served_since()
                ),
            ));
        }
        if wrote {
            steps.push((
                "files",
                format!("put back {main}, movim-setup.yaml and movim-setup.lock of {from}"),
            ));
        }
        let dump = self.backup.as_ref().map_or("its dump", |b| b.file.as_str());
        if changed {
            steps.push((
                "restore",
                format!("restore the database of {from} from {dump}"),
            ));
        } else if wrote {
            steps.push((
                "restore",
                format!("restore the database of {from} from {dump} if {from}'s code cannot read it as it is"),
            ));
        }
        steps.push(("start", format!("start {from} and prove it healthy")));
        let mut out = format!(
            "rollback plan for project {project}: undo the interrupted {} {from} -> {to} (last step: {at})\nsteps:\n",
            self.kind.verb()
        );
        for (n, (name, what)) in steps.iter().enumerate() {
            out.push_str(&format!("  {}. {name:8} {what}\n", n + 1));
        }
        out
    }
}

/// Why an interrupted upgrade is not resumed now (see [`resume_check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotResumed {
    /// The lock names neither side of the journal: the deployment changed since.
    Moved { locked: String },
    /// The journal's target is not newer than the release it left.
    NotNewer,
    /// What must keep running while Movim is stopped (the database, …) does not.
    Unhealthy(String),
    /// The dump still to be taken would not fit.
    Disk { needed: u64, free: u64 },
}

/// The checks a fresh upgrade makes, made again before resuming `j`: the deployment is still the
/// one it left or the one it wrote (`locked`, the lock's release), the target is newer, what keeps
/// running is healthy (unless `force`), and the dump, if still to be taken, fits in `free`.
///
/// # Errors
/// [`NotResumed`], the first in the order a user would fix them.
pub fn resume_check(
    j: &Journal,
    locked: &str,
    health: &Health,
    force: bool,
    db_bytes: u64,
    free: u64,
) -> Result<(), NotResumed> {
    if locked != j.from.movim && locked != j.to.movim {
        return Err(NotResumed::Moved {
            locked: locked.to_owned(),
        });
    }
    let numbers = |v: &str| MovimTag::parse(v).map(|t| t.numbers()).ok();
    match (numbers(&j.from.movim), numbers(&j.to.movim)) {
        (Some(from), Some(to)) if to > from => {}
        _ => return Err(NotResumed::NotNewer),
    }
    if let (Health::Unhealthy(why), false) = (health, force) {
        return Err(NotResumed::Unhealthy(why.clone()));
    }
    let needed = plan::backup_needed(db_bytes);
    if !j.done.contains(&Step::Backup) && free < needed {
        return Err(NotResumed::Disk { needed, free });
    }
    Ok(())
}

/// Why a journal's text is not one this version acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Written by a movim-setup with another journal format.
    Format(u32),
    /// Not a journal at all (truncated, edited).
    Invalid(String),
}

/// A journal from its text, refusing one of another [`FORMAT`] before reading any other field.
///
/// # Errors
/// [`Unreadable`].
pub fn parse(text: &str) -> Result<Journal, Unreadable> {
    #[derive(Deserialize)]
    struct Head {
        format: u32,
    }
    let head: Head = serde_json::from_str(text).map_err(|e| Unreadable::Invalid(e.to_string()))?;
    if head.format != FORMAT {
        return Err(Unreadable::Format(head.format));
    }
    serde_json::from_str(text).map_err(|e| Unreadable::Invalid(e.to_string()))
}
