//! The exact commands doctor's fixes end with: the deployment runner's own [`Commands`], so that
//! a fix names the argv the tool itself would run, on either runner.

use crate::adapters::runner::compose::ComposeTool;
use crate::adapters::runner::{self, Commands};
use crate::adapters::store::Dir;

/// The commands fixes end with, built once for the deployment doctor looks at.
pub struct Hints {
    commands: Commands,
    /// The deployment directory, as `movim-setup … --dir` names it.
    pub dir: String,
}

impl Hints {
    /// The commands of `setup`'s runner: the compose tool found (Docker Compose v2 when none
    /// answered), or `podman` at the engine's `endpoint` for a kube-played deployment.
    #[must_use]
    pub fn new(setup: &Dir, tool: Option<&ComposeTool>, endpoint: Option<&str>) -> Self {
        let project = setup
            .deployment
            .as_ref()
            .map_or_else(|_| "PROJECT".to_owned(), |d| d.project.clone());
        let commands = runner::commands_of(setup.layout, tool, endpoint, &setup.dir, &project);
        Self {
            commands,
            dir: setup.dir.display().to_string(),
        }
    }

    pub fn logs(&self, service: &str) -> String {
        self.commands.logs(service)
    }

    /// A command run in the service's running container.
    pub fn exec(&self, service: &str, command: &str) -> String {
        self.commands.exec(service, command)
    }

    /// Starts a stopped container of `service`.
    pub fn start(&self, service: &str) -> String {
        self.commands.start(service)
    }

    /// Recreates `services` (space-separated) from the deployment's file (kube: both pods, played
    /// anew; their init containers hand the volumes to uid 82 and run the migrations first).
    pub fn recreate(&self, services: &str) -> String {
        self.commands
            .apply(&services.split_whitespace().collect::<Vec<_>>())
    }

    /// Restarts what reads movim.env.
    pub fn restart(&self, services: &str) -> String {
        self.commands
            .restart(&services.split_whitespace().collect::<Vec<_>>())
    }

    /// Hands `service`'s shared directories to uid 82.
    pub fn chown(&self, service: &str) -> String {
        self.commands.chown(service)
    }

    /// Starts the whole stack in order, migrations first.
    pub fn start_stack(&self) -> String {
        self.commands.start_stack.clone()
    }

    /// Applies pending migrations and starts the daemon again.
    pub fn migrate(&self) -> String {
        self.commands.migrate.clone()
    }

    /// Lists the deployment's containers (or pods).
    pub fn list(&self) -> String {
        self.commands.list.clone()
    }
}
