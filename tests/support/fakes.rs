//! Fakes for every adapter trait, sharing one [`Log`] of what the code under test asked of the
//! world, so that a release step or a command runs in milliseconds without an engine, a registry
//! or a database, and a test can say what was (and was not) done: `log.has("stop_movim")`.
//!
//! The fakes are honest about what they stand for: the runner "runs" the release whose
//! `compose.yaml` is in the directory when it starts something (the web probe then reports that
//! release's version, as `/infos` would), and can be told to fail the start of a given release.

#![allow(dead_code)] // each test binary uses a different part of this helper

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use movim_setup::adapters::Tools;
use movim_setup::adapters::backup::Source;
use movim_setup::adapters::clock::Clock;
use movim_setup::adapters::database::{DbClient, DbError};
use movim_setup::adapters::db::{DbFacts, DbTarget};
use movim_setup::adapters::engine::{ContainerEngine, EngineKind, PullProgress};
use movim_setup::adapters::health::{AfterOpen, Handshake, Infos, TlsFailure, WebProbe};
use movim_setup::adapters::registry::{Registries, Registry};
use movim_setup::adapters::runner::compose::ComposeTool;
use movim_setup::adapters::runner::{Commands, Probe, Runner};
use movim_setup::adapters::signals::{Cancel, Signal};
use movim_setup::adapters::ui::Ui;
use movim_setup::context::{Connect, Context};
use movim_setup::core::answers::Defaults;
use movim_setup::core::containers::ContainerInfo;
use movim_setup::core::deployment::{Database, Deployment, Domain, MovimTag, Tls, Xmpp};
use movim_setup::core::image_ref::ImageRef;
use movim_setup::core::layout::Layout;
use movim_setup::core::lockfile::BackupRef;
use movim_setup::core::lockfile::{Lock, Release};
use movim_setup::core::render::{self, Extras, Secrets};
use movim_setup::core::secret::Secret;
use movim_setup::error::Failure;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the code under test asked of the fakes, in order, and what the fakes know of the world.
#[derive(Debug, Default)]
pub struct State {
    pub calls: Vec<String>,
    /// The Movim version the running containers report (set by the runner's `up`).
    pub running: Option<String>,
    /// `up` fails while the deployment's compose file names this release.
    pub fail_start_of: Option<String>,
    /// What every container logs last (`None`: one harmless line).
    pub logs: Option<String>,
    /// What the target release's `phinx status` answers (exit code, output).
    pub probe_status: (i32, String),
    /// Services whose containers are stopped.
    pub stopped: Vec<String>,
    /// Applied migrations, as `phinxlog` holds them.
    pub phinxlog: Vec<i64>,
    /// Restoring a dump fails (the disk, the server).
    pub fail_restore: bool,
    /// A session worker cannot write its log (`LOG_PATH` unset, the volume read-only).
    pub worker_cannot_log: bool,
    /// The daemon closes every websocket right after the 101, as Movim does for an Origin it does
    /// not trust (`DAEMON_URL` names another host).
    pub origin_refused: bool,
    /// What `SHOW server_version` answers (`None`: `15.8`). A dump taken with the `pg_dump` of an
    /// older major release fails, as `pg_dump` refuses a newer server.
    pub server_version: Option<String>,
    /// References the registry cannot resolve (it answers "manifest unknown").
    pub unresolvable: Vec<String>,
    /// The tag of the last `…/postgres:<tag>` resolved: the `pg_dump` a one-shot runs (its
    /// reference there is by digest alone).
    pub postgres_resolved: Option<String>,
    /// What SIGINT and SIGTERM raise (the context's), and the call during which a signal arrives:
    /// `("stop_movim", Signal::Interrupt)` is a Ctrl-C while Movim is being stopped.
    pub cancel: Cancel,
    pub signal_during: Option<(String, Signal)>,
}

/// A handle on the shared [`State`].
#[derive(Debug, Clone, Default)]
pub struct Log(pub Arc<Mutex<State>>);

