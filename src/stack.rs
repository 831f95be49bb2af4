//! What `init`, `upgrade` and `rollback` share: reading the deployment directory, connecting to
//! the engine and compose tool, and bringing the stack up in order with a health gate per
//! service, ending with the proof a browser would give (websocket 101 and `/infos`).

use crate::adapters::Tools;
use crate::adapters::database::{DbError, Postgres};
use crate::adapters::db::DbTarget;
use crate::adapters::engine::{self, Engine, EngineKind};
use crate::adapters::health::Http;
use crate::adapters::runner::{self, NoRunner, Runner};
use crate::adapters::store::Dir;
use crate::context::{Connect, Context};
use crate::core::containers::{ContainerInfo, NoDbAddress, container_of, db_container, db_host};
use crate::core::deployment::{Database, Deployment, Tls, Xmpp};
use crate::core::layout::Layout;
use crate::core::lockfile::Lock;
use crate::core::movim;
use crate::core::render::{self};
use crate::core::secret::{Secret, scrub};
use crate::error::{Failure, OrFail};
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// How long one service may take to become healthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

impl Machine {
    /// The engine and the compose tool, for a compose deployment (what `init` writes).
    pub async fn connect(ctx: &Context) -> Result<Tools, Failure> {
        Self::connect_for(ctx, Layout::Compose).await
    }

    /// The engine and what runs a deployment of `layout`: a kube-played one needs Podman (and its
    /// CLI), no compose tool.
    pub async fn connect_for(ctx: &Context, layout: Layout) -> Result<Tools, Failure> {
        let engine = Self::engine(ctx).await?;
        let runner = runner::select(layout, engine.kind(), engine.endpoint(), ctx.compose.as_deref())
            .await
            .map_err(|e| match e {
                NoRunner::NeedsPodman(kind) => Failure::usage(format!(
                    "{} was written by `init --target kube`: movim-setup runs it with `podman kube play`, and the engine found is {kind}",
                    ctx.dir.display(),
                ))
                .next("re-run the same command with --engine podman")
                .next("on Kubernetes: re-run `movim-setup init --target kube --release RELEASE`, then `kubectl apply -f kube/movim.yaml`"),
                NoRunner::NoComposeTool(e) => Failure::new("no compose tool found").because(e).next(
                    "install Docker Compose v2 (docker compose) or pass --compose \"docker-compose\"",
                ),
            })?;
        Ok(Self::of(ctx, engine, runner))
    }

    /// The engine alone (what `images build` drives): the one `--engine` names or the first that
    /// answers, Podman's API served for this run when `--podman-service` (or a terminal) says so.
    pub async fn engine(ctx: &Context) -> Result<Engine, Failure> {
        let kind = ctx.engine;
        match Engine::connect(kind).await {
            Ok(engine) => Ok(engine),
            // --podman-service names Podman even without --engine.
            Err(e) if ctx.podman_service || kind.is_some_and(EngineKind::serves_on_demand) => {
                start_podman(ctx, e).await
            }
            Err(e) => Err(Failure::new("the container engine is not reachable")
                .because(e)
                .next(
                    "docker info   (or: systemctl start docker / podman system service --time=0 &)",
                )),
        }
    }

    /// The real database and web probe beside a connected engine and its runner.
    fn of(ctx: &Context, engine: Engine, runner: Box<dyn Runner>) -> Tools {
        Tools {
            db: Box::new(Postgres {
                engine: engine.clone(),
            }),
            web: Box::new(Http),
            engine: Box::new(engine),
            runner,
            dir: ctx.dir.clone(),
        }
    }
}

/// The machine this runs on: its engine, its compose tool or `podman kube play`.
pub struct Machine;

impl Connect for Machine {
    fn tools<'a>(
        &'a self,
        ctx: &'a Context,
        layout: Layout,
    ) -> BoxFuture<'a, Result<Tools, Failure>> {
        Box::pin(Self::connect_for(ctx, layout))
    }
}

