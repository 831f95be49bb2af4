//! Before `upgrade --resume` goes on with an interrupted upgrade: the checks a fresh upgrade makes
//! first (the target, the health of what keeps running, the disk), made again on the world as it
//! is now, since the interruption may be old.

use super::steps::prepull;
use crate::adapters::Tools;
use crate::adapters::backup;
use crate::adapters::fsx;
use crate::context::Context;
use crate::core::containers::container_of;
use crate::core::deployment::{Deployment, Service};
use crate::core::journal::{self, Journal, NotResumed};
use crate::core::lockfile::Lock;
use crate::core::plan::{self, Health};
use crate::core::secret::Secret;
use crate::error::{Failure, OrFail};
use crate::stack;
use std::time::Duration;

/// Refuses to resume `j` when a fresh upgrade would refuse to start, then makes sure the target's
/// images are here (pulled again by digest if they were removed since).
pub async fn check(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    lock: &Lock,
    password: &Secret,
    j: &Journal,
    force: bool,
) -> Result<(), Failure> {
    ctx.ui
        .step("checking again before resuming: the target, what keeps running, the disk");
    let (health, db_bytes) = kept_running(tools, d, password).await;
    let backups = ctx.dir.join(backup::BACKUPS_DIR);
    let probe = if backups.is_dir() { &backups } else { &ctx.dir };
    let free = fsx::free_bytes(probe)
        .or_fail(|| format!("cannot tell the free space of {}", probe.display()))?;
    journal::resume_check(j, &lock.movim, &health, force, db_bytes, free)
        .map_err(|e| refusal(ctx, j, e))?;
    prepull(ctx, tools, j).await
}

/// Whether what an upgrade does not stop (the database, the XMPP server, Caddy) runs and is
/// healthy, and the database answers; with the database's size.
async fn kept_running(tools: &Tools, d: &Deployment, password: &Secret) -> (Health, u64) {
    let containers = match tools
        .engine
        .service_containers(&d.project, tools.runner.layout())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            return (
                Health::Unhealthy(format!("cannot list the containers: {e:#}")),
                0,
            );
        }
    };
    let movim: Vec<&str> = Service::MOVIM.iter().map(|s| s.name()).collect();
    for (service, _) in d.images() {
        if movim.contains(&service.as_str()) {
            continue;
        }
        let Some(c) = container_of(&containers, &service) else {
            return (Health::Unhealthy(format!("{service} has no container")), 0);
        };
        let c = tools.engine.with_health_now(c.clone()).await;
        if !c.running || c.health.as_deref().is_some_and(|h| h != "healthy") {
            let state = c.health.clone().unwrap_or_else(|| c.status.clone());
            return (Health::Unhealthy(format!("{service} is {state}")), 0);
        }
    }
    let facts = match stack::db_target(tools, d, password).await {
        Ok(target) => tools
            .db
            .facts(&target, Duration::from_secs(10))
            .await
            .map_err(|e| format!("{:#}", e.into_cause())),
        Err(f) => Err(f.to_string()),
    };
    match facts {
        Ok(f) => (Health::Healthy, u64::try_from(f.size_bytes).unwrap_or(0)),
        Err(why) => (
            Health::Unhealthy(format!("the database does not answer: {why}")),
            0,
        ),
    }
}

fn refusal(ctx: &Context, j: &Journal, e: NotResumed) -> Failure {
    let dir = ctx.dir.display();
    let (from, to) = (&j.from.movim, &j.to.movim);
    let failure = match e {
        NotResumed::Moved { locked } => Failure::new(format!(
            "the deployment changed since the interrupted upgrade {from} -> {to}: movim-setup.lock names {locked}"
        ))
        .next(format!("movim-setup doctor --dir {dir}")),
        NotResumed::NotNewer => Failure::usage(format!(
            "the interrupted upgrade goes from {from} to {to}, which is not newer: going back is `rollback`"
        ))
        .next(format!("movim-setup rollback --dir {dir}")),
        NotResumed::Unhealthy(why) => Failure::new(format!(
            "what keeps running during an upgrade is not healthy now ({why}); fix it first, or pass --force"
        ))
        .next(format!("movim-setup doctor --dir {dir}"))
        .next(format!("movim-setup upgrade --resume --dir {dir} --force")),
        NotResumed::Disk { needed, free } => Failure::new(format!(
            "the backup still to be taken needs up to {} but only {} is free where backups/ lives",
            plan::human(needed),
            plan::human(free)
        ))
        .next(format!(
            "df -h {dir}/{}   (free space there, or mount a larger disk at backups/)",
            backup::BACKUPS_DIR
        )),
    };
    failure
        .detail("nothing was changed now: the interrupted upgrade is left as it was")
        .next(format!("or undo it: movim-setup rollback --dir {dir}"))
}
