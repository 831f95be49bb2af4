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
//! The layout ([`Layout::detect`]) decides which files are read and which commands the fixes
//! name: the compose tool's for a compose project; `podman logs`, `podman exec` and
//! `podman kube play --replace` for a deployment written by `init --target kube`.

use crate::adapters::db::{self, DbTarget};
use crate::adapters::engine::{ContainerInfo, Engine, EngineKind};
use crate::adapters::fsx;
use crate::adapters::health;
use crate::adapters::runner::compose::{self, ComposeTool};
use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::core::deployment::{Database, Deployment, Tls, Xmpp};
use crate::core::envfile;
use crate::core::journal::{JOURNAL_FILE, RUN_LOCK_FILE};
use crate::core::layout;
use crate::core::layout::Layout;
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::core::render::kube::{self, KUBE_ENV_FILE, PODMAN_DB_PASSWORD_FILE, PODMAN_FILE};
use crate::core::render::{
    self, ANSWERS_FILE, CA_FILE, COMPOSE_FILE, ENV_FILE, Extras, compose::ComposeFile,
};
use crate::core::secret::Secret;
use crate::doctor::report::{Area, Finding, Report, Severity, line_diff};
use crate::error::{ExitStatus, Failure};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The uid Movim's fpm and daemon run as (www-data on Alpine).
const MOVIM_UID: u32 = 82;
/// How much of each service's log the bundle keeps.
const BUNDLE_LOG_LINES: usize = 100;
/// How many diff lines a drifted file shows.
const DIFF_LINES: usize = 20;
/// Each probe's own limit: doctor must answer even when a part hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// `phinx status` connects to the database and reads every migration file.
const PHINX_TIMEOUT: Duration = Duration::from_secs(30);
/// DNS from inside a container can wait on unreachable resolvers (two lookups, retries).
const XMPP_TIMEOUT: Duration = Duration::from_secs(25);
/// Below these, the disk is a warning, then an error (backups and the database need room).
const DISK_WARN_BYTES: u64 = 2 << 30;
const DISK_ERROR_BYTES: u64 = 256 << 20;
/// A certificate expiring sooner than this is a warning.
const CERT_WARN_DAYS: i64 = 14;

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
    let kind = match ctx.engine.as_deref() {
        Some(k) => Some(
            k.parse::<EngineKind>()
                .map_err(|e| Failure::usage(format!("--engine {k}: {e}")))?,
        ),
        None => None,
    };

    let setup = Setup::read(&dir);
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
    let hints = Hints::new(&setup, compose.as_ref());
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
fn skipped(engine: &Option<Engine>, setup: &Setup) -> Finding {
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

// ------------------------------------------------------------------------------------------------
// What the directory holds.

/// The deployment directory as read once: each file parsed, or why it could not be.
struct Setup {
    dir: PathBuf,
    layout: Layout,
    /// `movim.env`, or `kube/movim.env` beside the kube manifests.
    env_file: &'static str,
    deployment: Result<Deployment, String>,
    /// `None`: missing.
    env_text: Option<String>,
    env: Option<Result<BTreeMap<String, String>, String>>,
    lock: Option<Result<Lock, String>>,
    /// `compose.yaml`, or `kube/podman.yaml` for a kube-played deployment ([`Layout::main_file`]).
    main_text: Option<String>,
}

impl Setup {
    fn read(dir: &Path) -> Self {
        let text = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let deployment = match text(ANSWERS_FILE) {
            Some(t) => serde_norway::from_str::<Deployment>(&t).map_err(|e| e.to_string()),
            None => Err(format!("{ANSWERS_FILE} cannot be read")),
        };
        let layout = Layout::detect(dir);
        let env_file = match layout {
            Layout::Compose => ENV_FILE,
            Layout::KubePlay => KUBE_ENV_FILE,
        };
        let env_text = text(env_file);
        let env = env_text.as_deref().map(envfile::parse);
        let lock = text(LOCK_FILE).map(|t| Lock::parse(&t));
        Self {
            dir: dir.to_owned(),
            layout,
            env_file,
            deployment,
            env,
            env_text,
            lock,
            main_text: text(layout.main_file()),
        }
    }

    fn env(&self) -> Option<&BTreeMap<String, String>> {
        self.env.as_ref().and_then(|e| e.as_ref().ok())
    }

    fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref().and_then(|l| l.as_ref().ok())
    }

    fn password(&self) -> Option<Secret> {
        self.env()
            .and_then(|e| e.get("DB_PASSWORD"))
            .map(|p| Secret::new(p.clone()))
    }

    /// Every secret value the directory holds, to scrub from anything printed or bundled.
    fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .env()
            .into_iter()
            .flatten()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.clone())
            .collect();
        if let Ok(text) = std::fs::read_to_string(self.dir.join(PODMAN_DB_PASSWORD_FILE))
            && !text.trim().is_empty()
        {
            out.push(text.trim().to_owned());
        }
        if let Ok(text) = std::fs::read_to_string(self.dir.join(render::POSTGRES_ENV_FILE))
            && let Ok(values) = envfile::parse(&text)
        {
            out.extend(
                values
                    .into_iter()
                    .filter(|(k, _)| is_secret_key(k))
                    .map(|(_, v)| v),
            );
        }
        out
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A key of the env table marked secret, or an unknown key whose name says it is one.
fn is_secret_key(name: &str) -> bool {
    envfile::key(name).map_or_else(
        || {
            let upper = name.to_ascii_uppercase();
            ["PASSWORD", "SECRET", "TOKEN", "KEY"]
                .iter()
                .any(|w| upper.contains(w))
        },
        |k| k.secret,
    )
}

/// The exact commands hints end with, built once, in the words of the deployment's runner.
struct Hints {
    /// `docker compose -f /srv/movim/compose.yaml -p movim`; for kube, `podman`.
    compose: String,
    /// `movim-setup init --dir /srv/movim`
    init: String,
    dir: String,
    project: String,
    /// `podman kube play --replace --network movim /srv/movim/kube/podman.yaml` for a
    /// kube-played deployment; `None` for compose.
    play: Option<String>,
}

impl Hints {
    fn new(setup: &Setup, tool: Option<&ComposeTool>) -> Self {
        let dir = setup.dir.display().to_string();
        let project = setup
            .deployment
            .as_ref()
            .map_or_else(|_| "PROJECT".to_owned(), |d| d.project.clone());
        let init = format!("movim-setup init --dir {dir}");
        if setup.layout == Layout::KubePlay {
            return Self {
                compose: "podman".to_owned(),
                init,
                play: Some(format!(
                    "podman kube play --replace --network {project} {}",
                    setup.path(PODMAN_FILE)
                )),
                dir,
                project,
            };
        }
        let program =
            tool.map_or_else(|| "docker compose".to_owned(), ComposeTool::display_command);
        Self {
            compose: format!("{program} -f {} -p {project}", setup.path(COMPOSE_FILE)),
            init,
            dir,
            project,
            play: None,
        }
    }

    /// `podman … <project>-<service>` or `<compose> … <service>`: what names a service.
    fn target(&self, service: &str) -> String {
        match self.play {
            Some(_) => layout::kube_container(&self.project, service),
            None => service.to_owned(),
        }
    }

    fn logs(&self, service: &str) -> String {
        format!("{} logs --tail 50 {}", self.compose, self.target(service))
    }

    /// A command run in the service's running container.
    fn exec(&self, service: &str, command: &str) -> String {
        format!("{} exec {} {command}", self.compose, self.target(service))
    }

    /// Starts a stopped container of `service`.
    fn start(&self, service: &str) -> String {
        match self.play {
            Some(_) => format!("podman start {}", self.target(service)),
            None => format!("{} up -d {service}", self.compose),
        }
    }

    /// Recreates `services` from the deployment's file (kube: both pods, played anew; their
    /// init containers hand the volumes to uid 82 and run the migrations first).
    fn recreate(&self, services: &str) -> String {
        match &self.play {
            Some(play) => play.clone(),
            None => format!("{} up -d --force-recreate {services}", self.compose),
        }
    }

    /// Restarts what reads movim.env.
    fn restart(&self, services: &str) -> String {
        match &self.play {
            Some(play) => play.clone(),
            None => format!("{} restart {services}", self.compose),
        }
    }

    /// Starts the whole stack in order, migrations first.
    fn start_stack(&self) -> String {
        match &self.play {
            Some(play) => format!(
                "podman network exists {p} || podman network create {p}; {play}   (then check: podman pod ps)",
                p = self.project
            ),
            None => self.init.clone(),
        }
    }

