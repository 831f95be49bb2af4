//! `movim-setup doctor`: finds what is wrong with a deployment and says how to fix it. Read-only,
//! always: it never writes, starts, stops, pulls or migrates anything (the one file it writes is
//! the `--bundle` the user asks for). Every check yields findings into one [`Report`], rendered as
//! text or JSON; a check that cannot run is itself a finding, never an abort. Checks that wait on
//! the network or the engine run concurrently.
//!
//! Exit status: 0 no error (warnings allowed), 1 at least one error, 2 doctor could not run at all:
//! the directory does not exist or holds no `movim-setup.yaml` (it is not a deployment), a bad
//! `--engine`, or the `--bundle` could not be written.
//!
//! # Finding ids (stable; `<svc>` is a service, `<file>` a generated file's path)
//!
//! | id | what it checks |
//! |---|---|
//! | `engine.reachable` | the engine answers; its kind, version and API version |
//! | `compose.tool` | a compose tool is found; its flavour and version (compose layout only) |
//! | `engine.runner` | kube layout only: the runner is `podman kube play`, so the engine must be Podman |
//! | `files.answers` `files.compose` `files.kube` `files.env` `files.lock` | present and parseable (compose: accepted by the tool's `config`; kube: `kube/podman.yaml` holds the pods) |
//! | `env.mode` `env.owner` | movim.env (kube: `kube/movim.env`) is 0600 and readable by uid 82 |
//! | `env.keys`, `env.key.<KEY>` | every key valid per [`envfile::problems`] |
//! | `env.daemon_url.host` | `DAEMON_URL`'s host is the deployment's public host |
//! | `drift`, `drift.<file>` | generated files equal what `init` renders (diff shown; secrets never: `movim.env`, `kube/movim.yaml` with its Secret) |
//! | `images.pinned`, `images.<svc>.pinned`, `images.<svc>.lock` | every image of compose.yaml (kube: of `kube/podman.yaml`, by container) pinned by digest and equal to the lock |
//! | `container.<svc>.running` `.healthy` `.restarts` `.oom` `.image` | each service's container (kube: `<project>-web`, …, `<project>-postgres-postgres`); one that restarted before is watched 3 s: restarting again is a loop |
//! | `mounts`, `mounts.<svc>`, `mounts.<svc>.writable` | shared volumes as compose.yaml (kube: the rendered `kube/podman.yaml`) says (web read-only), writable by uid 82 |
//! | `db.reachable` `db.pgcrypto` `db.migrations` | sqlx login and server version, pgcrypto, `phinx status` in the image |
//! | `web.websocket` `web.infos` `web.dns` `web.tls` | 101 through web with the public Origin; `/infos` version vs the lock; the public name resolves; its certificate |
//! | `xmpp.dns` `xmpp.connect` `xmpp.tls` | from inside the daemon: the XMPP domain resolves (SRV or A), 5222 answers, STARTTLS certificate valid and not expiring |
//! | `host.disk` | free space in the deployment directory |
//! | `upgrade.journal` `upgrade.run_lock` | an interrupted upgrade; another run holding the lock |
//!
//! The layout ([`crate::adapters::store::layout`]) decides which files are read and which commands the fixes
//! name: the compose tool's for a compose project; `podman logs`, `podman exec` and
//! `podman kube play --replace` for a deployment written by `init --target kube`.

pub mod bundle;
pub mod checks;
pub mod hints;
pub mod report;

use crate::adapters::engine::{Engine, EngineKind};
use crate::adapters::runner::compose::{self, ComposeTool};
use crate::adapters::store::Dir;
use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::core::containers::ContainerInfo;
use crate::core::deployment::Deployment;
use crate::core::layout::Layout;
use crate::core::render::ANSWERS_FILE;
use crate::core::render::kube::PODMAN_FILE;
use crate::doctor::bundle::write_bundle;
use crate::doctor::checks::containers::check_containers;
use crate::doctor::checks::database::check_database;
use crate::doctor::checks::drift::check_drift;
use crate::doctor::checks::env::check_env;
use crate::doctor::checks::files::check_files;
use crate::doctor::checks::files::compose_config;
use crate::doctor::checks::host::check_disk;
use crate::doctor::checks::host::check_upgrade;
use crate::doctor::checks::images::check_images;
use crate::doctor::checks::mounts::check_mounts;
use crate::doctor::checks::mounts::expected_mounts;
use crate::doctor::checks::web::check_web;
use crate::doctor::checks::xmpp::check_xmpp;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding, Report};
use crate::error::{ExitStatus, Failure};
use std::time::Duration;