/// Podman's API socket is often not served (systemd starts it on demand, and without systemd
/// nothing does): with `--podman-service`, serve it for this run and stop it at the end; on a
/// terminal, offer to start it for good; otherwise fail naming the exact command.
async fn start_podman(ctx: &Context, cause: anyhow::Error) -> Result<Engine, Failure> {
    let endpoint = engine::podman_endpoint();
    let command = engine::podman_service_command(&endpoint);
    let for_this_run = ctx.podman_service;
    let asked = for_this_run
        || ctx.prompter.interactive()
        && ctx
            .prompter
            .confirm(
                &format!(
                    "Podman's API does not answer at {endpoint}. Start `{command}` in the background?"
                ),
                true,
            )
            .unwrap_or(false);
    if !asked {
        return Err(Failure::new("Podman's API socket is not answering")
            .because(cause)
            .next(format!("{command} &"))
            .next("or, with systemd: systemctl start podman.socket   (rootless: systemctl --user start podman.socket)")
            .next("or let movim-setup serve it for this run only: add --podman-service"));
    }
    ctx.ui.step(&if for_this_run {
        format!("serving Podman's API for this run: `{command}` (stopped when movim-setup ends)")
    } else {
        format!("starting `{command}`")
    });
    let service = engine::start_podman_service(&endpoint, for_this_run)
        .await
        .map_err(|e| {
            Failure::new("could not start Podman's API service")
                .because(e)
                .next(format!("{command} &"))
        })?;
    Engine::connect_to(&endpoint, Some(EngineKind::Podman))
        .await
        .map(|engine| engine.holding(service))
        .map_err(|e| {
            Failure::new("Podman's API service started but does not answer")
                .because(e)
                .next(format!("{command} &"))
        })
}

/// The container of one service of the project ([`container_of`]: a running one first, a
/// leftover one-off last).
pub async fn container(
    tools: &Tools,
    project: &str,
    service: &str,
) -> Result<Option<ContainerInfo>, Failure> {
    let all = tools
        .engine
        .service_containers(project, tools.runner.layout())
        .await
        .or_fail(|| format!("cannot list the containers of project {project}"))?;
    Ok(container_of(&all, service).cloned())
}

/// A failure of `service`, with its last log lines (every secret the deployment directory `dir`
/// holds redacted: a service may log its configuration) and the commands to look further.
pub async fn service_failure(
    dir: &Path,
    tools: &Tools,
    d: &Deployment,
    service: &str,
    what: String,
    cause: anyhow::Error,
) -> Failure {
    let mut f = Failure::new(what).because(cause);
    if let Ok(Some(c)) = container(tools, &d.project, service).await
        && let Ok(logs) = tools.engine.logs_tail(&c.id, 20).await
    {
        let secrets = Dir::read(dir).secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        f = f.detail(format!("last log lines of {service}:"));
        for line in scrub(&logs, &secrets).lines() {
            f = f.detail(format!("| {line}"));
        }
    }
    f.next(tools.commands(&d.project).logs(service))
        .next("movim-setup doctor")
}

/// Starts `services` and waits until each is healthy.
pub async fn start_healthy(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    services: &[&str],
) -> Result<(), Failure> {
    ctx.ui.step(&format!("starting {}", services.join(", ")));
    if let Err(e) = tools.runner.up(&ctx.dir, &d.project, services).await {
        return Err(service_failure(
            &ctx.dir,
            tools,
            d,
            services[0],
            format!("could not start {}", services.join(", ")),
            e,
        )
        .await);
    }
    for service in services {
        let Some(c) = container(tools, &d.project, service).await? else {
            return Err(
                Failure::new(format!("{service} has no container after `up`"))
                    .next("movim-setup doctor"),
            );
        };
        let mut outcome = tools.engine.wait_healthy(&c.id, HEALTH_TIMEOUT).await;
        if outcome.is_err()
            && tools.engine.kind().drops_lookups_on_join()
            && tools.runner.retries_lost_lookups()
            && lost_a_name_lookup(tools, &c.id).await
        {
            // A service that started as a one-shot left can fail to resolve `postgres` once
            // ([`Runner::retries_lost_lookups`]). Give it one more start; a real fault repeats.
            ctx.ui.warn(&format!("{service} could not resolve a service name (a known Podman DNS race); starting it once more"));
            if tools
                .runner
                .up(&ctx.dir, &d.project, &[service])
                .await
                .is_ok()
            {
                outcome = tools.engine.wait_healthy(&c.id, HEALTH_TIMEOUT).await;
            }
        }
        if let Err(e) = outcome {
            return Err(service_failure(
                &ctx.dir,
                tools,
                d,
                service,
                format!("{service} did not become healthy"),
                e,
            )
            .await);
        }
        ctx.ui.info(&format!("{service} is healthy"));
    }
    Ok(())
}

/// Whether a container failed because a service name did not resolve (see [`start_healthy`]).
async fn lost_a_name_lookup(tools: &Tools, id: &str) -> bool {
    tools.engine.logs_tail(id, 30).await.is_ok_and(|logs| {
        logs.contains("Temporary failure in name resolution")
            || logs.contains("could not translate host name")
    })
}