    fn migrate(&self) -> String {
        match &self.play {
            // The pod's init container `migrate` runs at every start of the pod.
            Some(play) => format!(
                "{play}   (its init container `migrate` applies them before the daemon starts)"
            ),
            None => format!(
                "{} run --rm --no-deps -T --entrypoint php daemon vendor/bin/phinx migrate && {} restart daemon",
                self.compose, self.compose
            ),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Checks that only read the directory.

struct Local {
    /// `files.*`, reported first.
    files: Vec<Finding>,
    /// env, images, drift, host, upgrade.
    rest: Vec<Finding>,
}

fn local_checks(s: &Setup, hints: &Hints) -> Local {
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

fn check_files(s: &Setup) -> Vec<Finding> {
    let restore = |name: &str| {
        format!(
            "restore {name} from {d}/backups/files/, or let init write it again: movim-setup init --dir {d}",
            d = s.dir.display()
        )
    };
    let mut out = Vec::new();
    out.push(match &s.deployment {
        Ok(d) => Finding::ok(
            Area::Files,
            "files.answers",
            format!(
                "{ANSWERS_FILE}: project {}, {}, Movim {}",
                d.project,
                d.domain.public_url(),
                d.version
            ),
        ),
        Err(e) => Finding::error(
            Area::Files,
            "files.answers",
            format!("{ANSWERS_FILE} is not valid"),
        )
        .detail(e.clone())
        .hint(restore(ANSWERS_FILE)),
    });
    if s.layout == Layout::KubePlay {
        out.push(match s.main_text.as_deref().map(kube_images) {
            None => Finding::error(
                Area::Files,
                "files.kube",
                format!("{PODMAN_FILE} is missing"),
            )
            .hint(restore(PODMAN_FILE)),
            Some(Err(e)) => Finding::error(
                Area::Files,
                "files.kube",
                format!("{PODMAN_FILE} is not a valid pod manifest"),
            )
            .detail(e)
            .hint(restore(PODMAN_FILE)),
            Some(Ok(images)) => Finding::ok(
                Area::Files,
                "files.kube",
                format!(
                    "{PODMAN_FILE}: pods for `podman kube play`, {} containers",
                    images.len()
                ),
            ),
        });
    }
    // compose.yaml: parsed here only when no compose tool can judge it (see `compose_config`).
    if s.layout == Layout::Compose && s.main_text.is_none() {
        out.push(
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{COMPOSE_FILE} is missing"),
            )
            .hint(restore(COMPOSE_FILE)),
        );
    }
    let env_file = s.env_file;
    out.push(match &s.env {
        None => Finding::error(Area::Files, "files.env", format!("{env_file} is missing"))
            .hint(restore(env_file)),
        Some(Err(e)) => Finding::error(
            Area::Files,
            "files.env",
            format!("{env_file} cannot be parsed"),
        )
        .detail(e.clone())
        .hint(restore(env_file)),
        Some(Ok(v)) => Finding::ok(
            Area::Files,
            "files.env",
            format!("{env_file}: {} keys", v.len()),
        ),
    });
    out.push(match &s.lock {
        None => Finding::error(Area::Files, "files.lock", format!("{LOCK_FILE} is missing"))
            .hint(restore(LOCK_FILE)),
        Some(Err(e)) => Finding::error(
            Area::Files,
            "files.lock",
            format!("{LOCK_FILE} is not valid"),
        )
        .detail(e.clone())
        .hint(restore(LOCK_FILE)),
        Some(Ok(l)) => Finding::ok(
            Area::Files,
            "files.lock",
            format!(
                "{LOCK_FILE}: Movim {}, {} pinned images",
                l.movim,
                l.images.len()
            ),
        ),
    });
    out
}

/// `movim.env`: private, readable by Movim's uid, every key valid, `DAEMON_URL` the public URL.
fn check_env(s: &Setup, hints: &Hints) -> Vec<Finding> {
    let mut out = Vec::new();
    let env_file = s.env_file;
    let path = s.path(env_file);
    if let Ok(meta) = std::fs::metadata(&path) {
        let mode = meta.mode() & 0o777;
        out.push(if mode & 0o077 == 0 {
            Finding::ok(Area::Env, "env.mode", format!("{env_file} is mode {mode:04o}"))
        } else {
            Finding::error(
                Area::Env,
                "env.mode",
                format!(
                    "{env_file} is mode {mode:04o}: other local users can read the database password"
                ),
            )
            .hint(format!("chmod 600 {path}"))
        });
        let readable = meta.uid() == MOVIM_UID
            || (meta.gid() == MOVIM_UID && mode & 0o040 != 0)
            || mode & 0o004 != 0;
        out.push(if readable {
            Finding::ok(
                Area::Env,
                "env.owner",
                format!("{env_file} is readable by uid {MOVIM_UID} (owner {}:{})", meta.uid(), meta.gid()),
            )
        } else {
            Finding::error(
                Area::Env,
                "env.owner",
                format!(
                    "{env_file} belongs to {}:{} with mode {mode:04o}: fpm and daemon (uid {MOVIM_UID}) cannot read it",
                    meta.uid(),
                    meta.gid()
                ),
            )
            .hint(format!("sudo chown {MOVIM_UID}:{MOVIM_UID} {path}"))
        });
    }
    let Some(values) = s.env() else {
        return out;
    };
    // What init would write for each key, to quote in the fix (never a secret's value).
    let expected: BTreeMap<&str, String> = s
        .deployment
        .as_ref()
        .map(|d| {
            let mut values = envfile::values(d, &Secret::new(String::new()));
            // The kube pods reach the database by its pod's (Service's) name.
            if s.layout == Layout::KubePlay {
                for (k, v) in &mut values {
                    if *k == "DB_HOST" {
                        *v = kube::db_host(d);
                    }
                }
            }
            values
        })
        .unwrap_or_default()
        .into_iter()
        .collect();
    let problems = envfile::problems(values);
    if problems.is_empty() {
        out.push(Finding::ok(
            Area::Env,
            "env.keys",
            format!("all {} keys valid", envfile::KEYS.len()),
        ));
    }
    let restart = format!(
        "then restart what reads it: {}",
        hints.restart("fpm daemon")
    );
    for (key, why) in problems {
        let secret = envfile::key(&key).is_some_and(|k| k.secret);
        let set = match expected.get(key.as_str()) {
            Some(v) if !secret && !v.is_empty() => format!("set {key}={v} in {path}"),
            _ => format!("set {key} in {path}"),
        };
        out.push(
            Finding::error(Area::Env, format!("env.key.{key}"), format!("{key} {why}"))
                .hint(format!("{set}, {restart}")),
        );
    }
    if let (Ok(d), Some(url)) = (&s.deployment, values.get("DAEMON_URL"))
        && let Ok(parsed) = url::Url::parse(url)
    {
        let host = parsed.host_str().unwrap_or_default();
        out.push(if host.eq_ignore_ascii_case(d.domain.as_str()) {
            Finding::ok(
                Area::Env,
                "env.daemon_url.host",
                format!("DAEMON_URL {url} names the public host"),
            )
        } else {
            Finding::error(
                Area::Env,
                "env.daemon_url.host",
                format!(
                    "DAEMON_URL's host `{host}` is not the public host `{}`: the daemon refuses every browser's websocket (Origin mismatch)",
                    d.domain
                ),
            )
            .hint(format!(
                "set DAEMON_URL={} in {path}, {restart}",
                d.domain.public_url()
            ))
        });
    }
    out
}

/// The images compose runs, by service, from the file as it is on disk.
fn compose_images(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let services = value
        .get("services")
        .and_then(serde_norway::Value::as_mapping)
        .ok_or("it has no `services`")?;
    Ok(services
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str()?.to_owned(),
                v.get("image")
                    .and_then(serde_norway::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        })
        .collect())
}

/// The images `podman kube play` runs, by container name (init containers included), from
/// `kube/podman.yaml` as it is on disk; an error when it holds no pod with containers.
fn kube_images(text: &str) -> Result<BTreeMap<String, String>, String> {
    use serde::Deserialize as _;
    let mut out = BTreeMap::new();
    let mut pods = 0;
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(doc).map_err(|e| e.to_string())?;
        if value.get("kind").and_then(serde_norway::Value::as_str) != Some("Pod") {
            continue;
        }
        pods += 1;
        let spec = value.get("spec").ok_or("a Pod has no `spec`")?;
        for list in ["initContainers", "containers"] {
            for c in spec
                .get(list)
                .and_then(serde_norway::Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = c
                    .get("name")
                    .and_then(serde_norway::Value::as_str)
                    .ok_or(format!("a container of `{list}` has no name"))?;
                let image = c
                    .get("image")
                    .and_then(serde_norway::Value::as_str)
                    .unwrap_or_default();
                out.insert(name.to_owned(), image.to_owned());
            }
        }
    }
    if pods == 0 || out.is_empty() {
        return Err("it holds no Pod with containers".to_owned());
    }
    Ok(out)
}

/// Every image pinned by digest and equal to the lock (a service the lock does not name, such as
/// the one-shot `prepare`, must run one of the lock's images).
fn check_images(s: &Setup) -> Vec<Finding> {
    let (Some(text), Some(lock)) = (&s.main_text, s.lock()) else {
        return Vec::new();
    };
    let main_file = s.layout.main_file();
    let read = match s.layout {
        Layout::Compose => compose_images(text),
        Layout::KubePlay => kube_images(text),
    };
    let images = match read {
        Ok(i) => i,
        Err(e) => {
            return vec![
                Finding::error(
                    Area::Images,
                    "images.pinned",
                    format!("cannot read the images of {main_file}"),
                )
                .detail(e)
                .hint(format!(
                    "restore what init writes: movim-setup init --dir {}",
                    s.dir.display()
                )),
            ];
        }
    };
    let restore = format!(
        "if the edit was not on purpose, restore the pinned file (the edited one is kept in backups/files/): movim-setup init --dir {}",
        s.dir.display()
    );
    let pinned: BTreeSet<&String> = lock.images.values().collect();
    let mut out = Vec::new();
    for (service, image) in &images {
        if !image.contains("@sha256:") {
            out.push(
                Finding::error(
                    Area::Images,
                    format!("images.{service}.pinned"),
                    format!("{service} runs `{image}`, not pinned by digest: the tag can move to other code"),
                )
                .hint(restore.clone()),
            );
            continue;
        }
        let matches = match lock.images.get(service) {
            Some(locked) => locked == image,
            None => pinned.contains(image),
        };
        if !matches {
            let locked = lock
                .images
                .get(service)
                .map_or_else(|| "none of its images".to_owned(), Clone::clone);
            out.push(
                Finding::error(
                    Area::Images,
                    format!("images.{service}.lock"),
                    format!("{service} runs `{image}` but {LOCK_FILE} pins {locked}"),
                )
                .hint(restore.clone()),
            );
        }
    }
    for service in lock.images.keys().filter(|s| !images.contains_key(*s)) {
        out.push(
            Finding::error(
                Area::Images,
                format!("images.{service}.lock"),
                format!("{LOCK_FILE} pins {service} but {main_file} has no such service"),
            )
            .hint(restore.clone()),
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Images,
            "images.pinned",
            format!(
                "all {} images pinned by digest, as in {LOCK_FILE} (Movim {})",
                images.len(),
                lock.movim
            ),
        ));
    }
    out
}

