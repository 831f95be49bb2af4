//! movim-setup as a library: the binary in `main.rs` only calls [`run`]. Modules fall in three
//! rooms — the command line and the commands (orchestration), the pure core (model, rendering,
//! planning: no I/O), and the adapters (engine, registry, database, compose tool, health probes,
//! terminal) that touch the world.

// The command line and one file per command.
pub mod cli;
pub mod commands;

// The pure core.
pub mod answers;
pub mod deployment;
pub mod doctor;
pub mod envfile;
pub mod layout;
pub mod lockfile;
pub mod plan;
pub mod render;
pub mod secret;

// Adapters.
pub mod backup;
pub mod compose_cli;
pub mod db;
pub mod engine;
pub mod fsx;
pub mod health;
pub mod journal;
pub mod kube_play;
pub mod registry;
pub mod subprocess;
pub mod ui;

pub mod error;

pub use error::{ExitStatus, Failure};

/// Parses the command line, runs the command, and turns the outcome into the process exit status
/// documented in the README (0 ok, 1 failed or doctor found errors, 2 usage or could not run).
#[must_use]
pub fn run() -> std::process::ExitCode {
    let cli = cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitStatus::CouldNotRun.into();
        }
    };
    let outcome = runtime.block_on(commands::dispatch(cli));
    match outcome {
        Ok(status) => status.into(),
        Err(failure) => {
            ui::report_failure(&failure);
            failure.status.into()
        }
    }
}
