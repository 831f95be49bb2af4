//! One file per command; this one routes the parsed command line to it and holds what every
//! command shares (the deployment directory, the terminal, the user's engine and compose choice).

pub mod doctor;
pub mod init;
pub mod rollback;
pub mod stack;
pub mod upgrade;

use crate::cli::{Cli, Command};
use crate::error::{ExitStatus, Failure};
use crate::ui::Ui;
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

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<ExitStatus, Failure> {
    let ctx = Context {
        dir: cli.dir,
        ui: Ui::new(),
        engine: cli.engine,
        compose: cli.compose,
        yes: cli.yes,
    };
    match cli.command {
        Command::Init(args) => init::run(&ctx, *args).await,
        Command::Upgrade(args) => upgrade::run(&ctx, args).await,
        Command::Rollback(args) => rollback::run(&ctx, args).await,
        Command::Doctor(args) => doctor::run(&ctx, args).await,
    }
}
