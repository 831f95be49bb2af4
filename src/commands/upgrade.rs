//! `movim-setup upgrade`: observe → plan → execute, so that every upgrade ends healthy, on the new
//! release or back on the old one, with nothing lost.
//!
//! Observe the deployment (lock, answers, containers, database size and `phinxlog`, free disk);
//! compute the plan as data ([`crate::core::plan`]) and print it (`--dry-run` stops there); refuse,
//! before stopping anything, when the stack is unhealthy (unless `--force`), an image cannot be
//! resolved or pulled, the disk cannot hold the backup, the target is older, or another run holds
//! the lock. Then execute step by step — pre-pull while the old release serves, stop daemon, fpm
//! and web, dump the database, write the new files, migrate, start, prove — with the journal
//! written before each step and a named checkpoint after it. A failure from `stop` on rolls back
//! automatically ([`super::rollback::undo`]); a crash leaves the journal for `upgrade --resume`
//! or `rollback`.
//!
//! The executor ([`Run`]) is shared with `rollback` by hand, which is the same sequence with a
//! database restore where an upgrade migrates.

use crate::adapters::backup;
use crate::adapters::db;
use crate::adapters::fsx::{self, Transaction};
use crate::adapters::registry::{ImageRef, RegistryClient};
use crate::cli::UpgradeArgs;
use crate::context::Context;
use crate::core::deployment::{Database, Deployment, MovimTag, POSTGRES_TAG};
use crate::core::journal::{self, Files, Journal, RunLock, Side};
use crate::core::layout::Layout;
use crate::core::lockfile::{self, LOCK_FILE, Lock, Release};
use crate::core::plan::{self, Health, Kind, Migrations, Observed, Plan, Refusal, Step};
use crate::core::render::kube::{self, KUBE_FILE, PODMAN_FILE};
use crate::core::render::{self, ANSWERS_FILE, COMPOSE_FILE, Extras};
use crate::core::secret::Secret;
use crate::error::{ExitStatus, Failure, OrFail};
use crate::stack::{self, Runner, Saved, Tools};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

/// The Movim services an upgrade stops and starts again (the database and XMPP server keep running).
pub const MOVIM_SERVICES: [&str; 3] = ["web", "daemon", "fpm"];

/// Where the target release's `phinx status` runs from (a compose file of the target's images
/// beside links to the real configuration), removed right after.
const PROBE_DIR: &str = ".upgrade-probe";

