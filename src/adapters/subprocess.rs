//! The user's own tools (a compose tool, `podman`) run as bounded subprocesses: a timeout that
//! kills the child, output captured apart or interleaved, and errors that quote the exact command
//! line as the user could paste it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::core::shell::quote as shell_quote;
use anyhow::{Context as _, anyhow};
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

/// A child process of `program`, to be configured and spawned by its caller: every process this
/// tool starts is made here (a lint keeps it so), so what runs is found in one place. Each child
/// is in a process group of its own: the terminal's Ctrl-C reaches this process only, which
/// finishes the step the child is part of ([`crate::adapters::signals`]) instead of losing the
/// child (a compose command, `pg_dump`) half-way. No child inherits a secret this tool was given
/// in its environment ([`crate::adapters::env::SECRET_VARS`]).
#[must_use]
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::from(blocking_command(program))
}

/// SIGKILL to the process group `leader` leads (nothing for 0), through kill(1): this crate
/// forbids the `unsafe` a direct `kill(2)` would need. Best effort: a group already gone is fine.
fn kill_group(leader: u32) {
    if leader == 0 {
        return;
    }
    let _ = blocking_command("kill")
        .args(["-KILL", "--", &format!("-{leader}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs a [`blocking_command`] to its end, or stops it (and what it started) after `timeout`: a
/// program that can hang on the system (`df` on a dead network mount) never hangs this tool.
///
/// # Errors
/// It cannot start, or did not finish within `timeout`.
pub fn output_within(
    mut command: std::process::Command,
    timeout: Duration,
) -> anyhow::Result<std::process::Output> {
    let shown = format!("{:?}", command.get_program());
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown}"))?;
    let leader = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.with_context(|| format!("cannot read what {shown} printed")),
        Err(_) => {
            kill_group(leader);
            Err(anyhow!(
                "{shown} did not finish within {timeout:?}; stopped it"
            ))
        }
    }
}

/// [`command`], for the few callers that must block (no async runtime at hand, or a
/// checkpoint that must not yield).
#[allow(clippy::disallowed_methods)] // the one place processes are made
#[must_use]
pub fn blocking_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = std::process::Command::new(program);
    command.process_group(0);
    for name in crate::adapters::env::SECRET_VARS {
        command.env_remove(name);
    }
    command
}

/// How a child's output is collected.
#[derive(Debug, Clone, Copy)]
pub enum Capture {
    /// stdout and stderr apart (the error quotes stderr).
    Separate,
    /// Both into one pipe, in the order written, as `2>&1` would.
    Combined,
}

/// What a finished child left.
#[derive(Debug)]
pub struct Captured {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    /// All output with [`Capture::Combined`].
    pub stdout: String,
    pub stderr: String,
}

/// A program with the words always put before our arguments (`docker` + `compose`) and any extra
/// environment.
#[derive(Debug, Clone)]
pub struct Program {
    pub program: PathBuf,
    pub prefix: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Program {
    #[must_use]
    pub fn new(program: impl Into<PathBuf>, prefix: Vec<String>) -> Self {
        Self {
            program: program.into(),
            prefix,
            env: Vec::new(),
        }
    }

    /// The words a user types for this program: any extra environment as `KEY=value`, the program,
    /// its prefix.
    #[must_use]
    pub fn words(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(std::iter::once(self.program.to_string_lossy().into_owned()))
            .chain(self.prefix.iter().cloned())
            .collect()
    }

    /// The command as the user types it (`docker compose`, `/usr/bin/docker-compose`).
    #[must_use]
    pub fn display_command(&self) -> String {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.prefix.iter().cloned())
            .map(|w| shell_quote(&w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The exact command line, shell-quoted, with any extra environment in front.
    #[must_use]
    pub fn command_line(&self, args: &[String]) -> String {
        let env = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)));
        let words = args.iter().map(|a| shell_quote(a));
        env.chain(std::iter::once(self.display_command()))
            .chain(words)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs with `args`, in `dir` if given, killed after `timeout`.
    ///
    /// # Errors
    /// The program is missing or cannot start, reading its output failed, or it timed out.
    pub async fn exec(
        &self,
        dir: Option<&Path>,
        args: &[String],
        timeout: Duration,
        capture: Capture,
    ) -> anyhow::Result<Captured> {
        let mut command = command(&self.program);
        command
            .args(&self.prefix)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            // A timeout drops the future; the child must not outlive it.
            .kill_on_drop(true);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let line = || self.command_line(args);
        // The child leads its own process group (see [`command`]); a timeout stops the group, so
        // what the child started (a compose tool's own children) does not outlive it either.
        let leader = std::sync::atomic::AtomicU32::new(0);
        let run = async {
            match capture {
                Capture::Separate => {
                    command.stdout(Stdio::piped()).stderr(Stdio::piped());
                    let child = command.spawn().map_err(|e| self.spawn_error(&e))?;
                    leader.store(child.id().unwrap_or(0), Ordering::SeqCst);
                    let out = child.wait_with_output().await?;
                    Ok::<_, anyhow::Error>(Captured {
                        code: out.status.code(),
                        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    })
                }
                Capture::Combined => {
                    let (sender, mut receiver) = tokio::net::unix::pipe::pipe()?;
                    let write_end = sender.into_blocking_fd()?;
                    command
                        .stdout(Stdio::from(write_end.try_clone()?))
                        .stderr(Stdio::from(write_end));
                    let mut child = command.spawn().map_err(|e| self.spawn_error(&e))?;
                    leader.store(child.id().unwrap_or(0), Ordering::SeqCst);
                    // The command holds our copies of the write end; until they close, the
                    // pipe never reaches EOF.
                    drop(command);
                    let mut output = Vec::new();
                    let (read, status) =
                        tokio::join!(receiver.read_to_end(&mut output), child.wait());
                    read?;
                    Ok(Captured {
                        code: status?.code(),
                        stdout: String::from_utf8_lossy(&output).into_owned(),
                        stderr: String::new(),
                    })
                }
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result.with_context(line),
            Err(_) => {
                kill_group(leader.load(Ordering::SeqCst));
                Err(anyhow!(
                    "`{}` did not finish within {timeout:?}; stopped it and what it started",
                    line()
                ))
            }
        }
    }

    /// Runs with stdout and stderr apart and fails on a non-zero exit, quoting the command line
    /// and the end of stderr (stdout when stderr is empty).
    ///
    /// # Errors
    /// As [`Program::exec`], or the program exited non-zero.
    pub async fn checked(
        &self,
        dir: Option<&Path>,
        args: &[String],
        timeout: Duration,
        quoted_lines: usize,
    ) -> anyhow::Result<Captured> {
        let out = self.exec(dir, args, timeout, Capture::Separate).await?;
        if out.code != Some(0) {
            let quoted = if out.stderr.trim().is_empty() {
                &out.stdout
            } else {
                &out.stderr
            };
            anyhow::bail!(
                "`{}` failed with {}:\n{}",
                self.command_line(args),
                describe_exit(out.code),
                last_lines(quoted, quoted_lines)
            );
        }
        Ok(out)
    }

    fn spawn_error(&self, e: &std::io::Error) -> anyhow::Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "`{}` not found: {} is not installed or not on PATH",
                self.display_command(),
                self.program.display()
            )
        } else {
            anyhow!("cannot start `{}`: {e}", self.display_command())
        }
    }
}

