//! `movim-setup init`: ask (or read) the answers, check the machine, pin every image by digest,
//! pull, write the deployment directory in one transaction, migrate, start and prove healthy.
//! Bad input is refused before anything is written; a re-run keeps secrets and answers, shows
//! what it changes, backs up what it replaces, and does nothing when nothing changed.

mod kube;
mod named;
mod ports;
mod review;

use crate::adapters::Tools;
use crate::adapters::database::DbError;
use crate::adapters::db;
use crate::adapters::fsx::{self, Transaction};
use crate::adapters::store;
use crate::adapters::store::Saved;
use crate::adapters::{env, health};
use crate::cli::{InitArgs, Target};
use crate::context::Context;
use crate::core::answers::{self, Answers};
use crate::core::deployment::{Database, DbEndpoint, Deployment, Tls, Xmpp};
use crate::core::layout::Layout;
use crate::core::lockfile::{LOCK_FILE, Lock, Release};
use crate::core::movim::MOVIM_UID;
use crate::core::render::{self, ANSWERS_FILE, ENV_FILE};
use crate::core::secret::Secret;
use crate::error::{ExitStatus, Failure, OrFail};
use crate::release::{pin, preflight};
use crate::stack;
use named::{Named, read_extras};
use review::{changes, print_changes, review};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Below this much free space in the deployment directory, init refuses to start.
const MIN_FREE_BYTES: u64 = 1 << 30;

#[allow(clippy::too_many_lines)] // init read top to bottom: every line is one step it takes, in order
pub async fn run(ctx: &Context, args: InitArgs) -> Result<ExitStatus, Failure> {
    check_target(ctx, &args)?;
    // An existing deployment: no other run may change it meanwhile, and an interrupted upgrade
    // must be settled first (init would migrate and start half of it).
    let _lock = if ctx.dir.is_dir() {
        let lock = preflight::run_lock(ctx, "init")?;
        if let preflight::Left::Interrupted(j) = preflight::left_journal(ctx, true)? {
            return Err(preflight::interrupted(ctx, &j).status(ExitStatus::CouldNotRun));
        }
        Some(lock)
    } else {
        preflight::trusted_dir(ctx)?;
        None
    };
    let saved = Saved::load(&ctx.dir)?;
    let (d, password, named) = collect_answers(ctx, &args, &saved)?;
    // Files named on an earlier run are read from the directory's copies of them.
    let dir = std::path::absolute(&ctx.dir)
        .map_err(|e| Failure::usage(format!("cannot resolve {}", ctx.dir.display())).because(e))?;
    let reading = render::reading_copies(&d, &dir, |name| {
        !named.names(name) && ctx.dir.join(name).is_file()
    });
    if let (Some(lock), Some(_)) = (&saved.lock, &saved.deployment)
        && lock.movim != d.version.as_str()
    {
        return Err(Failure::usage(format!(
            "this deployment runs Movim {}; init does not change releases",
            lock.movim
        ))
        .next(format!(
            "movim-setup upgrade --dir {} --to {}",
            ctx.dir.display(),
            d.version
        )));
    }
    let extras = read_extras(&reading, &dir)?;
    if let Xmpp::Bundled {
        cert: None, domain, ..
    } = &d.xmpp
    {
        ctx.ui.warn(&format!(
            "the bundled Prosody has no certificate for {domain}: Movim's daemon rejects self-signed ones, so logins fail until you re-run with --xmpp-cert FILE --xmpp-key FILE"
        ));
    }

    if args.target == Target::Kube {
        return kube::run(ctx, &args, &d, &password, saved.lock.as_ref()).await;
    }

    ctx.ui.step("pre-flight checks");
    let tools = ctx.connect.tools(ctx, Layout::Compose).await?;
    ctx.ui.info(&format!(
        "engine: {} {} (API {}); compose: {}",
        tools.engine.kind(),
        tools.engine.version(),
        tools.engine.api_version(),
        tools.runner.describe()
    ));
    check_disk(&ctx.dir)?;
    check_project_owner(ctx, &tools, &d).await?;
    ports::check(&tools, &d).await?;
    check_dns(ctx, &d).await;
    if let Database::External { .. } = &d.database {
        check_external_db(ctx, &tools, &d, &password).await?;
    }

    let lock = pin(ctx, &reading, saved.lock.as_ref()).await?;
    let files = stack::rendered(&d, &password, &lock, &extras)?;
    let changes = changes(&ctx.dir, &files, &lock, ENV_FILE)?;
    let existing = saved.deployment.is_some();
    if args.dry_run {
        print_changes(ctx, &changes);
        ctx.ui.step("dry run: nothing written, pulled or started");
        return Ok(ExitStatus::Success);
    }
    if !review(ctx, &changes, existing)? {
        return Ok(ExitStatus::Failed);
    }

    let pinned: Vec<String> = lock.images.values().cloned().collect();
    stack::pull_pinned(
        ctx,
        &tools,
        &pinned,
        "movim-setup init   (re-run resolves and pulls again)",
    )
    .await?;

    if changes.is_empty() {
        ctx.ui.step("the deployment directory is up to date");
    } else {
        if !existing {
            print_changes(ctx, &changes);
        }
        // The write is one transaction: a signal lets it finish (or undo itself), then stops.
        ctx.cancel.execute()?;
        write(ctx, &files, &lock, None)?;
        hand_env_to_movim(ctx, &tools, &ctx.dir.join(ENV_FILE)).await;
        ctx.cancel.abortable(&format!(
            "{} is written, Movim not started: movim-setup init --dir {} starts it",
            ctx.dir.display(),
            ctx.dir.display()
        ))?;
    }
    if args.no_start {
        ctx.ui.step(&format!(
            "written; start it with `movim-setup init --dir {}`",
            ctx.dir.display()
        ));
        return Ok(ExitStatus::Success);
    }
    if changes.is_empty() && running_healthy(&tools, &d).await {
        stack::prove(ctx, &tools, &d).await?;
    } else {
        stack::bring_up(ctx, &tools, &d, &password).await?;
    }
    summary(ctx, &tools, &d);
    Ok(ExitStatus::Success)
}

