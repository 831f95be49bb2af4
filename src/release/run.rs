//! The executor of a release transition: plan with what pulling reveals, confirm, then run each
//! step with the journal written before it and a named checkpoint after it; a failure from `stop`
//! on is undone ([`super::undo`]); success records the release and prunes old dumps.

use super::Run;
use super::pin::backup_tool;
use super::steps::{
    backup_source, layout_files, phinx_status, prepull, probe_migrations, put_files, start_movim,
    stop_movim,
};
use super::undo::undo;
use crate::adapters::Tools;
use crate::adapters::backup;
use crate::adapters::fsx;
use crate::adapters::signals::Signal;
use crate::context::Context;
use crate::core::deployment::{Database, Deployment, MovimTag};
use crate::core::journal::{Files, Journal, Side};
use crate::core::lockfile::{LOCK_FILE, Lock, Release};
use crate::core::plan::{self, Kind, Migrations, Observed, Plan, Refusal, Step};
use crate::core::render::{self, ANSWERS_FILE};
use crate::core::secret::Secret;
use crate::error::{ExitStatus, Failure, OrFail};
use crate::stack;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Plans with what pulling reveals, prints the plan, refuses or executes.
pub async fn plan_and_execute(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
    mut observed: Observed,
    keep_backups: usize,
) -> Result<ExitStatus, Failure> {
    let first = plan::compute(&observed);
    if let Some(r) = &first.refusal {
        print!("{}", first.render());
        return refusal_outcome(ctx, &first, r);
    }
    let mut to_d = d.clone();
    to_d.version = observed.target.clone();
    let previous = Files {
        main: read(&ctx.dir, tools.runner.layout().main_file())?,
        answers: read(&ctx.dir, ANSWERS_FILE)?,
        lock: read(&ctx.dir, LOCK_FILE)?,
    };
    let side = |movim: &MovimTag, images: &BTreeMap<String, String>| Side {
        movim: movim.to_string(),
        images: images.clone(),
    };
    let mut j = Journal::new(
        observed.kind,
        side(&observed.current, &observed.current_images),
        side(&observed.target, &observed.target_images),
        previous,
        &ctx.clock.now_rfc3339(),
        std::process::id(),
    );
    if let Database::External { .. } = d.database {
        j.backup_tool = Some(backup_tool(ctx, d, &observed).await?);
    }
    // No journal yet: until the user agrees, nothing is under way (an interrupt at the prompt or
    // during the pre-pull leaves nothing to resume).
    let ready = async {
        prepull(ctx, tools, &j).await?;
        probe_migrations(ctx, tools, &to_d, &observed.target_images, password).await
    }
    .await;
    observed.migrations = ready.map_err(|f| f.detail("nothing was stopped or changed"))?;
    let p = plan::compute(&observed);
    print!("{}", p.render());
    if let Some(r) = &p.refusal {
        return refusal_outcome(ctx, &p, r);
    }
    if !confirmed(ctx, &p)? {
        ctx.ui.step("not confirmed: nothing was stopped or changed");
        return Ok(ExitStatus::Failed);
    }
    j.restore = p.restore.clone();
    // From here a signal no longer aborts: the step under way is finished, then undone.
    ctx.cancel.execute()?;
    // The journal's first write: agreed and pulled, nothing stopped yet.
    j.finish(&ctx.dir, Step::Prepull)
        .or_fail(|| "cannot write the upgrade journal".to_owned())?;
    crate::adapters::journal::checkpoint(&Step::Prepull.checkpoint());
    let run = Run {
        ctx,
        tools,
        password: password.clone(),
        journal: j,
        from: d.clone(),
        to: to_d,
        keep_backups,
    };
    run.execute().await
}

pub fn read(dir: &Path, name: &str) -> Result<String, Failure> {
    std::fs::read_to_string(dir.join(name))
        .or_fail(|| format!("cannot read {}", dir.join(name).display()))
}

