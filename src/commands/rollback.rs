//! `movim-setup rollback`: back to a release the lock records, with its images, its files and a
//! database its code can read — and the path `upgrade` takes by itself when a step fails.
//!
//! Three cases, one restore path:
//! - an interrupted upgrade left a journal: put back the previous files, restore the journal's dump
//!   if the new release touched the database (it migrated, or the old code's `phinx status` says the
//!   database is newer), start the previous release and prove it ([`undo`]);
//! - an interrupted rollback left a journal: finish it;
//! - by hand, `rollback [--to RELEASE]`: the same sequence as an upgrade, in reverse — pull, stop,
//!   dump the current database, write the older files, restore the dump taken when the deployment
//!   left that release if its code cannot read the database as it is, start, prove.

use super::upgrade::{self, Run, Target};
use crate::adapters::backup;
use crate::cli::RollbackArgs;
use crate::context::Context;
use crate::core::deployment::MovimTag;
use crate::core::journal::Journal;
use crate::core::layout::Layout;
use crate::core::lockfile::LOCK_FILE;
use crate::core::plan::{self, Kind, Migrations, Step};
use crate::core::render::ANSWERS_FILE;
use crate::error::{ExitStatus, Failure, OrFail};
use crate::stack::{self, Saved, Tools};

pub async fn run(ctx: &Context, args: RollbackArgs) -> Result<ExitStatus, Failure> {
    let saved = Saved::load(&ctx.dir)?;
    let (d, lock) = upgrade::installed(ctx, &saved)?;
    let password = upgrade::password(ctx, &saved)?;
    let _held = upgrade::run_lock(ctx, "rollback")?;
    backup::remove_partials(&ctx.dir);
    let tools = Tools::connect_for(ctx, Layout::detect(&ctx.dir)).await?;
    if let Some(j) =
        Journal::load(&ctx.dir).or_fail(|| "cannot read the upgrade journal".to_owned())?
    {
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
        let run = Run::from_journal(ctx, &tools, &saved, j, args.keep_backups)?;
        return match kind {
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
                let from = run.from.version.clone();
                restore_previous(&run).await.map_err(|f| {
                    f.next(format!(
                        "movim-setup rollback --dir {}   (again)",
                        ctx.dir.display()
                    ))
                })?;
                Journal::remove(&ctx.dir).or_fail(|| "cannot remove the journal".to_owned())?;
                ctx.ui
                    .step(&format!("Movim {from} is up and healthy again"));
                Ok(ExitStatus::Success)
            }
        };
    }

    let index = plan::rollback_target(&lock.history, args.to.as_deref())
        .map_err(|e| Failure::usage(e).next("movim-setup doctor"))?;
    let release = &lock.history[index];
    let to = MovimTag::parse(&release.movim)
        .map_err(|e| Failure::new(format!("the lock's history names an invalid release: {e}")))?;
    let mut to_d = d.clone();
    to_d.version = to;
    // A dump whose file is gone is no dump.
    let kept = plan::backup_leaving(&lock.history, index)
        .filter(|b| ctx.dir.join(&b.file).is_file())
        .cloned();
    let observed = upgrade::observe(
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
    upgrade::plan_and_execute(ctx, &tools, &d, &password, observed, args.keep_backups).await
}

/// A step of `run` failed after the stop: go back to where it started and say what failed.
pub(super) async fn undo(run: Run<'_>, failure: Failure) -> Failure {
    let ctx = run.ctx;
    ctx.ui.warn(&failure.what);
    ctx.ui.step(&format!(
        "rolling back to Movim {} automatically (the failure is reported in full at the end)",
        run.from.version
    ));
    match restore_previous(&run).await {
        Ok(()) => {
            let dropped = Journal::remove(&ctx.dir);
            let mut f = failure.detail(format!(
                "rolled back: Movim {} runs again and is healthy (websocket 101, /infos); the database is as before the {}",
                run.from.version,
                run.journal.kind.verb()
            ));
            if let Err(e) = dropped {
                f = f.detail(format!("but the journal could not be removed: {e:#}"));
            }
            if !f.next.iter().any(|n| n.starts_with("movim-setup doctor")) {
                f = f.next("movim-setup doctor");
            }
            f
        }
        Err(second) => failure
            .detail(format!(
                "the automatic rollback to {} failed too: {second}",
                run.from.version
            ))
            .detail(format!(
                "the journal {} is kept",
                ctx.dir.join(crate::core::journal::JOURNAL_FILE).display()
            ))
            .next(format!("movim-setup rollback --dir {}", ctx.dir.display()))
            .next("movim-setup doctor"),
    }
}

/// Puts the release the journal left back in place: stop what the run started, the previous
/// files, the database when the run changed it, start, prove.
pub(super) async fn restore_previous(run: &Run<'_>) -> Result<(), Failure> {
    let (ctx, tools, j) = (run.ctx, run.tools, &run.journal);
    let after = |steps: &[Step]| steps.iter().any(|s| j.touched(*s));
    let wrote = after(&[
        Step::Write,
        Step::Migrate,
        Step::Restore,
        Step::Start,
        Step::Prove,
    ]);
    let mut database_changed = after(&[Step::Migrate, Step::Restore, Step::Start, Step::Prove]);
    if wrote {
        ctx.ui.step(&format!("stopping {}", run.to.version));
        if let Err(f) = upgrade::stop_movim(ctx, tools, &run.to).await {
            ctx.ui.warn(&format!("{f}"));
        }
        let main = tools.layout().main_file();
        ctx.ui.step(&format!(
            "putting back the files of {} ({main}, movim-setup.yaml, movim-setup.lock)",
            run.from.version
        ));
        // The kube deployment's Kubernetes rendering is not kept in the journal (it holds the
        // Secret): it is rendered again for the release gone back to.
        let derived = upgrade::layout_files(
            ctx,
            tools.layout(),
            &run.from,
            &run.password,
            &j.from.images,
        )?;
        let mut writes: Vec<(&str, &[u8], u32)> = derived
            .iter()
            .filter(|(name, _)| *name != main)
            .map(|(name, f)| (*name, f.content.as_bytes(), f.mode))
            .collect();
        let main_mode = derived
            .iter()
            .find(|(name, _)| *name == main)
            .map_or(0o644, |(_, f)| f.mode);
        writes.extend([
            (main, j.previous.main.as_bytes(), main_mode),
            (ANSWERS_FILE, j.previous.answers.as_bytes(), 0o644),
            (LOCK_FILE, j.previous.lock.as_bytes(), 0o644),
        ]);
        upgrade::put_files(&ctx.dir, &writes)?;
    }
    if wrote && !database_changed {
        // The new release may have migrated on its own (the daemon image's entrypoint does).
        database_changed = matches!(
            upgrade::phinx_status(ctx, tools, &run.from).await?,
            Migrations::Newer(_)
        );
    }
    if database_changed {
        let Some(b) = &j.backup else {
            return Err(Failure::new(format!(
                "the database was changed but the journal records no backup of {}",
                run.from.version
            )));
        };
        ctx.ui.step(&format!(
            "restoring the database of {} from {} (sha256 checked first)",
            run.from.version, b.file
        ));
        let source = upgrade::backup_source(
            ctx,
            tools,
            &run.from,
            &run.password,
            b.tool.clone().or_else(|| j.backup_tool.clone()),
        )
        .await?;
        backup::restore(&tools.engine, &source, &ctx.dir, b)
            .await
            .or_fail(|| format!("restoring the database from {} failed", b.file))?;
    }
    upgrade::start_movim(ctx, tools, &run.from).await?;
    stack::prove(ctx, tools, &run.from).await
}
