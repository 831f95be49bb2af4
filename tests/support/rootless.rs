//! Rootless Podman for the real-world tests: the world's unprivileged user (`movimtest`, made by
//! tests/world/provision.sh with its id ranges, runtime directory and Podman settings), commands
//! run as that user with the environment a login would give it, its own API service held up by a
//! guard, and a guard that removes a project's containers, pod, volumes and networks from the
//! user's store however the test ends.

#![allow(dead_code)] // each test module uses a different part of this helper

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user of the test world.
pub const USER: &str = "movimtest";

/// The world's unprivileged user, as the tests run things as it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl User {
    /// The world's user; fails naming provision.sh when it is missing.
    pub fn get() -> Self {
        let field = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, USER])
                .output()
                .expect("id runs");
            assert!(
                out.status.success(),
                "the test world has no user {USER} for rootless Podman; run `bash tests/world/provision.sh`"
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a numeric id")
        };
        let (uid, gid) = (field("-u"), field("-g"));
        let runtime = PathBuf::from(format!("/run/user/{uid}"));
        assert!(
            runtime.is_dir(),
            "{} is missing (no login makes it here); run `bash tests/world/provision.sh`",
            runtime.display()
        );
        Self {
            name: USER.to_owned(),
            uid,
            gid,
            home: PathBuf::from(format!("/home/{USER}")),
        }
    }

    /// podman-compose 1.6 in the user's own venv (the world's runs a python only root reaches).
    pub fn podman_compose(&self) -> String {
        let path = self.home.join(".venv/bin/podman-compose");
        assert!(
            path.exists(),
            "{} is missing; run `bash tests/world/provision.sh`",
            path.display()
        );
        path.display().to_string()
    }

    /// `$XDG_RUNTIME_DIR` of the user.
    pub fn runtime_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/user/{}", self.uid))
    }

    /// The user's own Podman API socket (what `podman info` reports as its remote socket).
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join("podman/podman.sock")
    }

    /// What a login would set, and nothing else of this (root) process's environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("HOME", self.home.display().to_string()),
            ("USER", self.name.clone()),
            ("LOGNAME", self.name.clone()),
            ("XDG_RUNTIME_DIR", self.runtime_dir().display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
        ]
    }

    /// `program` run as the user (`setpriv` execs it: its pid is the program's), from `/`.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg(program)
            .current_dir("/");
        cmd
    }

    /// `podman args…` as the user, with its login environment.
    pub fn podman_output(&self, args: &[&str]) -> Output {
        let mut cmd = self.command("env");
        cmd.arg("-i");
        for (k, v) in self.env() {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg("podman")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman runs as the user")
    }

    /// `podman args…` as the user; must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn podman(&self, args: &[&str]) -> String {
        let out = self.podman_output(args);
        assert!(
            out.status.success(),
            "podman {args:?} as {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A temporary directory the user owns (the deployment directory goes inside).
    pub fn tempdir(&self) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let status = Command::new("chown")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(tmp.path())
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {}", tmp.path().display());
        tmp
    }
}

/// The user's `podman system service` on its own socket, stopped when dropped.
pub struct UserService {
    child: Child,
    socket: PathBuf,
}

impl UserService {
    pub fn start(user: &User) -> Self {
        let socket = user.socket();
        let dir = socket.parent().expect("a parent").to_owned();
        let mut mkdir = user.command("mkdir");
        assert!(
            mkdir
                .args(["-p"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success()),
            "mkdir {}",
            dir.display()
        );
        let _ = std::fs::remove_file(&socket);
        let mut cmd = user.command("env");
        cmd.arg("-i");
        for (k, v) in user.env() {
            cmd.arg(format!("{k}={v}"));
        }
        let child = cmd
            .args(["podman", "system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service runs as the user");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !super::podman::pings(&socket.display().to_string()) {
            assert!(
                Instant::now() < deadline,
                "the rootless `podman system service` does not answer on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, socket }
    }
}

impl Drop for UserService {
    fn drop(&mut self) {
        // SIGTERM first: Podman removes its socket and stops cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Removes everything of a compose project from the user's store when dropped: containers (and
/// their anonymous volumes), podman-compose's pod, named volumes, networks.
pub struct UserProject {
    pub name: String,
    user: User,
}

impl UserProject {
    pub fn new(user: &User, project: &super::cli::Project) -> Self {
        Self {
            name: project.name.clone(),
            user: user.clone(),
        }
    }

    /// The container of `service` (podman-compose's labels).
    pub fn container(&self, service: &str) -> String {
        self.user.podman(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])
    }
}

impl Drop for UserProject {
    fn drop(&mut self) {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let ids = |args: &[&str]| -> Vec<String> {
            String::from_utf8_lossy(&self.user.podman_output(args).stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let remove = |args: &[&str], ids: Vec<String>| {
            if !ids.is_empty() {
                let mut all: Vec<&str> = args.to_vec();
                all.extend(ids.iter().map(String::as_str));
                let _ = self.user.podman_output(&all);
            }
        };
        remove(&["rm", "-f", "-v"], ids(&["ps", "-aq", "--filter", &label]));
        let pod = format!("name=^pod_{}$", self.name);
        remove(
            &["pod", "rm", "-f"],
            ids(&["pod", "ps", "-q", "--filter", &pod]),
        );
        for kind in ["volume", "network"] {
            remove(
                &[kind, "rm", "-f"],
                ids(&[kind, "ls", "-q", "--filter", &label]),
            );
        }
    }
}

/// Whether `path` (and every directory above it) lets the user in: the binary under test and
/// podman-compose must be reachable by it.
pub fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}
