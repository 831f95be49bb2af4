//! SIGINT, SIGTERM and SIGHUP, never the default death half-way: a [`Cancel`] the commands check.
//! While nothing is changed yet a signal aborts the command (the future is dropped, so what it held
//! is released); once a command executes (the stop of a release, `init`'s write) a signal is only
//! a request the run honours between steps (the step is finished, then undone). SIGHUP is ignored
//! for the whole run: an SSH connection dropping must not end it half-way.

use crate::error::{ExitStatus, Failure};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// A signal that ends a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM: exit 143.
    Terminate,
}

impl Signal {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// 128 + the signal's number, as a shell reports a process the signal killed.
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }

    /// The failure an interrupted command ends with (exit 130 or 143).
    #[must_use]
    pub fn failure(self, what: impl Into<String>) -> Failure {
        Failure::new(what).status(ExitStatus::Interrupted(self.exit_code()))
    }
}

#[derive(Debug)]
struct State {
    /// From the stop on (or `init`'s write): a signal is a request, not an abort.
    executing: bool,
    /// The first signal received while executing.
    requested: Option<Signal>,
    /// The signal that aborted the command (received while not executing).
    aborted: Option<Signal>,
    /// What an abort now leaves, said after "interrupted by SIGINT:".
    leaves: String,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    aborted: Notify,
}

/// The seam between the signals and the run: raised by the signal handlers (or by a test),
/// checked by the run between steps.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<Inner>);

const NOTHING_CHANGED: &str = "nothing was stopped or changed";

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            state: Mutex::new(State {
                executing: false,
                requested: None,
                aborted: None,
                leaves: NOTHING_CHANGED.to_owned(),
            }),
            aborted: Notify::new(),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `signal` arrived. Returns whether it aborts the command (it was not executing); otherwise
    /// it is recorded for the run to honour after the current step.
    pub fn raise(&self, signal: Signal) -> bool {
        let mut state = self.state();
        if state.executing {
            state.requested.get_or_insert(signal);
            false
        } else {
            state.aborted.get_or_insert(signal);
            drop(state);
            self.0.aborted.notify_one();
            true
        }
    }

    /// The signal received while executing, if any: the run finishes its step, then goes back.
    #[must_use]
    pub fn requested(&self) -> Option<Signal> {
        self.state().requested
    }

    /// From now on a signal does not abort: the command is changing things and must finish the
    /// step it is in. Fails if a signal already aborted it (then nothing may start).
    ///
    /// # Errors
    /// A signal arrived before: the failure says nothing was changed.
    pub fn execute(&self) -> Result<(), Failure> {
        let mut state = self.state();
        if let Some(signal) = state.aborted {
            return Err(signal
                .failure(format!("interrupted by {}", signal.name()))
                .detail(state.leaves.clone()));
        }
        state.executing = true;
        Ok(())
    }

    /// Back to a signal aborting the command, which then leaves what `leaves` says.
    ///
    /// # Errors
    /// A signal was requested while executing: the command must stop here.
    pub fn abortable(&self, leaves: &str) -> Result<(), Failure> {
        let mut state = self.state();
        state.leaves = leaves.to_owned();
        if let Some(signal) = state.requested.take() {
            return Err(signal
                .failure(format!("interrupted by {}", signal.name()))
                .detail(leaves.to_owned()));
        }
        state.executing = false;
        Ok(())
    }

    /// Resolves when a signal aborts the command, with the failure to end it with.
    pub async fn aborted(&self) -> Failure {
        loop {
            let notified = self.0.aborted.notified();
            {
                let state = self.state();
                if let Some(signal) = state.aborted {
                    return signal
                        .failure(format!("interrupted by {}", signal.name()))
                        .detail(state.leaves.clone());
                }
            }
            notified.await;
        }
    }
}

/// How long an aborted command has to unwind before the process exits anyway (a thread blocked
/// reading a prompt never returns to the runtime).
const UNWIND: Duration = Duration::from_secs(3);

/// Handles SIGINT, SIGTERM and SIGHUP for this process from now on, raising `cancel`; the
/// children this tool starts are in their own process group, so the terminal's Ctrl-C reaches
/// this process only. Call from within the runtime.
///
/// # Errors
/// A handler cannot be installed.
pub fn listen(cancel: &Cancel) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, raised) in [
        (SignalKind::interrupt(), Some(Signal::Interrupt)),
        (SignalKind::terminate(), Some(Signal::Terminate)),
        (SignalKind::hangup(), None),
    ] {
        let mut stream = signal(kind)?;
        let cancel = cancel.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                // SIGHUP: ignored, the run goes on without its terminal.
                let Some(signal) = raised else { continue };
                if cancel.raise(signal) {
                    std::thread::spawn(move || {
                        std::thread::sleep(UNWIND);
                        restore_terminal();
                        std::process::exit(i32::from(signal.exit_code()));
                    });
                }
            }
        });
    }
    Ok(())
}
/// Shows the cursor again (a prompt or a progress bar interrupted hides it), on a terminal only.
pub fn restore_terminal() {
    use std::io::{IsTerminal as _, Write as _};
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = stderr.write_all(b"\x1b[?25h");
        let _ = stderr.flush();
    }
}
