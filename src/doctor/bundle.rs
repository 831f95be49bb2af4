//! `doctor --bundle`: a tar.gz for a bug report, every secret redacted.

use crate::adapters::fsx;
use crate::adapters::store::Dir;
use crate::core::envfile;
use crate::core::lockfile::LOCK_FILE;
use crate::core::render::ANSWERS_FILE;
use crate::core::secret::scrub;
use crate::doctor::report::Report;
use std::path::Path;

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
    // A private directory (0700) of a random name, never one planted at a name known in advance.
    let staging = tempfile::Builder::new()
        .prefix("movim-doctor-")
        .tempdir_in(crate::adapters::env::temp_dir())
        .context("cannot create a staging directory")?;
    let staging = staging.path();
    let root = staging.join("movim-doctor");
    (|| -> anyhow::Result<()> {
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
        // Packed in the private directory, then put in place readable by its owner only.
        let packed = staging.join("movim-doctor.tar.gz");
        fsx::tar_gz(staging, "movim-doctor", &packed)?;
        let bytes = std::fs::read(&packed).context("cannot read the packed bundle")?;
        fsx::write_atomic(path, &bytes, 0o600)
            .with_context(|| format!("cannot write {}", path.display()))
    })()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
#[allow(clippy::disallowed_methods)] // the test lists the bundle with tar
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_bundle_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bundle.tar.gz");
        let report = Report::new("0.0.0", dir.path().display().to_string());
        let logs = [("web".to_owned(), "a s3cret line".to_owned())];
        write_bundle(&out, &Dir::read(dir.path()), &report, &logs, &["s3cret"]).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let listed = std::process::Command::new("tar")
            .arg("-tzf")
            .arg(&out)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("movim-doctor/logs/web.log"), "{listed}");
    }
}
