//! What runs a deployment's containers: its compose tool, or `podman kube play` for one written
//! by `init --target kube`. The rest of the tool asks a [`Runner`] to start, stop and run
//! one-shots, and never branches on which one it is.
//!
//! Commands are data ([`Commands`], after Kamal's `commands/`): each runner builds the argv it
//! runs, and the same builder gives the line a fix or an error tells the user to type, so what a
//! user is told is what the tool would run.

pub mod compose;
pub mod kube_play;

use crate::adapters::engine::EngineKind;
use crate::core::layout::Layout;
use futures_util::future::BoxFuture;
use std::path::Path;

/// Why no runner can drive a deployment of a layout on the engine found.
#[derive(Debug)]
pub enum NoRunner {
    /// A kube-played deployment needs `podman kube play`; the engine is another one.
    NeedsPodman(EngineKind),
    /// A compose deployment needs a compose tool; none answered.
    NoComposeTool(anyhow::Error),
}

/// Whether a deployment of `layout` is driven through a compose tool.
#[must_use]
pub fn needs_compose_tool(layout: Layout) -> bool {
    layout == Layout::Compose
}

/// Whether an engine of `kind` can run a deployment of `layout` (`podman kube play` needs Podman).
#[must_use]
pub fn engine_fits(layout: Layout, kind: EngineKind) -> bool {
    layout != Layout::KubePlay || kind == EngineKind::Podman
}

/// The runner of a deployment of `layout` on the engine reached at `endpoint`: `podman kube play`,
/// or the compose tool `compose_choice` names (detected when `None`), told where Podman's socket is
/// when it is one of Docker's tools.
///
/// # Errors
/// [`NoRunner`].
pub async fn select(
    layout: Layout,
    kind: EngineKind,
    endpoint: &str,
    compose_choice: Option<&str>,
) -> Result<Box<dyn Runner>, NoRunner> {
    if layout == Layout::KubePlay {
        if kind != EngineKind::Podman {
            return Err(NoRunner::NeedsPodman(kind));
        }
        return Ok(Box::new(kube_play::KubePlay::new(endpoint)));
    }
    let tool = compose::detect(compose_choice, kind == EngineKind::Podman)
        .await
        .map_err(NoRunner::NoComposeTool)?;
    Ok(Box::new(tool.for_engine(kind, endpoint)))
}

/// The commands of the deployment of `layout` in `dir` named `project`, for what a user is told to
/// run when no runner could be set up: the compose tool found (Docker Compose v2 when none
/// answered), or `podman` at the engine's `endpoint`.
#[must_use]
pub fn commands_of(
    layout: Layout,
    tool: Option<&compose::ComposeTool>,
    endpoint: Option<&str>,
    dir: &Path,
    project: &str,
) -> Commands {
    match layout {
        Layout::KubePlay => {
            kube_play::KubePlay::new(endpoint.unwrap_or_default()).commands(dir, project)
        }
        Layout::Compose => tool
            .cloned()
            .unwrap_or_else(compose::ComposeTool::assumed)
            .commands(dir, project),
    }
}

/// Finds the compose tool to drive ([`compose::detect`]), Podman's first when the engine is Podman.
///
/// # Errors
/// No compose tool answers.
pub async fn detect_compose(
    choice: Option<&str>,
    engine: Option<EngineKind>,
) -> anyhow::Result<compose::ComposeTool> {
    compose::detect(choice, engine == Some(EngineKind::Podman)).await
}

/// Runs a deployment's containers.
pub trait Runner: Send + Sync {
    /// The layout this runner drives.
    fn layout(&self) -> Layout;

    /// The runner as the user knows it, with its version (`docker compose (Compose v2 plugin)
    /// 2.40.3`, `podman kube play`).
    fn describe(&self) -> String;

    /// The commands of the deployment in `dir` named `project`, as this runner runs them.
    fn commands(&self, dir: &Path, project: &str) -> Commands;

    /// Creates or starts `services` of the deployment in `dir` (a kube-played deployment starts
    /// as pods: the database's pod again, Movim's played anew from `kube/podman.yaml`).
    fn up<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        services: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Stops web, daemon and fpm; the database and XMPP server keep running.
    fn stop_movim<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Runs `php args…` once in a fresh container of the daemon image the deployment in `dir`
    /// names now, with the deployment's configuration: the exit code and the interleaved output,
    /// whatever the code.
    fn daemon_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>>;

    /// Runs `php args…` once in a fresh container of a release that is not running (its daemon
    /// image and, for a compose deployment, the compose file that runs it), beside the deployment
    /// in `dir` that keeps serving.
    fn probe_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        release: &'a Probe<'a>,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>>;

