//! The adapters: the only code that touches the world — the container engine, the registry, the
//! database, the compose tool and `podman kube play`, health probes over the network, files on
//! disk, processes, and the terminal.

pub mod backup;
pub mod clock;
pub mod database;
pub mod db;
pub mod engine;
pub mod fsx;
pub mod health;
pub mod journal;
pub mod registry;
pub mod run_lock;
pub mod runner;
pub mod store;
pub mod subprocess;
pub mod ui;