/// Merges flags/env, the answers file and the saved answers, asks for the rest, and settles the
/// database password (kept from a previous run; for an external database the given one wins).
/// Paths named on this run are made absolute.
fn collect_answers(
    ctx: &Context,
    args: &InitArgs,
    saved: &Saved,
) -> Result<(Deployment, Secret, Named), Failure> {
    let mut given = Answers {
        project: args.project.clone(),
        domain: args.domain.clone(),
        tls: args.tls.map(|c| c.to_string()),
        http_port: args.http_port,
        acme_email: args.acme_email.clone(),
        acme_ca: args.acme_ca.clone(),
        ca_bundle: args.ca_bundle.clone(),
        database: args.database.map(|c| c.to_string()),
        db_host: args.db_host.clone(),
        db_port: args.db_port,
        db_name: args.db_name.clone(),
        db_user: args.db_user.clone(),
        db_password: env::var("MOVIM_DB_PASSWORD")
            .filter(|p| !p.is_empty())
            .map(Secret::new),
        xmpp: args.xmpp.map(|c| c.to_string()),
        xmpp_domain: args.xmpp_domain.clone(),
        xmpp_cert: args.xmpp_cert.clone(),
        xmpp_key: args.xmpp_key.clone(),
        release: args.release.clone(),
        image_repository: args.image_repository.clone(),
        library_repository: args.library_repository.clone(),
        movim_env: (!args.movim_env.is_empty()).then(|| args.movim_env.iter().cloned().collect()),
        origins: BTreeMap::new(),
    };
    if let Some(file) = &args.db_password_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::usage(format!("cannot read --db-password-file {}", file.display())).because(e)
        })?;
        given.db_password = Some(Secret::new(text.trim_end_matches(['\n', '\r'])));
    }
    let from_file = match &args.answers {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!("cannot read --answers {}", path.display())).because(e)
            })?;
            Answers::from_yaml(&text, &path.display().to_string())?
        }
        None => Answers::default(),
    };
    let recorded = saved.recorded.as_ref();
    let named = Named::on_this_run(&[&given, &from_file], recorded);
    let from_saved = recorded
        .map(|d| {
            Answers::from_deployment(d).from_source(&format!(
                "{}, {}",
                ctx.dir.join(ANSWERS_FILE).display(),
                answers::SAVED_BY_A_PREVIOUS_RUN
            ))
        })
        .unwrap_or_default();
    let merged = given.or(from_file).or(from_saved);
    let default_project = default_project(&ctx.dir);
    let resolved = answers::resolve(merged, ctx.prompter.as_ref(), &default_project)?;
    let d = named.absolute(resolved.deployment)?;
    let password = match (&d.database, resolved.db_password, saved.db_password()) {
        (Database::External { .. }, Some(given), _) => given,
        (_, _, Some(kept)) => kept,
        (Database::External { .. }, None, None) => {
            return Err(Failure::usage("no password for the external database")
                .next("MOVIM_DB_PASSWORD=… movim-setup init …   (or --db-password-file FILE)"));
        }
        (Database::Bundled, _, None) => Secret::generate(32),
    };
    Ok((d, password, named))
}