    /// The order Movim's services are started in, group by group, each group behind its health
    /// gate: nginx resolves fpm's and the daemon's addresses only when it starts, so compose starts
    /// them first; in one pod web reaches them on loopback, so the pod starts whole.
    fn movim_start_order(&self) -> &'static [&'static [&'static str]];

    /// Hands the shared volumes to uid 82 before fpm and the daemon start, when the runner does not
    /// do it by itself: the exit code and output of that step.
    fn prepare_volumes<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>>;

    /// Whether a service that fails to become healthy after losing a name lookup to the engine's
    /// DNS race ([`EngineKind::drops_lookups_on_join`]) deserves one more start: a service that
    /// started as a one-shot left can fail to resolve `postgres` once.
    fn retries_lost_lookups(&self) -> bool;
}

/// A release that does not run yet, as a one-shot needs it.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// Its pinned daemon image.
    pub daemon_image: &'a str,
    /// Its rendered `compose.yaml` (what a compose deployment would run).
    pub compose_file: &'a str,
}

/// Every command shown to a user about one deployment, in its runner's words. Each is the argv
/// the runner itself would run for that action, shell-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    /// Words before a service to read the last lines of its log.
    logs: Vec<String>,
    /// Words before `<service> <command>` to run a command in a service's running container.
    exec: Vec<String>,
    /// The same, with the command reading this terminal's standard input (`< file`).
    exec_input: Vec<String>,
    /// Words before a service to start its stopped container.
    start: Vec<String>,
    /// Words before services to make them run what the deployment's file says now, recreating
    /// what differs; the whole line when the runner plays everything at once.
    apply: Applies,
    /// Words before services to restart what reads `movim.env`.
    restart: Applies,
    /// Applies pending migrations and starts the daemon again.
    pub migrate: String,
    /// Starts the whole stack in order, migrations first.
    pub start_stack: String,
    /// Hands a service's shared directories to uid 82.
    chown: Applies,
    /// Lists the deployment's containers (or pods).
    pub list: String,
    /// Hands the shared volumes to uid 82 as a deployment's first start does.
    pub prepare: String,
    /// How a service is named on these command lines.
    naming: Naming,
}

/// Words that take services after them (and maybe words after those), or one line for every
/// service at once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Applies {
    Services(Vec<String>),
    Around(Vec<String>, Vec<String>),
    Whole(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Naming {
    /// Compose names services as they are.
    Service,
    /// `podman` names the container of a kube-played `project`.
    KubeContainer(String),
}

impl Commands {
    fn name(&self, service: &str) -> String {
        match &self.naming {
            Naming::Service => service.to_owned(),
            Naming::KubeContainer(project) => crate::core::layout::kube_container(project, service),
        }
    }

    fn line(words: &[String], tail: &[String]) -> String {
        words
            .iter()
            .chain(tail)
            .map(|w| crate::core::shell::quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn applied(&self, how: &Applies, services: &[&str]) -> String {
        match how {
            Applies::Services(words) => {
                let names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
                Self::line(words, &names)
            }
            Applies::Around(before, after) => {
                let mut tail: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
                tail.extend(after.iter().cloned());
                Self::line(before, &tail)
            }
            Applies::Whole(line) => line.clone(),
        }
    }

    /// The last lines of `service`'s log.
    #[must_use]
    pub fn logs(&self, service: &str) -> String {
        Self::line(&self.logs, &[self.name(service)])
    }

    /// `command` (a shell line, shown as it is) in `service`'s running container.
    #[must_use]
    pub fn exec(&self, service: &str, command: &str) -> String {
        format!(
            "{} {command}",
            Self::line(&self.exec, &[self.name(service)])
        )
    }

    /// `command` in `service`'s running container, reading what the line's `< file` gives it.
    #[must_use]
    pub fn exec_input(&self, service: &str, command: &str) -> String {
        format!(
            "{} {command}",
            Self::line(&self.exec_input, &[self.name(service)])
        )
    }

    /// Starts `service`'s stopped container.
    #[must_use]
    pub fn start(&self, service: &str) -> String {
        Self::line(&self.start, &[self.name(service)])
    }

    /// Makes `services` run what the deployment's file says now (images, mounts), recreating
    /// what differs.
    #[must_use]
    pub fn apply(&self, services: &[&str]) -> String {
        self.applied(&self.apply, services)
    }

    /// Restarts `services` so that they read `movim.env` again.
    #[must_use]
    pub fn restart(&self, services: &[&str]) -> String {
        self.applied(&self.restart, services)
    }

    /// Hands `service`'s shared directories to uid 82.
    #[must_use]
    pub fn chown(&self, service: &str) -> String {
        self.applied(&self.chown, &[service])
    }
}
