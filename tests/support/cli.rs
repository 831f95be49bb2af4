//! One builder for running the `movim-setup` binary in tests, so that CLI tests read like a spec:
//! `Setup::init(&dir).args([...]).run().success()`. Also a guard that tears a test's compose
//! project down (containers and volumes, on Docker and Podman) however the test ends, and the one
//! `init` invocation for the world's images every real-world test starts from.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Setup {
    cmd: Command,
    line: String,
}

impl Setup {
    /// `movim-setup <verb> --dir <dir>` with a clean environment for the tool's own variables.
    pub fn new(verb: &str, dir: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_movim-setup"));
        cmd.arg(verb).arg("--dir").arg(dir).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("MOVIM_") && k != "MOVIM_WORLD_DIR" {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        Self {
            cmd,
            line: format!("movim-setup {verb} --dir {}", dir.display()),
        }
    }

    pub fn init(dir: &Path) -> Self {
        Self::new("init", dir)
    }

    /// `movim-setup <verb>` run from `cwd`, without `--dir`: the default `./movim`, as a user
    /// types it.
    pub fn from_cwd(verb: &str, cwd: &Path) -> Self {
        let mut setup = Self::new(verb, cwd);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_movim-setup"));
        cmd.arg(verb).current_dir(cwd).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("MOVIM_") && k != "MOVIM_WORLD_DIR" {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        setup.cmd = cmd;
        setup.line = format!("(cd {} && movim-setup {verb})", cwd.display());
        setup
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.line.push(' ');
        self.line.push_str(&a.as_ref().to_string_lossy());
        self.cmd.arg(a);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// The same invocation run as the unprivileged `user` (`setpriv`, no intermediate process),
    /// with nothing of this process's environment but `env` and what the builder set.
    pub fn run_as(mut self, user: &super::rootless::User, env: &[(&str, String)]) -> Self {
        let mut cmd = user.command("env");
        cmd.arg("-i");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        for (k, v) in self.cmd.get_envs() {
            if let Some(v) = v {
                cmd.arg(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
        cmd.arg(self.cmd.get_program()).args(self.cmd.get_args());
        if let Some(cwd) = self.cmd.get_current_dir() {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::null());
        self.cmd = cmd;
        self.line = format!("(as {}) {}", user.name, self.line);
        self
    }

    pub fn run(mut self) -> Run {
        let output = self.cmd.output().expect("movim-setup runs");
        Run {
            line: self.line,
            output,
        }
    }
}

pub struct Run {
    pub line: String,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn show(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.line,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.output.status.success(),
            "expected success: {}",
            self.show()
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "expected exit {code}: {}",
            self.show()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "expected stderr to contain {needle:?}: {}",
            self.show()
        );
        self
    }
}

/// Removes a compose project's containers, networks and volumes when dropped.
pub struct Project {
    pub name: String,
}

impl Project {
    pub fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            name: format!("t{prefix}{}{:x}", std::process::id(), nanos),
        }
    }
}

/// Removes everything of the project on both engines, however the test ended: containers (with
/// their anonymous volumes), the pod podman-compose makes, named volumes, networks. An engine
/// that is absent or holds nothing of it is simply skipped.
impl Drop for Project {
    fn drop(&mut self) {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let list = |cli: &str, args: &[&str]| -> Vec<String> {
            Command::new(cli)
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let quiet = |cli: &str, args: &[&str], ids: &[String]| {
            if !ids.is_empty() {
                let _ = Command::new(cli).args(args).args(ids).output();
            }
        };
        for cli in ["docker", "podman"] {
            quiet(
                cli,
                &["rm", "-f", "-v"],
                &list(cli, &["ps", "-aq", "--filter", &label]),
            );
            if cli == "podman" {
                let pod = format!("name=^pod_{}$", self.name);
                quiet(
                    cli,
                    &["pod", "rm", "-f"],
                    &list(cli, &["pod", "ps", "-q", "--filter", &pod]),
                );
            }
            for kind in ["volume", "network"] {
                quiet(
                    cli,
                    &[kind, "rm", "-f"],
                    &list(cli, &[kind, "ls", "-q", "--filter", &label]),
                );
            }
        }
    }
}

/// `init --yes` for the world's images (v0.29.2 unless overridden), proxy TLS on a loopback
/// `port`, an external XMPP server; `overrides` replace or add flags.
pub fn init_world(dir: &Path, project: &Project, port: u16, overrides: &[(&str, &str)]) -> Setup {
    with_world_flags(Setup::init(dir), project, port, overrides)
}

/// The flags of [`init_world`] added to any `init` invocation.
pub fn with_world_flags(
    init: Setup,
    project: &Project,
    port: u16,
    overrides: &[(&str, &str)],
) -> Setup {
    let w = super::world::World::get();
    let port = port.to_string();
    let library = format!("{}/library", w.registry);
    let repository = w.movim_repository();
    let mut flags: Vec<(&str, &str)> = vec![
        ("--project", &project.name),
        ("--domain", "movim.test"),
        ("--tls", "proxy"),
        ("--http-port", &port),
        ("--xmpp", "external"),
        ("--xmpp-domain", "example.test"),
        ("--image-repository", &repository),
        ("--library-repository", &library),
    ];
    for (flag, value) in overrides {
        flags.retain(|(f, _)| f != flag);
        flags.push((flag, value));
    }
    let mut setup = init.arg("--yes");
    for (flag, value) in flags {
        setup = setup.args([flag, value]);
    }
    setup
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A snapshot of a directory (relative path → content) to prove a command changed nothing.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if dir.exists() {
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.strip_prefix(dir).expect("prefix").to_owned(),
                        std::fs::read(&p).expect("read"),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The crash and pause points are compiled in only with the `test-hooks` feature: without it a
/// test that drives them fails here, saying how to run it, instead of waiting for a hook that
/// never comes.
#[track_caller]
pub fn require_test_hooks() {
    if !cfg!(feature = "test-hooks") {
        panic!(
            "this test drives the test-only hooks: run it with `cargo test --features test-hooks` (tests/run-all.sh does)"
        );
    }
}