impl Log {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, call: impl Into<String>) {
        let call = call.into();
        let mut state = self.state();
        if let Some((during, signal)) = &state.signal_during
            && call.starts_with(during.as_str())
        {
            state.cancel.raise(*signal);
        }
        state.calls.push(call);
    }

    /// Whether a call starting with `prefix` was made.
    pub fn has(&self, prefix: &str) -> bool {
        self.state().calls.iter().any(|c| c.starts_with(prefix))
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// Panics unless a call starting with each of `prefixes` was made, in that order.
    pub fn assert_in_order(&self, prefixes: &[&str]) {
        let calls = self.calls();
        let at = |prefix: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {calls:?}"))
        };
        for pair in prefixes.windows(2) {
            assert!(
                at(pair[0]) < at(pair[1]),
                "{} before {}: {calls:?}",
                pair[0],
                pair[1]
            );
        }
    }
}

/// The Movim release the compose file in `dir` runs (`movim-daemon:v0.30.0@…` → `0.30.0`).
fn release_in(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("compose.yaml")).ok()?;
    let at = text.find("movim-daemon:v")? + "movim-daemon:v".len();
    let version: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Some(version)
}

pub struct FakeEngine(pub Log);

fn container(service: &str, running: bool) -> ContainerInfo {
    ContainerInfo {
        id: format!("id-{service}"),
        name: format!("movim-{service}-1"),
        service: Some(service.to_owned()),
        working_dir: None,
        image: String::new(),
        running,
        status: if running { "running" } else { "exited" }.to_owned(),
        exit_code: (!running).then_some(1),
        health: running.then(|| "healthy".to_owned()),
        restart_count: 0,
        oom_killed: false,
        started_at: None,
        mounts: Vec::new(),
        ips: vec![("movim_default".to_owned(), [10, 0, 0, 9].into())],
    }
}

impl ContainerEngine for FakeEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Docker
    }
    fn version(&self) -> &str {
        "fake"
    }
    fn api_version(&self) -> &str {
        "1.41"
    }
    fn endpoint(&self) -> &str {
        "unix:///fake.sock"
    }
    fn service_containers<'a>(
        &'a self,
        _project: &'a str,
        _layout: Layout,
    ) -> BoxFuture<'a, anyhow::Result<Vec<ContainerInfo>>> {
        Box::pin(async move {
            let stopped = self.0.state().stopped.clone();
            Ok(["daemon", "fpm", "postgres", "web"]
                .into_iter()
                .map(|s| container(s, !stopped.iter().any(|x| x == s)))
                .collect())
        })
    }
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<ContainerInfo>> {
        Box::pin(async move { Ok(container(id.trim_start_matches("id-"), true)) })
    }
    fn logs_tail<'a>(
        &'a self,
        _id: &'a str,
        _lines: usize,
    ) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            Ok(self
                .0
                .state()
                .logs
                .clone()
                .unwrap_or_else(|| "a fake log line\n".to_owned()))
        })
    }
    fn exec<'a>(
        &'a self,
        id: &'a str,
        cmd: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i64, String)>> {
        // A probe run as a session worker: named by what it checks, not by its whole PHP text.
        if cmd.starts_with(&["env", "-i"]) && cmd.iter().any(|a| a.contains("errors.log")) {
            self.0.push(format!("exec {id} session-worker log probe"));
            let answer = if self.0.state().worker_cannot_log {
                "log_path /var/www/movim/log/\nlog unwritable fopen(): Read-only file system\n"
            } else {
                "log_path /var/www/movim/log/\nlog ok\n"
            };
            return Box::pin(async move {
                Ok((i64::from(answer.contains("unwritable")), answer.to_owned()))
            });
        }
        self.0.push(format!("exec {id} {}", cmd.join(" ")));
        Box::pin(async { Ok((0, String::new())) })
    }
    fn wait_healthy<'a>(
        &'a self,
        id: &'a str,
        _timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<ContainerInfo>> {
        Box::pin(async move { Ok(container(id.trim_start_matches("id-"), true)) })
    }
    fn with_health_now<'a>(&'a self, c: ContainerInfo) -> BoxFuture<'a, ContainerInfo> {
        Box::pin(async move { c })
    }
    fn has_image<'a>(&'a self, _reference: &'a str) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    fn pull<'a>(
        &'a self,
        image: &'a ImageRef,
        digest: &'a str,
        _progress: &'a dyn PullProgress,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.0.push(format!("pull {}", image.by_digest(digest)));
        Box::pin(async { Ok(()) })
    }
}

