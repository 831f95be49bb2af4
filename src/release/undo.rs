//! Going back: the undo of a failed or interrupted transition, putting the release it left back in
//! place (files, database from the dump when it changed, start, prove).

use super::Run;
use super::steps;
use crate::core::journal::{self, Journal};
use crate::core::lockfile::LOCK_FILE;
use crate::core::plan::Migrations;
use crate::core::render::ANSWERS_FILE;
use crate::error::{Failure, OrFail};
use crate::stack;

/// A step of `run` failed after the stop: go back to where it started and say what failed.
pub async fn undo(mut run: Run<'_>, failure: Failure) -> Failure {
    let ctx = run.ctx;
    ctx.ui.warn(&failure.what);
    ctx.ui.step(&format!(
        "rolling back to Movim {} automatically (the failure is reported in full at the end)",
        run.from.version
    ));
    let restored = restore_previous(&mut run).await;
    let failure = match kept_lines(&run) {
        Some(lines) => lines.into_iter().fold(failure, Failure::detail),
        None => failure,
    };
    match restored {
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
                ctx.dir.join(journal::JOURNAL_FILE).display()
            ))
            .next(format!("movim-setup rollback --dir {}", ctx.dir.display()))
            .next("movim-setup doctor"),
    }
}

/// Puts the release the journal left back in place: stop what the run started, the previous
/// files, the database when the run changed it, start, prove.
pub async fn restore_previous(run: &mut Run<'_>) -> Result<(), Failure> {
    let (ctx, tools) = (run.ctx, run.tools);
    let j = &run.journal;
    let wrote = j.wrote_files();
    let mut database_changed = j.changed_database();
    if wrote {
        ctx.ui.step(&format!("stopping {}", run.to.version));
        if let Err(f) = steps::stop_movim(ctx, tools, &run.to).await {
            ctx.ui.warn(&format!("{f}"));
        }
        let main = tools.runner.layout().main_file();
        ctx.ui.step(&format!(
            "putting back the files of {} ({main}, movim-setup.yaml, movim-setup.lock)",
            run.from.version
        ));
        // The kube deployment's Kubernetes rendering is not kept in the journal (it holds the
        // Secret): it is rendered again for the release gone back to.
        let derived = steps::layout_files(
            ctx,
            tools.runner.layout(),
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
        steps::put_files(ctx, &writes)?;
    }
    if wrote && !database_changed {
        // The new release may have migrated on its own (the daemon image's entrypoint does).
        database_changed = matches!(
            steps::phinx_status(ctx, tools, &run.from).await?,
            Migrations::Newer(_)
        );
    }
    if database_changed && j.served() && j.kept.is_none() {
        keep_served(run).await?;
    }
    if database_changed {
        restore_database(run).await?;
    }
    steps::start_movim(ctx, tools, &run.from).await?;
    stack::prove(ctx, tools, &run.from).await
}

/// Restores the dump the journal records of the release gone back to.
async fn restore_database(run: &Run<'_>) -> Result<(), Failure> {
    let (ctx, tools, j) = (run.ctx, run.tools, &run.journal);
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
    let source = steps::backup_source(
        ctx,
        tools,
        &run.from,
        &run.password,
        b.tool.clone().or_else(|| j.backup_tool.clone()),
    )
    .await?;
    tools
        .db
        .restore(&source, &ctx.dir, b)
        .await
        .or_fail(|| format!("restoring the database from {} failed", b.file))?;
    Ok(())
}

/// Before going back over a database the release gone to has served: dump it as it is (what users
/// wrote since it started), record the dump in the journal so that a re-run does not take it
/// again, and say where it is and how to read it back. No restore happens without it.
async fn keep_served(run: &mut Run<'_>) -> Result<(), Failure> {
    let (ctx, tools) = (run.ctx, run.tools);
    let to = run.to.version.clone();
    ctx.ui.step(&format!(
        "keeping the database as {to} left it (rows written since {}) before going back over it",
        run.journal.served_since()
    ));
    let tool = run.journal.backup_tool.clone();
    let source = steps::backup_source(ctx, tools, &run.from, &run.password, tool).await?;
    let kept = tools
        .db
        .dump(&source, &ctx.dir, to.as_str())
        .await
        .map_err(|e| {
            Failure::new(format!(
                "cannot keep the rows written on {to}: dumping the database failed, so it is not restored"
            ))
            .because(e)
        })?;
    run.journal.kept = Some(kept);
    run.journal
        .save(&ctx.dir)
        .or_fail(|| "cannot write the journal".to_owned())?;
    for line in kept_lines(run).unwrap_or_default() {
        ctx.ui.info(&line);
    }
    Ok(())
}

/// Where the rows written on the release gone to are kept, and the command that reads them back.
pub fn kept_lines(run: &Run<'_>) -> Option<Vec<String>> {
    let b = run.journal.kept.as_ref()?;
    let path = run.ctx.dir.join(&b.file);
    Some(vec![
        format!(
            "rows written on {} since {} are in {} ({}, sha256 {}; kept, not pruned by this run)",
            run.to.version,
            run.journal.served_since(),
            path.display(),
            crate::core::plan::human(b.bytes),
            b.sha256
        ),
        format!(
            "to read them back into a database of their own: {}",
            steps::read_back_command(run.tools, &run.from, &path, run.to.version.as_str())
        ),
    ])
}