/// What `init` would write for this deployment today: the pure renderer fed with the saved
/// answers, the password from `movim.env` and the lock. Content that init copies from files the
/// user named (the CA bundle, Prosody's certificate) is taken from the directory itself: those
/// sources may have moved since, and a copy is not a hand edit.
fn expected_files(s: &Setup) -> Result<BTreeMap<String, render::File>, String> {
    let d = s
        .deployment
        .as_ref()
        .map_err(|_| format!("{ANSWERS_FILE} is not valid"))?;
    let password = s
        .password()
        .ok_or(format!("{} has no DB_PASSWORD", s.env_file))?;
    let lock = s
        .lock()
        .ok_or(format!("{LOCK_FILE} is missing or not valid"))?;
    if s.layout == Layout::KubePlay {
        // What `init --target kube` writes: both renderings, the env and password files, the
        // answers.
        let mut files = kube::files(d, &password, &lock.images, &s.dir)?;
        files.insert(
            ANSWERS_FILE.to_owned(),
            render::File {
                content: render::answers_yaml(d)?,
                mode: 0o644,
                secret: false,
            },
        );
        return Ok(files);
    }
    let mut extras = Extras::default();
    if d.ca_bundle.is_some() {
        extras.ca_pem = std::fs::read_to_string(s.dir.join(CA_FILE)).ok();
    }
    if let Xmpp::Bundled {
        domain,
        cert: Some(_),
        ..
    } = &d.xmpp
    {
        let cert = std::fs::read_to_string(s.dir.join(format!("prosody/certs/{domain}.crt")));
        let key = std::fs::read_to_string(s.dir.join(format!("prosody/certs/{domain}.key")));
        if let (Ok(c), Ok(k)) = (cert, key) {
            extras.xmpp_cert = Some((c, Secret::new(k)));
        }
    }
    render::files(
        d,
        &render::Secrets {
            db_password: password,
        },
        &lock.images,
        &extras,
    )
}

/// Generated files compared with what `init` renders: a short diff for public files; for files
/// holding secrets, only which keys differ (values of secret keys never shown).
fn check_drift(s: &Setup) -> Vec<Finding> {
    let expected = match expected_files(s) {
        Ok(f) => f,
        Err(why) => {
            return vec![
                Finding::warn(
                    Area::Files,
                    "drift",
                    format!("cannot compare the files with what init writes: {why}"),
                )
                .hint("fix the file errors above, then run: movim-setup doctor"),
            ];
        }
    };
    let fix = format!(
        "if the change was not on purpose, let init write it again (the current file is kept in backups/files/): movim-setup init --dir {}",
        s.dir.display()
    );
    let mut out = Vec::new();
    for (path, file) in &expected {
        let on_disk = match std::fs::read_to_string(s.dir.join(path)) {
            Ok(t) => t,
            Err(_) => {
                out.push(
                    Finding::warn(
                        Area::Files,
                        format!("drift.{path}"),
                        format!("{path} is missing (init writes it)"),
                    )
                    .hint(fix.clone()),
                );
                continue;
            }
        };
        if on_disk == file.content {
            continue;
        }
        let details = if path == s.env_file {
            env_differences(&on_disk, &file.content)
        } else if file.secret {
            vec!["(this file holds secrets: its content is not shown)".to_owned()]
        } else {
            let mut d = vec![
                format!("--- {path} (on disk)"),
                format!("+++ {path} (what init writes)"),
            ];
            d.extend(line_diff(&on_disk, &file.content, DIFF_LINES));
            d
        };
        out.push(
            Finding::warn(
                Area::Files,
                format!("drift.{path}"),
                format!("{path} differs from what init writes"),
            )
            .details(details)
            .hint(fix.clone()),
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Files,
            "drift",
            format!(
                "the {} generated files are as init writes them",
                expected.len()
            ),
        ));
    }
    out
}

/// Which keys of an env file differ, with values only for keys that are not secret.
fn env_differences(on_disk: &str, rendered: &str) -> Vec<String> {
    let (Ok(have), Ok(want)) = (envfile::parse(on_disk), envfile::parse(rendered)) else {
        return vec![
            "(cannot parse it to compare keys; content not shown: it holds secrets)".into(),
        ];
    };
    let keys: BTreeSet<&String> = have.keys().chain(want.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (h, w) = (have.get(key), want.get(key));
        if h == w {
            continue;
        }
        let line = match (h, w, is_secret_key(key)) {
            (_, _, true) => format!("{key} differs (secret: not shown)"),
            (Some(h), Some(w), false) => format!("{key}: on disk `{h}`, init writes `{w}`"),
            (Some(h), None, false) => format!("{key}=`{h}` is not written by init"),
            (None, Some(w), false) => format!("{key} is missing (init writes `{w}`)"),
            (None, None, false) => continue,
        };
        out.push(line);
    }
    if out.is_empty() {
        out.push("same keys and values; only comments or layout differ".into());
    }
    out
}

fn check_disk(dir: &Path) -> Finding {
    match fsx::free_bytes(dir) {
        Ok(free) => {
            let shown = format!(
                "{:.1} GiB free in {}",
                free as f64 / f64::from(1u32 << 30),
                dir.display()
            );
            let fix = format!(
                "free space (backups live in {}/backups), then check: df -h {}",
                dir.display(),
                dir.display()
            );
            if free < DISK_ERROR_BYTES {
                Finding::error(
                    Area::Host,
                    "host.disk",
                    format!("only {shown}: PostgreSQL and backups will fail"),
                )
                .hint(fix)
            } else if free < DISK_WARN_BYTES {
                Finding::warn(
                    Area::Host,
                    "host.disk",
                    format!("only {shown}: an upgrade's backup may not fit"),
                )
                .hint(fix)
            } else {
                Finding::ok(Area::Host, "host.disk", shown)
            }
        }
        Err(e) => Finding::warn(Area::Host, "host.disk", "cannot tell the free space")
            .detail(format!("{e:#}"))
            .hint(format!("df -h {}", dir.display())),
    }
}

/// The live process holding the run lock, if any. `upgrade` writes `pid N` and `proc-start T`
/// (the process's start time in clock ticks, so a reused pid is not mistaken for it) into the
/// file and removes it when done; a file left by a killed run names a dead process. Reading the
/// file, never locking it, keeps doctor from ever getting in a real run's way.
fn run_lock_holder(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(RUN_LOCK_FILE)).ok()?;
    let pid: u32 = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())?
        .parse()
        .ok()?;
    let ticks: Option<u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("proc-start "))
        .and_then(|v| v.trim().parse().ok());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of /proc/<pid>/stat, counted after the parenthesised command name.
    let started = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|v| v.parse::<u64>().ok());
    (pid != std::process::id() && ticks.is_none_or(|t| started == Some(t))).then_some(pid)
}

/// An interrupted upgrade (its journal left behind) and a run holding the lock now.
fn check_upgrade(dir: &Path) -> Vec<Finding> {
    let holder = run_lock_holder(dir);
    let journal = dir.join(JOURNAL_FILE);
    let mut out = Vec::new();
    out.push(match (std::fs::metadata(&journal), holder) {
        (Err(_), _) => Finding::ok(Area::Upgrade, "upgrade.journal", "no interrupted upgrade"),
        (Ok(_), Some(pid)) => Finding::warn(
            Area::Upgrade,
            "upgrade.journal",
            format!("an upgrade or rollback is under way (pid {pid})"),
        )
        .hint("wait for it to finish, then run: movim-setup doctor"),
        (Ok(meta), None) => {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map_or_else(String::new, |a| {
                    format!(", last written {} ago", human_age(a))
                });
            Finding::error(
                Area::Upgrade,
                "upgrade.journal",
                format!("an upgrade was interrupted: {} exists{age}", journal.display()),
            )
            .details(journal_summary(&journal))
            .hint(format!(
                "finish it: movim-setup upgrade --resume --dir {d}   (or undo it: movim-setup rollback --dir {d})",
                d = dir.display()
            ))
        }
    });
    out.push(match holder {
        Some(pid) => Finding::warn(
            Area::Upgrade,
            "upgrade.run_lock",
            format!(
                "movim-setup (pid {pid}) holds {}: what doctor saw may be changing under it",
                dir.join(RUN_LOCK_FILE).display()
            ),
        )
        .hint("wait for it to finish, then run: movim-setup doctor"),
        None => Finding::ok(
            Area::Upgrade,
            "upgrade.run_lock",
            "no other movim-setup run holds the lock",
        ),
    });
    out
}

