//! The adapters: the only code that touches the world — the container engine, the registry, the
//! database, the compose tool and `podman kube play`, health probes over the network, files on
//! disk, processes, and the terminal.

pub mod backup;
pub mod clock;
pub mod database;
pub mod db;
pub mod engine;
pub mod env;
pub mod fsx;
pub mod health;
pub mod journal;
pub mod psql;
pub mod registry;
pub mod run_lock;
pub mod runner;
pub mod signals;
pub mod store;
pub mod subprocess;
pub mod ui;

use crate::adapters::database::DbClient;
use crate::adapters::engine::ContainerEngine;
use crate::adapters::health::WebProbe;
use crate::adapters::runner::{Commands, Runner};
use std::path::PathBuf;

/// The engine and what runs the deployment on it, found once per command.
pub struct Tools {
    pub engine: Box<dyn ContainerEngine>,
    pub runner: Box<dyn Runner>,
    pub db: Box<dyn DbClient>,
    pub web: Box<dyn WebProbe>,
    /// The deployment directory the runner's commands name.
    pub dir: PathBuf,
}

impl Tools {
    /// The commands of the deployment `project`, as its runner runs them.
    #[must_use]
    pub fn commands(&self, project: &str) -> Commands {
        self.runner.commands(&self.dir, project)
    }
}
