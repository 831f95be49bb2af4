//! Reads the [`Facts`] doctor judges: the directory and the host synchronously (a few files and
//! `df`), then everything the running stack shows, each probe concurrent and bounded by its own
//! timeout so that doctor answers even when a part hangs. Read-only: it never writes, starts,
//! stops, pulls or migrates anything.

use crate::adapters::database::{DbClient, DbError, Postgres};
use crate::adapters::db::DbFacts;
use crate::adapters::engine::{ContainerEngine, Engine, EngineKind};
use crate::adapters::health::{Http, WebProbe};
use crate::adapters::runner::compose::ComposeTool;
use crate::adapters::store::Dir;
use crate::adapters::{fsx, run_lock, runner};
use crate::core::containers::ContainerInfo;
use crate::core::deployment::{Deployment, Tls};
use crate::core::journal::{JOURNAL_FILE, Journal};
use crate::core::movim;
use crate::core::render::{self, CA_FILE};
use crate::core::trust;
use crate::doctor::checks;
use crate::doctor::facts::{
    ComposeInfo, EngineInfo, Facts, FileMeta, LeftJournal, Outcome, StackFacts, WebFacts,
};
use crate::doctor::{BUNDLE_LOG_LINES, PHINX_TIMEOUT, PROBE_TIMEOUT, XMPP_TIMEOUT};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

/// How long doctor watches a container that has restarted before, to tell a loop from a recovery.
const RESTART_WATCH: Duration = Duration::from_secs(3);
/// How many log lines a finding about a container quotes.
const DETAIL_LOG_LINES: usize = 5;

async fn outcome<F>(timeout: Duration, run: F) -> Outcome
where
    F: std::future::Future<Output = anyhow::Result<(i64, String)>>,
{
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok((code, output))) => Outcome::Ran(code, output),
        Ok(Err(e)) => Outcome::Failed(format!("{e:#}")),
        Err(_) => Outcome::TimedOut,
    }
}

/// Reads everything doctor judges about the deployment in `dir` (absolute).
pub async fn gather(
    dir: &Path,
    engine_kind: Option<EngineKind>,
    compose_choice: Option<&str>,
    want_logs: bool,
    podman_service: bool,
) -> Facts {
    let setup = Dir::read(dir);
    let layout = setup.layout;
    let connect = Engine::connect_serving(engine_kind, podman_service);
    let (engine, compose) = tokio::join!(connect, async {
        if runner::needs_compose_tool(layout) {
            Some(runner::detect_compose(compose_choice, engine_kind).await)
        } else {
            None
        }
    });
    let project = setup
        .deployment
        .as_ref()
        .map_or_else(|_| "PROJECT".to_owned(), |d| d.project.clone());
    let compose = compose.map(|c| {
        c.map(|tool| match &engine {
            Ok(e) => tool.for_engine(e.kind(), e.endpoint()),
            Err(_) => tool,
        })
        .map(|tool| ComposeInfo {
            describe: format!("{} {}", tool.flavor(), tool.version()),
            display: tool.display_command(),
            config_command: tool.config_command(dir, &project),
            tool,
        })
        .map_err(|e| format!("{e:#}"))
    });
    let engine_info = engine.as_ref().map(|e| EngineInfo {
        kind: e.kind(),
        version: e.version().to_owned(),
        api_version: e.api_version().to_owned(),
        endpoint: e.endpoint().to_owned(),
    });
    // A kube-played deployment runs on Podman only: another engine has none of its containers.
    let usable = engine
        .as_ref()
        .ok()
        .filter(|e| runner::engine_fits(layout, e.kind()));
    let stack = match (usable, &setup.deployment) {
        (Some(engine), Ok(d)) => {
            let tool = compose
                .as_ref()
                .and_then(|c| c.as_ref().ok())
                .map(|c| &c.tool);
            let db = Postgres {
                engine: engine.clone(),
            };
            Some(gather_stack(engine, &db, &Http, tool, &setup, d, want_logs).await)
        }
        _ => None,
    };
    let mut facts = local(setup);
    // Its owner as the containers see it (rootless: through the user namespace).
    if let (Some(meta), Ok(engine)) = (facts.env_meta.as_mut(), &engine) {
        meta.group_private = engine.is_subordinate_gid(meta.gid);
        (meta.uid, meta.gid) = engine.owner_in_containers(meta.uid, meta.gid);
    }
    facts.engine = engine_info.map_err(|e| format!("{e:#}"));
    facts.compose = compose;
    facts.stack = stack;
    facts
}

