//! `doctor --bundle`: a tar.gz for a bug report, every secret redacted.

use crate::adapters::fsx;
use crate::adapters::store::Dir;
use crate::core::envfile;
use crate::core::lockfile::LOCK_FILE;
use crate::core::render::ANSWERS_FILE;
use crate::doctor::report::Report;
use std::path::Path;

pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

/// Writes `movim-doctor/` (report as text and JSON, compose.yaml, movim.env redacted, the answers,
/// the lock, `logs/<container>.log`) as a tar.gz with the system's `tar`.
pub fn write_bundle(
    path: &Path,
    s: &Dir,
    report: &Report,
    logs: &[(String, String)],
    secrets: &[&str],
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let staging = crate::adapters::env::temp_dir()
        .join(format!("movim-doctor-{}-{nanos:x}", std::process::id()));
    let root = staging.join("movim-doctor");
    let result = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(root.join("logs")).context("cannot create a staging directory")?;
        // A kube deployment's files live in `kube/`.
        std::fs::create_dir_all(root.join("kube")).context("cannot create a staging directory")?;
        let put = |name: &str, text: &str| {
            fsx::write_atomic(&root.join(name), scrub(text, secrets).as_bytes(), 0o600)
        };
        put("report.txt", &report.to_text())?;
        put("report.json", &report.to_json())?;
        for name in [s.layout.main_file(), ANSWERS_FILE, LOCK_FILE] {
            if let Ok(text) = std::fs::read_to_string(s.dir.join(name)) {
                put(name, &text)?;
            }
        }
        if let Some(env) = &s.env_text {
            put(s.env_file, &envfile::redacted_env(env))?;
        }
        for (name, text) in logs {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            put(&format!("logs/{safe}.log"), text)?;
        }
        fsx::tar_gz(&staging, "movim-doctor", path)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