pub async fn run(ctx: &Context, args: UpgradeArgs) -> Result<ExitStatus, Failure> {
    let saved = Saved::load(&ctx.dir)?;
    let (d, lock) = installed(ctx, &saved)?;
    let password = password(ctx, &saved)?;
    if args.dry_run {
        return dry_run(ctx, &args, &d, &lock, &password).await;
    }
    let _held = run_lock(ctx, "upgrade")?;
    backup::remove_partials(&ctx.dir);
    let tools = Tools::connect_for(ctx, Layout::detect(&ctx.dir)).await?;
    match Journal::load(&ctx.dir).or_fail(|| "cannot read the upgrade journal".to_owned())? {
        Some(j) if args.resume => {
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
            ctx.ui.step(&format!(
                "resuming the upgrade {} -> {} (done: {})",
                j.from.movim,
                j.to.movim,
                done_list(&j)
            ));
            let run = Run::from_journal(ctx, &tools, &saved, j, args.keep_backups)?;
            return run.execute().await;
        }
        Some(j) => return Err(interrupted(ctx, &j)),
        None if args.resume => {
            return Err(
                Failure::usage("there is no interrupted upgrade to resume").next(format!(
                    "movim-setup upgrade --dir {} --to VERSION",
                    ctx.dir.display()
                )),
            );
        }
        None => {}
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
async fn dry_run(
    ctx: &Context,
    args: &UpgradeArgs,
    d: &Deployment,
    lock: &Lock,
    password: &Secret,
) -> Result<ExitStatus, Failure> {
    let tools = Tools::connect_for(ctx, Layout::detect(&ctx.dir)).await?;
    if let Some(j) =
        Journal::load(&ctx.dir).or_fail(|| "cannot read the upgrade journal".to_owned())?
    {
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

/// The deployment and lock `init` wrote, or the command that makes them.
pub(super) fn installed(ctx: &Context, saved: &Saved) -> Result<(Deployment, Lock), Failure> {
    match (&saved.deployment, &saved.lock) {
        (Some(d), Some(l)) => Ok((d.clone(), l.clone())),
        _ => Err(Failure::usage(format!(
            "{} holds no deployment (movim-setup.yaml and movim-setup.lock)",
            ctx.dir.display()
        ))
        .next(format!("movim-setup init --dir {}", ctx.dir.display()))),
    }
}

pub(super) fn password(ctx: &Context, saved: &Saved) -> Result<Secret, Failure> {
    saved.db_password().ok_or_else(|| {
        Failure::usage(format!(
            "{} has no DB_PASSWORD in movim.env",
            ctx.dir.display()
        ))
        .next(format!("movim-setup doctor --dir {}", ctx.dir.display()))
    })
}

/// Takes the run lock, or says who holds it.
pub(super) fn run_lock(ctx: &Context, command: &str) -> Result<RunLock, Failure> {
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

/// The refusal when a journal is left.
pub(super) fn interrupted(ctx: &Context, j: &Journal) -> Failure {
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

fn done_list(j: &Journal) -> String {
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
            let newest = newest_release(d).await?;
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
async fn newest_release(d: &Deployment) -> Result<MovimTag, Failure> {
    let reference = d.movim_image("daemon");
    let image = ImageRef::parse(&reference)
        .map_err(|e| Failure::new(format!("bad image reference {reference}: {e}")))?;
    let pick = "name the release: movim-setup upgrade --to vX.Y.Z";
    let client = RegistryClient::new(d.ca_bundle.as_deref())
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

/// Pins the target's images: a service whose unpinned reference does not change keeps its
/// digest (the database is not upgraded behind the user's back); the others are resolved.
async fn pin_target(
    ctx: &Context,
    to: &Deployment,
    lock: &Lock,
) -> Result<BTreeMap<String, String>, Failure> {
    ctx.ui
        .step(&format!("resolving the images of {} by digest", to.version));
    let client = RegistryClient::new(to.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let mut images = BTreeMap::new();
    for (service, reference) in to.images() {
        if let Some(kept) = lock
            .images
            .get(&service)
            .filter(|p| p.split('@').next() == Some(reference.as_str()))
        {
            images.insert(service, kept.clone());
            continue;
        }
        let pinned = resolve(&client, &reference).await?;
        images.insert(service, pinned);
    }
    Ok(images)
}

async fn resolve(client: &RegistryClient, reference: &str) -> Result<String, Failure> {
    let image = ImageRef::parse(reference)
        .map_err(|e| Failure::usage(format!("bad image reference {reference}: {e}")))?;
    let digest = client.resolve(&image).await.map_err(|e| {
        Failure::new(format!("cannot resolve {reference} at its registry"))
            .because(e)
            .detail("nothing was stopped or changed")
            .next("check the release name (--to) and that the registry answers")
    })?;
    Ok(image.pinned(&digest))
}

/// What a run goes to, and what it knows about it before observing.
pub(super) struct Target<'a> {
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
pub(super) async fn observe(
    ctx: &Context,
    tools: &Tools,
    t: Target<'_>,
) -> Result<Observed, Failure> {
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
    let mut conn = db::connect(&target, Duration::from_secs(10))
        .await
        .map_err(|e| {
            Failure::new("cannot reach the database, so it cannot be backed up")
                .because(e)
                .detail("nothing was stopped or changed")
                .next("movim-setup doctor")
        })?;
    let facts = db::facts(&mut conn)
        .await
        .or_fail(|| format!("cannot inspect the database {}", target.describe()))?;
    drop(conn);
    let backups = ctx.dir.join(backup::BACKUPS_DIR);
    let probe = if backups.is_dir() { &backups } else { &ctx.dir };
    let free = fsx::free_bytes(probe)
        .or_fail(|| format!("cannot tell the free space of {}", probe.display()))?;
    let mut notes = Vec::new();
    let main = tools.layout().main_file();
    if let Ok(on_disk) = std::fs::read_to_string(ctx.dir.join(main))
        && let Ok(files) = layout_files(ctx, tools.layout(), d, t.password, &t.lock.images)
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
        free_bytes: free,
        target_backup: t.backup,
        notes,
    })
}

/// Every Movim service runs and is healthy, and the stack passes the proof a browser would give.
async fn health(ctx: &Context, tools: &Tools, d: &Deployment) -> Health {
    let containers = match tools
        .engine
        .service_containers(&d.project, tools.layout())
        .await
    {
        Ok(c) => c,
        Err(e) => return Health::Unhealthy(format!("cannot list the containers: {e:#}")),
    };
    for (service, _) in d.images() {
        let Some(c) = containers
            .iter()
            .find(|c| c.service.as_deref() == Some(service.as_str()))
        else {
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

/// Plans with what pulling reveals, prints the plan, refuses or executes.
pub(super) async fn plan_and_execute(
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
        main: read(&ctx.dir, tools.layout().main_file())?,
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
    );
    if let Database::External { .. } = d.database {
        j.backup_tool = Some(backup_tool(ctx, d).await?);
    }
    j.begin(&ctx.dir, Step::Prepull)
        .or_fail(|| "cannot write the upgrade journal".to_owned())?;
    let ready = async {
        prepull(ctx, tools, &j).await?;
        let m = probe_migrations(ctx, tools, &to_d, &observed.target_images, password).await?;
        Ok::<_, Failure>(m)
    }
    .await;
    let migrations = match ready {
        Ok(m) => m,
        Err(f) => {
            let _ = Journal::remove(&ctx.dir);
            return Err(f.detail("nothing was stopped or changed"));
        }
    };
    observed.migrations = migrations;
    let p = plan::compute(&observed);
    print!("{}", p.render());
    if let Some(r) = &p.refusal {
        let _ = Journal::remove(&ctx.dir);
        return refusal_outcome(ctx, &p, r);
    }
    if !confirmed(ctx, &p)? {
        let _ = Journal::remove(&ctx.dir);
        ctx.ui.step("not confirmed: nothing was stopped or changed");
        return Ok(ExitStatus::Failed);
    }
    j.restore = p.restore.clone();
    j.finish(&ctx.dir, Step::Prepull)
        .or_fail(|| "cannot write the upgrade journal".to_owned())?;
    journal::checkpoint(&Step::Prepull.checkpoint());
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

fn read(dir: &Path, name: &str) -> Result<String, Failure> {
    std::fs::read_to_string(dir.join(name))
        .or_fail(|| format!("cannot read {}", dir.join(name).display()))
}

fn confirmed(ctx: &Context, p: &Plan) -> Result<bool, Failure> {
    if ctx.yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    dialoguer::Confirm::new()
        .with_prompt(format!(
            "{} Movim {} -> {} now (downtime until step 7)?",
            p.kind.verb(),
            p.from,
            p.to
        ))
        .default(false)
        .interact()
        .map_err(|e| {
            Failure::usage("could not ask for confirmation")
                .because(e)
                .next("pass --yes")
        })
}

/// A refusal as the command's outcome: nothing to do is success, the rest fail naming the fix.
pub(super) fn refusal_outcome(ctx: &Context, p: &Plan, r: &Refusal) -> Result<ExitStatus, Failure> {
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

/// The postgres image whose `pg_dump` backs up an external database, pinned.
async fn backup_tool(ctx: &Context, d: &Deployment) -> Result<String, Failure> {
    let reference = format!(
        "{}/postgres:{POSTGRES_TAG}",
        d.library_repository.trim_end_matches('/')
    );
    ctx.ui.info(&format!(
        "the external database is backed up with pg_dump from {reference}"
    ));
    let client = RegistryClient::new(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    resolve(&client, &reference).await
}

async fn prepull(ctx: &Context, tools: &Tools, j: &Journal) -> Result<(), Failure> {
    let mut wanted: Vec<String> = j.to.images.values().cloned().collect();
    wanted.extend(j.backup_tool.clone());
    let hint = format!("movim-setup {} --dir {}", j.kind.verb(), ctx.dir.display());
    stack::pull_pinned(ctx, tools, &wanted, &hint).await
}

/// What the target release's daemon image says about the database (`phinx status`), asked in a
/// one-shot container of that image while the current release keeps serving.
async fn probe_migrations(
    ctx: &Context,
    tools: &Tools,
    to: &Deployment,
    images: &BTreeMap<String, String>,
    password: &Secret,
) -> Result<Migrations, Failure> {
    ctx.ui.step(&format!(
        "asking {}'s daemon image which migrations it would run (phinx status)",
        to.version
    ));
    if let Runner::KubePlay(k) = &tools.runner {
        let image = images
            .get("daemon")
            .ok_or_else(|| Failure::new(format!("{} pins no daemon image", to.version)))?;
        let (code, output) = k
            .movim_oneshot(
                &ctx.dir,
                &to.project,
                image,
                "php",
                &["vendor/bin/phinx", "status"],
            )
            .await
            .or_fail(|| format!("cannot run `phinx status` of {}", to.version))?;
        return parse_status(code, &output, to);
    }
    let probe = ctx.dir.join(PROBE_DIR);
    let _ = std::fs::remove_dir_all(&probe);
    let result = async {
        let files = render::files(
            to,
            &render::Secrets {
                db_password: password.clone(),
            },
            images,
            &Extras::default(),
        )
        .map_err(|e| Failure::new("cannot render the target's compose file").detail(e))?;
        let compose = files
            .get(COMPOSE_FILE)
            .ok_or_else(|| Failure::new("the renderer wrote no compose file"))?;
        fsx::write_atomic(&probe.join(COMPOSE_FILE), compose.content.as_bytes(), 0o600)
            .or_fail(|| format!("cannot write {}", probe.display()))?;
        // The compose file names its mounts relative to its directory.
        for name in std::fs::read_dir(&ctx.dir)
            .or_fail(|| format!("cannot list {}", ctx.dir.display()))?
            .flatten()
            .map(|e| e.file_name())
        {
            let skip = [COMPOSE_FILE, PROBE_DIR, backup::BACKUPS_DIR];
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            let real = std::path::absolute(ctx.dir.join(&name))
                .or_fail(|| format!("cannot resolve {}", ctx.dir.display()))?;
            std::os::unix::fs::symlink(&real, probe.join(&name))
                .or_fail(|| format!("cannot link {} into {}", real.display(), probe.display()))?;
        }
        let (code, output) = tools
            .daemon_php(&probe, &to.project, &["vendor/bin/phinx", "status"])
            .await
            .or_fail(|| format!("cannot run `phinx status` of {}", to.version))?;
        parse_status(code, &output, to)
    }
    .await;
    let _ = std::fs::remove_dir_all(&probe);
    result
}

fn parse_status(code: i32, output: &str, to: &Deployment) -> Result<Migrations, Failure> {
    plan::parse_phinx_status(code, output).map_err(|e| {
        Failure::new(format!(
            "cannot tell which migrations {} would run",
            to.version
        ))
        .detail(e)
    })
}

/// The files of `layout` an upgrade or rollback rewrites besides the answers and the lock,
/// rendered for `d` running `images`: `compose.yaml`; or `kube/podman.yaml` and `kube/movim.yaml`.
pub(super) fn layout_files(
    ctx: &Context,
    layout: Layout,
    d: &Deployment,
    password: &Secret,
    images: &BTreeMap<String, String>,
) -> Result<Vec<(&'static str, render::File)>, Failure> {
    let (mut files, wanted) = match layout {
        Layout::Compose => (
            render::files(
                d,
                &render::Secrets {
                    db_password: password.clone(),
                },
                images,
                &Extras::default(),
            )
            .map_err(|e| Failure::new("cannot render the compose file").detail(e))?,
            vec![COMPOSE_FILE],
        ),
        Layout::KubePlay => {
            let dir = std::path::absolute(&ctx.dir)
                .or_fail(|| format!("cannot resolve {}", ctx.dir.display()))?;
            (
                kube::files(d, password, images, &dir)
                    .map_err(|e| Failure::new("cannot render the kube manifests").detail(e))?,
                vec![PODMAN_FILE, KUBE_FILE],
            )
        }
    };
    wanted
        .into_iter()
        .map(|name| {
            files
                .remove(name)
                .map(|f| (name, f))
                .ok_or_else(|| Failure::new(format!("the renderer wrote no {name}")))
        })
        .collect()
}

/// One upgrade or rollback being executed, rebuilt from its journal when resumed.
pub(super) struct Run<'a> {
    pub ctx: &'a Context,
    pub tools: &'a Tools,
    pub password: Secret,
    pub journal: Journal,
    /// The release left (its answers as they were) and the one gone to.
    pub from: Deployment,
    pub to: Deployment,
    pub keep_backups: usize,
}

impl<'a> Run<'a> {
    /// Everything a run needs is in the journal, but the password (kept in `movim.env`).
    pub fn from_journal(
        ctx: &'a Context,
        tools: &'a Tools,
        saved: &Saved,
        journal: Journal,
        keep_backups: usize,
    ) -> Result<Self, Failure> {
        let broken = |e: String| {
            Failure::new(format!(
                "{} does not describe the deployment it interrupted",
                ctx.dir.join(journal::JOURNAL_FILE).display()
            ))
            .detail(e)
            .next("movim-setup doctor")
        };
        let from: Deployment =
            serde_norway::from_str(&journal.previous.answers).map_err(|e| broken(e.to_string()))?;
        let mut to = from.clone();
        to.version = MovimTag::parse(&journal.to.movim).map_err(broken)?;
        Ok(Self {
            ctx,
            tools,
            password: password(ctx, saved)?,
            journal,
            from,
            to,
            keep_backups,
        })
    }

    fn dir(&self) -> &Path {
        &self.ctx.dir
    }

    /// Runs the steps the journal does not record as done; a failure from `stop` on is rolled back.
    pub async fn execute(mut self) -> Result<ExitStatus, Failure> {
        let kind = self.journal.kind;
        for step in plan::remaining(kind, &self.journal.done) {
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
                return Err(super::rollback::undo(self, failure).await);
            }
            journal::checkpoint(&step.checkpoint());
        }
        self.complete()
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
                let taken =
                    backup::dump(&tools.engine, &source, &ctx.dir, self.from.version.as_str())
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
                    backup::restore(&tools.engine, &source, &ctx.dir, &b)
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
            at: lockfile::now_rfc3339(),
            backup: self.journal.backup.clone(),
            outcome: match self.journal.kind {
                Kind::Upgrade => "upgrading",
                Kind::Rollback => "rolling-back",
            }
            .to_owned(),
        });
        let mut files = layout_files(
            self.ctx,
            self.tools.layout(),
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
        put_files(&self.ctx.dir, &writes)
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

/// Removes the dumps retention does not keep.
fn prune(ctx: &Context, protected: &BTreeSet<String>, keep: usize) {
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

/// Writes files of the deployment directory in one transaction (previous versions kept).
pub(super) fn put_files(dir: &Path, files: &[(&str, &[u8], u32)]) -> Result<(), Failure> {
    let stamp = lockfile::now_rfc3339().replace(':', "");
    let mut tx = Transaction::new(dir, &stamp);
    for (name, content, mode) in files {
        tx.write(name, content, *mode)
            .or_fail(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    tx.commit();
    Ok(())
}

/// Stops web, daemon and fpm (the database and XMPP server keep running).
pub(super) async fn stop_movim(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
) -> Result<(), Failure> {
    match &tools.runner {
        Runner::Compose(c) => c.stop(&ctx.dir, &d.project, &MOVIM_SERVICES).await,
        Runner::KubePlay(k) => k.stop_movim(&d.project).await,
    }
    .or_fail(|| format!("cannot stop {}", MOVIM_SERVICES.join(", ")))
}

/// Starts fpm and daemon, then web: nginx resolves their addresses only when it starts. In one
/// pod web reaches them on loopback, so the pod starts whole.
pub(super) async fn start_movim(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
) -> Result<(), Failure> {
    if tools.layout() == Layout::KubePlay {
        return stack::start_healthy(ctx, tools, d, &["fpm", "daemon", "web"]).await;
    }
    stack::start_healthy(ctx, tools, d, &["fpm", "daemon"]).await?;
    stack::start_healthy(ctx, tools, d, &["web"]).await
}

/// `phinx status` of the daemon image the compose file names now.
pub(super) async fn phinx_status(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
) -> Result<Migrations, Failure> {
    let (code, output) = tools
        .daemon_php(&ctx.dir, &d.project, &["vendor/bin/phinx", "status"])
        .await
        .or_fail(|| format!("cannot run `phinx status` of {}", d.version))?;
    plan::parse_phinx_status(code, &output).map_err(|e| {
        Failure::new(format!(
            "cannot tell whether {} reads the database",
            d.version
        ))
        .detail(e)
    })
}

/// How to dump and restore this deployment's database (see [`crate::adapters::backup`]).
pub(super) async fn backup_source(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
    tool: Option<String>,
) -> Result<backup::Source, Failure> {
    let (_, _, name, user) = d.database.endpoint();
    match &d.database {
        Database::Bundled => {
            let running = stack::container(tools, &d.project, "postgres")
                .await?
                .filter(|c| c.running);
            let c = match running {
                Some(c) => c,
                None => {
                    stack::start_healthy(ctx, tools, d, &["postgres"]).await?;
                    stack::container(tools, &d.project, "postgres")
                        .await?
                        .ok_or_else(|| Failure::new("the postgres container does not exist"))?
                }
            };
            Ok(backup::Source::Container {
                id: c.id,
                user: user.to_owned(),
                database: name.to_owned(),
            })
        }
        Database::External { host, port, .. } => {
            let image = tool.ok_or_else(|| {
                Failure::new("no pg_dump image is recorded for the external database")
            })?;
            let by_digest = ImageRef::parse(&image)
                .ok()
                .and_then(|i| i.digest.clone().map(|dg| i.by_digest(&dg)))
                .unwrap_or_else(|| image.clone());
            Ok(backup::Source::OneShot {
                cli: tools.engine.kind().to_string(),
                image: by_digest,
                target: db::DbTarget {
                    host: host.clone(),
                    port: *port,
                    name: name.to_owned(),
                    user: user.to_owned(),
                    password: password.clone(),
                },
            })
        }
    }
}