pub struct FakeRunner(pub Log);

impl Runner for FakeRunner {
    fn layout(&self) -> Layout {
        Layout::Compose
    }
    fn describe(&self) -> String {
        "fake compose".to_owned()
    }
    fn commands(&self, dir: &Path, project: &str) -> Commands {
        ComposeTool::assumed().commands(dir, project)
    }
    fn up<'a>(
        &'a self,
        dir: &'a Path,
        _project: &'a str,
        services: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let release = release_in(dir);
            self.0.push(format!(
                "up {} ({})",
                services.join(","),
                release.as_deref().unwrap_or("?")
            ));
            let mut state = self.0.state();
            if release.is_some() && state.fail_start_of == release {
                anyhow::bail!(
                    "the containers of {} exit at once",
                    release.unwrap_or_default()
                );
            }
            state.running = release;
            state.stopped.clear();
            Ok(())
        })
    }
    fn stop_movim<'a>(
        &'a self,
        _dir: &'a Path,
        _project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.0.push("stop_movim");
        let mut state = self.0.state();
        state.stopped = vec!["web".into(), "fpm".into(), "daemon".into()];
        state.running = None;
        Box::pin(async { Ok(()) })
    }
    fn daemon_php<'a>(
        &'a self,
        dir: &'a Path,
        _project: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        let release = release_in(dir).unwrap_or_default();
        self.0.push(format!("php {} ({release})", args.join(" ")));
        Box::pin(async { Ok((0, String::new())) })
    }
    fn probe_php<'a>(
        &'a self,
        dir: &'a Path,
        _project: &'a str,
        release: &'a Probe<'a>,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        // Whether a journal was on disk then: the one-shot runs before the user is asked.
        let journal = dir.join(movim_setup::core::journal::JOURNAL_FILE).exists();
        self.0.push(format!(
            "probe {} {} (journal: {journal})",
            release.daemon_image,
            args.join(" ")
        ));
        let answer = self.0.state().probe_status.clone();
        Box::pin(async move { Ok(answer) })
    }
    fn movim_start_order(&self) -> &'static [&'static [&'static str]] {
        &[&["fpm", "daemon"], &["web"]]
    }
    fn prepare_volumes<'a>(
        &'a self,
        _dir: &'a Path,
        _project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        self.0.push("prepare_volumes");
        Box::pin(async { Ok((0, String::new())) })
    }
    fn retries_lost_lookups(&self) -> bool {
        false
    }
}

pub struct FakeDb(pub Log);

impl DbClient for FakeDb {
    fn facts<'a>(
        &'a self,
        _target: &'a DbTarget,
        _login_timeout: Duration,
    ) -> BoxFuture<'a, Result<DbFacts, DbError>> {
        let phinxlog = self.0.state().phinxlog.clone();
        let server_version = server_version(&self.0);
        Box::pin(async move {
            Ok(DbFacts {
                server_version,
                size_bytes: 1 << 20,
                pgcrypto_available: true,
                pgcrypto_installed: true,
                can_create_extension: true,
                phinxlog: Some(phinxlog),
            })
        })
    }
    fn dump<'a>(
        &'a self,
        source: &'a Source,
        dir: &'a Path,
        version: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BackupRef>> {
        let server = server_version(&self.0);
        let tool = self.0.state().postgres_resolved.clone();
        Box::pin(async move {
            if let Source::OneShot { .. } = source {
                let client = tool
                    .as_deref()
                    .and_then(|t| t.split('.').next())
                    .and_then(|t| t.parse::<u32>().ok());
                let major = server.split(['.', ' ']).next().and_then(|m| m.parse().ok());
                if let (Some(client), Some(major)) = (client, major)
                    && client < major
                {
                    anyhow::bail!(
                        "pg_dump: error: aborting because of server version mismatch (server version: {server}; pg_dump version: {client})"
                    );
                }
            }
            let file = format!("backups/db-fake-{version}.dump");
            std::fs::create_dir_all(dir.join("backups"))?;
            std::fs::write(dir.join(&file), b"a fake dump")?;
            self.0.push(format!("dump {file}"));
            Ok(BackupRef {
                file,
                bytes: 11,
                sha256: "fake".to_owned(),
                tool: None,
            })
        })
    }
    fn restore<'a>(
        &'a self,
        _source: &'a Source,
        _dir: &'a Path,
        backup: &'a BackupRef,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.0.push(format!("restore {}", backup.file));
        let fail = self.0.state().fail_restore;
        Box::pin(async move {
            if fail {
                anyhow::bail!("pg_restore: the server closed the connection");
            }
            Ok(())
        })
    }
}