/// What an interrupted run was doing, from the journal's JSON (read loosely: the journal's own
/// module owns its format).
fn journal_summary(path: &Path) -> Vec<String> {
    let Ok(v) = std::fs::read_to_string(path)
        .map_err(|_| ())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
    else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    if let (Some(from), Some(to)) = (v.pointer("/from/movim"), v.pointer("/to/movim")) {
        let kind = v.get("kind").map_or_else(|| "run".to_owned(), text);
        out.push(format!("{kind} from Movim {} to {}", text(from), text(to)));
    }
    if let Some(step) = v.get("current").filter(|c| !c.is_null()) {
        out.push(format!("stopped during: {}", text(step)));
    }
    out
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

// ------------------------------------------------------------------------------------------------
// Checks of the running stack.

struct StackFindings {
    /// `files.compose`, judged by the compose tool.
    compose_config: Vec<Finding>,
    findings: Vec<Finding>,
    /// Container name → last log lines, for the bundle.
    logs: Vec<(String, String)>,
}

async fn stack_checks(
    engine: &Engine,
    compose: Option<&ComposeTool>,
    s: &Setup,
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
                    .hint(if s.layout == Layout::KubePlay {
                        "podman pod ps"
                    } else {
                        "docker ps -a"
                    }),
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

/// `files.compose`: the compose tool's own `config` is the judge of whether the file is valid.
async fn compose_config(compose: Option<&ComposeTool>, s: &Setup, d: &Deployment) -> Vec<Finding> {
    let (Layout::Compose, Some(text)) = (s.layout, &s.main_text) else {
        return Vec::new(); // missing: reported with the other files; kube: `files.kube`
    };
    let fix = format!(
        "restore what init writes: movim-setup init --dir {}",
        s.dir.display()
    );
    if let Err(e) = compose_images(text) {
        return vec![
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{COMPOSE_FILE} is not valid YAML"),
            )
            .detail(e)
            .hint(fix),
        ];
    }
    let Some(tool) = compose else {
        return vec![Finding::ok(
            Area::Files,
            "files.compose",
            format!("{COMPOSE_FILE} parses (no compose tool to validate it)"),
        )];
    };
    match tokio::time::timeout(PROBE_TIMEOUT * 3, tool.config(&s.dir, &d.project)).await {
        Ok(Ok(_)) => vec![Finding::ok(
            Area::Files,
            "files.compose",
            format!("{COMPOSE_FILE} accepted by {}", tool.display_command()),
        )],
        Ok(Err(e)) => vec![
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{} rejects {COMPOSE_FILE}", tool.display_command()),
            )
            .details(format!("{e:#}").lines().take(10).map(str::to_owned))
            .hint(fix),
        ],
        Err(_) => vec![
            Finding::warn(
                Area::Files,
                "files.compose",
                format!("{} config did not answer in time", tool.display_command()),
            )
            .hint(format!("{} config", Hints::new(s, Some(tool)).compose)),
        ],
    }
}

/// The container of `service`: a running one first, a one-off (`compose run`) last.
fn container_of<'a>(all: &'a [ContainerInfo], service: &str) -> Option<&'a ContainerInfo> {
    let mut of: Vec<&ContainerInfo> = all
        .iter()
        .filter(|c| c.service.as_deref() == Some(service))
        .collect();
    of.sort_by_key(|c| (!c.running, c.name.contains("-run-")));
    of.first().copied()
}

/// The last few log lines of a container, as finding details.
async fn last_lines(engine: &Engine, c: &ContainerInfo, n: usize) -> Vec<String> {
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

/// How long doctor watches a container that has restarted before, to tell a loop from a recovery.
const RESTART_WATCH: Duration = Duration::from_secs(3);

/// The containers that restarted again while doctor watched them for [`RESTART_WATCH`]. Podman
/// restarts a container at once (no `restarting` state to see, and a check run in the second it is
/// up may pass), so a loop shows only as a restart count that keeps rising.
async fn restarting_now(engine: &Engine, all: &[ContainerInfo]) -> BTreeSet<String> {
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

const DAEMON_QUIRK: &str = "Movim's daemon exits with code 0 when migrations are pending or DAEMON_URL is missing, and its restart policy starts it again";

async fn check_containers(
    engine: &Engine,
    all: &[ContainerInfo],
    d: &Deployment,
    lock: Option<&Lock>,
    hints: &Hints,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let still_restarting = restarting_now(engine, all).await;
    for (service, _) in d.images() {
        let c_id = |s: &str| format!("container.{service}.{s}");
        let Some(c) = container_of(all, &service) else {
            out.push(
                Finding::error(
                    Area::Containers,
                    c_id("running"),
                    format!("{service} has no container"),
                )
                .hint(format!(
                    "start the stack in order (migrations first): {}",
                    hints.start_stack()
                )),
            );
            continue;
        };
        // A looping container never stays up long enough to pass its healthcheck; one that
        // restarted before and is healthy now has recovered (a warning below).
        let looping = c.status == "restarting"
            || (c.restart_count >= 3 && c.health.as_deref() != Some("healthy"))
            || still_restarting.contains(&c.id);
        if looping {
            let mut f = Finding::error(
                Area::Containers,
                c_id("restarts"),
                format!(
                    "{service} ({}) is restarting in a loop: {} restarts{}",
                    c.name,
                    c.restart_count,
                    c.exit_code
                        .map_or_else(String::new, |e| format!(", last exit code {e}"))
                ),
            );
            if service == "daemon" {
                f = f.detail(DAEMON_QUIRK).hint(format!(
                    "read why in its log, and if migrations are pending apply them: {}",
                    hints.migrate()
                ));
            } else {
                f = f.hint(format!("read why: {}", hints.logs(&service)));
            }
            out.push(f.details(last_lines(engine, c, 5).await));
        } else if !c.running {
            let code = c
                .exit_code
                .map_or_else(String::new, |e| format!(" with code {e}"));
            let mut f = Finding::error(
                Area::Containers,
                c_id("running"),
                format!("{service} ({}) is not running: {}{code}", c.name, c.status),
            );
            let start = if service == "daemon" && c.exit_code == Some(0) {
                f = f.detail(DAEMON_QUIRK);
                match hints.play {
                    // Exit 0 may mean pending migrations: replaying runs them first.
                    Some(_) => format!(
                        "start it: {}   (if its log says migrations are pending: {})",
                        hints.start(&service),
                        hints.migrate()
                    ),
                    None => format!("start it: {}", hints.start(&service)),
                }
            } else {
                format!("start it: {}", hints.start(&service))
            };
            out.push(f.details(last_lines(engine, c, 5).await).hint(start));
        } else {
            let health = match c.health.as_deref() {
                Some(h) => h.to_owned(),
                None => "no healthcheck".to_owned(),
            };
            out.push(Finding::ok(
                Area::Containers,
                c_id("running"),
                format!("{service}: running, {health} ({})", c.name),
            ));
            match c.health.as_deref() {
                Some("unhealthy") => out.push(
                    Finding::error(
                        Area::Containers,
                        c_id("healthy"),
                        format!("{service} is running but unhealthy"),
                    )
                    .details(last_lines(engine, c, 5).await)
                    .hint(format!("read why: {}", hints.logs(&service))),
                ),
                Some("starting") => out.push(
                    Finding::warn(
                        Area::Containers,
                        c_id("healthy"),
                        format!("{service} is still starting (health not known yet)"),
                    )
                    .hint("wait a minute, then run: movim-setup doctor"),
                ),
                _ => {}
            }
            if c.restart_count > 0 {
                out.push(
                    Finding::warn(
                        Area::Containers,
                        c_id("restarts"),
                        format!(
                            "{service} restarted on its own {} time(s) since it was last started",
                            c.restart_count
                        ),
                    )
                    .hint(format!("read why: {}", hints.logs(&service))),
                );
            }
        }
        if c.oom_killed {
            out.push(
                Finding::error(
                    Area::Containers,
                    c_id("oom"),
                    format!("{service} was killed for lack of memory"),
                )
                .hint(format!(
                    "give the host (or the container's limit) more memory, then: {}",
                    hints.start(&service)
                )),
            );
        }
        if let Some(locked) = lock.and_then(|l| l.images.get(&service))
            && !c.runs_image(locked)
        {
            out.push(
                Finding::warn(
                    Area::Containers,
                    c_id("image"),
                    format!("{service} runs `{}`, not the locked `{locked}`", c.image),
                )
                .hint(format!(
                    "recreate it from the pinned image: {}",
                    match hints.play {
                        Some(_) => hints.recreate(&service),
                        None => hints.start(&service),
                    }
                )),
            );
        }
    }
    out
}

/// A compose volume entry `source:destination[:mode]`.
fn parse_volume(spec: &str) -> (&str, &str, bool) {
    let mut parts = spec.splitn(3, ':');
    let source = parts.next().unwrap_or_default();
    let dest = parts.next().unwrap_or_default();
    let ro = parts
        .next()
        .is_some_and(|m| m.split(',').any(|o| o == "ro"));
    (source, dest, ro)
}

/// One mount a Movim container must have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WantedMount {
    dest: String,
    ro: bool,
    /// The named volume it must be (shared between the containers); `None`: a bind mount.
    volume: Option<String>,
}

/// The mounts of fpm, daemon and web as init writes them today: compose.yaml's volumes, or the
/// volume mounts of the rendered `kube/podman.yaml` (a claim is the Podman volume of its name).
fn expected_mounts(s: &Setup, d: &Deployment) -> Option<BTreeMap<String, Vec<WantedMount>>> {
    let lock = s.lock()?;
    match s.layout {
        Layout::Compose => {
            let compose = render::compose::build(d, &lock.images).ok()?;
            Some(compose_mounts(&compose, &d.project))
        }
        Layout::KubePlay => {
            let files = kube::files(d, &s.password()?, &lock.images, &s.dir).ok()?;
            kube_mounts(&files.get(PODMAN_FILE)?.content).ok()
        }
    }
}

fn compose_mounts(compose: &ComposeFile, project: &str) -> BTreeMap<String, Vec<WantedMount>> {
    let mut out = BTreeMap::new();
    for service in ["fpm", "daemon", "web"] {
        let Some(spec) = compose.services.get(service) else {
            continue;
        };
        let wanted = spec
            .volumes
            .iter()
            .map(|v| {
                let (source, dest, ro) = parse_volume(v);
                let named = !source.starts_with(['.', '/', '~']);
                WantedMount {
                    dest: dest.to_owned(),
                    ro,
                    volume: named.then(|| format!("{project}_{source}")),
                }
            })
            .collect();
        out.insert(service.to_owned(), wanted);
    }
    out
}

/// The volume mounts of web, fpm and daemon in a Podman manifest: a `persistentVolumeClaim` is
/// the named volume of the claim, a `hostPath` a bind mount; memory-backed `emptyDir`s are left
/// out (Podman does not show them as mounts).
fn kube_mounts(text: &str) -> Result<BTreeMap<String, Vec<WantedMount>>, String> {
    use serde::Deserialize as _;
    use serde_norway::Value;
    let mut out = BTreeMap::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let pod = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if pod.get("kind").and_then(Value::as_str) != Some("Pod") {
            continue;
        }
        let volumes: BTreeMap<&str, Option<Option<String>>> = pod
            .get("spec")
            .and_then(|s| s.get("volumes"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?;
                let kind = if let Some(claim) = v.get("persistentVolumeClaim") {
                    Some(Some(claim.get("claimName")?.as_str()?.to_owned()))
                } else if v.get("hostPath").is_some() {
                    Some(None)
                } else {
                    None
                };
                Some((name, kind))
            })
            .collect();
        for c in pod
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let Some(service @ ("web" | "fpm" | "daemon")) = c.get("name").and_then(Value::as_str)
            else {
                continue;
            };
            let mut wanted = Vec::new();
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                let dest = m
                    .get("mountPath")
                    .and_then(Value::as_str)
                    .ok_or(format!("a volume mount of {service} has no mountPath"))?;
                let Some(Some(volume)) = volumes.get(name) else {
                    continue; // an emptyDir or an unknown volume
                };
                wanted.push(WantedMount {
                    dest: dest.to_owned(),
                    ro: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                    volume: volume.clone(),
                });
            }
            out.insert(service.to_owned(), wanted);
        }
    }
    Ok(out)
}

