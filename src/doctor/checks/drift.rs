//! `drift.*`: the generated files compared with what `init` renders today.

use crate::adapters::store::Dir;
use crate::core::envfile;
use crate::core::lockfile::LOCK_FILE;
use crate::core::render::{self, ANSWERS_FILE, Extras};
use crate::doctor::DIFF_LINES;
use crate::doctor::report::{Area, Finding, line_diff};
use std::collections::BTreeMap;

/// What `init` would write for this deployment today: the pure renderer fed with the saved
/// answers, the password from `movim.env` and the lock; `extras` is the content init copied from
/// files the user named, as the directory holds it.
pub fn expected_files(s: &Dir, extras: &Extras) -> Result<BTreeMap<String, render::File>, String> {
    let d = s
        .deployment
        .as_ref()
        .map_err(|_| format!("{ANSWERS_FILE} is not valid"))?;
    let password = s
        .password()
        .ok_or(format!("{} has no DB_PASSWORD", s.env_file))?;
    let lock = s
        .lock()
        .ok_or(format!("{LOCK_FILE} is missing or not valid"))?;
    s.layout
        .expected_files(d, &password, &lock.images, &s.dir, extras)
}

/// Generated files compared with what `init` renders: a short diff for public files; for files
/// holding secrets, only which keys differ (values of secret keys never shown).
pub fn check_drift(
    s: &Dir,
    expected: &Result<BTreeMap<String, render::File>, String>,
    on_disk: &BTreeMap<String, Option<String>>,
) -> Vec<Finding> {
    let expected = match expected {
        Ok(f) => f,
        Err(why) => {
            return vec![
                Finding::warn(
                    Area::Files,
                    "drift",
                    format!("cannot compare the files with what init writes: {why}"),
                )
                .hint("fix the file errors above, then run: movim-setup doctor"),
            ];
        }
    };
    let fix = format!(
        "if the change was not on purpose, let init write it again (the current file is kept in backups/files/): movim-setup init --dir {}",
        s.dir.display()
    );
    let mut out = Vec::new();
    for (path, file) in expected {
        let Some(on_disk) = on_disk.get(path).cloned().flatten() else {
            out.push(
                Finding::warn(
                    Area::Files,
                    format!("drift.{path}"),
                    format!("{path} is missing (init writes it)"),
                )
                .hint(fix.clone()),
            );
            continue;
        };
        if on_disk == file.content {
            continue;
        }
        let details = if path == s.env_file {
            envfile::env_differences(&on_disk, &file.content)
        } else if file.secret {
            vec!["(this file holds secrets: its content is not shown)".to_owned()]
        } else {
            let mut d = vec![
                format!("--- {path} (on disk)"),
                format!("+++ {path} (what init writes)"),
            ];
            d.extend(line_diff(&on_disk, &file.content, DIFF_LINES));
            d
        };
        out.push(
            Finding::warn(
                Area::Files,
                format!("drift.{path}"),
                format!("{path} differs from what init writes"),
            )
            .details(details)
            .hint(fix.clone()),
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Files,
            "drift",
            format!(
                "the {} generated files are as init writes them",
                expected.len()
            ),
        ));
    }
    out
}
