//! What every command, the release steps and the stack bring-up share: where the deployment lives,
//! how to talk to the user, and the engine and compose tool the user chose (if any).

use crate::adapters::engine::EngineKind;
use crate::adapters::ui::Ui;
use std::path::PathBuf;

/// What every command gets: where the deployment lives and how to talk to the user.
#[derive(Debug)]
pub struct Context {
    pub dir: PathBuf,
    pub ui: Ui,
    /// `--engine`, when given: the engine is not auto-detected.
    pub engine: Option<EngineKind>,
    pub compose: Option<String>,
    pub yes: bool,
}