pub use crate::core::movim::MOVIM_UID;
/// How much of each service's log the bundle keeps.
pub const BUNDLE_LOG_LINES: usize = 100;
/// How many diff lines a drifted file shows.
pub const DIFF_LINES: usize = 20;
/// Each probe's own limit: doctor must answer even when a part hangs.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// `phinx status` connects to the database and reads every migration file.
pub const PHINX_TIMEOUT: Duration = Duration::from_secs(30);
/// DNS from inside a container can wait on unreachable resolvers (two lookups, retries).
pub const XMPP_TIMEOUT: Duration = Duration::from_secs(25);
/// Below these, the disk is a warning, then an error (backups and the database need room).
pub const DISK_WARN_BYTES: u64 = 2 << 30;
pub const DISK_ERROR_BYTES: u64 = 256 << 20;
/// A certificate expiring sooner than this is a warning.
pub const CERT_WARN_DAYS: i64 = 14;

pub async fn run(ctx: &Context, args: DoctorArgs) -> Result<ExitStatus, Failure> {
    let dir = std::path::absolute(&ctx.dir).unwrap_or_else(|_| ctx.dir.clone());
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "{} does not exist: there is no deployment to check",
            dir.display()
        ))
        .next(format!(
            "movim-setup doctor --dir DIR   (or create one: movim-setup init --dir {})",
            dir.display()
        )));
    }
    if !dir.join(ANSWERS_FILE).exists() {
        return Err(Failure::usage(format!(
            "{} is not a movim-setup deployment: it has no {ANSWERS_FILE}",
            dir.display()
        ))
        .next(format!(
            "movim-setup doctor --dir DIR   (or set one up here: movim-setup init --dir {})",
            dir.display()
        )));
    }
    let kind = ctx.engine;

    let setup = Dir::read(&dir);
    let mut report = Report::new(env!("CARGO_PKG_VERSION"), dir.display().to_string());

    let kube = setup.layout == Layout::KubePlay;
    let (engine, compose) = tokio::join!(Engine::connect(kind), async {
        if kube {
            None // `podman kube play` runs it: no compose tool is needed
        } else {
            Some(compose::detect(ctx.compose.as_deref(), kind == Some(EngineKind::Podman)).await)
        }
    });
    let engine = match engine {
        Ok(e) => {
            report.push(Finding::ok(
                Area::Engine,
                "engine.reachable",
                format!(
                    "{} {} (API {}) at {}",
                    e.kind(),
                    e.version(),
                    e.api_version(),
                    e.endpoint()
                ),
            ));
            Some(e)
        }
        Err(e) => {
            report.push(
                Finding::error(Area::Engine, "engine.reachable", "the container engine does not answer")
                    .detail(format!("{e:#}"))
                    .hint(if kube {
                        "start Podman's API service (podman system service --time=0 &), then check: podman info"
                    } else {
                        "start it (sudo systemctl start docker; for Podman: podman system service --time=0 &), then check: docker info"
                    }),
            );
            None
        }
    };
    // A kube-played deployment runs on Podman only: another engine has none of its containers.
    let engine = if kube {
        match engine {
            Some(e) if e.kind() == EngineKind::Podman => {
                report.push(Finding::ok(
                    Area::Engine,
                    "engine.runner",
                    format!(
                        "{PODMAN_FILE} is run by `podman kube play` on {} {}",
                        e.kind(),
                        e.version()
                    ),
                ));
                Some(e)
            }
            Some(e) => {
                report.push(
                    Finding::error(
                        Area::Engine,
                        "engine.runner",
                        format!(
                            "{PODMAN_FILE} is run by `podman kube play`, but the engine found is {}",
                            e.kind()
                        ),
                    )
                    .hint(format!(
                        "check it on Podman: movim-setup doctor --engine podman --dir {}",
                        dir.display()
                    )),
                );
                None
            }
            None => None,
        }
    } else {
        engine
    };
    let compose = match compose {
        None => None,
        Some(Ok(c)) => {
            report.push(Finding::ok(
                Area::Engine,
                "compose.tool",
                format!("{} {}", c.flavor(), c.version()),
            ));
            Some(c)
        }
        Some(Err(e)) => {
            report.push(
                Finding::error(Area::Engine, "compose.tool", "no compose tool found")
                    .details(format!("{e:#}").lines().map(str::to_owned))
                    .hint("install Docker Compose v2, or name yours: movim-setup doctor --compose \"docker-compose\""),
            );
            None
        }
    };
    let hints = Hints::new(
        &setup,
        compose.as_ref(),
        engine.as_ref().map(Engine::endpoint),
    );
    // Quick and synchronous (a few files and `df`); the fixes name the compose tool just found.
    let local = local_checks(&setup, &hints);

    let stack = match (&engine, &setup.deployment) {
        (Some(engine), Ok(d)) => Some(
            stack_checks(
                engine,
                compose.as_ref(),
                &setup,
                d,
                &hints,
                args.bundle.is_some(),
            )
            .await,
        ),
        _ => None,
    };
    report.extend(local.files);
    if let Some(s) = &stack {
        report.extend(s.compose_config.clone());
    }
    report.extend(local.rest);
    match &stack {
        Some(s) => report.extend(s.findings.clone()),
        None => report.push(skipped(&engine, &setup)),
    }

    let secrets = setup.secret_values();
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    report.redact(&secret_refs);

    if args.json {
        print!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = &args.bundle {
        let logs = stack.map(|s| s.logs).unwrap_or_default();
        write_bundle(path, &setup, &report, &logs, &secret_refs).map_err(|e| {
            Failure::new(format!("cannot write the bundle {}", path.display()))
                .because(e)
                .status(ExitStatus::CouldNotRun)
                .next("movim-setup doctor --bundle /tmp/movim-doctor.tar.gz")
        })?;
        ctx.ui.info(&format!(
            "wrote {} (report, {}, {} with secrets redacted, last {BUNDLE_LOG_LINES} log lines of each service)",
            path.display(),
            setup.layout.main_file(),
            setup.env_file
        ));
    }
    Ok(report.exit_status())
}