/// What the fake server says `SHOW server_version` is.
fn server_version(log: &Log) -> String {
    log.state()
        .server_version
        .clone()
        .unwrap_or_else(|| "15.8".to_owned())
}

pub struct FakeWeb(pub Log);

impl WebProbe for FakeWeb {
    fn handshake<'a>(
        &'a self,
        _addr: SocketAddr,
        _host: &'a str,
        _origin: &'a str,
        _path: &'a str,
        _timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Handshake>> {
        let up = self.0.state().running.is_some();
        let after_open = if self.0.state().origin_refused {
            AfterOpen::Closed { code: Some(1000) }
        } else {
            AfterOpen::Stayed
        };
        Box::pin(async move {
            if up {
                Ok(Handshake {
                    status: 101,
                    accept_valid: true,
                    body: String::new(),
                    after_open,
                })
            } else {
                anyhow::bail!("connection refused")
            }
        })
    }
    fn infos<'a>(
        &'a self,
        _addr: SocketAddr,
        _host: &'a str,
        _timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Infos>> {
        let running = self.0.state().running.clone();
        Box::pin(async move {
            let version = running.ok_or_else(|| anyhow::anyhow!("connection refused"))?;
            // As real Movim: its VERSION file, with the `v`.
            Ok(Infos {
                version: format!("v{version}"),
                raw: serde_json::Value::Null,
            })
        })
    }
    fn resolves<'a>(&'a self, _host: &'a str, _timeout: Duration) -> BoxFuture<'a, bool> {
        // The public name is not published in these tests: what doctor says then is checked.
        Box::pin(async { false })
    }
    fn https_status<'a>(
        &'a self,
        _host: &'a str,
        _via: Option<std::net::IpAddr>,
        _ca_pem: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<u16, TlsFailure>> {
        Box::pin(async { Ok(200) })
    }
}

/// A registry whose every tag points to a digest made of its name.
pub struct FakeRegistry(pub Log);

/// The digest the fake registry serves for `reference`.
pub fn digest_of(reference: &str) -> String {
    let hex: String = reference
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .cycle()
        .take(64)
        .collect();
    format!("sha256:{hex}")
}

impl Registry for FakeRegistry {
    fn resolve<'a>(&'a self, image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<String>> {
        self.0.push(format!("resolve {image}"));
        let reference = image.to_string();
        let unknown = self.0.state().unresolvable.contains(&reference);
        if let Some((_, tag)) = reference.rsplit_once("/postgres:") {
            self.0.state().postgres_resolved = Some(tag.to_owned());
        }
        Box::pin(async move {
            if unknown {
                anyhow::bail!("{image}: manifest unknown");
            }
            Ok(digest_of(&image.to_string()))
        })
    }
    fn tags<'a>(&'a self, _image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        Box::pin(async { Ok(vec!["v0.29.2".to_owned(), "v0.30.0".to_owned()]) })
    }
}

impl Registries for FakeRegistry {
    /// As the real client: a CA bundle given is read (it must be there).
    fn client(&self, ca_bundle: Option<&Path>) -> anyhow::Result<Box<dyn Registry>> {
        if let Some(path) = ca_bundle {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA bundle {}", path.display()))?;
            anyhow::ensure!(
                pem.contains("BEGIN CERTIFICATE"),
                "the CA bundle {} is not PEM certificates",
                path.display()
            );
            self.0.push(format!("trust {}", path.display()));
        }
        Ok(Box::new(FakeRegistry(self.0.clone())))
    }
}

pub struct FixedClock;

