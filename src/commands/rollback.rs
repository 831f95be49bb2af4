//! `movim-setup rollback`: back to a release the lock records, with its images, its files and a
//! database its code can read — and the path `upgrade` takes by itself when a step fails.
//!
//! Three cases, one restore path:
//! - an interrupted upgrade left a journal: put back the previous files, restore the journal's dump
//!   if the new release touched the database (it migrated, or the old code's `phinx status` says the
//!   database is newer) — after dumping it as it is when the new release was started, since users
//!   may have written to it (the dump is kept, and named with the command that reads it back) —
//!   start the previous release and prove it ([`undo`]); a journal that records nothing past the
//!   pre-pull stands for nothing done: it is removed, and there is nothing to undo;
//! - an interrupted rollback left a journal: finish it;
//! - by hand, `rollback [--to RELEASE]`: the same sequence as an upgrade, in reverse — pull, stop,
//!   dump the current database, write the older files, restore the dump taken when the deployment
//!   left that release if its code cannot read the database as it is, start, prove.

use crate::adapters::Tools;
use crate::adapters::backup;
use crate::adapters::store;
use crate::adapters::store::Saved;
use crate::cli::RollbackArgs;
use crate::context::Context;
use crate::core::deployment::MovimTag;
use crate::core::journal::Journal;
use crate::core::lockfile::{BackupRef, Release};
use crate::core::plan::{self, Kind};
use crate::error::{ExitStatus, Failure, OrFail};
use crate::release::Run;
use crate::release::observe::{Target, observe};
use crate::release::preflight::{Left, installed, left_journal, password, run_lock_existing};
use crate::release::run::plan_and_execute;
use crate::release::undo::{kept_lines, restore_previous};

pub async fn run(ctx: &Context, args: RollbackArgs) -> Result<ExitStatus, Failure> {
    // Held before the lock file and answers are read: no other run changes them meanwhile.
    let _held = run_lock_existing(ctx, "rollback")?;
    let saved = Saved::load(&ctx.dir)?;
    let (d, lock) = installed(ctx, &saved)?;
    let password = password(ctx, &saved)?;
    backup::remove_partials(&ctx.dir);
    let tools = ctx.connect.tools(ctx, store::layout(&ctx.dir)).await?;
    let left = left_journal(ctx, true)?;
    if let Left::ChangedNothing(j) = &left
        && j.kind == Kind::Upgrade
        && args.to.is_none()
    {
        ctx.ui.step(&format!(
            "nothing to undo: Movim {} runs as before the interrupted upgrade",
            j.from.movim
        ));
        return Ok(ExitStatus::Success);
    }
    if let Left::Interrupted(j) = left {
        return settle(ctx, &tools, &saved, &args, j).await;
    }

    let index = plan::rollback_target(&lock.history, args.to.as_deref())
        .map_err(|e| Failure::usage(e).next("movim-setup doctor"))?;
    let release = &lock.history[index];
    let to = MovimTag::parse(&release.movim)
        .map_err(|e| Failure::new(format!("the lock's history names an invalid release: {e}")))?;
    let mut to_d = d.clone();
    to_d.version = to;
    let kept = kept_dump(ctx, &lock.history, index, args.keep_backups);
    let observed = observe(
        ctx,
        &tools,
        Target {
            kind: Kind::Rollback,
            d: &d,
            lock: &lock,
            password: &password,
            to: to_d,
            images: release.images.clone(),
            force: true,
            backup: kept,
        },
    )
    .await?;
    plan_and_execute(ctx, &tools, &d, &password, observed, args.keep_backups).await
}

/// The dump that brings the database back to release `index`, when its file is still there (a
/// dump whose file is gone is no dump). One retention pruned is named before anything runs: the
/// plan refuses the rollback if that release's code cannot read the database as it is.
fn kept_dump(ctx: &Context, history: &[Release], index: usize, keep: usize) -> Option<BackupRef> {
    let recorded = plan::backup_leaving(history, index)?;
    if ctx.dir.join(&recorded.file).is_file() {
        return Some(recorded.clone());
    }
    ctx.ui.warn(&format!(
        "the dump taken when leaving {} ({}) is no longer kept (dumps are kept for going back --keep-backups releases, here {keep}): if its code cannot read the database as it is, the rollback is refused before anything stops",
        history[index].movim, recorded.file
    ));
    None
}

/// Settles the run an interrupted journal records: finishes a rollback, undoes an upgrade.
async fn settle(
    ctx: &Context,
    tools: &Tools,
    saved: &Saved,
    args: &RollbackArgs,
    j: Journal,
) -> Result<ExitStatus, Failure> {
    let back_to = match j.kind {
        Kind::Upgrade => j.from.movim.clone(),
        Kind::Rollback => j.to.movim.clone(),
    };
    if let Some(to) = &args.to
        && MovimTag::parse(to).map(|t| t.to_string()).as_deref() != Ok(back_to.as_str())
    {
        return Err(Failure::usage(format!(
            "an interrupted {} must be settled first: it goes back to {back_to}, not {to}",
            j.kind.verb()
        ))
        .next(format!("movim-setup rollback --dir {}", ctx.dir.display())));
    }
    let kind = j.kind;
    let mut run = Run::from_journal(ctx, tools, saved, j, args.keep_backups)?;
    match kind {
        Kind::Rollback => {
            ctx.ui
                .step(&format!("finishing the interrupted rollback to {back_to}"));
            run.execute().await
        }
        Kind::Upgrade => {
            ctx.ui.step(&format!(
                "undoing the interrupted upgrade {} -> {}: back to {back_to}",
                run.journal.from.movim, run.journal.to.movim
            ));
            print!(
                "{}",
                run.journal
                    .undo_plan(&run.from.project, tools.runner.layout().main_file())
            );
            let from = run.from.version.clone();
            // Going back is itself the undo: a signal from here on does not stop it half-way.
            ctx.cancel.execute()?;
            restore_previous(&mut run).await.map_err(|f| {
                f.next(format!(
                    "movim-setup rollback --dir {}   (again)",
                    ctx.dir.display()
                ))
            })?;
            Journal::remove(&ctx.dir).or_fail(|| "cannot remove the journal".to_owned())?;
            ctx.ui
                .step(&format!("Movim {from} is up and healthy again"));
            for line in kept_lines(&run).unwrap_or_default() {
                ctx.ui.info(&line);
            }
            Ok(ExitStatus::Success)
        }
    }
}
