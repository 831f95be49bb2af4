//! The exact commands doctor's fixes end with, in the words of the deployment's runner.

use crate::adapters::runner::compose::ComposeTool;
use crate::adapters::store::Dir;
use crate::core::layout;
use crate::core::layout::Layout;
use crate::core::render::COMPOSE_FILE;
use crate::core::render::kube::PODMAN_FILE;

/// The exact commands hints end with, built once, in the words of the deployment's runner.
pub struct Hints {
    /// `docker compose -f /srv/movim/compose.yaml -p movim`; for kube, `podman`.
    pub compose: String,
    /// `movim-setup init --dir /srv/movim`
    pub init: String,
    pub dir: String,
    pub project: String,
    /// `podman kube play --replace --network movim /srv/movim/kube/podman.yaml` for a
    /// kube-played deployment; `None` for compose.
    pub play: Option<String>,
}

impl Hints {
    pub fn new(setup: &Dir, tool: Option<&ComposeTool>) -> Self {
        let dir = setup.dir.display().to_string();
        let project = setup
            .deployment
            .as_ref()
            .map_or_else(|_| "PROJECT".to_owned(), |d| d.project.clone());
        let init = format!("movim-setup init --dir {dir}");
        if setup.layout == Layout::KubePlay {
            return Self {
                compose: "podman".to_owned(),
                init,
                play: Some(format!(
                    "podman kube play --replace --network {project} {}",
                    setup.path(PODMAN_FILE)
                )),
                dir,
                project,
            };
        }
        let program =
            tool.map_or_else(|| "docker compose".to_owned(), ComposeTool::display_command);
        Self {
            compose: format!("{program} -f {} -p {project}", setup.path(COMPOSE_FILE)),
            init,
            dir,
            project,
            play: None,
        }
    }

    /// `podman … <project>-<service>` or `<compose> … <service>`: what names a service.
    pub fn target(&self, service: &str) -> String {
        match self.play {
            Some(_) => layout::kube_container(&self.project, service),
            None => service.to_owned(),
        }
    }

    pub fn logs(&self, service: &str) -> String {
        format!("{} logs --tail 50 {}", self.compose, self.target(service))
    }

    /// A command run in the service's running container.
    pub fn exec(&self, service: &str, command: &str) -> String {
        format!("{} exec {} {command}", self.compose, self.target(service))
    }

    /// Starts a stopped container of `service`.
    pub fn start(&self, service: &str) -> String {
        match self.play {
            Some(_) => format!("podman start {}", self.target(service)),
            None => format!("{} up -d {service}", self.compose),
        }
    }

    /// Recreates `services` from the deployment's file (kube: both pods, played anew; their
    /// init containers hand the volumes to uid 82 and run the migrations first).
    pub fn recreate(&self, services: &str) -> String {
        match &self.play {
            Some(play) => play.clone(),
            None => format!("{} up -d --force-recreate {services}", self.compose),
        }
    }

    /// Restarts what reads movim.env.
    pub fn restart(&self, services: &str) -> String {
        match &self.play {
            Some(play) => play.clone(),
            None => format!("{} restart {services}", self.compose),
        }
    }

    /// Starts the whole stack in order, migrations first.
    pub fn start_stack(&self) -> String {
        match &self.play {
            Some(play) => format!(
                "podman network exists {p} || podman network create {p}; {play}   (then check: podman pod ps)",
                p = self.project
            ),
            None => self.init.clone(),
        }
    }

    pub fn migrate(&self) -> String {
        match &self.play {
            // The pod's init container `migrate` runs at every start of the pod.
            Some(play) => format!(
                "{play}   (its init container `migrate` applies them before the daemon starts)"
            ),
            None => format!(
                "{} run --rm --no-deps -T --entrypoint php daemon vendor/bin/phinx migrate && {} restart daemon",
                self.compose, self.compose
            ),
        }
    }
}