/// The database as this tool reaches it ([`db_host`]).
pub async fn db_target(
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
) -> Result<DbTarget, Failure> {
    let all = tools
        .engine
        .service_containers(&d.project, tools.runner.layout())
        .await
        .or_fail(|| format!("cannot list the containers of project {}", d.project))?;
    let host = db_host(&all, d).map_err(|e| {
        let next = match e {
            NoDbAddress::NoContainer => "movim-setup init",
            _ => "movim-setup doctor",
        };
        Failure::new(e.to_string()).next(next)
    })?;
    Ok(DbTarget::at(d.database.endpoint(), host, password.clone())
        .in_container(db_container(&all, d)))
}

/// Applied migrations, or `None` before the first migration.
pub async fn applied_migrations(
    tools: &Tools,
    target: &DbTarget,
) -> Result<Option<Vec<i64>>, anyhow::Error> {
    let facts = tools
        .db
        .facts(target, Duration::from_secs(10))
        .await
        .map_err(DbError::into_cause)?;
    Ok(facts.phinxlog)
}

/// Runs Movim's migrations as their own one-shot container and reports what they applied.
pub async fn migrate(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
) -> Result<(), Failure> {
    ctx.ui
        .step("running database migrations (one-shot daemon container)");
    let target = db_target(tools, d, password).await?;
    let before = applied_migrations(tools, &target)
        .await
        .ok()
        .flatten()
        .map_or(0, |v| v.len());
    let (code, output) = tools
        .runner
        .daemon_php(&ctx.dir, &d.project, &["vendor/bin/phinx", "migrate"])
        .await
        .or_fail(|| "could not run the migrations".to_owned())?;
    if code != 0 {
        let mut f = Failure::new(format!(
            "the migrations of Movim {} failed (exit {code})",
            d.version
        ));
        for line in output
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            f = f.detail(format!("| {line}"));
        }
        return Err(f.next("movim-setup doctor"));
    }
    let after = applied_migrations(tools, &target)
        .await
        .or_fail(|| "cannot read phinxlog after migrating".to_owned())?;
    let after = after.map_or(0, |v| v.len());
    ctx.ui.info(&format!(
        "{} migration(s) applied now, {after} in all",
        after.saturating_sub(before)
    ));
    Ok(())
}

/// Hands the shared volumes to uid 82 (the `prepare` one-shot service); idempotent.
pub async fn prepare_volumes(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    ctx.ui.step("handing the shared volumes to uid 82");
    let (code, output) = tools
        .runner
        .prepare_volumes(&ctx.dir, &d.project)
        .await
        .or_fail(|| "could not run the prepare one-shot".to_owned())?;
    if code != 0 {
        let mut f = Failure::new(format!("preparing the shared volumes failed (exit {code})"));
        for line in output
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            f = f.detail(format!("| {line}"));
        }
        return Err(f.next(tools.commands(&d.project).prepare));
    }
    Ok(())
}

/// Where this tool reaches web: the loopback port in proxy mode, else web's container address.
pub async fn web_address(tools: &Tools, d: &Deployment) -> Result<SocketAddr, Failure> {
    if let Tls::Proxy { http_port } = d.tls {
        return Ok(SocketAddr::from(([127, 0, 0, 1], http_port)));
    }
    let c = container(tools, &d.project, "web")
        .await?
        .ok_or_else(|| Failure::new("the web container does not exist").next("movim-setup init"))?;
    c.ips
        .first()
        .map(|(_, ip)| SocketAddr::new(*ip, 80))
        .ok_or_else(|| {
            Failure::new("the web container has no network address").next("movim-setup doctor")
        })
}

