//! What `init` would change in the deployment directory, file by file, and the review before an
//! existing deployment changes: the diffs (secrets masked) and, on a terminal, the question.

use crate::context::Context;
use crate::core::diff;
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::core::render;
use crate::error::Failure;
use std::collections::BTreeMap;
use std::path::Path;

/// A file that `init` would create or change, with what changes in it (secrets masked).
pub(super) struct Change {
    path: String,
    created: bool,
    secret: bool,
    diff: Vec<String>,
}

/// How many diff lines a changed file shows before writing.
const REVIEW_LINES: usize = 40;

pub(super) fn changes(
    dir: &Path,
    files: &BTreeMap<String, render::File>,
    lock: &Lock,
    env_file: &str,
) -> Result<Vec<Change>, Failure> {
    let lock_text = lock
        .to_yaml()
        .map_err(|e| Failure::new("cannot render the lock").detail(e))?;
    let mut out = Vec::new();
    let all = files
        .iter()
        .map(|(p, f)| (p.as_str(), f.content.as_str(), f.secret))
        .chain(std::iter::once((LOCK_FILE, lock_text.as_str(), false)));
    for (path, content, secret) in all {
        let (created, diff) = match std::fs::read_to_string(dir.join(path)) {
            Ok(old) if old == content => continue,
            Ok(old) => (
                false,
                diff::file_change(path, &old, content, path == env_file, secret, REVIEW_LINES),
            ),
            Err(_) => (true, Vec::new()),
        };
        out.push(Change {
            path: path.to_owned(),
            created,
            secret,
            diff,
        });
    }
    Ok(out)
}

pub(super) fn print_changes(ctx: &Context, changes: &[Change]) {
    if changes.is_empty() {
        ctx.ui.step("no file would change");
        return;
    }
    ctx.ui
        .step(&format!("files to write in {}", ctx.dir.display()));
    for c in changes {
        let what = if c.created {
            "create"
        } else {
            "update (old copy kept in backups/files/)"
        };
        let secret = if c.secret { " [holds secrets]" } else { "" };
        ctx.ui.info(&format!("{what}: {}{secret}", c.path));
        for line in &c.diff {
            ctx.ui.info(&format!("    {line}"));
        }
    }
}

/// Before an existing deployment changes: the changes, and on a terminal the question whether to
/// write them (unattended runs go on, as `--yes` says). `false` when the user declined.
pub(super) fn review(ctx: &Context, changes: &[Change], existing: bool) -> Result<bool, Failure> {
    if !existing || changes.is_empty() {
        return Ok(true);
    }
    print_changes(ctx, changes);
    if !ctx.prompter.interactive() {
        return Ok(true);
    }
    let yes = ctx.prompter.confirm(
        "Write these changes to the running deployment (the old copies are kept)?",
        false,
    )?;
    if !yes {
        ctx.ui
            .step("not confirmed: nothing was written, pulled or restarted");
    }
    Ok(yes)
}