/// Each Movim container mounts what compose.yaml (kube: `kube/podman.yaml`) says (named volumes
/// shared, web's read-only), and fpm and daemon can write their shared directories as the uid
/// they run as.
async fn check_mounts(
    engine: &Engine,
    all: &[ContainerInfo],
    s: &Setup,
    expected: Option<&BTreeMap<String, Vec<WantedMount>>>,
    hints: &Hints,
) -> Vec<Finding> {
    let Some(expected) = expected else {
        return vec![
            Finding::warn(
                Area::Containers,
                "mounts",
                format!(
                    "cannot check the mounts without a valid lock and {}",
                    s.env_file
                ),
            )
            .hint("fix the file errors above, then run: movim-setup doctor"),
        ];
    };
    let main_file = s.layout.main_file();
    let mut out = Vec::new();
    let mut probes = Vec::new();
    for service in ["fpm", "daemon", "web"] {
        let (Some(spec), Some(c)) = (expected.get(service), container_of(all, service)) else {
            continue;
        };
        let mut problems = Vec::new();
        let mut writable = Vec::new();
        for want in spec {
            let dest = want.dest.as_str();
            let Some(m) = c.mounts.iter().find(|m| m.destination == dest) else {
                problems.push(format!("{dest} is not mounted"));
                continue;
            };
            if m.read_write == want.ro {
                problems.push(format!(
                    "{dest} is mounted {} but must be {}",
                    if m.read_write {
                        "read-write"
                    } else {
                        "read-only"
                    },
                    if want.ro { "read-only" } else { "read-write" }
                ));
            }
            if let Some(volume) = &want.volume {
                if m.volume_name.as_deref() != Some(volume.as_str()) {
                    problems.push(format!(
                        "{dest} is {} instead of the shared volume {volume}",
                        m.volume_name.as_deref().unwrap_or("a bind mount")
                    ));
                }
                if !want.ro {
                    writable.push(dest.to_owned());
                }
            }
        }
        if !problems.is_empty() {
            out.push(
                Finding::error(
                    Area::Containers,
                    format!("mounts.{service}"),
                    format!("{service}'s mounts differ from {main_file}"),
                )
                .details(problems)
                .hint(format!("recreate it: {}", hints.recreate(service))),
            );
        }
        if c.running && !writable.is_empty() && service != "web" {
            probes.push((service, c, writable));
        }
    }
    let checks = probes.iter().map(|(service, c, dirs)| async move {
        let mut cmd = vec!["php", "-r", WRITABLE_PHP];
        cmd.extend(dirs.iter().map(String::as_str));
        (
            *service,
            tokio::time::timeout(PROBE_TIMEOUT, engine.exec(&c.id, &cmd)).await,
        )
    });
    for (service, result) in futures_util::future::join_all(checks).await {
        let ls = hints.exec(service, "ls -ld /var/www/movim/cache");
        match result {
            Ok(Ok((0, _))) => {}
            Ok(Ok((1, output))) => out.push(
                Finding::error(
                    Area::Containers,
                    format!("mounts.{service}.writable"),
                    format!("{service} (uid {MOVIM_UID}) cannot write its shared directories"),
                )
                .details(output.lines().map(|l| format!("not writable: {l}")))
                .hint(match hints.play {
                    Some(_) => format!(
                        "hand them to uid {MOVIM_UID} (the pod's init container `prepare` does): {}",
                        hints.recreate(service)
                    ),
                    None => format!(
                        "hand them to uid {MOVIM_UID}: {} run --rm --no-deps --user 0 --entrypoint chown {service} -R {MOVIM_UID}:{MOVIM_UID} /var/www/movim/cache /var/www/movim/public/cache /var/www/movim/public/images",
                        hints.compose
                    ),
                }),
            ),
            Ok(Ok((code, output))) => out.push(
                Finding::warn(Area::Containers, format!("mounts.{service}.writable"), format!("cannot test writes in {service} (php exited {code})"))
                    .details(output.lines().take(5).map(str::to_owned))
                    .hint(ls),
            ),
            Ok(Err(e)) => out.push(
                Finding::warn(Area::Containers, format!("mounts.{service}.writable"), format!("cannot test writes in {service}"))
                    .detail(format!("{e:#}"))
                    .hint(ls),
            ),
            Err(_) => out.push(
                Finding::warn(Area::Containers, format!("mounts.{service}.writable"), format!("testing writes in {service} timed out"))
                    .hint(ls),
            ),
        }
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Containers,
            "mounts",
            format!("shared volumes mounted as {main_file} says (web read-only), writable by uid {MOVIM_UID}"),
        ));
    }
    out
}

/// Prints each argument that is not a writable directory; exits 1 if any.
const WRITABLE_PHP: &str = r#"$bad = 0; foreach (array_slice($argv, 1) as $d) { if (!is_dir($d) || !is_writable($d)) { echo $d, "\n"; $bad = 1; } } exit($bad);"#;

/// Where this tool reaches the database: the bundled container's address, or the external host.
fn db_target(all: &[ContainerInfo], d: &Deployment, password: Secret) -> Result<DbTarget, String> {
    let (host, port, name, user) = d.database.endpoint();
    let host = if d.database == Database::Bundled {
        let c = container_of(all, "postgres").ok_or("the postgres container does not exist")?;
        if !c.running {
            return Err(format!(
                "the postgres container ({}) is {}",
                c.name, c.status
            ));
        }
        c.ips
            .first()
            .map(|(_, ip)| ip.to_string())
            .ok_or("the postgres container has no network address")?
    } else {
        host.to_owned()
    };
    Ok(DbTarget {
        host,
        port,
        name: name.to_owned(),
        user: user.to_owned(),
        password,
    })
}