/// What only the directory and the host say: quick and synchronous.
pub fn local(dir: Dir) -> Facts {
    let env_meta = std::fs::metadata(dir.dir.join(dir.env_file))
        .ok()
        .map(|m| FileMeta {
            mode: m.mode() & 0o777,
            uid: m.uid(),
            gid: m.gid(),
            group_private: false,
        });
    let expected = checks::drift::expected_files(&dir, &extras(&dir));
    let on_disk = expected
        .iter()
        .flat_map(BTreeMap::keys)
        .map(|path| {
            (
                path.clone(),
                std::fs::read_to_string(dir.dir.join(path)).ok(),
            )
        })
        .collect();
    let journal_path = dir.dir.join(JOURNAL_FILE);
    let journal = std::fs::metadata(&journal_path)
        .ok()
        .map(|meta| LeftJournal {
            age: meta.modified().ok().and_then(|m| m.elapsed().ok()),
            journal: Journal::load(&dir.dir)
                .map_err(|e| format!("{e:#}"))
                .and_then(|j| j.ok_or_else(|| "it vanished".to_owned())),
        });
    Facts {
        env_meta,
        expected,
        on_disk,
        free_bytes: fsx::free_bytes(&dir.dir).map_err(|e| format!("{e:#}")),
        run_lock_holder: run_lock::live_holder(&dir.dir),
        untrusted: fsx::dir_facts(&dir.dir).ok().and_then(|(target, above)| {
            trust::check(target.as_ref(), &above, fsx::effective_uid()).err()
        }),
        journal,
        engine: Err(String::new()),
        compose: None,
        stack: None,
        secrets: dir.secrets(),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
        dir,
    }
}

/// Content init copies from files the user named (the CA bundle, Prosody's certificate), as the
/// directory holds it now: those sources may have moved since, and a copy is not a hand edit.
fn extras(s: &Dir) -> render::Extras {
    let mut extras = render::Extras::default();
    let Ok(d) = &s.deployment else {
        return extras;
    };
    if d.ca_bundle.is_some() {
        extras.ca_pem = std::fs::read_to_string(s.dir.join(CA_FILE)).ok();
    }
    if let crate::core::deployment::Xmpp::Bundled {
        domain,
        cert: Some(_),
        ..
    } = &d.xmpp
    {
        let cert = std::fs::read_to_string(s.dir.join(format!("prosody/certs/{domain}.crt")));
        let key = std::fs::read_to_string(s.dir.join(format!("prosody/certs/{domain}.key")));
        if let (Ok(c), Ok(k)) = (cert, key) {
            extras.xmpp_cert = Some((c, crate::core::secret::Secret::new(k)));
        }
    }
    extras
}