/// Whether the user agrees to the downtime: asked on a terminal, agreed up front with `--yes`,
/// refused otherwise (`ssh host movim-setup upgrade` must not stop Movim unasked).
pub fn confirmed(ctx: &Context, p: &Plan) -> Result<bool, Failure> {
    if ctx.prompter.nobody_agreed() {
        return Err(Failure::usage(format!(
            "{} stops Movim, and there is no terminal to ask whether it may",
            p.kind.verb()
        ))
        .detail("nothing was stopped or changed")
        .next(format!(
            "movim-setup {} --yes …   (the same command, agreed up front)",
            p.kind.verb()
        )));
    }
    if !ctx.prompter.interactive() {
        return Ok(true);
    }
    ctx.prompter.confirm(
        &format!(
            "{} Movim {} -> {} now (downtime until step 7)?",
            p.kind.verb(),
            p.from,
            p.to
        ),
        false,
    )
}

/// A refusal as the command's outcome: nothing to do is success, the rest fail naming the fix.
pub fn refusal_outcome(ctx: &Context, p: &Plan, r: &Refusal) -> Result<ExitStatus, Failure> {
    let dir = ctx.dir.display();
    let message = r.message(p);
    let failure = match r {
        Refusal::NothingToDo => {
            ctx.ui.step(&message);
            return Ok(ExitStatus::Success);
        }
        Refusal::Older => Failure::usage(message)
            .next(format!("movim-setup rollback --dir {dir} --to {}", p.to)),
        Refusal::Newer => Failure::usage(message)
            .next(format!("movim-setup upgrade --dir {dir} --to {}", p.to)),
        Refusal::DatabaseNewer(_) => Failure::new(message)
            .next(format!("movim-setup rollback --dir {dir}   (to the release this database belongs to)")),
        Refusal::NoBackup => Failure::new(message).next(format!(
            "restore a dump of that release by hand (pg_restore), or upgrade instead: movim-setup upgrade --dir {dir} --to VERSION"
        )),
        Refusal::Unhealthy(_) => Failure::new(message)
            .next(format!("movim-setup doctor --dir {dir}"))
            .next(format!("movim-setup upgrade --dir {dir} --to {} --force", p.to)),
        Refusal::Disk { .. } => Failure::new(message).next(format!(
            "df -h {dir}/{}   (free space there, or mount a larger disk at backups/)",
            backup::BACKUPS_DIR
        )),
    };
    Err(failure.detail("nothing was stopped or changed"))
}

/// Removes the dumps retention does not keep.
pub fn prune(ctx: &Context, protected: &BTreeSet<String>, keep: usize) {
    for file in plan::prune(&backup::list(&ctx.dir), protected, keep) {
        match std::fs::remove_file(ctx.dir.join(&file)) {
            Ok(()) => ctx
                .ui
                .info(&format!("removed the old backup {file} (keeping {keep})")),
            Err(e) => ctx
                .ui
                .warn(&format!("cannot remove the old backup {file}: {e}")),
        }
    }
}
impl<'a> Run<'a> {
    /// Runs the steps the journal does not record as done; a failure from `stop` on is rolled back.
    pub async fn execute(mut self) -> Result<ExitStatus, Failure> {
        let kind = self.journal.kind;
        self.ctx.cancel.execute().map_err(|f| {
            f.detail(format!(
                "the journal {} is kept",
                self.dir()
                    .join(crate::core::journal::JOURNAL_FILE)
                    .display()
            ))
            .next(format!(
                "movim-setup {} --resume --dir {}   (or rollback)",
                kind.verb(),
                self.dir().display()
            ))
        })?;
        for step in plan::remaining(kind, &self.journal.done) {
            if let Some(signal) = self.ctx.cancel.requested() {
                return Err(self.interrupted(signal, step).await);
            }
            if step == Step::Start && self.journal.serving_since.is_none() {
                self.journal.serving_since = Some(self.ctx.clock.now_rfc3339());
            }
            let outcome = async {
                self.journal
                    .begin(&self.ctx.dir, step)
                    .or_fail(|| "cannot write the journal".to_owned())?;
                self.ctx
                    .ui
                    .step(&format!("{}: {}", step.name(), self.describe(step)));
                self.step(step).await?;
                self.journal
                    .finish(&self.ctx.dir, step)
                    .or_fail(|| "cannot write the journal".to_owned())
            }
            .await;
            if let Err(failure) = outcome {
                let failure = Failure {
                    what: format!(
                        "{} to {} failed at step `{}`: {}",
                        kind.verb(),
                        self.journal.to.movim,
                        step.name(),
                        failure.what
                    ),
                    ..failure
                };
                if !self.journal.touched(Step::Stop) {
                    let _ = Journal::remove(self.dir());
                    return Err(failure.detail("nothing was stopped or changed"));
                }
                return Err(undo(self, failure).await);
            }
            crate::adapters::journal::checkpoint(&step.checkpoint());
        }
        self.complete()
    }

