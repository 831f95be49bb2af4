//! Records the commit the binary is built from, so that `movim-setup --version` names it: from
//! `MOVIM_SETUP_COMMIT` when a release build sets it, else from git, else "unknown commit" (a
//! source archive without its history).
#![allow(clippy::disallowed_methods)] // a build script asks git and its environment for the commit; it is no part of the tool's rooms

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=MOVIM_SETUP_COMMIT");
    let commit = std::env::var("MOVIM_SETUP_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=MOVIM_SETUP_COMMIT={commit}");
    // Re-run when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a commit). Only
    // files that exist are named: cargo re-runs on every build for a missing one.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