async fn check_database(
    engine: &Engine,
    all: &[ContainerInfo],
    s: &Setup,
    d: &Deployment,
    hints: &Hints,
) -> Vec<Finding> {
    let (facts, phinx) = tokio::join!(db_facts(all, s, d, hints), phinx_status(engine, all));
    let mut out = Vec::new();
    let facts = match facts {
        Ok((target, facts)) => {
            out.push(Finding::ok(
                Area::Database,
                "db.reachable",
                format!(
                    "PostgreSQL {} at {}",
                    facts.server_version,
                    target.describe()
                ),
            ));
            Some(facts)
        }
        Err(f) => {
            out.push(f);
            None
        }
    };
    let (_, _, name, user) = d.database.endpoint();
    if let Some(facts) = &facts {
        let migrated = facts.phinxlog.as_ref().is_some_and(|v| !v.is_empty());
        let create = match &d.database {
            Database::Bundled => hints.exec(
                if hints.play.is_some() {
                    "postgres"
                } else {
                    "-T postgres"
                },
                &format!("psql -U {user} -d {name} -c 'create extension if not exists pgcrypto'"),
            ),
            Database::External { host, port, .. } => format!(
                "psql -h {host} -p {port} -U postgres -d {name} -c 'create extension if not exists pgcrypto'"
            ),
        };
        out.push(if facts.pgcrypto_installed {
            Finding::ok(Area::Database, "db.pgcrypto", format!("pgcrypto is installed in {name}"))
        } else if !facts.pgcrypto_available {
            Finding::error(Area::Database, "db.pgcrypto", "the server does not ship pgcrypto, which Movim's migrations create")
                .hint("install PostgreSQL's contrib modules on the server (Debian: apt install postgresql-contrib), then run: movim-setup doctor")
        } else if migrated {
            Finding::error(
                Area::Database,
                "db.pgcrypto",
                format!("pgcrypto is not installed in {name} although migrations ran: Movim's queries that use it fail"),
            )
            .hint(create)
        } else if facts.can_create_extension {
            Finding::ok(Area::Database, "db.pgcrypto", "pgcrypto is available; the first migration creates it")
        } else {
            Finding::error(
                Area::Database,
                "db.pgcrypto",
                format!("role {user} may not create pgcrypto in {name}, which the first migration does"),
            )
            .hint(create)
        });
    }
    let applied = facts
        .as_ref()
        .and_then(|f| f.phinxlog.as_ref())
        .map_or(0, Vec::len);
    out.push(match phinx {
        PhinxStatus::UpToDate => Finding::ok(
            Area::Database,
            "db.migrations",
            format!("every migration of the running image is applied ({applied} in phinxlog)"),
        ),
        PhinxStatus::Pending(lines) => Finding::error(
            Area::Database,
            "db.migrations",
            "migrations of the running image are pending: the daemon exits (code 0) until they are applied",
        )
        .details(lines)
        .hint(format!(
            "if an upgrade was interrupted: movim-setup upgrade --resume --dir {}; otherwise apply them: {}",
            hints.dir,
            hints.migrate()
        )),
        PhinxStatus::Newer(lines) => Finding::error(
            Area::Database,
            "db.migrations",
            "the database holds migrations this image does not know: it is newer than the code (a downgrade?)",
        )
        .details(lines)
        .hint(format!(
            "run the release that migrated it, or return to the backup taken before: movim-setup rollback --dir {}",
            hints.dir
        )),
        PhinxStatus::CannotRun(why, lines) => Finding::warn(
            Area::Database,
            "db.migrations",
            format!("cannot compare phinxlog ({applied} applied) with the image: {why}"),
        )
        .details(lines)
        .hint(hints.exec("daemon", "php vendor/bin/phinx status")),
    });
    out
}

async fn db_facts(
    all: &[ContainerInfo],
    s: &Setup,
    d: &Deployment,
    hints: &Hints,
) -> Result<(DbTarget, db::DbFacts), Finding> {
    let unreachable = |why: String| {
        let hint = match &d.database {
            Database::Bundled => format!("read why: {}", hints.logs("postgres")),
            Database::External {
                host,
                port,
                name,
                user,
            } => {
                format!(
                    "check host, port, role and DB_PASSWORD: psql -h {host} -p {port} -U {user} -d {name}"
                )
            }
        };
        Finding::error(
            Area::Database,
            "db.reachable",
            "cannot log in to the database",
        )
        .detail(why)
        .hint(hint)
    };
    let password = s
        .password()
        .ok_or_else(|| unreachable(format!("{} has no DB_PASSWORD", s.env_file)))?;
    let target = db_target(all, d, password).map_err(unreachable)?;
    let mut conn = db::connect(&target, Duration::from_secs(5))
        .await
        .map_err(|e| unreachable(format!("{e:#}")))?;
    let facts = tokio::time::timeout(PROBE_TIMEOUT, db::facts(&mut conn))
        .await
        .map_err(|_| unreachable("reading its state timed out".to_owned()))?
        .map_err(|e| unreachable(format!("{e:#}")))?;
    Ok((target, facts))
}

enum PhinxStatus {
    UpToDate,
    Pending(Vec<String>),
    Newer(Vec<String>),
    CannotRun(String, Vec<String>),
}

/// `php vendor/bin/phinx status` in the running daemon (fpm carries the same tree when the daemon
/// is down): 0 up to date, 3 pending, 2 the database is newer than the code.
async fn phinx_status(engine: &Engine, all: &[ContainerInfo]) -> PhinxStatus {
    let Some(c) = ["daemon", "fpm"]
        .iter()
        .filter_map(|s| container_of(all, s))
        .find(|c| c.running)
    else {
        return PhinxStatus::CannotRun("neither daemon nor fpm is running".into(), Vec::new());
    };
    let cmd = ["php", "vendor/bin/phinx", "status"];
    let (code, output) = match tokio::time::timeout(PHINX_TIMEOUT, engine.exec(&c.id, &cmd)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return PhinxStatus::CannotRun(format!("{e:#}"), Vec::new()),
        Err(_) => return PhinxStatus::CannotRun("phinx status timed out".into(), Vec::new()),
    };
    let rows = |word: &str| -> Vec<String> {
        output
            .lines()
            .filter(|l| l.trim_start().starts_with(word) || l.contains("MISSING"))
            .map(|l| l.trim().to_owned())
            .take(10)
            .collect()
    };
    match code {
        0 => PhinxStatus::UpToDate,
        3 => PhinxStatus::Pending(rows("down")),
        2 => PhinxStatus::Newer(rows("** MISSING")),
        other => PhinxStatus::CannotRun(
            format!("phinx status exited {other} in {}", c.name),
            output
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(str::to_owned)
                .collect(),
        ),
    }
}

/// Where this tool reaches web: the loopback port in proxy mode, else web's container address.
fn web_address(all: &[ContainerInfo], d: &Deployment) -> Result<SocketAddr, String> {
    if let Tls::Proxy { http_port } = d.tls {
        return Ok(SocketAddr::from(([127, 0, 0, 1], http_port)));
    }
    let c = container_of(all, "web").ok_or("the web container does not exist")?;
    c.ips
        .first()
        .map(|(_, ip)| SocketAddr::new(*ip, 80))
        .ok_or_else(|| "the web container has no network address".to_owned())
}

async fn check_web(
    all: &[ContainerInfo],
    s: &Setup,
    d: &Deployment,
    hints: &Hints,
) -> Vec<Finding> {
    let host = d.domain.as_str();
    let origin = format!("https://{host}");
    let mut out = Vec::new();
    let addr = match web_address(all, d) {
        Ok(a) => a,
        Err(why) => {
            out.push(
                Finding::error(
                    Area::Web,
                    "web.websocket",
                    format!("cannot reach web: {why}"),
                )
                .hint(format!("start the stack in order: {}", hints.start_stack())),
            );
            return out;
        }
    };
    let daemon_down = container_of(all, "daemon").is_none_or(|c| !c.running);
    let (handshake, infos, dns) = tokio::join!(
        health::websocket_handshake(addr, host, &origin, "/ws/", Duration::from_secs(5)),
        health::infos(addr, host, Duration::from_secs(5)),
        tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host, 443))),
    );
    out.push(match handshake {
        Ok(h) if h.is_upgraded() => Finding::ok(
            Area::Web,
            "web.websocket",
            format!("websocket through web at {addr}: HTTP 101 with Origin {origin}"),
        ),
        Ok(h) => {
            let hint = match h.status {
                502 | 504 => format!(
                    "the daemon is down or not listening on 0.0.0.0:8080; read why: {}",
                    hints.logs("daemon")
                ),
                403 => format!(
                    "set DAEMON_URL={} in {}, then: {}",
                    d.domain.public_url(),
                    s.path(s.env_file),
                    hints.restart("daemon")
                ),
                _ => format!("recreate web from its image: {}", hints.recreate("web")),
            };
            let body = answer_line(&h.body).map(|l| format!("it said: {l}"));
            Finding::error(
                Area::Web,
                "web.websocket",
                format!(
                    "websocket through web at {addr} answered HTTP {} instead of 101",
                    h.status
                ),
            )
            .detail(health::Handshake::explain(h.status))
            .details(body)
            .hint(hint)
        }
        Err(e) if daemon_down => Finding::error(
            Area::Web,
            "web.websocket",
            format!("no websocket handshake with web at {addr}: the daemon is not running"),
        )
        .detail(format!("{e:#}"))
        .detail(
            "nginx waits for the daemon's address until its proxy timeout (60 s), then answers 504",
        )
        .hint(format!("start the daemon: {}", hints.start("daemon"))),
        Err(e) => Finding::error(
            Area::Web,
            "web.websocket",
            format!("no websocket handshake with web at {addr}"),
        )
        .detail(format!("{e:#}"))
        .detail(
            "nginx looks the daemon's address up when web starts: a daemon restarted since may \
             have another address now (Podman hands out the next free one), and web still sends \
             to the old one",
        )
        .hint(format!(
            "restart web so it looks the daemon up again: {}; if that does not help, read why: {}",
            hints.restart("web"),
            hints.logs("web")
        )),
    });
    let pinned = s.lock().map(|l| {
        crate::core::deployment::MovimTag::parse(&l.movim)
            .map_or_else(|_| l.movim.clone(), |t| t.version().to_owned())
    });
    out.push(match (infos, pinned) {
        (Ok(i), Some(p)) if i.version == p => Finding::ok(
            Area::Web,
            "web.infos",
            format!("/infos reports Movim {}, as locked", i.version),
        ),
        (Ok(i), Some(p)) => Finding::error(
            Area::Web,
            "web.infos",
            format!(
                "/infos reports Movim {} but {LOCK_FILE} pins {p}",
                i.version
            ),
        )
        .hint(format!(
            "recreate the Movim containers from the pinned images: {}",
            match hints.play {
                Some(_) => hints.recreate("fpm daemon web"),
                None => format!("{} up -d fpm daemon web", hints.compose),
            }
        )),
        (Ok(i), None) => Finding::ok(
            Area::Web,
            "web.infos",
            format!("/infos reports Movim {}", i.version),
        ),
        (Err(e), _) => Finding::error(
            Area::Web,
            "web.infos",
            format!("GET /infos through web at {addr} failed"),
        )
        .detail(format!("{e:#}"))
        .hint(format!("read why: {}", hints.logs("fpm"))),
    });
    let resolves = dns.is_ok_and(|r| r.is_ok_and(|mut addrs| addrs.next().is_some()));
    if resolves {
        out.push(Finding::ok(
            Area::Web,
            "web.dns",
            format!("{host} resolves"),
        ));
        out.push(check_public_tls(all, s, d).await);
    } else {
        out.push(
            Finding::warn(
                Area::Web,
                "web.dns",
                format!("{host} does not resolve from this machine: browsers reach Movim only once it does (its HTTPS certificate was not checked)"),
            )
            .hint(format!("point an A/AAAA record for {host} at this machine or your proxy, then check: getent hosts {host}")),
        );
    }
    out
}