    /// A signal arrived during the step before `next`: that step is finished; nothing more is
    /// done, and what was done is undone as for a failed step.
    async fn interrupted(self, signal: Signal, next: Step) -> Failure {
        let failure = signal.failure(format!(
            "{} to {} interrupted by {} before step `{}`",
            self.journal.kind.verb(),
            self.journal.to.movim,
            signal.name(),
            next.name()
        ));
        if !self.journal.touched(Step::Stop) {
            let _ = Journal::remove(self.dir());
            return failure.detail("nothing was stopped or changed");
        }
        undo(self, failure).await
    }

    fn describe(&self, step: Step) -> String {
        let p = Plan {
            kind: self.journal.kind,
            project: self.to.project.clone(),
            from: self.from.version.clone(),
            to: self.to.version.clone(),
            images: Vec::new(),
            applied_migrations: None,
            migrations: Migrations::Unknown,
            db_bytes: 0,
            backup_needed: 0,
            free_bytes: 0,
            restore: self.journal.restore.clone(),
            steps: Vec::new(),
            notes: Vec::new(),
            refusal: None,
        };
        p.describe(step)
    }

    async fn step(&mut self, step: Step) -> Result<(), Failure> {
        let (ctx, tools) = (self.ctx, self.tools);
        match step {
            Step::Prepull => prepull(ctx, tools, &self.journal).await,
            Step::Stop => stop_movim(ctx, tools, &self.from).await,
            Step::Backup => {
                let source = backup_source(
                    ctx,
                    tools,
                    &self.from,
                    &self.password,
                    self.journal.backup_tool.clone(),
                )
                .await?;
                let taken = tools
                    .db
                    .dump(&source, &ctx.dir, self.from.version.as_str())
                    .await
                    .or_fail(|| "the database backup failed".to_owned())?;
                ctx.ui.info(&format!(
                    "{}: {}, sha256 {}",
                    taken.file,
                    plan::human(taken.bytes),
                    taken.sha256
                ));
                self.journal.backup = Some(taken);
                self.journal
                    .save(&ctx.dir)
                    .or_fail(|| "cannot write the journal".to_owned())
            }
            Step::Write => self.write_files(),
            Step::Migrate => stack::migrate(ctx, tools, &self.to, &self.password).await,
            Step::Restore => match self.journal.restore.clone() {
                Some(b) => {
                    let source =
                        backup_source(ctx, tools, &self.to, &self.password, b.tool.clone()).await?;
                    tools
                        .db
                        .restore(&source, &ctx.dir, &b)
                        .await
                        .or_fail(|| format!("restoring the database from {} failed", b.file))
                }
                None => match phinx_status(ctx, tools, &self.to).await? {
                    Migrations::Newer(m) => Err(Failure::new(format!(
                        "the database has migrations {} does not know ({}) and no backup is recorded for it",
                        self.to.version,
                        m.join(", ")
                    ))),
                    _ => Ok(()),
                },
            },
            Step::Start => start_movim(ctx, tools, &self.to).await,
            Step::Prove => stack::prove(ctx, tools, &self.to).await,
        }
    }

