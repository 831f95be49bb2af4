//! Podman for the real-world tests: its system API socket held up while tests use it (started by
//! the first test that needs it when nothing serves it, stopped by the last), one stack at a time
//! across test processes, and `movim-setup` pointed at Podman and podman-compose.

#![allow(dead_code)] // each test binary uses a different part of this helper

use super::cli::Setup;
use super::world;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SOCKET: &str = "/run/podman/podman.sock";

// ---------------------------------------------------------------------------------------------
// Podman's API socket, shared by the tests of this file.

/// How many tests use the socket now, and the service this file started (if it had to).
static SERVICE: Mutex<(usize, Option<Child>)> = Mutex::new((0, None));

/// Holds the system socket up for one test.
pub struct PodmanSocket;

impl PodmanSocket {
    pub fn acquire() -> Self {
        let mut guard = SERVICE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0 += 1;
        if !pings(SOCKET) {
            let _ = std::fs::remove_file(SOCKET);
            std::fs::create_dir_all("/run/podman").expect("create /run/podman");
            let child = Command::new("podman")
                .args(["system", "service", "--time=0", &format!("unix://{SOCKET}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("podman is part of the test world (tests/world/provision.sh installs it)");
            guard.1 = Some(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while !pings(SOCKET) {
                assert!(
                    Instant::now() < deadline,
                    "`podman system service --time=0 unix://{SOCKET}` does not answer /_ping"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Self
    }
}

impl Drop for PodmanSocket {
    fn drop(&mut self) {
        let mut guard = SERVICE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0 -= 1;
        if guard.0 == 0
            && let Some(mut child) = guard.1.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One stack at a time, across test processes too (a file lock): Podman 4.3's DNS server
/// (aardvark-dns 1.4) tears its sockets down and up again whenever a container joins any network,
/// so a daemon of one project starting while another project starts can fail to resolve
/// `postgres` (https://github.com/containers/aardvark-dns/issues/389). Users run one project; the tests must not race.
pub struct OneStack {
    _file: std::fs::File,
}

pub fn one_stack_at_a_time() -> OneStack {
    let path = std::env::temp_dir().join("movim-setup-podman-stacks.lock");
    let file = std::fs::File::create(&path).expect("create the stack lock file");
    file.lock().expect("lock the stack lock file");
    OneStack { _file: file }
}

/// Whether the socket answers `GET /_ping` with `OK`.
pub fn pings(socket: &str) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") && answer.ends_with("OK")
}

pub fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// podman-compose of the world.
pub fn podman_compose() -> String {
    let w = world::World::get();
    w.podman_compose
        .as_ref()
        .expect("the world has no podman-compose (world.json); re-run tests/world/provision.sh")
        .display()
        .to_string()
}

/// The flags that point `movim-setup` at Podman (the system socket, unless the environment names
/// another) and podman-compose.
pub fn flags() -> [String; 4] {
    [
        "--engine".to_owned(),
        "podman".to_owned(),
        "--compose".to_owned(),
        podman_compose(),
    ]
}

/// `movim-setup <verb>` on Podman.
pub fn on_podman(verb: &str, dir: &Path) -> Setup {
    Setup::new(verb, dir).args(flags())
}

/// Whether the daemon container `id` lost a name lookup to aardvark-dns 1.4's known race
/// (https://github.com/containers/aardvark-dns/issues/389): its logs say so. A restart it caused is Podman's, not a fault.
pub fn daemon_lost_a_lookup(id: &str) -> bool {
    Command::new("podman")
        .args(["logs", id])
        .output()
        .is_ok_and(|o| {
            let logs = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            logs.contains("Temporary failure in name resolution")
                || logs.contains("could not translate host name")
        })
}
