//! The containers of a deployment as the engine reports them, reduced to what the commands and
//! doctor look at, and the one rule that says which container is a service's.

use crate::core::deployment::{Database, Deployment};
use crate::core::image_ref::ImageRef;
use std::fmt;
use std::net::IpAddr;

/// A container's state, reduced to what the commands and doctor look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    /// The compose service (`com.docker.compose.service`).
    pub service: Option<String>,
    /// The directory compose ran in when it created the container
    /// (`com.docker.compose.project.working_dir`): whose deployment the container is.
    pub working_dir: Option<String>,
    /// The image as the container was created with it (`registry/repo@sha256:…`).
    pub image: String,
    pub running: bool,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead`, …
    pub status: String,
    /// Set once the container has stopped.
    pub exit_code: Option<i64>,
    /// `healthy`, `unhealthy` or `starting`; `None` without a healthcheck.
    pub health: Option<String>,
    pub restart_count: i64,
    pub oom_killed: bool,
    /// RFC 3339, as the engine reports it; `None` if it never started.
    pub started_at: Option<String>,
    pub mounts: Vec<MountInfo>,
    /// Address on each network the container is attached to.
    pub ips: Vec<(String, IpAddr)>,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub destination: String,
    /// Host path (bind mounts) or the volume's path on the host.
    pub source: String,
    /// Set for named volumes.
    pub volume_name: Option<String>,
    pub read_write: bool,
}

impl ContainerInfo {
    /// Whether the container was created from `pinned` (`repo:tag@sha256:…`). Podman records
    /// such a reference without its tag (`repo@sha256:…`), which names the same image.
    #[must_use]
    pub fn runs_image(&self, pinned: &str) -> bool {
        if self.image == pinned {
            return true;
        }
        match (ImageRef::parse(&self.image), ImageRef::parse(pinned)) {
            (Ok(running), Ok(pinned)) => {
                running.digest.is_some()
                    && running.digest == pinned.digest
                    && running.registry == pinned.registry
                    && running.repository == pinned.repository
            }
            _ => false,
        }
    }

    /// `container movim-daemon-1 (service daemon)`
    pub fn describe(&self) -> String {
        match &self.service {
            Some(service) => format!("container {} (service {service})", self.name),
            None => format!("container {}", self.name),
        }
    }
}

/// The container of `service` among a project's: a running one first and, between equals, the
/// service's own before a one-off (`compose run`, named `…-run-…`), so that a leftover one-off
/// or a stopped old container listed first is not taken for the service.
#[must_use]
pub fn container_of<'a>(all: &'a [ContainerInfo], service: &str) -> Option<&'a ContainerInfo> {
    let mut of: Vec<&ContainerInfo> = all
        .iter()
        .filter(|c| c.service.as_deref() == Some(service))
        .collect();
    of.sort_by_key(|c| (!c.running, c.name.contains("-run-")));
    of.first().copied()
}

/// The first of a project's containers that compose created for another directory than `dir`
/// (both absolute): the project name is taken by another deployment. Containers without the
/// label (created by hand, or by a tool that does not record it) say nothing.
#[must_use]
pub fn owned_elsewhere<'a>(
    all: &'a [ContainerInfo],
    dir: &std::path::Path,
) -> Option<&'a ContainerInfo> {
    all.iter().find(|c| {
        c.working_dir
            .as_deref()
            .is_some_and(|w| std::path::Path::new(w) != dir)
    })
}

/// Why this tool cannot reach the bundled database's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDbAddress {
    NoContainer,
    NotRunning { name: String, status: String },
    NoAddress,
}

impl fmt::Display for NoDbAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoContainer => f.write_str("the postgres container does not exist"),
            Self::NotRunning { name, status } => {
                write!(f, "the postgres container ({name}) is {status}")
            }
            Self::NoAddress => f.write_str("the postgres container has no network address"),
        }
    }
}

/// The host this tool reaches the database at: the bundled postgres container's address (it
/// publishes no port), or the external server's host.
pub fn db_host(all: &[ContainerInfo], d: &Deployment) -> Result<String, NoDbAddress> {
    if d.database != Database::Bundled {
        return Ok(d.database.endpoint().host.to_owned());
    }
    let c = container_of(all, "postgres").ok_or(NoDbAddress::NoContainer)?;
    if !c.running {
        return Err(NoDbAddress::NotRunning {
            name: c.name.clone(),
            status: c.status.clone(),
        });
    }
    c.ips
        .first()
        .map(|(_, ip)| ip.to_string())
        .ok_or(NoDbAddress::NoAddress)
}

/// The bundled postgres container's id (`None` for an external database): where the database can
/// also be reached from inside, when its address cannot be reached from here.
#[must_use]
pub fn db_container(all: &[ContainerInfo], d: &Deployment) -> Option<String> {
    (d.database == Database::Bundled)
        .then(|| container_of(all, "postgres").map(|c| c.id.clone()))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, service: &str, running: bool) -> ContainerInfo {
        ContainerInfo {
            id: name.to_owned(),
            name: name.to_owned(),
            service: Some(service.to_owned()),
            working_dir: None,
            image: String::new(),
            running,
            status: if running { "running" } else { "exited" }.to_owned(),
            exit_code: None,
            health: None,
            restart_count: 0,
            oom_killed: false,
            started_at: None,
            mounts: Vec::new(),
            ips: Vec::new(),
        }
    }

    #[test]
    fn a_project_created_in_another_directory_belongs_elsewhere() {
        let mut ours = container("movim-web-1", "web", true);
        ours.working_dir = Some("/srv/movim".to_owned());
        let unlabelled = container("movim-fpm-1", "fpm", true);
        let mut theirs = container("movim-postgres-1", "postgres", true);
        theirs.working_dir = Some("/home/other/movim".to_owned());
        let dir = std::path::Path::new("/srv/movim");
        assert!(owned_elsewhere(&[ours.clone(), unlabelled.clone()], dir).is_none());
        let all = [ours, unlabelled, theirs];
        let found = owned_elsewhere(&all, dir).map(|c| c.name.as_str());
        assert_eq!(found, Some("movim-postgres-1"));
    }

    #[test]
    fn a_service_is_its_running_container_never_a_leftover_one_off() {
        // As the engine lists them: sorted by service, then name.
        let all = [
            container("movim-daemon-1", "daemon", false),
            container("movim-daemon-run-3f2a", "daemon", true),
            container("movim-postgres-1", "postgres", true),
            container("movim-postgres-run-77aa", "postgres", false),
        ];
        let of = |s| container_of(&all, s).map(|c| c.name.as_str());
        // A stopped service still is its own container, not a running one-off beside it...
        assert_eq!(of("postgres"), Some("movim-postgres-1"));
        // ...and a running container wins over a stopped one.
        assert_eq!(of("daemon"), Some("movim-daemon-run-3f2a"));
        let stopped_first = [
            container("movim-postgres-0ld", "postgres", false),
            container("movim-postgres-1", "postgres", true),
        ];
        assert_eq!(
            container_of(&stopped_first, "postgres").map(|c| c.name.as_str()),
            Some("movim-postgres-1")
        );
        assert!(container_of(&all, "web").is_none());
    }
}
