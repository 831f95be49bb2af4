//! One failure type for every command: what failed, on which object, why, and the exact next
//! command to run. Adapters return `anyhow` errors with context; commands turn them into a
//! [`Failure`] at the point where they know what the user should do next.

use std::fmt;

/// The process exit statuses, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, or doctor found no error.
    Success,
    /// 1: the command failed (nothing was changed unless it says so), or doctor found errors.
    Failed,
    /// 2: bad usage, or the tool could not run at all (doctor: could not check).
    CouldNotRun,
    /// 128 + the signal's number (130 SIGINT, 143 SIGTERM): interrupted, and what it left is said.
    Interrupted(u8),
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Success => Self::SUCCESS,
            ExitStatus::Failed => Self::from(1),
            ExitStatus::CouldNotRun => Self::from(2),
            ExitStatus::Interrupted(code) => Self::from(code),
        }
    }
}

/// A command failed: `what` failed (one line naming the object), `cause` says why, `next` is the
/// command(s) the user should run now.
#[derive(Debug)]
pub struct Failure {
    pub what: String,
    pub cause: Option<anyhow::Error>,
    pub details: Vec<String>,
    pub next: Vec<String>,
    pub status: ExitStatus,
}

impl Failure {
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            cause: None,
            details: Vec::new(),
            next: Vec::new(),
            status: ExitStatus::Failed,
        }
    }

    /// Bad input: the user must change what they asked for.
    pub fn usage(what: impl Into<String>) -> Self {
        Self {
            status: ExitStatus::CouldNotRun,
            ..Self::new(what)
        }
    }

    #[must_use]
    pub fn because(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    #[must_use]
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }

    #[must_use]
    pub fn next(mut self, command: impl Into<String>) -> Self {
        self.next.push(command.into());
        self
    }

    #[must_use]
    pub fn status(mut self, status: ExitStatus) -> Self {
        self.status = status;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:#}")?;
        }
        for d in &self.details {
            write!(f, "\n  {d}")?;
        }
        for n in &self.next {
            write!(f, "\n  next: {n}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Turns an adapter error into a [`Failure`] naming what failed.
pub trait OrFail<T> {
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(what()).because(e))
    }
}
