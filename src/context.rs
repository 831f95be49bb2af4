//! What every command, the release steps and the stack bring-up share: where the deployment lives,
//! how to talk to the user, and the engine and compose tool the user chose (if any).

use crate::adapters::ui::Ui;
use std::path::PathBuf;

/// What every command gets: where the deployment lives and how to talk to the user.
#[derive(Debug)]
pub struct Context {
    pub dir: PathBuf,
    pub ui: Ui,
    pub engine: Option<String>,
    pub compose: Option<String>,
    pub yes: bool,
}
