//! Before a release transition touches anything: the deployment must be installed, its password
//! known, no other run may hold the lock, and no interrupted run may be left unsettled.

use crate::adapters::fsx;
use crate::adapters::run_lock::RunLock;
use crate::adapters::store::{self, Saved};
use crate::context::Context;
use crate::core::answers;
use crate::core::deployment::Deployment;
use crate::core::journal::{self, Journal};
use crate::core::layout::Layout;
use crate::core::lockfile::Lock;
use crate::core::plan::{Kind, Step};
use crate::core::secret::Secret;
use crate::core::trust;
use crate::error::{Failure, OrFail};

/// The deployment and lock `init` wrote, or the command that makes them.
pub fn installed(ctx: &Context, saved: &Saved) -> Result<(Deployment, Lock), Failure> {
    match (&saved.deployment, &saved.lock) {
        (Some(d), Some(l)) => Ok((d.clone(), l.clone())),
        _ => Err(Failure::usage(format!(
            "{} holds no deployment (movim-setup.yaml and movim-setup.lock)",
            ctx.dir.display()
        ))
        .next(format!("movim-setup init --dir {}", ctx.dir.display()))),
    }
}

pub fn password(ctx: &Context, saved: &Saved) -> Result<Secret, Failure> {
    saved.db_password().ok_or_else(|| {
        Failure::usage(format!(
            "{} has no DB_PASSWORD in movim.env",
            ctx.dir.display()
        ))
        .next(format!("movim-setup doctor --dir {}", ctx.dir.display()))
    })
}

/// Takes the run lock, or says who holds it.
pub fn run_lock(ctx: &Context, command: &str) -> Result<RunLock, Failure> {
    trusted_dir(ctx)?;
    match RunLock::acquire(&ctx.dir, command)
        .or_fail(|| format!("cannot take the run lock in {}", ctx.dir.display()))?
    {
        Ok(held) => Ok(held),
        Err(holder) => Err(Failure::new(format!(
            "another movim-setup run holds {}: {}",
            ctx.dir.join(journal::RUN_LOCK_FILE).display(),
            if holder.text.is_empty() {
                "(no details)".to_owned()
            } else {
                holder.text
            }
        ))
        .detail("nothing was changed")
        .next("wait for it to finish, then: movim-setup doctor")),
    }
}

/// [`run_lock`] in a directory that exists (one that does not holds nothing to guard, and reading
/// it says there is no deployment there). Taken before the lock file and answers are read, so that
/// no other run changes them meanwhile.
pub fn run_lock_existing(ctx: &Context, command: &str) -> Result<Option<RunLock>, Failure> {
    ctx.dir.is_dir().then(|| run_lock(ctx, command)).transpose()
}

/// Refuses a directory a new or kube-played deployment cannot be mounted from by
/// `podman run --volume` (one holding `:` or `,`); a compose deployment mounts it by other means.
fn usable_dir(ctx: &Context) -> Result<(), Failure> {
    if store::layout_held(&ctx.dir) == Some(Layout::Compose) {
        return Ok(());
    }
    let abs = std::path::absolute(&ctx.dir).unwrap_or_else(|_| ctx.dir.clone());
    answers::deployment_dir(&abs.display().to_string()).map_err(|e| {
        Failure::usage(e)
            .detail("nothing was changed")
            .next("movim-setup init --dir /srv/movim   (or another directory without : or ,)")
    })
}

/// Refuses a deployment directory someone else could write to (it, or a directory above it): its
/// files decide what runs, and `movim.env` holds the deployment's secrets; and one `podman run`
/// cannot mount ([`usable_dir`]). Nothing is changed.
pub fn trusted_dir(ctx: &Context) -> Result<(), Failure> {
    usable_dir(ctx)?;
    let (target, ancestors) = fsx::dir_facts(&ctx.dir).or_fail(|| {
        format!(
            "cannot read the owners of {} and its parents",
            ctx.dir.display()
        )
    })?;
    trust::check(target.as_ref(), &ancestors, fsx::effective_uid()).map_err(|u| {
        Failure::usage(u.what)
            .detail("nothing was changed")
            .next(u.fix)
    })
}

/// The journal left in the deployment directory, as a run acts on it.
pub enum Left {
    None,
    /// A run that got no further than the pre-pull: nothing was stopped or changed. The journal
    /// is removed (and said) when `settle` is asked for; otherwise only said.
    ChangedNothing(Journal),
    Interrupted(Journal),
}

/// Reads the journal left in the directory; one that records nothing past the pre-pull stands for
/// no interrupted run: with `settle` (a run holding the lock) it is removed, and that is said.
pub fn left_journal(ctx: &Context, settle: bool) -> Result<Left, Failure> {
    let Some(j) =
        Journal::load(&ctx.dir).or_fail(|| "cannot read the upgrade journal".to_owned())?
    else {
        return Ok(Left::None);
    };
    if !j.changed_nothing() {
        return Ok(Left::Interrupted(j));
    }
    let path = ctx.dir.join(journal::JOURNAL_FILE);
    let what = format!(
        "{} records an interrupted {} {} -> {} that got no further than the pre-pull: nothing was stopped or changed",
        path.display(),
        j.kind.verb(),
        j.from.movim,
        j.to.movim
    );
    if settle {
        Journal::remove(&ctx.dir).or_fail(|| format!("cannot remove {}", path.display()))?;
        ctx.ui.step(&format!("{what}; removed it"));
    } else {
        ctx.ui.info(&format!("{what} (a real run removes it)"));
    }
    Ok(Left::ChangedNothing(j))
}

/// The refusal when a journal is left.
pub fn interrupted(ctx: &Context, j: &Journal) -> Failure {
    let at = j
        .current
        .or_else(|| j.done.last().copied())
        .map_or("the start", Step::name);
    Failure::new(format!(
        "an interrupted {} {} -> {} left {} (last step: {at})",
        j.kind.verb(),
        j.from.movim,
        j.to.movim,
        ctx.dir.join(journal::JOURNAL_FILE).display()
    ))
    .detail("nothing was changed now")
    .next(match j.kind {
        Kind::Upgrade => format!(
            "finish it: movim-setup upgrade --resume --dir {}",
            ctx.dir.display()
        ),
        Kind::Rollback => format!(
            "finish it: movim-setup rollback --dir {}",
            ctx.dir.display()
        ),
    })
    .next(format!(
        "or undo it: movim-setup rollback --dir {}",
        ctx.dir.display()
    ))
}

pub fn done_list(j: &Journal) -> String {
    if j.done.is_empty() {
        "nothing".to_owned()
    } else {
        j.done
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