fn default_project(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    answers::suggested_project(
        &abs.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

fn check_disk(dir: &Path) -> Result<(), Failure> {
    let probe = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    let free = fsx::free_bytes(probe)
        .or_fail(|| format!("cannot tell the free space of {}", probe.display()))?;
    if free < MIN_FREE_BYTES {
        return Err(Failure::new(format!(
            "only {} MiB free on {}; Movim's images and database need at least 1 GiB",
            free >> 20,
            probe.display()
        ))
        .next("df -h; docker system df"));
    }
    Ok(())
}

/// The project name must not be another directory's deployment: compose would recreate its
/// containers (its database with other credentials) as this one's.
async fn check_project_owner(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    let mut all = tools
        .engine
        .service_containers(&d.project, Layout::Compose)
        .await
        .or_fail(|| format!("cannot list the containers of the project {}", d.project))?;
    // The same directory may be named through a symbolic link: compare where paths lead.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    for c in &mut all {
        c.working_dir = c
            .working_dir
            .as_deref()
            .map(|w| real(Path::new(w)).to_string_lossy().into_owned());
    }
    let dir = real(&ctx.dir);
    if let Some(c) = crate::core::containers::owned_elsewhere(&all, &dir) {
        return Err(Failure::usage(format!(
            "the project name `{}` belongs to another deployment: {} was created from {}",
            d.project,
            c.describe(),
            c.working_dir.as_deref().unwrap_or_default()
        ))
        .detail("init would take over its containers, its database included")
        .next(format!(
            "movim-setup init --dir {} --project <another-name>",
            ctx.dir.display()
        )));
    }
    Ok(())
}

/// DNS is only a warning: the domain often points here only once the stack runs.
async fn check_dns(ctx: &Context, d: &Deployment) {
    if !health::resolves(d.domain.as_str(), 443, Duration::from_secs(3)).await {
        ctx.ui.warn(&format!(
            "{} does not resolve yet; browsers will not reach Movim until it points at this machine (or your proxy)",
            d.domain
        ));
    }
}

async fn check_external_db(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
) -> Result<(), Failure> {
    let endpoint = d.database.endpoint();
    let DbEndpoint {
        host,
        port,
        name,
        user,
    } = endpoint;
    ctx.ui.info(&format!(
        "checking the external database {user}@{host}:{port}/{name}"
    ));
    let target = db::DbTarget::at(endpoint, host.to_owned(), password.clone());
    let facts = match tools.db.facts(&target, Duration::from_secs(10)).await {
        Ok(facts) => facts,
        Err(DbError::Login(e)) => {
            return Err(Failure::usage(format!(
                "cannot log in to the external database {user}@{host}:{port}/{name}"
            ))
            .because(e)
            .next(format!(
                "psql -h {host} -p {port} -U {user} -d {name}   (check host, port, role, password)"
            )));
        }
        Err(DbError::Read(e)) => {
            return Err(Failure::new(format!("cannot inspect the database {name}")).because(e));
        }
    };
    let can_have_pgcrypto =
        facts.pgcrypto_installed || (facts.pgcrypto_available && facts.can_create_extension);
    if !can_have_pgcrypto {
        return Err(Failure::usage(format!(
            "role {user} cannot `create extension pgcrypto` in {name}, which Movim's migrations run"
        ))
        .next(format!(
            "psql -h {host} -U postgres -d {name} -c 'create extension if not exists pgcrypto'"
        )));
    }
    Ok(())
}

/// Pins every image ([`pin::pin_images`]) and records the release in the lock's history.
async fn pin(ctx: &Context, d: &Deployment, saved: Option<&Lock>) -> Result<Lock, Failure> {
    ctx.ui.step("pinning images by digest");
    let images = pin::pin_images(ctx, d, saved.map(|l| &l.images), &pin::INIT).await?;
    let history = saved.map(|l| l.history.clone()).unwrap_or_default();
    let mut lock = Lock {
        movim: d.version.to_string(),
        images,
        history,
    };
    if lock.history.last().is_none_or(|r| r.images != lock.images) {
        lock.history.push(Release {
            movim: lock.movim.clone(),
            images: lock.images.clone(),
            at: ctx.clock.now_rfc3339(),
            backup: None,
            outcome: "installed".into(),
        });
    }
    Ok(lock)
}

/// Writes the directory in one transaction: all files or none; `env_file` (relative), if named,
/// is handed to Movim's uid here (a compose deployment's is handed over by its engine after).
fn write(
    ctx: &Context,
    files: &BTreeMap<String, render::File>,
    lock: &Lock,
    env_file: Option<&str>,
) -> Result<(), Failure> {
    std::fs::create_dir_all(&ctx.dir).or_fail(|| format!("cannot create {}", ctx.dir.display()))?;
    set_mode(&ctx.dir, 0o700)?;
    let stamp = ctx.clock.now_rfc3339().replace(':', "");
    let mut tx = Transaction::new(&ctx.dir, &stamp);
    for (path, file) in files {
        tx.write(path, file.content.as_bytes(), file.mode)
            .or_fail(|| format!("cannot write {path}"))?;
    }
    let lock_text = lock
        .to_yaml()
        .map_err(|e| Failure::new("cannot render the lock").detail(e))?;
    tx.write(LOCK_FILE, lock_text.as_bytes(), 0o644)
        .or_fail(|| format!("cannot write {LOCK_FILE}"))?;
    if let Some(env_file) = env_file {
        let env = ctx.dir.join(env_file);
        if let Err(e) = std::os::unix::fs::chown(&env, Some(MOVIM_UID), Some(MOVIM_UID)) {
            warn_env_not_handed(ctx, &env, &anyhow::Error::new(e));
        }
    }
    for backup in tx.commit() {
        ctx.ui.info(&format!(
            "kept the previous version as {}",
            backup.display()
        ));
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .or_fail(|| format!("cannot chmod {}", path.display()))
}

/// `movim.env` is 0600, so it must belong to the uid Movim runs as to be readable in the
/// containers. Only root can give it away; others are told the command.
/// One directory, one layout: `--target` must match what the directory already holds, or the
/// two deployments would share a project name, volumes and ports.
fn check_target(ctx: &Context, args: &InitArgs) -> Result<(), Failure> {
    let wanted = args.target.layout();
    match store::layout_held(&ctx.dir) {
        Some(layout) if layout != wanted => Err(Failure::usage(format!(
            "{} holds a --target {} deployment ({}); init --target {} would write a second one beside it",
            ctx.dir.display(),
            layout.target(),
            layout.main_file(),
            args.target
        ))
        .detail("nothing was written")
        .next(format!(
            "movim-setup init --dir {} --target {}   (re-run as it is)",
            ctx.dir.display(),
            layout.target()
        ))
        .next(format!(
            "movim-setup init --dir NEW_DIR --target {}   (a new deployment elsewhere)",
            args.target
        ))),
        _ => Ok(()),
    }
}

/// `movim.env` is read by fpm and the daemon as uid 82 (as the containers see it).
async fn hand_env_to_movim(ctx: &Context, tools: &Tools, env: &Path) {
    if let Err(e) = tools.engine.hand_over(env, MOVIM_UID).await {
        warn_env_not_handed(ctx, env, &e);
    }
}

fn warn_env_not_handed(ctx: &Context, env: &Path, e: &anyhow::Error) {
    let env = env.display();
    ctx.ui.warn(&format!(
        "cannot hand {env} to uid {MOVIM_UID} ({e:#}); Movim cannot read it until you run: sudo chown {MOVIM_UID}:{MOVIM_UID} {env}   (rootless Podman: podman unshare chown {MOVIM_UID}:{MOVIM_UID} {env})"
    ));
}

async fn running_healthy(tools: &Tools, d: &Deployment) -> bool {
    let Ok(all) = tools
        .engine
        .service_containers(&d.project, tools.runner.layout())
        .await
    else {
        return false;
    };
    let wanted: Vec<String> = d.images().into_iter().map(|(s, _)| s).collect();
    wanted.iter().all(|s| {
        all.iter().any(|c| {
            c.service.as_deref() == Some(s)
                && c.running
                && c.health.as_deref().is_none_or(|h| h == "healthy")
        })
    })
}

fn summary(ctx: &Context, tools: &Tools, d: &Deployment) {
    ctx.ui.step(&format!(
        "Movim {} is up and healthy: {}",
        d.version,
        d.domain.public_url()
    ));
    if let Tls::Proxy { http_port } = d.tls {
        ctx.ui.info(&format!("point your reverse proxy at http://127.0.0.1:{http_port}, passing Host and websockets, e.g. for nginx:"));
        for line in proxy_snippet(d, http_port).lines() {
            ctx.ui.info(&format!("  {line}"));
        }
    }
    ctx.ui.info(&format!(
        "after your first login, make yourself admin: {}",
        tools.commands(&d.project).exec(
            "daemon",
            &format!("php daemon.php setAdmin you@{}", d.xmpp.domain())
        )
    ));
    ctx.ui.info("check it any time with: movim-setup doctor");
}

/// An nginx server block for the user's own proxy (TLS there, websockets passed through).
#[must_use]
pub fn proxy_snippet(d: &Deployment, http_port: u16) -> String {
    format!(
        "server {{\n    listen 443 ssl http2;\n    server_name {domain};\n    # ssl_certificate …; ssl_certificate_key …;\n    location / {{\n        proxy_pass http://127.0.0.1:{http_port};\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-Proto https;\n        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection \"upgrade\";\n        proxy_read_timeout 1h;\n    }}\n}}",
        domain = d.domain
    )
}
