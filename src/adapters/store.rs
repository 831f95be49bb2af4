//! The deployment directory, read once: every file `init` writes, parsed, or why it could not
//! be. `doctor` looks at it as it is (a broken file is a finding); `init`, `upgrade` and
//! `rollback` take the strict view ([`Dir::saved`]): a file may be missing, never broken.
//! Also which layout the directory holds, from the files it has.

use crate::core::deployment::Deployment;
use crate::core::envfile;
use crate::core::layout::Layout;
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::core::render::kube::KUBE_ENV_FILE;
use crate::core::render::kube::PODMAN_FILE;
use crate::core::render::{self, COMPOSE_FILE};
use crate::core::render::{ANSWERS_FILE, ENV_FILE};
use crate::core::secret::Secret;
use crate::error::Failure;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The deployment directory as read once: each file parsed, or why it could not be.
#[derive(Debug)]
pub struct Dir {
    pub dir: PathBuf,
    pub layout: Layout,
    /// `movim.env`, or `kube/movim.env` beside the kube manifests.
    pub env_file: &'static str,
    pub deployment: Result<Deployment, String>,
    answers_missing: bool,
    /// `None`: missing.
    pub env_text: Option<String>,
    pub env: Option<Result<BTreeMap<String, String>, String>>,
    pub lock: Option<Result<Lock, String>>,
    /// `compose.yaml`, or `kube/podman.yaml` for a kube-played deployment ([`Layout::main_file`]).
    pub main_text: Option<String>,
    /// Files that exist but could not be read, in reading order.
    unreadable: Vec<(&'static str, std::io::Error)>,
}

impl Dir {
    pub fn read(dir: &Path) -> Self {
        let mut unreadable = Vec::new();
        let mut text = |name: &'static str| match std::fs::read_to_string(dir.join(name)) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                unreadable.push((name, e));
                None
            }
        };
        let answers = text(ANSWERS_FILE);
        let answers_missing = answers.is_none();
        let deployment = match answers {
            Some(t) => yaml_serde::from_str::<Deployment>(&t).map_err(|e| e.to_string()),
            None => Err(format!("{ANSWERS_FILE} cannot be read")),
        };
        let held = layout_held(dir);
        let layout = held.unwrap_or(Layout::Compose);
        // A directory that holds no layout yet may hold the env file of either (a first run).
        let env_file = match held {
            Some(l) => l.env_file(),
            None if !dir.join(ENV_FILE).exists() && dir.join(KUBE_ENV_FILE).exists() => {
                KUBE_ENV_FILE
            }
            None => ENV_FILE,
        };
        let env_text = text(env_file);
        let env = env_text.as_deref().map(envfile::parse);
        let lock = text(LOCK_FILE).map(|t| Lock::parse(&t));
        let main_text = text(layout.main_file());
        Self {
            dir: dir.to_owned(),
            layout,
            env_file,
            deployment,
            answers_missing,
            env,
            env_text,
            lock,
            main_text,
            unreadable,
        }
    }

    /// The strict view: each file present and valid, or missing (a first run); a file that is
    /// there and cannot be read or parsed stops the command, naming it and the way out.
    pub fn saved(self) -> Result<Saved, Failure> {
        let dir = &self.dir;
        let broken = |name: &str, why: String| {
            Failure::usage(format!("{} is not valid", dir.join(name).display()))
                .detail(why)
                .next(format!(
                    "restore it from {}/backups/files/ or remove it and re-run movim-setup init",
                    dir.display()
                ))
        };
        let unreadable = |name: &str| {
            self.unreadable
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, e)| {
                    Failure::new(format!("cannot read {}", dir.join(n).display()))
                        .because(std::io::Error::new(e.kind(), e.to_string()))
                })
        };
        if let Some(f) = unreadable(ANSWERS_FILE) {
            return Err(f);
        }
        let deployment = match self.deployment {
            Ok(d) => Some(d),
            Err(_) if self.answers_missing => None,
            Err(why) => return Err(broken(ANSWERS_FILE, why)),
        };
        if let Some(f) = unreadable(self.env_file) {
            return Err(f);
        }
        let env = self
            .env
            .map(|e| e.map_err(|why| broken(self.env_file, why)))
            .transpose()?;
        if let Some(f) = unreadable(LOCK_FILE) {
            return Err(f);
        }
        let lock = self
            .lock
            .map(|l| l.map_err(|why| broken(LOCK_FILE, why)))
            .transpose()?;
        let reading = deployment.as_ref().map(|d| {
            let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            render::reading_copies(d, &abs, |name| dir.join(name).is_file())
        });
        Ok(Saved {
            deployment: reading,
            recorded: deployment,
            env,
            lock,
        })
    }

    pub fn env(&self) -> Option<&BTreeMap<String, String>> {
        self.env.as_ref().and_then(|e| e.as_ref().ok())
    }

    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref().and_then(|l| l.as_ref().ok())
    }

    pub fn password(&self) -> Option<Secret> {
        self.env()
            .and_then(|e| e.get("DB_PASSWORD"))
            .map(|p| Secret::new(p.clone()))
    }

    /// Every secret value the directory holds: `movim.env`'s secret keys, the kube password file,
    /// `postgres.env`'s secrets — what no output may show.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        let mut out = self.secret_env_values();
        if let Ok(text) =
            std::fs::read_to_string(self.dir.join(render::kube::PODMAN_DB_PASSWORD_FILE))
            && !text.trim().is_empty()
        {
            out.push(text.trim().to_owned());
        }
        if let Ok(text) = std::fs::read_to_string(self.dir.join(render::POSTGRES_ENV_FILE)) {
            out.extend(envfile::secret_values(&text));
        }
        out
    }

    /// The values of `movim.env`'s secret keys.
    #[must_use]
    pub fn secret_env_values(&self) -> Vec<String> {
        self.env()
            .into_iter()
            .flatten()
            .filter(|(k, _)| envfile::is_secret_key(k))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// What a deployment directory holds today, each part valid (any part may be missing on a first
/// run): the strict view of [`Dir`].
#[derive(Debug, Default)]
pub struct Saved {
    /// The answers, each file the user once named read from the directory's copy of it
    /// ([`render::reading_copies`]): what a later run uses.
    pub deployment: Option<Deployment>,
    /// The answers as `movim-setup.yaml` records them (the paths the user named).
    pub recorded: Option<Deployment>,
    pub env: Option<BTreeMap<String, String>>,
    pub lock: Option<Lock>,
}

impl Saved {
    /// The directory's files, or the failure that names the broken one.
    pub fn load(dir: &Path) -> Result<Self, Failure> {
        Dir::read(dir).saved()
    }

    /// The secrets kept from a previous run.
    #[must_use]
    pub fn db_password(&self) -> Option<Secret> {
        self.env
            .as_ref()
            .and_then(|e| e.get("DB_PASSWORD"))
            .map(|p| Secret::new(p.clone()))
    }
}

/// The layout the deployment in `dir` holds ([`Layout::from_files`]), `None` before `init`.
#[must_use]
pub fn layout_held(dir: &Path) -> Option<Layout> {
    Layout::from_files(
        dir.join(COMPOSE_FILE).exists(),
        dir.join(PODMAN_FILE).exists(),
    )
}

/// [`layout_held`], with compose for a directory that holds neither.
#[must_use]
pub fn layout(dir: &Path) -> Layout {
    layout_held(dir).unwrap_or(Layout::Compose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_the_podman_manifest_and_no_compose_file_is_kube_played() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout_held(tmp.path()), None);
        assert_eq!(layout(tmp.path()), Layout::Compose);
        std::fs::create_dir_all(tmp.path().join("kube")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join(PODMAN_FILE), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout(tmp.path()), Layout::KubePlay);
        std::fs::write(tmp.path().join(COMPOSE_FILE), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout(tmp.path()), Layout::Compose);
    }

    #[test]
    fn the_strict_view_takes_missing_files_and_names_a_broken_one() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let saved = Saved::load(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(saved.deployment.is_none() && saved.env.is_none() && saved.lock.is_none());
        std::fs::write(tmp.path().join(LOCK_FILE), "movim: [").unwrap_or_else(|e| panic!("{e}"));
        let f = Saved::load(tmp.path()).expect_err("a broken lock");
        assert!(f.what.ends_with("movim-setup.lock is not valid"), "{f}");
        let doctor = Dir::read(tmp.path());
        assert!(matches!(doctor.lock, Some(Err(_))));
    }
}