    /// Writes the target's compose file, answers and lock (with its release recorded) in one
    /// transaction; the previous ones are kept in `backups/files/` and in the journal.
    fn write_files(&self) -> Result<(), Failure> {
        let mut lock = Lock::parse(&self.journal.previous.lock)
            .map_err(|e| Failure::new("the journal's copy of the lock is not valid").detail(e))?;
        lock.movim.clone_from(&self.journal.to.movim);
        lock.images.clone_from(&self.journal.to.images);
        lock.history.push(Release {
            movim: self.journal.to.movim.clone(),
            images: self.journal.to.images.clone(),
            at: self.ctx.clock.now_rfc3339(),
            backup: self.journal.backup.clone(),
            outcome: match self.journal.kind {
                Kind::Upgrade => "upgrading",
                Kind::Rollback => "rolling-back",
            }
            .to_owned(),
        });
        let mut files = layout_files(
            self.ctx,
            self.tools.runner.layout(),
            &self.to,
            &self.password,
            &lock.images,
        )?;
        let answers = render::answers_yaml(&self.to)
            .map_err(|e| Failure::new("cannot render the answers").detail(e))?;
        files.push((
            ANSWERS_FILE,
            render::File {
                content: answers,
                mode: 0o644,
                secret: false,
            },
        ));
        let lock_text = lock
            .to_yaml()
            .map_err(|e| Failure::new("cannot render the lock").detail(e))?;
        let mut writes: Vec<(&str, &[u8], u32)> = files
            .iter()
            .map(|(name, f)| (*name, f.content.as_bytes(), f.mode))
            .collect();
        writes.push((LOCK_FILE, lock_text.as_bytes(), 0o644));
        put_files(self.ctx, &writes)
    }

    /// The run succeeded: record it in the lock, drop the journal, prune old dumps.
    fn complete(self) -> Result<ExitStatus, Failure> {
        let dir = self.dir();
        let path = dir.join(LOCK_FILE);
        let mut lock = Lock::parse(&read(dir, LOCK_FILE)?)
            .map_err(|e| Failure::new(format!("{} is not valid", path.display())).detail(e))?;
        if let Some(last) = lock.history.last_mut() {
            last.outcome = match self.journal.kind {
                Kind::Upgrade => "upgraded",
                Kind::Rollback => "rolled-back",
            }
            .to_owned();
        }
        let text = lock
            .to_yaml()
            .map_err(|e| Failure::new("cannot render the lock").detail(e))?;
        fsx::write_atomic(&path, text.as_bytes(), 0o644)
            .or_fail(|| format!("cannot write {}", path.display()))?;
        Journal::remove(dir).or_fail(|| "cannot remove the journal".to_owned())?;
        let mut protected = plan::protected_backups(&lock.history, self.keep_backups);
        protected.extend(self.journal.backup.iter().map(|b| b.file.clone()));
        prune(self.ctx, &protected, self.keep_backups);
        self.ctx.ui.step(&format!(
            "Movim {} is up and healthy ({} from {})",
            self.to.version,
            match self.journal.kind {
                Kind::Upgrade => "upgraded",
                Kind::Rollback => "rolled back",
            },
            self.from.version
        ));
        if let Some(b) = &self.journal.backup {
            self.ctx.ui.info(&format!(
                "the database of {} is kept in {} ({}, sha256 {})",
                self.from.version,
                dir.join(&b.file).display(),
                plan::human(b.bytes),
                b.sha256
            ));
        }
        self.ctx.ui.info(&match self.journal.kind {
            Kind::Upgrade => format!("to go back: movim-setup rollback --dir {}", dir.display()),
            Kind::Rollback => format!(
                "to go forward again: movim-setup upgrade --dir {} --to {}",
                dir.display(),
                self.from.version
            ),
        });
        Ok(ExitStatus::Success)
    }
}
