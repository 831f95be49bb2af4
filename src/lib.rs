//! movim-setup as a library: the binary in `main.rs` only calls [`run`]. Modules fall in three
//! rooms — the command line and the commands (orchestration), the pure core (model, rendering,
//! planning: no I/O), and the adapters (engine, registry, database, compose tool, health probes,
//! terminal) that touch the world.

// The edge: the command line, and the commands (orchestration only).
pub mod cli;
pub mod commands;
pub mod context;
pub mod error;

// What several commands share: bringing the stack up, and moving between releases.
pub mod release;
pub mod stack;

// The rooms below the commands.
pub mod adapters;
pub mod core;
pub mod doctor;

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
    let outcome = runtime.block_on(async {
        let cancel = adapters::signals::Cancel::new();
        if let Err(e) = adapters::signals::listen(&cancel) {
            return Err(Failure::new("cannot handle SIGINT, SIGTERM and SIGHUP")
                .because(e)
                .detail("nothing was stopped or changed")
                .status(ExitStatus::CouldNotRun));
        }
        commands::dispatch(cli, cancel).await
    });
    match outcome {
        Ok(status) => status.into(),
        Err(failure) => {
            adapters::ui::report_failure(&failure);
            failure.status.into()
        }
    }
}