/// When the engine or the answers are missing, the stack checks cannot run: one finding says so.
pub fn skipped(engine: &Option<Engine>, setup: &Dir) -> Finding {
    let why = if engine.is_none() && setup.layout == Layout::KubePlay {
        "the engine does not answer or is not Podman"
    } else if engine.is_none() {
        "the engine does not answer"
    } else if setup.deployment.is_err() {
        "movim-setup.yaml is not valid"
    } else {
        "of an earlier problem"
    };
    Finding::warn(
        Area::Containers,
        "containers.skipped",
        format!("containers, database, web and XMPP were not checked because {why}"),
    )
    .hint("fix the errors above, then run: movim-setup doctor")
}

pub struct Local {
    /// `files.*`, reported first.
    files: Vec<Finding>,
    /// env, images, drift, host, upgrade.
    rest: Vec<Finding>,
}

pub fn local_checks(s: &Dir, hints: &Hints) -> Local {
    let mut rest = check_env(s, hints);
    rest.extend(check_images(s));
    rest.extend(check_drift(s));
    rest.push(check_disk(&s.dir));
    rest.extend(check_upgrade(&s.dir));
    Local {
        files: check_files(s),
        rest,
    }
}

pub struct StackFindings {
    /// `files.compose`, judged by the compose tool.
    compose_config: Vec<Finding>,
    findings: Vec<Finding>,
    /// Container name → last log lines, for the bundle.
    logs: Vec<(String, String)>,
}

pub async fn stack_checks(
    engine: &Engine,
    compose: Option<&ComposeTool>,
    s: &Dir,
    d: &Deployment,
    hints: &Hints,
    want_logs: bool,
) -> StackFindings {
    let config = compose_config(compose, s, d);
    let containers = engine.service_containers(&d.project, s.layout).await;
    let containers = match containers {
        Ok(c) => c,
        Err(e) => {
            return StackFindings {
                compose_config: config.await,
                findings: vec![
                    Finding::error(
                        Area::Containers,
                        "containers.list",
                        format!("cannot list the containers of project {}", d.project),
                    )
                    .detail(format!("{e:#}"))
                    .hint(hints.list()),
                ],
                logs: Vec::new(),
            };
        }
    };
    // On Podman without systemd a health status may never have been checked: check it once.
    let mut checked = Vec::with_capacity(containers.len());
    for c in containers {
        checked.push(engine.with_health_now(c).await);
    }
    let all = &checked;
    let expected_mounts = expected_mounts(s, d);
    let (config, containers_f, mounts, database, web, xmpp, logs) = tokio::join!(
        config,
        check_containers(engine, all, d, s.lock(), hints),
        check_mounts(engine, all, s, expected_mounts.as_ref(), hints),
        check_database(engine, all, s, d, hints),
        check_web(all, s, d, hints),
        check_xmpp(engine, all, d, hints),
        collect_logs(engine, all, want_logs),
    );
    let mut findings = containers_f;
    findings.extend(mounts);
    findings.extend(database);
    findings.extend(web);
    findings.extend(xmpp);
    StackFindings {
        compose_config: config,
        findings,
        logs,
    }
}

/// The last few log lines of a container, as finding details.
pub async fn last_lines(engine: &Engine, c: &ContainerInfo, n: usize) -> Vec<String> {
    match tokio::time::timeout(PROBE_TIMEOUT, engine.logs_tail(&c.id, n)).await {
        Ok(Ok(text)) => {
            let mut out = vec![format!("last log lines of {}:", c.name)];
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("  {l}")),
            );
            out
        }
        _ => Vec::new(),
    }
}

/// The last lines of every container of the project, for `--bundle`.
pub async fn collect_logs(
    engine: &Engine,
    all: &[ContainerInfo],
    wanted: bool,
) -> Vec<(String, String)> {
    if !wanted {
        return Vec::new();
    }
    let reads = all.iter().map(|c| async move {
        let text =
            match tokio::time::timeout(PROBE_TIMEOUT, engine.logs_tail(&c.id, BUNDLE_LOG_LINES))
                .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => format!("(cannot read the logs: {e:#})\n"),
                Err(_) => "(reading the logs timed out)\n".to_owned(),
            };
        (c.name.clone(), text)
    });
    futures_util::future::join_all(reads).await
}
