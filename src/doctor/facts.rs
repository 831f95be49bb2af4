//! Everything doctor looks at, as data: the directory, the host, the engine and the compose tool,
//! each container, what runs inside them, the database, web, DNS and TLS. `gather` reads them
//! (doctor's only I/O); the checks (`checks/`) judge them without touching anything, so each
//! finding can be tested on facts made by hand.

use crate::adapters::db::DbFacts;
use crate::adapters::engine::EngineKind;
use crate::adapters::health::{Handshake, Infos, TlsFailure};
use crate::adapters::runner::compose::ComposeTool;
use crate::adapters::store::Dir;
use crate::core::containers::ContainerInfo;
use crate::core::journal::Journal;
use crate::core::render;
use crate::core::trust::Untrusted;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

/// What running something answered: its exit code and output, an error, or no answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran(i64, String),
    Failed(String),
    TimedOut,
}

/// A file's mode and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub mode: u32,
    /// Owner and group as the containers see them (through a rootless engine's user namespace).
    pub uid: u32,
    pub gid: u32,
    /// The group is no host user's: a subordinate id of a rootless engine's user namespace.
    pub group_private: bool,
}

/// An interrupted run's journal, as found.
#[derive(Debug, Clone)]
pub struct LeftJournal {
    /// How long ago it was last written.
    pub age: Option<Duration>,
    /// The journal, or why it cannot be read.
    pub journal: Result<Journal, String>,
}

/// The engine as it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub kind: EngineKind,
    pub version: String,
    pub api_version: String,
    pub endpoint: String,
}

/// The compose tool as it answered.
#[derive(Debug, Clone)]
pub struct ComposeInfo {
    /// `docker compose (Compose v2 plugin) 2.40.3`.
    pub describe: String,
    /// `docker compose`, as the user types it.
    pub display: String,
    /// The `config` command doctor ran.
    pub config_command: String,
    pub tool: ComposeTool,
}

/// What web answered, reached at `addr`.
#[derive(Debug)]
pub struct WebFacts {
    pub addr: SocketAddr,
    /// Whether the daemon runs (a failed handshake then says why).
    pub daemon_running: bool,
    pub handshake: anyhow::Result<Handshake>,
    pub infos: anyhow::Result<Infos>,
    /// Whether the public name resolves from here.
    pub resolves: bool,
    /// `https://<domain>/infos`, when the name resolves: the HTTP status, or the error chain;
    /// and how it was reached.
    pub tls: Option<(Result<u16, TlsFailure>, String)>,
}

/// What the running stack showed.
#[derive(Debug)]
pub struct StackFacts {
    /// `compose config` (compose layout, when a tool answered).
    pub config: Option<Outcome>,
    /// The project's containers, their health as known now.
    pub containers: Result<Vec<ContainerInfo>, String>,
    /// Containers that restarted again while doctor watched them.
    pub restarting: BTreeSet<String>,
    /// Container id → its last log lines, as finding details.
    pub logs: BTreeMap<String, Vec<String>>,
    /// Service → the write probe of its shared directories.
    pub writable: BTreeMap<String, Outcome>,
    /// The database target as this tool reached it and its facts, or why not.
    pub db: Result<(String, DbFacts), String>,
    /// `phinx status` in the running image, and the container it ran in.
    pub phinx: Option<(String, Outcome)>,
    /// What web answered, or why it could not be reached.
    pub web: Result<WebFacts, String>,
    /// The XMPP probe, and the container (name, service) it ran in, run as a session worker.
    pub xmpp: Option<(String, String, Outcome)>,
    /// The log probe, and the container (name, service) it ran in, run as a session worker.
    pub worker_log: Option<(String, String, Outcome)>,
    /// Whether OPcache is on for the daemon's PHP (`on`/`off`), when the daemon runs.
    pub opcache: Option<Outcome>,
    /// Container name → last log lines, for `--bundle`.
    pub bundle_logs: Vec<(String, String)>,
}

/// Everything doctor judges.
#[derive(Debug)]
pub struct Facts {
    pub dir: Dir,
    /// `movim.env`'s mode and owner, when it exists.
    pub env_meta: Option<FileMeta>,
    /// What `init` would write today, or why that cannot be known.
    pub expected: Result<BTreeMap<String, render::File>, String>,
    /// Each expected file as it is on disk (`None`: missing).
    pub on_disk: BTreeMap<String, Option<String>>,
    pub free_bytes: Result<u64, String>,
    pub run_lock_holder: Option<u32>,
    /// Why the directory (or one above it) is not trusted by this user, if it is not.
    pub untrusted: Option<Untrusted>,
    pub journal: Option<LeftJournal>,
    pub engine: Result<EngineInfo, String>,
    /// `None` for a kube-played deployment (no compose tool needed).
    pub compose: Option<Result<ComposeInfo, String>>,
    /// `None` when the engine or the answers are missing.
    pub stack: Option<StackFacts>,
    /// Every secret value the directory holds, to scrub from anything printed.
    pub secrets: Vec<String>,
    /// Seconds since the Unix epoch, for certificate lifetimes.
    pub now: i64,
}