/// What the running stack shows, each probe concurrent and bounded.
#[allow(clippy::too_many_arguments)] // each is one part of the world a probe reaches
pub async fn gather_stack(
    engine: &dyn ContainerEngine,
    db: &dyn DbClient,
    web: &dyn WebProbe,
    compose: Option<&ComposeTool>,
    s: &Dir,
    d: &Deployment,
    want_logs: bool,
) -> StackFacts {
    let config = async {
        match (runner::needs_compose_tool(s.layout), compose, &s.main_text) {
            (true, Some(tool), Some(_)) => Some(
                outcome(PROBE_TIMEOUT * 3, async {
                    tool.config(&s.dir, &d.project).await.map(|out| (0, out))
                })
                .await,
            ),
            _ => None,
        }
    };
    let containers = match engine.service_containers(&d.project, s.layout).await {
        Ok(c) => c,
        Err(e) => {
            return StackFacts {
                config: config.await,
                containers: Err(format!("{e:#}")),
                restarting: BTreeSet::new(),
                logs: BTreeMap::new(),
                writable: BTreeMap::new(),
                db: Err("the containers could not be listed".to_owned()),
                phinx: None,
                web: Err("the containers could not be listed".to_owned()),
                xmpp: None,
                worker_log: None,
                opcache: None,
                bundle_logs: Vec::new(),
            };
        }
    };
    // On Podman without systemd a health status may never have been checked: check it once.
    let mut all = Vec::with_capacity(containers.len());
    for c in containers {
        all.push(engine.with_health_now(c).await);
    }
    let all = &all;
    let (
        config,
        restarting,
        logs,
        writable,
        db,
        phinx,
        web,
        xmpp,
        worker_log,
        opcache,
        bundle_logs,
    ) = tokio::join!(
        config,
        restarting_now(engine, all),
        last_lines(engine, all),
        write_probes(engine, all, s, d),
        db_facts(db, all, s, d),
        phinx_status(engine, all),
        web_facts(web, all, s, d),
        xmpp_probe(engine, all, d),
        worker_log_probe(engine, all, want_logs),
        opcache_probe(engine, all),
        bundle_logs(engine, all, want_logs),
    );
    StackFacts {
        config,
        containers: Ok(all.clone()),
        restarting,
        logs,
        writable,
        db,
        phinx,
        web,
        xmpp,
        worker_log,
        opcache,
        bundle_logs,
    }
}

/// The containers that restarted again while doctor watched them for [`RESTART_WATCH`]. Podman
/// restarts a container at once (no `restarting` state to see, and a check run in the second it is
/// up may pass), so a loop shows only as a restart count that keeps rising.
async fn restarting_now(engine: &dyn ContainerEngine, all: &[ContainerInfo]) -> BTreeSet<String> {
    let restarted: Vec<&ContainerInfo> = all.iter().filter(|c| c.restart_count > 0).collect();
    if restarted.is_empty() {
        return BTreeSet::new();
    }
    tokio::time::sleep(RESTART_WATCH).await;
    let mut out = BTreeSet::new();
    for c in restarted {
        if let Ok(now) = engine.inspect(&c.id).await
            && (now.restart_count > c.restart_count || now.started_at != c.started_at)
        {
            out.insert(c.id.clone());
        }
    }
    out
}

