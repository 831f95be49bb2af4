//! One file per command, orchestration only; this one routes the parsed command line to it.

pub mod doctor;
pub mod help;
pub mod init;
pub mod rollback;
pub mod upgrade;

use crate::adapters::clock::SystemClock;
use crate::adapters::registry::Distribution;
use crate::adapters::ui::{self, Ui};
use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::{ExitStatus, Failure};
use crate::stack::Machine;

/// Runs the parsed command on this machine.
pub async fn dispatch(cli: Cli) -> Result<ExitStatus, Failure> {
    let ctx = Context {
        dir: cli.dir,
        ui: Ui::new(),
        engine: cli.engine,
        compose: cli.compose,
        prompter: ui::prompter(cli.yes),
        registries: Box::new(Distribution),
        clock: Box::new(SystemClock),
        connect: Box::new(Machine),
    };
    run(&ctx, cli.command).await
}

/// Runs `command` in `ctx` (the real machine, or fakes in tests).
pub async fn run(ctx: &Context, command: Command) -> Result<ExitStatus, Failure> {
    match command {
        Command::Init(args) => init::run(ctx, *args).await,
        Command::Upgrade(args) => upgrade::run(ctx, args).await,
        Command::Rollback(args) => rollback::run(ctx, args).await,
        Command::Doctor(args) => doctor::run(ctx, args).await,
        Command::Completions(args) => help::completions(&args),
        Command::Man(args) => help::man(ctx, &args),
    }
}