/// The proof: a websocket handshake through web with the public Origin, and `/infos` reporting
/// the pinned version.
pub async fn prove(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    ctx.ui
        .step("proving the stack: websocket handshake through web and /infos");
    let addr = web_address(tools, d).await?;
    let host = d.domain.as_str();
    let origin = format!("https://{host}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let handshake = loop {
        let attempt = tools
            .web
            .handshake(addr, host, &origin, "/ws/", Duration::from_secs(5))
            .await;
        match attempt {
            Ok(h) if h.is_upgraded() => break h,
            // Movim refuses an Origin for good: no use waiting for the deadline.
            Ok(h) if h.origin_refused() => {
                return Err(Failure::new(format!(
                    "the daemon refused the public Origin {origin} through web at {addr}/ws/"
                ))
                .because(anyhow::anyhow!(h.describe()))
                .detail(format!(
                    "DAEMON_URL must be {} (the public URL browsers use)",
                    d.domain.public_url()
                ))
                .next("movim-setup doctor"));
            }
            other if std::time::Instant::now() >= deadline => {
                let why = match other {
                    Ok(h) => anyhow::anyhow!(h.describe()),
                    Err(e) => e,
                };
                return Err(service_failure(
                    &ctx.dir,
                    tools,
                    d,
                    "daemon",
                    format!("no websocket handshake through web at {addr}/ws/"),
                    why,
                )
                .await);
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    ctx.ui.info(&format!(
        "websocket: HTTP {} with Origin {origin}",
        handshake.status
    ));
    let infos = tools
        .web
        .infos(addr, host, Duration::from_secs(10))
        .await
        .map_err(|e| {
            Failure::new(format!("GET /infos through web at {addr} failed"))
                .because(e)
                .next("movim-setup doctor")
        })?;
    if !d.version.is_reported_as(&infos.version) {
        return Err(Failure::new(format!(
            "/infos reports Movim {} but the deployment pins {}",
            infos.version, d.version
        ))
        .next("movim-setup doctor"));
    }
    ctx.ui.info(&format!("/infos: Movim {}", infos.version));
    prove_worker_can_log(ctx, tools, d).await
}

/// The last part of the proof: a session worker, started as the daemon starts one after each
/// login, can write its log. One that cannot dies on its first logged error and logs its user out.
async fn prove_worker_can_log(ctx: &Context, tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    let Some(c) = container(tools, &d.project, "daemon").await? else {
        return Err(Failure::new("the daemon container does not exist").next("movim-setup doctor"));
    };
    let argv = movim::as_session_worker(movim::WORKER_LOG_PHP, &["0"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (_, output) = tools.engine.exec(&c.id, &argv).await.map_err(|e| {
        Failure::new("cannot run a session worker's check in the daemon")
            .because(e)
            .next("movim-setup doctor")
    })?;
    let log = movim::worker_log(&output);
    if let Some(why) = log.problem {
        return Err(Failure::new(format!(
            "Movim's session workers could not log in anyone: {why}"
        ))
        .detail("a worker dies on its first logged error, right after the login; it reads LOG_PATH only from movim.env")
        .next("movim-setup doctor"));
    }
    ctx.ui.info(&format!(
        "session workers: can write their log in {}",
        log.dir
    ));
    Ok(())
}

/// Brings the whole stack up in dependency order, migrating before the Movim services start.
pub async fn bring_up(
    ctx: &Context,
    tools: &Tools,
    d: &Deployment,
    password: &Secret,
) -> Result<(), Failure> {
    if d.database == Database::Bundled {
        start_healthy(ctx, tools, d, &["postgres"]).await?;
    }
    if matches!(d.xmpp, Xmpp::Bundled { .. }) {
        start_healthy(ctx, tools, d, &["prosody"]).await?;
    }
    prepare_volumes(ctx, tools, d).await?;
    migrate(ctx, tools, d, password).await?;
    start_healthy(ctx, tools, d, &["fpm", "daemon"]).await?;
    start_healthy(ctx, tools, d, &["web"]).await?;
    if matches!(d.tls, Tls::Caddy { .. }) {
        start_healthy(ctx, tools, d, &["caddy"]).await?;
    }
    prove(ctx, tools, d).await
}

/// The files `init` would write for this deployment (also what doctor compares against).
pub fn rendered(
    d: &Deployment,
    password: &Secret,
    lock: &Lock,
    extras: &render::Extras,
) -> Result<BTreeMap<String, render::File>, Failure> {
    render::files(
        d,
        &render::Secrets {
            db_password: password.clone(),
        },
        &lock.images,
        extras,
    )
    .map_err(|e| Failure::new("cannot render the deployment files").detail(e))
}

/// Pulls every pinned image (`repo:tag@sha256:…`) the engine does not hold yet, verifying each
/// digest; `hint` is the command to run again after a failure.
pub async fn pull_pinned(
    ctx: &Context,
    tools: &Tools,
    pinned: &[String],
    hint: &str,
) -> Result<(), Failure> {
    let mut missing = Vec::new();
    for reference in pinned {
        let image = crate::core::image_ref::ImageRef::parse(reference)
            .map_err(|e| Failure::new(format!("bad pinned reference {reference}: {e}")))?;
        let Some(digest) = image.digest.clone() else {
            return Err(Failure::new(format!("{reference} is not pinned by digest")));
        };
        let by_digest = image.by_digest(&digest);
        if !tools
            .engine
            .has_image(&by_digest)
            .await
            .or_fail(|| format!("cannot inspect {by_digest}"))?
        {
            missing.push((image, digest));
        }
    }
    if missing.is_empty() {
        ctx.ui.info("every image is here already");
        return Ok(());
    }
    ctx.ui
        .step(&format!("pulling {} image(s) by digest", missing.len()));
    let progress = ctx.ui.pull_progress();
    for (image, digest) in missing {
        tools
            .engine
            .pull(&image, &digest, progress.as_ref())
            .await
            .map_err(|e| {
                Failure::new(format!("cannot pull {}", image.pinned(&digest)))
                    .because(e)
                    .next(hint.to_owned())
            })?;
    }
    Ok(())
}
