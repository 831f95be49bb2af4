//! One file per command, orchestration only; this one routes the parsed command line to it.

pub mod doctor;
pub mod help;
pub mod images;
pub mod init;
pub mod rollback;
pub mod upgrade;

use crate::adapters::clock::SystemClock;
use crate::adapters::registry::Distribution;
use crate::adapters::signals::Cancel;
use crate::adapters::ui::{self, Ui};
use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::{ExitStatus, Failure};
use crate::stack::Machine;

/// Runs the parsed command on this machine; `cancel` is raised by the signals.
pub async fn dispatch(cli: Cli, cancel: Cancel) -> Result<ExitStatus, Failure> {
    let ctx = Context {
        dir: absolute(&cli.dir)?,
        ui: Ui::new(),
        engine: cli.engine,
        compose: cli.compose,
        podman_service: cli.podman_service,
        prompter: ui::prompter(cli.yes),
        registries: Box::new(Distribution),
        clock: Box::new(SystemClock),
        connect: Box::new(Machine),
        cancel,
    };
    run(&ctx, cli.command).await
}

/// The deployment directory as every subprocess and the engine must be given it: absolute, resolved
/// once here (compose resolves a relative `-f` against `--project-directory`, so `./movim` would
/// become `./movim/movim`). Symbolic links are kept: the path is the user's.
fn absolute(dir: &std::path::Path) -> Result<std::path::PathBuf, Failure> {
    std::path::absolute(dir).map_err(|e| {
        Failure::usage(format!(
            "cannot make the directory {} absolute",
            dir.display()
        ))
        .because(e)
        .status(ExitStatus::CouldNotRun)
    })
}

/// Runs `command` in `ctx` (the real machine, or fakes in tests). A signal before the command
/// executes anything aborts it here: the command is dropped where it waits, releasing what it
/// holds, and ends with the signal's exit status.
pub async fn run(ctx: &Context, command: Command) -> Result<ExitStatus, Failure> {
    tokio::select! {
        outcome = route(ctx, command) => outcome,
        aborted = ctx.cancel.aborted() => Err(aborted),
    }
}

async fn route(ctx: &Context, command: Command) -> Result<ExitStatus, Failure> {
    crate::adapters::journal::pause("start").await;
    match command {
        Command::Init(args) => init::run(ctx, *args).await,
        Command::Upgrade(args) => upgrade::run(ctx, args).await,
        Command::Rollback(args) => rollback::run(ctx, args).await,
        Command::Doctor(args) => doctor::run(ctx, args).await,
        Command::Images(command) => images::run(ctx, command).await,
        Command::Completions(args) => help::completions(&args),
        Command::Man(args) => help::man(ctx, &args),
    }
}
