//! The process's environment, read here and nowhere else (a lint keeps it so): the variables this
//! tool honours (`MOVIM_DB_PASSWORD`, `DOCKER_HOST`, `CONTAINER_HOST`, `XDG_RUNTIME_DIR`,
//! `DOCKER_CONFIG`, `HOME`, `NO_COLOR`, `TMPDIR`, the test-only crash hook) and whether a
//! terminal is attached. Flags' own variables (`MOVIM_DOMAIN`, …) are clap's.

#![allow(clippy::disallowed_methods)] // the one place the environment is read

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::PathBuf;

/// Variables that carry a secret to this tool and to no one else: every child process is started
/// without them (see [`crate::adapters::subprocess::command`]); a child that needs the password
/// is given it by name, as `PGPASSWORD`.
pub const SECRET_VARS: &[&str] = &["MOVIM_DB_PASSWORD"];

/// A variable's value, when it is set and valid UTF-8.
#[must_use]
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable's raw value, when it is set.
#[must_use]
pub fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The directory for temporary files (`TMPDIR`, else `/tmp`).
#[must_use]
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Whether someone may answer on standard input.
#[must_use]
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Whether standard error is a terminal (bars and colour), and `NO_COLOR` does not forbid colour.
#[must_use]
pub fn stderr_is_fancy() -> bool {
    std::io::stderr().is_terminal() && var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