/// The last few log lines of each container, as finding details.
async fn last_lines(
    engine: &dyn ContainerEngine,
    all: &[ContainerInfo],
) -> BTreeMap<String, Vec<String>> {
    let reads = all.iter().map(|c| async move {
        let lines =
            match tokio::time::timeout(PROBE_TIMEOUT, engine.logs_tail(&c.id, DETAIL_LOG_LINES))
                .await
            {
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
            };
        (c.id.clone(), lines)
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect()
}

/// Whether fpm and the daemon can write their shared directories as uid 82.
async fn write_probes(
    engine: &dyn ContainerEngine,
    all: &[ContainerInfo],
    s: &Dir,
    d: &Deployment,
) -> BTreeMap<String, Outcome> {
    let Some(expected) = checks::mounts::expected_mounts(s, d) else {
        return BTreeMap::new();
    };
    let probes = checks::mounts::write_probes(&expected, all);
    let runs = probes.iter().map(|(service, id, dirs)| async move {
        let mut cmd = vec!["php", "-r", checks::mounts::WRITABLE_PHP];
        cmd.extend(dirs.iter().map(String::as_str));
        (
            (*service).to_owned(),
            outcome(PROBE_TIMEOUT, engine.exec(id, &cmd)).await,
        )
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .collect()
}

async fn db_facts(
    db: &dyn DbClient,
    all: &[ContainerInfo],
    s: &Dir,
    d: &Deployment,
) -> Result<(String, DbFacts), String> {
    let password = s
        .password()
        .ok_or_else(|| format!("{} has no DB_PASSWORD", s.env_file))?;
    let target = checks::database::db_target(all, d, password)?;
    match db.facts(&target, Duration::from_secs(5)).await {
        Ok(facts) => Ok((target.describe(), facts)),
        Err(DbError::Login(e) | DbError::Read(e)) => Err(format!("{e:#}")),
    }
}

/// `php vendor/bin/phinx status` in the running daemon (fpm carries the same tree).
async fn phinx_status(
    engine: &dyn ContainerEngine,
    all: &[ContainerInfo],
) -> Option<(String, Outcome)> {
    let c = checks::movim_container(all)?;
    let cmd = ["php", "vendor/bin/phinx", "status"];
    Some((
        c.name.clone(),
        outcome(PHINX_TIMEOUT, engine.exec(&c.id, &cmd)).await,
    ))
}

/// Whether the daemon's PHP runs with OPcache, which Movim's daemon asks for at start.
async fn opcache_probe(engine: &dyn ContainerEngine, all: &[ContainerInfo]) -> Option<Outcome> {
    let c = crate::core::containers::container_of(all, "daemon").filter(|c| c.running)?;
    let cmd = [
        "php",
        "-r",
        "echo function_exists('opcache_get_status') && is_array(@opcache_get_status(false)) ? 'on' : 'off';",
    ];
    Some(outcome(PROBE_TIMEOUT, engine.exec(&c.id, &cmd)).await)
}

async fn web_facts(
    web: &dyn WebProbe,
    all: &[ContainerInfo],
    s: &Dir,
    d: &Deployment,
) -> Result<WebFacts, String> {
    let addr = checks::web::web_address(all, d)?;
    let host = d.domain.as_str();
    let origin = format!("https://{host}");
    let (handshake, infos, resolves) = tokio::join!(
        web.handshake(addr, host, &origin, "/ws/", Duration::from_secs(5)),
        web.infos(addr, host, Duration::from_secs(5)),
        web.resolves(host, Duration::from_secs(3)),
    );
    let daemon_running =
        crate::core::containers::container_of(all, "daemon").is_some_and(|c| c.running);
    let tls = if resolves {
        // With the bundled Caddy the request goes to Caddy's container directly.
        let caddy = matches!(d.tls, Tls::Caddy { .. })
            .then(|| crate::core::containers::container_of(all, "caddy"))
            .flatten()
            .and_then(|c| c.ips.first().map(|(_, ip)| *ip));
        let via = caddy.map_or_else(
            || "as resolved".to_owned(),
            |ip| format!("through caddy at {ip}"),
        );
        let ca = std::fs::read(s.dir.join(CA_FILE)).ok();
        Some((web.https_status(host, caddy, ca.as_deref()).await, via))
    } else {
        None
    };
    Ok(WebFacts {
        addr,
        daemon_running,
        handshake,
        infos,
        resolves,
        tls,
    })
}

/// The XMPP probe, from inside the daemon (or fpm).
async fn xmpp_probe(
    engine: &dyn ContainerEngine,
    all: &[ContainerInfo],
    d: &Deployment,
) -> Option<(String, String, Outcome)> {
    let c = checks::movim_container(all)?;
    let service = c.service.clone().unwrap_or_else(|| "daemon".to_owned());
    // As the session worker that will log in: its environment, no php.ini, `.env` read by itself.
    let cmd = movim::as_session_worker(checks::xmpp::XMPP_PHP, &[d.xmpp.domain().as_str()]);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    Some((
        c.name.clone(),
        service,
        outcome(XMPP_TIMEOUT, engine.exec(&c.id, &cmd)).await,
    ))
}

/// Whether a session worker can write its log, and the last lines of Movim's error log (more of
/// them for `--bundle`), from inside the daemon (or fpm).
async fn worker_log_probe(
    engine: &dyn ContainerEngine,
    all: &[ContainerInfo],
    for_bundle: bool,
) -> Option<(String, String, Outcome)> {
    let c = checks::movim_container(all)?;
    let service = c.service.clone().unwrap_or_else(|| "daemon".to_owned());
    let lines = if for_bundle {
        BUNDLE_LOG_LINES
    } else {
        DETAIL_LOG_LINES
    }
    .to_string();
    let cmd = movim::as_session_worker(movim::WORKER_LOG_PHP, &[lines.as_str()]);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    Some((
        c.name.clone(),
        service,
        outcome(PROBE_TIMEOUT, engine.exec(&c.id, &cmd)).await,
    ))
}

/// The last lines of every container of the project, for `--bundle`.
async fn bundle_logs(
    engine: &dyn ContainerEngine,
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
