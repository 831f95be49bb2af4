//! `install.sh`: installs from a release archive only when its SHA-256 matches, and is idempotent.

use std::process::Command;

fn install(args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .args(args)
        .output()
        .expect("sh runs")
}

#[test]
fn installs_a_verified_archive_once_and_refuses_a_wrong_checksum() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stage = tmp.path().join("stage");
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_movim-setup"), stage.join("movim-setup")).expect("copy");
    let archive = tmp.path().join("movim-setup.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&stage)
        .arg("movim-setup")
        .status()
        .expect("tar");
    assert!(tar.success());
    let sum = Command::new("sha256sum")
        .arg(&archive)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .expect("sum")
        .to_owned();
    let prefix = tmp.path().join("prefix");
    let (a, p) = (archive.to_string_lossy(), prefix.to_string_lossy());

    let wrong = install(&["--archive", &a, "--sha256", &"0".repeat(64), "--prefix", &p]);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not installing"));
    assert!(!prefix.join("bin/movim-setup").exists());

    let first = install(&["--archive", &a, "--sha256", &sum, "--prefix", &p]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("installed"));
    let version = Command::new(prefix.join("bin/movim-setup"))
        .arg("--version")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("movim-setup "));

    let second = install(&["--archive", &a, "--sha256", &sum, "--prefix", &p]);
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already installed"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
}
