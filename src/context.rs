//! What every command, the release steps and the stack bring-up share: where the deployment lives,
//! how to talk to the user, and the engine and compose tool the user chose (if any).

use crate::adapters::Tools;
use crate::adapters::clock::Clock;
use crate::adapters::engine::EngineKind;
use crate::adapters::registry::Registries;
use crate::adapters::signals::Cancel;
use crate::adapters::ui::Ui;
use crate::core::answers::Prompter;
use crate::core::layout::Layout;
use crate::error::Failure;
use futures_util::future::BoxFuture;
use std::path::PathBuf;

/// What every command gets: where the deployment lives, how to talk to the user, and the parts of
/// the world it reaches before it knows which engine runs the deployment (the registry, the clock).
pub struct Context {
    pub dir: PathBuf,
    pub ui: Ui,
    /// `--engine`, when given: the engine is not auto-detected.
    pub engine: Option<EngineKind>,
    pub compose: Option<String>,
    /// `--podman-service`: when Podman's API does not answer, serve it for this run only.
    pub podman_service: bool,
    /// Asks the user (the terminal), or answers with the defaults when nobody is there.
    pub prompter: Box<dyn Prompter>,
    pub registries: Box<dyn Registries>,
    pub clock: Box<dyn Clock>,
    /// Finds the engine and what runs the deployment, once the command knows its layout.
    pub connect: Box<dyn Connect>,
    /// Raised by SIGINT and SIGTERM: aborts the command before it changes anything, afterwards
    /// checked between the steps of a run.
    pub cancel: Cancel,
}

/// Finds the [`Tools`] a command drives a deployment of `layout` with: the real engine and
/// runner ([`crate::stack::Machine`]), or fakes in tests.
pub trait Connect: Send + Sync {
    fn tools<'a>(
        &'a self,
        ctx: &'a Context,
        layout: Layout,
    ) -> BoxFuture<'a, Result<Tools, Failure>>;
}
