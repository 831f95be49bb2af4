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

    completes_in_bash(&prefix.join("share/bash-completion/completions/movim-setup"));
    renders_with_man(&prefix.join("share/man/man1"));
    for (other, release) in [
        ("share/zsh/site-functions/_movim-setup", "'--release="),
        (
            "share/fish/vendor_completions.d/movim-setup.fish",
            "-l release",
        ),
    ] {
        let text = std::fs::read_to_string(prefix.join(other)).expect(other);
        assert!(text.contains(release), "{other}");
    }

    let upper = sum.to_ascii_uppercase();
    let second = install(&["--archive", &a, "--sha256", &upper, "--prefix", &p]);
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already installed"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
}

/// The installed bash completion script loads in bash and completes commands and init's flags.
fn completes_in_bash(script: &std::path::Path) {
    let complete = |words: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _movim__setup movim-setup \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let commands = complete("movim-setup ini");
    assert_eq!(commands.trim(), "init", "{commands}");
    let flags = complete("movim-setup init --rel");
    assert_eq!(flags.trim(), "--release", "{flags}");
    let shells = complete("movim-setup completions f");
    assert_eq!(shells.trim(), "fish", "{shells}");
}

/// The installed man pages render with `man -l`, each command's with its options.
fn renders_with_man(man1: &std::path::Path) {
    for (page, wanted) in [
        ("movim-setup.1", "upgrade"),
        ("movim-setup-init.1", "External database host"),
        ("movim-setup-upgrade.1", "--dry-run"),
    ] {
        let out = Command::new("man")
            .arg("-l")
            .arg(man1.join(page))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(wanted), "{page} lacks {wanted}:\n{text}");
    }
}

#[test]
fn a_missing_value_or_archive_is_told_plainly_and_installs_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("prefix");
    let p = prefix.to_string_lossy();
    let out = install(&[
        "--archive",
        "/nonexistent.tar.gz",
        "--sha256",
        "ab",
        "--prefix",
        &p,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.tar.gz: no such file"), "{err}");
    assert!(
        !prefix.exists(),
        "nothing is created before the input is checked"
    );
    for args in [&["--prefix"][..], &["--prefix", "--run"], &["--archive"]] {
        let out = install(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs a value"), "{args:?}: {err}");
    }
}
