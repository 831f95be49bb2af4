//! What runs a deployment's containers: its compose tool, or `podman kube play` for one written
//! by `init --target kube`. The rest of the tool asks a [`Runner`] to start, stop and run
//! one-shots, and never branches on which one it is.

pub mod compose;
pub mod kube_play;

use crate::core::layout::{self, Layout};
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::error::Failure;
use compose::ComposeTool;
use kube_play::KubePlay;
use std::path::Path;

/// What runs the deployment's containers: its compose tool, or `podman kube play`.
pub enum Runner {
    Compose(ComposeTool),
    KubePlay(KubePlay),
}

impl Runner {
    #[must_use]
    pub fn layout(&self) -> Layout {
        match self {
            Self::Compose(_) => Layout::Compose,
            Self::KubePlay(_) => Layout::KubePlay,
        }
    }

    /// The compose tool, for what only a compose deployment does (`init`).
    pub fn compose(&self) -> Result<&ComposeTool, Failure> {
        match self {
            Self::Compose(c) => Ok(c),
            Self::KubePlay(_) => Err(Failure::new(
                "this step needs a compose deployment, and this one is kube-played",
            )),
        }
    }

    /// The command that shows a service's logs, as the user types it.
    #[must_use]
    pub fn logs_command(&self, project: &str, service: &str) -> String {
        match self {
            Self::Compose(c) => format!("{} -p {project} logs {service}", c.display_command()),
            Self::KubePlay(k) => format!(
                "{} logs {}",
                k.display_command(),
                layout::kube_container(project, service)
            ),
        }
    }

    /// Creates or starts `services` of the deployment in `dir`. A kube-played deployment starts
    /// as pods: the database's pod is started again, and Movim's pod (web, fpm and daemon at once)
    /// is played anew from `kube/podman.yaml`.
    pub async fn up(&self, dir: &Path, project: &str, services: &[&str]) -> anyhow::Result<()> {
        match self {
            Self::Compose(c) => c.up(dir, project, services).await,
            Self::KubePlay(k) if services == ["postgres"] => k.start_postgres(project).await,
            Self::KubePlay(k) => k.play(dir, project).await,
        }
    }

    /// Runs `php args…` once in a fresh container of the daemon image the deployment in `dir`
    /// names now (compose: its `daemon` service; kube: the lock's pin), with the deployment's
    /// configuration; the exit code and the interleaved output.
    pub async fn daemon_php(
        &self,
        dir: &Path,
        project: &str,
        args: &[&str],
    ) -> anyhow::Result<(i32, String)> {
        match self {
            Self::Compose(c) => {
                c.run_oneshot(dir, project, "daemon", Some("php"), args)
                    .await
            }
            Self::KubePlay(k) => {
                let text = std::fs::read_to_string(dir.join(LOCK_FILE))?;
                let lock = Lock::parse(&text).map_err(anyhow::Error::msg)?;
                let image = lock
                    .images
                    .get("daemon")
                    .ok_or_else(|| anyhow::anyhow!("{LOCK_FILE} pins no daemon image"))?;
                k.movim_oneshot(dir, project, image, "php", args).await
            }
        }
    }
}
