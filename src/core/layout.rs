//! Which shape a deployment directory has, so every command drives it with the right tool: a
//! compose project (`compose.yaml`, run by a compose tool) or the seed's one-pod layout from
//! `init --target kube` (`kube/podman.yaml`, run by `podman kube play`), and how the containers of
//! each are named back to their services.

use crate::core::deployment::{Deployment, Service};
use crate::core::render;
use crate::core::render::kube::{KUBE_ENV_FILE, PODMAN_FILE};
use crate::core::render::{COMPOSE_FILE, ENV_FILE};
use crate::core::secret::Secret;
use std::collections::BTreeMap;

/// The label every kube-played container carries (Podman copies a pod's labels onto its
/// containers); its value is the project.
pub const KUBE_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// How a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `compose.yaml`, through Docker Compose v2/v1 or podman-compose.
    Compose,
    /// `kube/podman.yaml`, through `podman kube play` (one pod for web, fpm and daemon, one for
    /// PostgreSQL).
    KubePlay,
}

impl Layout {
    /// The layout of a deployment directory from which of its two main files it has: compose
    /// when it has a compose file, kube-played when it has the Podman manifest and no compose
    /// file, `None` when it holds neither (`init` has not written it yet).
    #[must_use]
    pub fn from_files(has_compose_file: bool, has_podman_file: bool) -> Option<Self> {
        match (has_compose_file, has_podman_file) {
            (true, _) => Some(Self::Compose),
            (false, true) => Some(Self::KubePlay),
            (false, false) => None,
        }
    }

    /// Where this layout keeps Movim's `.env`.
    #[must_use]
    pub fn env_file(self) -> &'static str {
        match self {
            Self::Compose => ENV_FILE,
            Self::KubePlay => KUBE_ENV_FILE,
        }
    }

    /// The files of `layout` that say what runs, besides the answers and the lock, rendered for `d`
    /// running `images`: `compose.yaml`; or `kube/podman.yaml` and `kube/movim.yaml` (whose paths are
    /// made absolute against `dir`, where the deployment lives).
    pub fn running_files(
        self,
        d: &Deployment,
        password: &Secret,
        images: &BTreeMap<String, String>,
        dir: &std::path::Path,
    ) -> Result<Vec<(&'static str, render::File)>, String> {
        let (mut files, wanted) = match self {
            Self::Compose => (
                render::files(
                    d,
                    &render::Secrets {
                        db_password: password.clone(),
                    },
                    images,
                    &render::Extras::default(),
                )
                .map_err(|e| format!("cannot render the compose file: {e}"))?,
                vec![COMPOSE_FILE],
            ),
            Self::KubePlay => (
                render::kube::files(d, password, images, dir)
                    .map_err(|e| format!("cannot render the kube manifests: {e}"))?,
                vec![PODMAN_FILE, render::kube::KUBE_FILE],
            ),
        };
        wanted
            .into_iter()
            .map(|name| {
                files
                    .remove(name)
                    .map(|f| (name, f))
                    .ok_or_else(|| format!("the renderer wrote no {name}"))
            })
            .collect()
    }

    /// Every generated file of `layout` `init` writes for `d` (with the answers file), as doctor
    /// compares them with the directory.
    pub fn expected_files(
        self,
        d: &Deployment,
        password: &Secret,
        images: &BTreeMap<String, String>,
        dir: &std::path::Path,
        extras: &render::Extras,
    ) -> Result<BTreeMap<String, render::File>, String> {
        if self == Self::KubePlay {
            // What `init --target kube` writes: both renderings, the env and password files, the
            // answers.
            let mut files = render::kube::files(d, password, images, dir)?;
            files.insert(
                render::ANSWERS_FILE.to_owned(),
                render::File {
                    content: render::answers_yaml(d)?,
                    mode: 0o644,
                    secret: false,
                },
            );
            return Ok(files);
        }
        render::files(
            d,
            &render::Secrets {
                db_password: password.clone(),
            },
            images,
            extras,
        )
    }

    /// The values `init` writes in `layout`'s `movim.env` (the kube pods reach the database by its
    /// pod's Service name).
    #[must_use]
    pub fn env_values(self, d: &Deployment, db_password: &Secret) -> Vec<(&'static str, String)> {
        let mut values = crate::core::envfile::values(d, db_password);
        if self == Self::KubePlay {
            for (k, v) in &mut values {
                if *k == "DB_HOST" {
                    *v = render::kube::db_host(d);
                }
            }
        }
        values
    }

    /// The `init --target` that writes this layout.
    #[must_use]
    pub fn target(self) -> &'static str {
        match self {
            Self::Compose => "compose",
            Self::KubePlay => "kube",
        }
    }

    /// The file that says what runs (what a hand edit or drift is looked for in).
    #[must_use]
    pub fn main_file(self) -> &'static str {
        match self {
            Self::Compose => COMPOSE_FILE,
            Self::KubePlay => PODMAN_FILE,
        }
    }
}

/// The pod `podman kube play` makes for Movim (web, fpm and daemon) in `project`.
#[must_use]
pub fn movim_pod(project: &str) -> String {
    project.to_owned()
}

/// The pod of the bundled PostgreSQL.
#[must_use]
pub fn postgres_pod(project: &str) -> String {
    format!("{project}-postgres")
}

/// The service a kube-played container of `project` runs, from its name: Podman names a pod's
/// containers `<pod>-<container>`, so `movim-web` is web and `movim-postgres-postgres` is the
/// database. `None` for a name of another project or an init container.
#[must_use]
pub fn kube_service(project: &str, container_name: &str) -> Option<Service> {
    let rest = container_name.strip_prefix(project)?.strip_prefix('-')?;
    match rest {
        "postgres-postgres" => Some(Service::Postgres),
        other => Service::from_name(other).filter(|s| Service::MOVIM.contains(s)),
    }
}

/// The container of `service` in a kube-played `project` (the inverse of [`kube_service`]).
#[must_use]
pub fn kube_container(project: &str, service: &str) -> String {
    match service {
        "postgres" => format!("{}-postgres", postgres_pod(project)),
        other => format!("{}-{other}", movim_pod(project)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_played_names_map_to_services_and_back() {
        for service in ["web", "fpm", "daemon", "postgres"] {
            let name = kube_container("movim", service);
            assert_eq!(
                kube_service("movim", &name).map(Service::name),
                Some(service),
                "{name}"
            );
        }
        assert_eq!(
            kube_container("movim", "postgres"),
            "movim-postgres-postgres"
        );
        assert_eq!(kube_service("movim", "movim-migrate"), None);
        assert_eq!(kube_service("movim", "movimx-web"), None);
        assert_eq!(kube_service("movim", "other-web"), None);
        // A project whose name extends another's does not steal its containers.
        assert_eq!(kube_service("movim-2", "movim-web"), None);
    }
}