/// The gist of an error page: its HTML title, else its first non-empty line.
fn answer_line(body: &str) -> Option<String> {
    if let Some((_, rest)) = body.split_once("<title>")
        && let Some((title, _)) = rest.split_once("</title>")
    {
        return Some(title.trim().to_owned());
    }
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
}

/// The public HTTPS certificate, validated the way a browser would (chain, name, dates) by a real
/// TLS client. With the bundled Caddy the request goes to Caddy's container directly, trusting the
/// deployment's CA bundle; with the user's own proxy it goes wherever the name resolves. How many
/// days are left is not shown: the HTTP client does not expose the peer certificate.
async fn check_public_tls(all: &[ContainerInfo], s: &Setup, d: &Deployment) -> Finding {
    let host = d.domain.as_str();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .user_agent(concat!("movim-setup/", env!("CARGO_PKG_VERSION")));
    let mut via = String::from("as resolved");
    if matches!(d.tls, Tls::Caddy { .. })
        && let Some((_, ip)) = container_of(all, "caddy").and_then(|c| c.ips.first())
    {
        builder = builder.resolve(host, SocketAddr::new(*ip, 443));
        via = format!("through caddy at {ip}");
    }
    if let Ok(pem) = std::fs::read(s.dir.join(CA_FILE))
        && let Ok(certs) = reqwest::Certificate::from_pem_bundle(&pem)
    {
        builder = builder.tls_certs_merge(certs);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            return Finding::warn(Area::Web, "web.tls", "cannot set up a TLS client")
                .detail(e.to_string())
                .hint("movim-setup doctor");
        }
    };
    match client.get(format!("https://{host}/infos")).send().await {
        Ok(r) => Finding::ok(
            Area::Web,
            "web.tls",
            format!(
                "https://{host}/ presents a valid certificate ({via}; HTTP {})",
                r.status().as_u16()
            ),
        ),
        Err(e) => {
            let mut chain = vec![e.to_string()];
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push(s.to_string());
                src = s.source();
            }
            let severity = if matches!(d.tls, Tls::Caddy { .. }) {
                Severity::Error
            } else {
                Severity::Warn
            };
            Finding::new(
                Area::Web,
                "web.tls",
                severity,
                format!("HTTPS to {host} failed ({via})"),
            )
            .details(chain)
            .hint(match d.tls {
                Tls::Caddy { .. } => format!(
                    "read Caddy's ACME log: docker logs --tail 50 {}",
                    container_of(all, "caddy").map_or("caddy", |c| c.name.as_str())
                ),
                Tls::Proxy { .. } => {
                    format!("check your proxy's certificate: curl -sSv https://{host}/infos")
                }
            })
        }
    }
}

/// Resolves the XMPP domain as the daemon does (SRV `_xmpp-client._tcp`, then the domain on 5222),
/// connects, and negotiates STARTTLS with peer verification against the container's trust store,
/// which is what the daemon itself accepts. Prints one line per step; exit 0 TLS ok (last line
/// `tls <host:port> <validTo unix time>`), 1 unresolved, 2 no TCP connection, 3 no STARTTLS, 4
/// certificate rejected. Not checked: the features Movim needs from the server (PEP, MAM, …).
const XMPP_PHP: &str = r#"
$d = $argv[1];
$targets = [];
$srv = @dns_get_record('_xmpp-client._tcp.' . $d, DNS_SRV);
if (is_array($srv)) {
    usort($srv, fn ($a, $b) => $a['pri'] <=> $b['pri']);
    foreach ($srv as $r) { $targets[] = [$r['target'], (int) $r['port']]; }
}
$targets[] = [$d, 5222];
$resolved = false;
$read = function ($s, $until) {
    $buf = '';
    while (!feof($s)) {
        foreach ($until as $u) { if (str_contains($buf, $u)) { return $buf; } }
        $c = fread($s, 4096);
        if ($c === false || $c === '') { break; }
        $buf .= $c;
    }
    return $buf;
};
foreach ($targets as [$h, $p]) {
    $ip = gethostbyname($h);
    if ($ip === $h && filter_var($h, FILTER_VALIDATE_IP) === false) { echo "unresolved $h\n"; continue; }
    $resolved = true;
    echo "resolved $h $ip\n";
    $s = @stream_socket_client("tcp://$ip:$p", $en, $es, 5);
    if ($s === false) { echo "noconnect $h:$p $es\n"; continue; }
    stream_set_timeout($s, 5);
    fwrite($s, "<?xml version='1.0'?><stream:stream to='$d' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    $f = $read($s, ['</stream:features>', '</stream:stream>']);
    if (!str_contains($f, 'urn:ietf:params:xml:ns:xmpp-tls')) { echo "nostarttls $h:$p\n"; exit(3); }
    fwrite($s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    $r = $read($s, ['<proceed', '<failure']);
    if (!str_contains($r, '<proceed')) { echo "nostarttls $h:$p\n"; exit(3); }
    stream_context_set_option($s, 'ssl', 'peer_name', $d);
    stream_context_set_option($s, 'ssl', 'verify_peer', true);
    stream_context_set_option($s, 'ssl', 'verify_peer_name', true);
    stream_context_set_option($s, 'ssl', 'capture_peer_cert', true);
    $err = '';
    set_error_handler(function ($n, $m) use (&$err) { $err .= $m . ' '; return true; });
    $ok = stream_socket_enable_crypto($s, true, STREAM_CRYPTO_METHOD_TLS_CLIENT);
    restore_error_handler();
    if ($ok !== true) { echo "badcert $h:$p " . trim(preg_replace('/\s+/', ' ', $err)) . "\n"; exit(4); }
    $cert = stream_context_get_params($s)['options']['ssl']['peer_certificate'] ?? null;
    $info = $cert ? openssl_x509_parse($cert) : null;
    echo "tls $h:$p " . ($info['validTo_time_t'] ?? 0) . "\n";
    exit(0);
}
exit($resolved ? 2 : 1);
"#;

async fn check_xmpp(
    engine: &Engine,
    all: &[ContainerInfo],
    d: &Deployment,
    hints: &Hints,
) -> Vec<Finding> {
    let domain = d.xmpp.domain().as_str();
    let Some(c) = ["daemon", "fpm"]
        .iter()
        .filter_map(|s| container_of(all, s))
        .find(|c| c.running)
    else {
        return vec![
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!(
                    "cannot check {domain} from inside Movim: neither daemon nor fpm is running"
                ),
            )
            .hint(format!("start the stack: {}", hints.start_stack())),
        ];
    };
    let service = c.service.as_deref().unwrap_or("daemon");
    let cmd = ["php", "-r", XMPP_PHP, domain];
    let (code, output) = match tokio::time::timeout(XMPP_TIMEOUT, engine.exec(&c.id, &cmd)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return vec![
                Finding::warn(
                    Area::Xmpp,
                    "xmpp.dns",
                    format!("cannot check {domain} from inside {}", c.name),
                )
                .detail(format!("{e:#}"))
                .hint(hints.exec(service, &format!("getent hosts {domain}"))),
            ];
        }
        Err(_) => {
            return vec![
                Finding::warn(
                    Area::Xmpp,
                    "xmpp.dns",
                    format!("looking up {domain} from inside {} timed out", c.name),
                )
                .hint(format!(
                    "check the container's resolver: {}",
                    hints.exec(service, &format!("getent hosts {domain}"))
                )),
            ];
        }
    };
    let lines: Vec<String> = output.lines().map(str::to_owned).collect();
    let line_with = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).cloned();
    let mut out = Vec::new();
    if code == 1 {
        out.push(
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!("{domain} does not resolve inside {} (no _xmpp-client._tcp SRV, no address): nobody can log in until it does", c.name),
            )
            .hint(format!("publish DNS for {domain} (A/AAAA, or SRV _xmpp-client._tcp.{domain}), then check: {}", hints.exec(service, &format!("getent hosts {domain}")))),
        );
        return out;
    }
    if !matches!(code, 0 | 2 | 3 | 4) {
        out.push(
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!("the XMPP probe failed in {} (php exited {code})", c.name),
            )
            .details(lines.iter().take(5).cloned())
            .hint(hints.exec(service, &format!("getent hosts {domain}"))),
        );
        return out;
    }
    let resolved = line_with("resolved ").unwrap_or_default();
    out.push(Finding::ok(
        Area::Xmpp,
        "xmpp.dns",
        format!(
            "{domain} resolves inside {} ({})",
            c.name,
            resolved.trim_start_matches("resolved ")
        ),
    ));
    if code == 2 {
        out.push(
            Finding::error(Area::Xmpp, "xmpp.connect", format!("the daemon cannot connect to the XMPP server of {domain}"))
                .details(lines.iter().filter(|l| l.starts_with("noconnect")).cloned())
                .hint(format!("make sure the XMPP server listens on 5222 and the firewall lets the containers in, then: {}", hints.exec(service, &format!("getent hosts {domain}")))),
        );
        return out;
    }
    out.push(Finding::ok(
        Area::Xmpp,
        "xmpp.connect",
        format!("the XMPP server of {domain} answers on its client port"),
    ));
    out.push(match code {
        3 => Finding::error(Area::Xmpp, "xmpp.tls", format!("the XMPP server of {domain} does not offer STARTTLS, which the daemon requires"))
            .hint("enable TLS on the XMPP server (Prosody: c2s_require_encryption = true with a certificate), then: movim-setup doctor"),
        4 => Finding::error(Area::Xmpp, "xmpp.tls", format!("the daemon rejects the XMPP server's certificate for {domain}"))
            .details(line_with("badcert "))
            .hint(format!("give the XMPP server a certificate for {domain} from a CA the daemon trusts (not self-signed; a private CA via: movim-setup init --dir {} --ca-bundle FILE)", hints.dir)),
        _ => {
            let valid_to: i64 = line_with("tls ")
                .and_then(|l| l.rsplit(' ').next().and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            let days = (valid_to - now) / 86_400;
            if valid_to > 0 && days < CERT_WARN_DAYS {
                Finding::warn(Area::Xmpp, "xmpp.tls", format!("the XMPP certificate for {domain} expires in {days} days"))
                    .hint("renew it (and restart the XMPP server), then: movim-setup doctor")
            } else {
                let left = if valid_to > 0 { format!(", {days} days left") } else { String::new() };
                Finding::ok(Area::Xmpp, "xmpp.tls", format!("STARTTLS certificate for {domain} accepted by the daemon{left}"))
            }
        }
    });
    out
}