impl Clock for FixedClock {
    fn now_rfc3339(&self) -> String {
        "2026-12-01T10:00:00Z".to_owned()
    }
}

/// A context on `dir` whose registry and clock are fakes.
pub fn context(dir: &Path, log: &Log) -> Context {
    Context {
        dir: dir.to_owned(),
        ui: Ui::new(),
        engine: None,
        compose: None,
        podman_service: false,
        prompter: Box::new(Defaults),
        registries: Box::new(FakeRegistry(log.clone())),
        clock: Box::new(FixedClock),
        connect: Box::new(FakeMachine(log.clone())),
        cancel: log.state().cancel.clone(),
    }
}

/// A machine whose engine and runner are the fakes (for a command run whole).
pub struct FakeMachine(pub Log);

impl Connect for FakeMachine {
    fn tools<'a>(
        &'a self,
        ctx: &'a Context,
        _layout: Layout,
    ) -> BoxFuture<'a, Result<Tools, Failure>> {
        Box::pin(async move { Ok(tools(&ctx.dir, &self.0)) })
    }
}

/// Tools for `dir` made of fakes that share `log`.
pub fn tools(dir: &Path, log: &Log) -> Tools {
    Tools {
        engine: Box::new(FakeEngine(log.clone())),
        runner: Box::new(FakeRunner(log.clone())),
        db: Box::new(FakeDb(log.clone())),
        web: Box::new(FakeWeb(log.clone())),
        dir: PathBuf::from(dir),
    }
}

// ------------------------------------------------------------------------------------------
// A deployment as `init` writes it.

pub const FROM: &str = "v0.29.2";
pub const TO: &str = "v0.30.0";

pub fn deployment() -> Deployment {
    Deployment {
        project: "movim".to_owned(),
        domain: Domain::parse("movim.example.org").unwrap_or_else(|e| panic!("{e}")),
        tls: Tls::Proxy { http_port: 8080 },
        database: Database::Bundled,
        xmpp: Xmpp::External {
            domain: Domain::parse("example.org").unwrap_or_else(|e| panic!("{e}")),
        },
        version: MovimTag::parse(FROM).unwrap_or_else(|e| panic!("{e}")),
        image_repository: "registry.test/movim".to_owned(),
        library_repository: "registry.test/library".to_owned(),
        ca_bundle: None,
        movim_env: BTreeMap::new(),
    }
}

/// A deployment directory as `init` writes it for `FROM`, its images pinned as the fake registry
/// serves them; the fakes see its stack running and healthy.
pub fn installed_dir(log: &Log) -> tempfile::TempDir {
    installed_dir_of(log, &deployment())
}

/// [`installed_dir`] for the deployment `d` (an external database, …).
pub fn installed_dir_of(log: &Log, d: &Deployment) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let images: BTreeMap<String, String> = d
        .images()
        .into_iter()
        .map(|(service, reference)| {
            let pinned = format!("{reference}@{}", digest_of(&reference));
            (service, pinned)
        })
        .collect();
    let lock = Lock {
        movim: FROM.to_owned(),
        images: images.clone(),
        history: vec![Release {
            movim: FROM.to_owned(),
            images: images.clone(),
            at: "2026-11-30T10:00:00Z".to_owned(),
            backup: None,
            outcome: "installed".to_owned(),
        }],
    };
    let secrets = Secrets {
        db_password: Secret::new("a-password"),
    };
    let mut files =
        render::files(d, &secrets, &images, &Extras::default()).unwrap_or_else(|e| panic!("{e}"));
    files.insert(
        render::ANSWERS_FILE.to_owned(),
        render::File {
            content: render::answers_yaml(d).unwrap_or_else(|e| panic!("{e}")),
            mode: 0o644,
            secret: false,
        },
    );
    files.insert(
        "movim-setup.lock".to_owned(),
        render::File {
            content: lock.to_yaml().unwrap_or_else(|e| panic!("{e}")),
            mode: 0o644,
            secret: false,
        },
    );
    for (name, file) in &files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, &file.content).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(
            &path,
            std::os::unix::fs::PermissionsExt::from_mode(file.mode),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    log.state().running = Some("0.29.2".to_owned());
    log.state().phinxlog = vec![20_240_101_000_000];
    dir
}