/// `exit code 3`, or `a signal`.
#[must_use]
pub fn describe_exit(code: Option<i32>) -> String {
    code.map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"))
}

/// The last `n` lines of `text`.
#[must_use]
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    #[test]
    fn no_child_inherits_the_secrets_given_to_this_tool() {
        for built in [command("sh").as_std(), &blocking_command("sh")] {
            let removed: Vec<_> = built
                .get_envs()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .collect();
            assert_eq!(removed, ["MOVIM_DB_PASSWORD"]);
        }
    }

    #[test]
    fn a_blocking_program_that_hangs_is_stopped_at_its_timeout() {
        let mut sleep = blocking_command("sleep");
        sleep.arg("30");
        let started = std::time::Instant::now();
        let err = output_within(sleep, Duration::from_millis(300)).expect_err("hangs");
        assert!(err.to_string().contains("did not finish within"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it waited for the program"
        );
        let mut echo = blocking_command("echo");
        echo.arg("done");
        let out = output_within(echo, Duration::from_secs(10)).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    }

    #[tokio::test]
    async fn a_timeout_stops_what_the_child_started_too() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let sh = Program::new("sh", vec!["-c".to_owned()]);
        let err = sh
            .exec(
                None,
                &[script],
                Duration::from_millis(500),
                Capture::Separate,
            )
            .await
            .expect_err("timed out");
        assert!(err.to_string().contains("did not finish within"), "{err}");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_owned();
        let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        // SIGKILL is delivered at once; reaping by init may take a moment.
        let gone = (0..50).any(|_| {
            let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            let done = state.is_empty() || state.split_whitespace().nth(2) == Some("Z");
            if !done {
                std::thread::sleep(Duration::from_millis(100));
            }
            done
        });
        assert!(gone, "the grandchild {pid} outlived the timeout");
    }
}
