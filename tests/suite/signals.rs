//! The compiled binary sent real signals, at a test-only pause point before anything is read or
//! changed (`MOVIM_SETUP_PAUSE_AT=start`): SIGINT and SIGTERM end it with 130 and 143 and nothing
//! written; SIGHUP (an SSH connection dropping) does not end it. No engine, no containers.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `movim-setup upgrade --yes --dir <dir>`, paused at its start: returns once it says so.
fn paused_upgrade(dir: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    crate::support::cli::require_test_hooks();
    let mut child = Command::new(env!("CARGO_BIN_EXE_movim-setup"))
        .args(["upgrade", "--yes", "--dir"])
        .arg(dir)
        .env("MOVIM_SETUP_PAUSE_AT", "start")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let paused = received
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the binary never paused: {e}"));
    assert!(paused.starts_with("pause start"), "{paused}");
    (child, received)
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
}

/// The exit status, waiting at most 20 s.
fn exit_of(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            return status;
        }
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupted_before_anything_changed(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut child, lines) = paused_upgrade(dir.path());

    send(&child, signal);

    let status = exit_of(&mut child);
    assert_eq!(status.code(), Some(code), "{status:?}");
    let said: Vec<String> = lines.iter().collect();
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("interrupted by SIG{signal}"))),
        "{said:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .collect();
    assert!(left.is_empty(), "written: {left:?}");
}

#[test]
fn sigint_before_anything_changed_exits_130_and_writes_nothing() {
    interrupted_before_anything_changed("INT", 130);
}

#[test]
fn sigterm_before_anything_changed_exits_143_and_writes_nothing() {
    interrupted_before_anything_changed("TERM", 143);
}

#[test]
fn sighup_is_ignored_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut child, lines) = paused_upgrade(dir.path());

    send(&child, "HUP");

    // The run goes on past the pause, to what upgrade says of an empty directory (exit 2).
    let status = exit_of(&mut child);
    assert_eq!(status.code(), Some(2), "{status:?}");
    let said: Vec<String> = lines.iter().collect();
    assert!(
        said.iter().any(|l| l.contains("holds no deployment")),
        "{said:?}"
    );
}
