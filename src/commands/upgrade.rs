//! `movim-setup upgrade`: observe → plan → execute, so that every upgrade ends healthy, on the new
//! release or back on the old one, with nothing lost.
//!
//! Observe the deployment (lock, answers, containers, database size and `phinxlog`, free disk);
//! compute the plan as data ([`crate::core::plan`]) and print it (`--dry-run` stops there); refuse,
//! before stopping anything, when the stack is unhealthy (unless `--force`), an image cannot be
//! resolved or pulled, the disk cannot hold the backup, the target is older, or another run holds
//! the lock. Then execute step by step — pre-pull while the old release serves, stop daemon, fpm
//! and web, dump the database, write the new files, migrate, start, prove — with the journal
//! written once the user agreed and the images are pulled, then before each step, with a named
//! checkpoint after each. A failure from `stop` on rolls back automatically
//! ([`crate::release::undo`]); a crash leaves the journal for `upgrade --resume` (which makes the
//! health, disk and target checks again first) or `rollback`. A journal that records nothing past
//! the pre-pull stands for nothing done: the next run removes it and says so.
//!
//! The transition itself lives in [`crate::release`], shared with `rollback`, which is the same
//! sequence with a database restore where an upgrade migrates.

use crate::adapters::backup;
use crate::adapters::store;
use crate::adapters::store::Saved;
use crate::cli::UpgradeArgs;
use crate::context::Context;
use crate::core::deployment::{Deployment, MovimTag, Service};
use crate::core::image_ref::ImageRef;
use crate::core::plan::{self, Kind};
use crate::error::{ExitStatus, Failure, OrFail};
use crate::release::Run;
use crate::release::observe::{Target, observe};
use crate::release::pin::pin_target;
use crate::release::preflight::{
    Left, done_list, installed, interrupted, left_journal, password, run_lock_existing,
};
use crate::release::resume;
use crate::release::run::{plan_and_execute, refusal_outcome};

pub async fn run(ctx: &Context, args: UpgradeArgs) -> Result<ExitStatus, Failure> {
    if args.dry_run {
        return dry_run(ctx, &args).await;
    }
    let _held = run_lock_existing(ctx, "upgrade")?;
    let saved = Saved::load(&ctx.dir)?;
    let (d, lock) = installed(ctx, &saved)?;
    let password = password(ctx, &saved)?;
    backup::remove_partials(&ctx.dir);
    let tools = ctx.connect.tools(ctx, store::layout(&ctx.dir)).await?;
    match left_journal(ctx, true)? {
        Left::Interrupted(j) if args.resume => {
            if j.kind != Kind::Upgrade {
                return Err(Failure::usage(format!(
                    "the interrupted run is a rollback to {}, not an upgrade",
                    j.to.movim
                ))
                .next(format!("movim-setup rollback --dir {}", ctx.dir.display())));
            }
            if let Some(to) = &args.to
                && MovimTag::parse(to).map(|t| t.to_string()).as_deref() != Ok(j.to.movim.as_str())
            {
                return Err(Failure::usage(format!(
                    "the interrupted upgrade goes to {}, not {to}",
                    j.to.movim
                ))
                .next(format!(
                    "movim-setup upgrade --resume --dir {}",
                    ctx.dir.display()
                )));
            }
            resume::check(ctx, &tools, &d, &lock, &password, &j, args.force).await?;
            ctx.ui.step(&format!(
                "resuming the upgrade {} -> {} (done: {})",
                j.from.movim,
                j.to.movim,
                done_list(&j)
            ));
            let run = Run::from_journal(ctx, &tools, &saved, j, args.keep_backups)?;
            return run.execute().await;
        }
        Left::Interrupted(j) => return Err(interrupted(ctx, &j)),
        left if args.resume => {
            let to = match &left {
                Left::ChangedNothing(j) => j.to.movim.clone(),
                _ => "VERSION".to_owned(),
            };
            return Err(
                Failure::usage("there is no interrupted upgrade to resume").next(format!(
                    "movim-setup upgrade --dir {} --to {to}",
                    ctx.dir.display()
                )),
            );
        }
        Left::None | Left::ChangedNothing(_) => {}
    }
    let Some(to) = target(ctx, &args, &d).await? else {
        return Ok(ExitStatus::Success);
    };
    let mut to_d = d.clone();
    to_d.version = to.clone();
    let to_images = pin_target(ctx, &to_d, &lock).await?;
    let observed = observe(
        ctx,
        &tools,
        Target {
            kind: Kind::Upgrade,
            d: &d,
            lock: &lock,
            password: &password,
            to: to_d,
            images: to_images,
            force: args.force,
            backup: None,
        },
    )
    .await?;
    plan_and_execute(ctx, &tools, &d, &password, observed, args.keep_backups).await
}

