//! What every command, the release steps and the stack bring-up share: where the deployment lives,
//! how to talk to the user, and the engine and compose tool the user chose (if any).

use crate::adapters::clock::Clock;
use crate::adapters::engine::EngineKind;
use crate::adapters::registry::Registries;
use crate::adapters::ui::Ui;
use std::path::PathBuf;

/// What every command gets: where the deployment lives, how to talk to the user, and the parts of
/// the world it reaches before it knows which engine runs the deployment (the registry, the clock).
pub struct Context {
    pub dir: PathBuf,
    pub ui: Ui,
    /// `--engine`, when given: the engine is not auto-detected.
    pub engine: Option<EngineKind>,
    pub compose: Option<String>,
    pub yes: bool,
    pub registries: Box<dyn Registries>,
    pub clock: Box<dyn Clock>,
}