/// The last lines of every container of the project, for `--bundle`.
async fn collect_logs(
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

// ------------------------------------------------------------------------------------------------
// The bundle.

/// `movim.env` with the value of every secret key replaced, comments and layout kept.
fn redacted_env(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') {
                return line.to_owned();
            }
            let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            match body.split_once('=') {
                Some((key, _)) if is_secret_key(key.trim()) => format!("{}=<redacted>", key.trim()),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

/// Writes `movim-doctor/` (report as text and JSON, compose.yaml, movim.env redacted, the answers,
/// the lock, `logs/<container>.log`) as a tar.gz with the system's `tar`.
fn write_bundle(
    path: &Path,
    s: &Setup,
    report: &Report,
    logs: &[(String, String)],
    secrets: &[&str],
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let staging =
        std::env::temp_dir().join(format!("movim-doctor-{}-{nanos:x}", std::process::id()));
    let root = staging.join("movim-doctor");
    let result = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(root.join("logs")).context("cannot create a staging directory")?;
        // A kube deployment's files live in `kube/`.
        std::fs::create_dir_all(root.join("kube")).context("cannot create a staging directory")?;
        let put = |name: &str, text: &str| {
            fsx::write_atomic(&root.join(name), scrub(text, secrets).as_bytes(), 0o600)
        };
        put("report.txt", &report.to_text())?;
        put("report.json", &report.to_json())?;
        for name in [s.layout.main_file(), ANSWERS_FILE, LOCK_FILE] {
            if let Ok(text) = std::fs::read_to_string(s.dir.join(name)) {
                put(name, &text)?;
            }
        }
        if let Some(env) = &s.env_text {
            put(s.env_file, &redacted_env(env))?;
        }
        for (name, text) in logs {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            put(&format!("logs/{safe}.log"), text)?;
        }
        let out = std::process::Command::new("tar")
            .arg("-czf")
            .arg(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
            .arg("-C")
            .arg(&staging)
            .arg("movim-doctor")
            .output()
            .context("cannot run tar")?;
        anyhow::ensure!(
            out.status.success(),
            "tar failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_redacted_in_the_bundled_env() {
        let text = "# database password\nDB_PASSWORD='p$ss'\nDAEMON_URL=https://m.example.org/\nSMTP_TOKEN=abc\n";
        assert_eq!(
            redacted_env(text),
            "# database password\nDB_PASSWORD=<redacted>\nDAEMON_URL=https://m.example.org/\nSMTP_TOKEN=<redacted>\n"
        );
    }

    #[test]
    fn env_differences_never_show_secret_values() {
        let lines = env_differences(
            "DB_PASSWORD=old-pw-1\nDAEMON_URL=https://a.example.org/\nEXTRA=1\n",
            "DB_PASSWORD=new-pw-2\nDAEMON_URL=https://b.example.org/\n",
        );
        let all = lines.join("\n");
        assert!(!all.contains("-pw-"), "{all}");
        assert_eq!(
            lines,
            [
                "DAEMON_URL: on disk `https://a.example.org/`, init writes `https://b.example.org/`",
                "DB_PASSWORD differs (secret: not shown)",
                "EXTRA=`1` is not written by init",
            ]
        );
    }

    #[test]
    fn error_pages_are_summed_up_by_their_title() {
        assert_eq!(
            answer_line("<html>\r\n<head><title>502 Bad Gateway</title></head>").as_deref(),
            Some("502 Bad Gateway")
        );
        assert_eq!(
            answer_line("\n Origin refused \n").as_deref(),
            Some("Origin refused")
        );
        assert_eq!(answer_line(""), None);
    }

    #[test]
    fn an_interrupted_journal_says_what_it_was_doing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(
            &path,
            r#"{"kind": "upgrade", "from": {"movim": "v0.29.2"}, "to": {"movim": "v0.30.0"}, "current": "migrate"}"#,
        )
        .expect("write");
        assert_eq!(
            journal_summary(&path),
            [
                "upgrade from Movim v0.29.2 to v0.30.0",
                "stopped during: migrate"
            ]
        );
        std::fs::write(&path, "not json").expect("write");
        assert!(journal_summary(&path).is_empty());
        let f = check_upgrade(dir.path());
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[1].severity, Severity::Ok);
    }

    #[test]
    fn volumes_parse_with_their_mode() {
        assert_eq!(
            parse_volume("movim-public-cache:/var/www/movim/public/cache:ro"),
            ("movim-public-cache", "/var/www/movim/public/cache", true)
        );
        assert_eq!(
            parse_volume("./movim.env:/var/www/movim/.env:ro"),
            ("./movim.env", "/var/www/movim/.env", true)
        );
        assert_eq!(
            parse_volume("movim-cache:/var/www/movim/cache"),
            ("movim-cache", "/var/www/movim/cache", false)
        );
    }

    const POD: &str = r"# header
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: movim}
spec:
  initContainers:
  - {name: migrate, image: 'd@sha256:1'}
  containers:
  - name: web
    image: 'w@sha256:2'
    volumeMounts:
    - {name: public-cache, mountPath: /c, readOnly: true}
  - name: fpm
    image: 'f@sha256:3'
    volumeMounts:
    - {name: env, mountPath: /e, readOnly: true}
    - {name: public-cache, mountPath: /c}
    - {name: tmp, mountPath: /tmp}
  volumes:
  - {name: env, hostPath: {path: /srv/kube/movim.env, type: File}}
  - {name: public-cache, persistentVolumeClaim: {claimName: movim-public-cache}}
  - {name: tmp, emptyDir: {medium: Memory}}
";

    #[test]
    fn kube_images_are_read_by_container_init_containers_included() {
        let images = kube_images(POD).expect("parses");
        assert_eq!(
            images.into_iter().collect::<Vec<_>>(),
            [
                ("fpm".to_owned(), "f@sha256:3".to_owned()),
                ("migrate".to_owned(), "d@sha256:1".to_owned()),
                ("web".to_owned(), "w@sha256:2".to_owned()),
            ]
        );
        assert!(kube_images("kind: ConfigMap\n").is_err());
        assert!(kube_images("kind: Pod\nspec: [").is_err());
    }

    #[test]
    fn kube_mounts_name_claims_as_volumes_and_host_paths_as_binds() {
        let mounts = kube_mounts(POD).expect("parses");
        let want = |dest: &str, ro, volume: Option<&str>| WantedMount {
            dest: dest.to_owned(),
            ro,
            volume: volume.map(str::to_owned),
        };
        assert_eq!(
            mounts["web"],
            [want("/c", true, Some("movim-public-cache"))]
        );
        // The memory-backed emptyDir is not a mount Podman shows: left out.
        assert_eq!(
            mounts["fpm"],
            [
                want("/e", true, None),
                want("/c", false, Some("movim-public-cache"))
            ]
        );
    }

    #[test]
    fn compose_images_read_any_hand_edited_file() {
        let images = compose_images("services:\n  web:\n    image: a/b:c\n    extra: 1\n  x: {}\n")
            .expect("parses");
        assert_eq!(images.get("web").map(String::as_str), Some("a/b:c"));
        assert_eq!(images.get("x").map(String::as_str), Some(""));
        assert!(compose_images("nope: 1").is_err());
    }
}