/// `--dry-run`: the plan, from what can be known without pulling, and nothing else.
async fn dry_run(ctx: &Context, args: &UpgradeArgs) -> Result<ExitStatus, Failure> {
    let saved = Saved::load(&ctx.dir)?;
    let (d, lock) = &installed(ctx, &saved)?;
    let password = &password(ctx, &saved)?;
    let tools = ctx.connect.tools(ctx, store::layout(&ctx.dir)).await?;
    if let Left::Interrupted(j) = left_journal(ctx, false)? {
        return Err(interrupted(ctx, &j));
    }
    let Some(to) = target(ctx, args, d).await? else {
        return Ok(ExitStatus::Success);
    };
    let mut to_d = d.clone();
    to_d.version = to;
    let images = pin_target(ctx, &to_d, lock).await?;
    let observed = observe(
        ctx,
        &tools,
        Target {
            kind: Kind::Upgrade,
            d,
            lock,
            password,
            to: to_d,
            images,
            force: args.force,
            backup: None,
        },
    )
    .await?;
    let p = plan::compute(&observed);
    print!("{}", p.render());
    if let Some(r) = &p.refusal {
        return refusal_outcome(ctx, &p, r);
    }
    ctx.ui
        .step("dry run: nothing was pulled, stopped, written or started");
    Ok(ExitStatus::Success)
}

/// The release asked for; an older one is refused at once (before asking the registry about it).
/// The release to go to: `--to`, or the newest release the image repository lists. `None` when
/// the deployment runs the newest already (said, and nothing to do).
async fn target(
    ctx: &Context,
    args: &UpgradeArgs,
    d: &Deployment,
) -> Result<Option<MovimTag>, Failure> {
    let current = &d.version;
    let to = match &args.to {
        Some(to) => MovimTag::parse(to).map_err(|e| Failure::usage(format!("--to {to}: {e}")))?,
        None => {
            let newest = newest_release(ctx, d).await?;
            if newest.numbers() <= current.numbers() {
                ctx.ui.step(&format!(
                    "Movim {current} is the newest release in {}: nothing to upgrade",
                    d.image_repository
                ));
                return Ok(None);
            }
            ctx.ui.step(&format!(
                "the newest release in {} is {newest}",
                d.image_repository
            ));
            newest
        }
    };
    if to.numbers() < current.numbers() {
        return Err(Failure::usage(format!(
            "{to} is older than the running {current}: going back is `rollback`"
        ))
        .detail("nothing was stopped or changed")
        .next(format!(
            "movim-setup rollback --dir {} --to {to}",
            ctx.dir.display()
        )));
    }
    Ok(Some(to))
}

/// The newest `vX.Y.Z` tag of the daemon image's repository ([`plan::newest_release`]).
async fn newest_release(ctx: &Context, d: &Deployment) -> Result<MovimTag, Failure> {
    let reference = d.movim_image(Service::Daemon);
    let image = ImageRef::parse(&reference)
        .map_err(|e| Failure::new(format!("bad image reference {reference}: {e}")))?;
    let pick = "name the release: movim-setup upgrade --to vX.Y.Z";
    let client = ctx
        .registries
        .client(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let tags = client.tags(&image).await.map_err(|e| {
        Failure::new(format!("cannot list the releases of {}", image.name()))
            .because(e)
            .detail("nothing was stopped or changed")
            .next(pick)
    })?;
    plan::newest_release(&tags).ok_or_else(|| {
        Failure::new(format!(
            "{} lists no release tag (vX.Y or vX.Y.Z) among its {} tag(s)",
            image.name(),
            tags.len()
        ))
        .next(pick)
    })
}
