//! Reading the world a release plan is computed from: health, the database, free disk, hand edits.

use super::steps::layout_files;
use crate::adapters::Tools;
use crate::adapters::backup;
use crate::adapters::database::DbError;
use crate::adapters::fsx;
use crate::context::Context;
use crate::core::containers::container_of;
use crate::core::deployment::{Deployment, postgres_major};
use crate::core::lockfile::{self, Lock};
use crate::core::plan::{self, Health, Kind, Migrations, Observed};
use crate::core::secret::Secret;
use crate::error::{Failure, OrFail};
use crate::stack;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a run goes to, and what it knows about it before observing.
pub struct Target<'a> {
    pub kind: Kind,
    pub d: &'a Deployment,
    pub lock: &'a Lock,
    pub password: &'a Secret,
    pub to: Deployment,
    pub images: BTreeMap<String, String>,
    pub force: bool,
    /// Rollback: the dump taken when leaving the target.
    pub backup: Option<lockfile::BackupRef>,
}

/// Reads the world the plan is computed from.
pub async fn observe(ctx: &Context, tools: &Tools, t: Target<'_>) -> Result<Observed, Failure> {
    let d = t.d;
    ctx.ui.step("checking that the stack serves now");
    let health = health(ctx, tools, d).await;
    if let Health::Unhealthy(why) = &health {
        ctx.ui.warn(&format!("the stack is not healthy: {why}"));
    }
    let target = stack::db_target(tools, d, t.password).await.map_err(|f| {
        Failure::new("cannot reach the database, so it cannot be backed up")
            .detail(f.to_string())
            .detail("nothing was stopped or changed")
            .next("movim-setup doctor")
    })?;
    let facts = match tools.db.facts(&target, Duration::from_secs(10)).await {
        Ok(facts) => facts,
        Err(DbError::Login(e)) => {
            return Err(
                Failure::new("cannot reach the database, so it cannot be backed up")
                    .because(e)
                    .detail("nothing was stopped or changed")
                    .next("movim-setup doctor"),
            );
        }
        Err(DbError::Read(e)) => {
            return Err(
                Failure::new(format!("cannot inspect the database {}", target.describe()))
                    .because(e),
            );
        }
    };
    let backups = ctx.dir.join(backup::BACKUPS_DIR);
    let probe = if backups.is_dir() { &backups } else { &ctx.dir };
    let free = fsx::free_bytes(probe)
        .or_fail(|| format!("cannot tell the free space of {}", probe.display()))?;
    let mut notes = Vec::new();
    let main = tools.runner.layout().main_file();
    if let Ok(on_disk) = std::fs::read_to_string(ctx.dir.join(main))
        && let Ok(files) = layout_files(ctx, tools.runner.layout(), d, t.password, &t.lock.images)
        && files
            .iter()
            .any(|(name, f)| *name == main && f.content != on_disk)
    {
        notes.push(format!(
            "{main} differs from what movim-setup wrote (hand edits?); it will be replaced, the edited one kept in backups/files/"
        ));
    }
    if let Some(b) = &t.backup {
        notes.push(format!(
            "backup for going back: {} ({})",
            b.file,
            plan::human(b.bytes)
        ));
    }
    let force = t.force || t.kind == Kind::Rollback;
    Ok(Observed {
        kind: t.kind,
        project: d.project.clone(),
        current: d.version.clone(),
        current_images: t.lock.images.clone(),
        target: t.to.version.clone(),
        target_images: t.images,
        health,
        force,
        applied_migrations: facts.phinxlog.as_ref().map(Vec::len),
        migrations: Migrations::Unknown,
        db_bytes: u64::try_from(facts.size_bytes).unwrap_or(0),
        db_major: postgres_major(&facts.server_version),
        db_version: facts.server_version,
        free_bytes: free,
        target_backup: t.backup,
        notes,
    })
}

/// Every Movim service runs and is healthy, and the stack passes the proof a browser would give.
pub async fn health(ctx: &Context, tools: &Tools, d: &Deployment) -> Health {
    let containers = match tools
        .engine
        .service_containers(&d.project, tools.runner.layout())
        .await
    {
        Ok(c) => c,
        Err(e) => return Health::Unhealthy(format!("cannot list the containers: {e:#}")),
    };
    for (service, _) in d.images() {
        let Some(c) = container_of(&containers, &service) else {
            return Health::Unhealthy(format!("{service} has no container"));
        };
        if !c.running {
            return Health::Unhealthy(format!("{service} is {}", c.status));
        }
        let c = tools.engine.with_health_now(c.clone()).await;
        if let Some(h) = c.health.as_deref()
            && h != "healthy"
        {
            return Health::Unhealthy(format!("{service} is {h}"));
        }
    }
    match stack::prove(ctx, tools, d).await {
        Ok(()) => Health::Healthy,
        Err(f) => Health::Unhealthy(f.what),
    }
}
