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
//! | `movim.opcache` | the daemon's PHP has OPcache on (Movim warns at every start when it is off) |
//! | `movim.log` `movim.errors` | as a session worker (the daemon's own environment, no php.ini, `.env`): it can write its log (`LOG_PATH`); the last lines of Movim's `errors.log` |
//! | `xmpp.dns` `xmpp.connect` `xmpp.tls` | from inside the daemon, as a session worker: the XMPP domain resolves (SRV or A), 5222 answers, STARTTLS certificate valid (with the CAs the worker trusts) and not expiring |
//! | `host.disk` | free space in the deployment directory |
//! | `files.trust` | the directory and those above it writable by no one but this user (and root) |
//! | `upgrade.journal` `upgrade.run_lock` | an interrupted upgrade; another run holding the lock |
//!
//! The layout ([`crate::adapters::store::layout`]) decides which files are read and which commands the fixes
//! name: the compose tool's for a compose project; `podman logs`, `podman exec` and
//! `podman kube play --replace` for a deployment written by `init --target kube`.

pub mod bundle;
pub mod checks;
pub mod facts;
pub mod gather;
pub mod hints;
pub mod report;

use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::core::render::ANSWERS_FILE;
use crate::doctor::bundle::write_bundle;
use crate::error::{ExitStatus, Failure};
use std::time::Duration;

pub use crate::core::movim::MOVIM_UID;
/// How much of each service's log the bundle keeps.
pub const BUNDLE_LOG_LINES: usize = 100;
/// How many diff lines a drifted file shows.
pub const DIFF_LINES: usize = 20;
/// Each probe's own limit: doctor must answer even when a part hangs.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// `phinx status` starts PHP, connects to the database and reads every migration file: on a busy
/// machine through rootless Podman that has been seen to take over 30 s, and a timeout here is a
/// false warning.
pub const PHINX_TIMEOUT: Duration = Duration::from_secs(60);
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
    let facts = gather::gather(
        &dir,
        ctx.engine,
        ctx.compose.as_deref(),
        args.bundle.is_some(),
        ctx.podman_service,
    )
    .await;
    let mut report = checks::report(&facts, env!("CARGO_PKG_VERSION"));
    let setup = &facts.dir;
    let secret_refs: Vec<&str> = facts.secrets.iter().map(String::as_str).collect();
    report.redact(&secret_refs);

    if args.json {
        print!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = &args.bundle {
        let mut logs = facts
            .stack
            .as_ref()
            .map(|s| s.bundle_logs.clone())
            .unwrap_or_default();
        // Movim (v0.30+) writes its errors to a file, not to the containers' output.
        if let Some((_, _, facts::Outcome::Ran(_, output))) =
            facts.stack.as_ref().and_then(|s| s.worker_log.as_ref())
        {
            let errors = crate::core::movim::worker_log(output).last_errors;
            logs.push((
                format!("movim-{}", crate::core::movim::ERROR_LOG),
                errors.join("\n"),
            ));
        }
        write_bundle(path, setup, &report, &logs, &secret_refs).map_err(|e| {
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
