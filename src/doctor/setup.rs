//! The deployment directory as doctor reads it: once, every file parsed or why it could not be.

use crate::core::deployment::Deployment;
use crate::core::envfile;
use crate::core::layout::Layout;
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::core::render::kube::{KUBE_ENV_FILE, PODMAN_DB_PASSWORD_FILE};
use crate::core::render::{self, ANSWERS_FILE, ENV_FILE};
use crate::core::secret::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The deployment directory as read once: each file parsed, or why it could not be.
pub struct Setup {
    pub dir: PathBuf,
    pub layout: Layout,
    /// `movim.env`, or `kube/movim.env` beside the kube manifests.
    pub env_file: &'static str,
    pub deployment: Result<Deployment, String>,
    /// `None`: missing.
    pub env_text: Option<String>,
    pub env: Option<Result<BTreeMap<String, String>, String>>,
    pub lock: Option<Result<Lock, String>>,
    /// `compose.yaml`, or `kube/podman.yaml` for a kube-played deployment ([`Layout::main_file`]).
    pub main_text: Option<String>,
}

impl Setup {
    pub fn read(dir: &Path) -> Self {
        let text = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let deployment = match text(ANSWERS_FILE) {
            Some(t) => serde_norway::from_str::<Deployment>(&t).map_err(|e| e.to_string()),
            None => Err(format!("{ANSWERS_FILE} cannot be read")),
        };
        let layout = Layout::detect(dir);
        let env_file = match layout {
            Layout::Compose => ENV_FILE,
            Layout::KubePlay => KUBE_ENV_FILE,
        };
        let env_text = text(env_file);
        let env = env_text.as_deref().map(envfile::parse);
        let lock = text(LOCK_FILE).map(|t| Lock::parse(&t));
        Self {
            dir: dir.to_owned(),
            layout,
            env_file,
            deployment,
            env,
            env_text,
            lock,
            main_text: text(layout.main_file()),
        }
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

    /// Every secret value the directory holds, to scrub from anything printed or bundled.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .env()
            .into_iter()
            .flatten()
            .filter(|(k, _)| envfile::is_secret_key(k))
            .map(|(_, v)| v.clone())
            .collect();
        if let Ok(text) = std::fs::read_to_string(self.dir.join(PODMAN_DB_PASSWORD_FILE))
            && !text.trim().is_empty()
        {
            out.push(text.trim().to_owned());
        }
        if let Ok(text) = std::fs::read_to_string(self.dir.join(render::POSTGRES_ENV_FILE))
            && let Ok(values) = envfile::parse(&text)
        {
            out.extend(
                values
                    .into_iter()
                    .filter(|(k, _)| envfile::is_secret_key(k))
                    .map(|(_, v)| v),
            );
        }
        out
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
