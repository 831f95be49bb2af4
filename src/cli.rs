//! The command line, and nothing else: clap types that the commands convert into validated
//! requests once. Every `init` question is a flag with an env var (see `answers::QUESTIONS`).

use crate::adapters::engine::EngineKind;
use crate::core::layout::Layout;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;

#[derive(Debug, Parser)]
#[command(
    name = "movim-setup",
    about = "Stand up, upgrade and diagnose a Movim deployment on Docker or Podman",
    after_help = "Exit status: 0 done (doctor: no error), 1 failed (doctor: errors found), 2 bad usage or could not run."
)]
pub struct Cli {
    /// Deployment directory (compose.yaml, movim.env, lock, backups)
    #[arg(
        long,
        global = true,
        env = "MOVIM_SETUP_DIR",
        default_value = "./movim"
    )]
    pub dir: PathBuf,
    /// Container engine (auto-detected: Docker, then Podman)
    #[arg(long, global = true, env = "MOVIM_ENGINE")]
    pub engine: Option<EngineKind>,
    /// Compose command to drive, e.g. "docker compose", "docker-compose", "podman-compose" (auto-detected)
    #[arg(long, global = true, env = "MOVIM_COMPOSE")]
    pub compose: Option<String>,
    /// Never prompt: take defaults, fail naming the flag of any missing answer
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask, write the deployment directory, pin and pull images, migrate, start, prove healthy
    #[command(
        after_help = "Examples:\n  movim-setup init\n  movim-setup init --yes --domain movim.example.org --tls proxy --http-port 8080\n  MOVIM_DB_PASSWORD=… movim-setup init --yes --domain movim.example.org --database external --db-host 10.0.0.5"
    )]
    Init(Box<InitArgs>),
    /// Upgrade to another Movim release with a backup and automatic rollback
    #[command(
        after_help = "Examples:\n  movim-setup upgrade --to v0.30.0 --dry-run\n  movim-setup upgrade --to v0.30.0\n  movim-setup upgrade --resume   (after an interrupted run)"
    )]
    Upgrade(UpgradeArgs),
    /// Return to a recorded release (or undo an interrupted upgrade)
    #[command(
        after_help = "Examples:\n  movim-setup rollback\n  movim-setup rollback --to v0.29.2"
    )]
    Rollback(RollbackArgs),
    /// Read-only diagnostics, each finding with its fix
    #[command(after_help = "Examples:\n  movim-setup doctor\n  movim-setup doctor --json")]
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Answers file (YAML; keys as the flags without dashes, e.g. `db_host:`)
    #[arg(long, env = "MOVIM_ANSWERS")]
    pub answers: Option<PathBuf>,
    /// Compose project name (default: the directory's name)
    #[arg(long, env = "MOVIM_PROJECT")]
    pub project: Option<String>,
    /// Public domain Movim is served at (https://DOMAIN/)
    #[arg(long, env = "MOVIM_DOMAIN")]
    pub domain: Option<String>,
    /// HTTPS: bundled Caddy, or your own reverse proxy
    #[arg(long, env = "MOVIM_TLS")]
    pub tls: Option<TlsChoice>,
    /// proxy mode: port on 127.0.0.1 that web listens on
    #[arg(long, env = "MOVIM_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// caddy mode: ACME account e-mail
    #[arg(long, env = "MOVIM_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// caddy mode: ACME directory URL (default Let's Encrypt)
    #[arg(long, env = "MOVIM_ACME_CA")]
    pub acme_ca: Option<String>,
    /// Extra CA bundle (PEM) trusted by the containers and by this tool
    #[arg(long, env = "MOVIM_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Database: bundled PostgreSQL or an external server
    #[arg(long, env = "MOVIM_DATABASE")]
    pub database: Option<ServiceChoice>,
    #[arg(long, env = "MOVIM_DB_HOST")]
    pub db_host: Option<String>,
    #[arg(long, env = "MOVIM_DB_PORT")]
    pub db_port: Option<u16>,
    #[arg(long, env = "MOVIM_DB_NAME")]
    pub db_name: Option<String>,
    #[arg(long, env = "MOVIM_DB_USER")]
    pub db_user: Option<String>,
    /// File holding the external database password (or set MOVIM_DB_PASSWORD; never in argv)
    #[arg(long, env = "MOVIM_DB_PASSWORD_FILE")]
    pub db_password_file: Option<PathBuf>,
    /// XMPP server: bundled Prosody or an existing server
    #[arg(long, env = "MOVIM_XMPP")]
    pub xmpp: Option<ServiceChoice>,
    #[arg(long, env = "MOVIM_XMPP_DOMAIN")]
    pub xmpp_domain: Option<String>,
    /// Bundled Prosody: certificate (PEM, full chain) for the XMPP domain
    #[arg(long, env = "MOVIM_XMPP_CERT")]
    pub xmpp_cert: Option<PathBuf>,
    /// Bundled Prosody: private key (PEM) for the XMPP domain
    #[arg(long, env = "MOVIM_XMPP_KEY")]
    pub xmpp_key: Option<PathBuf>,
    /// Movim release tag (e.g. v0.29.2)
    #[arg(long, alias = "movim-version", env = "MOVIM_VERSION")]
    pub release: Option<String>,
    /// Prefix for movim-web, movim-fpm, movim-daemon (default ghcr.io/nadiamoe)
    #[arg(long, env = "MOVIM_IMAGE_REPOSITORY")]
    pub image_repository: Option<String>,
    /// Prefix for postgres, prosody, caddy (default docker.io/library)
    #[arg(long, env = "MOVIM_LIBRARY_REPOSITORY")]
    pub library_repository: Option<String>,
    /// What to write: a compose deployment (started and proven healthy), or Kubernetes manifests
    /// and their `podman kube play` rendering in kube/ (written only)
    #[arg(long, env = "MOVIM_TARGET", default_value = "compose")]
    pub target: Target,
    /// Write the directory and pull, but do not start anything
    #[arg(long)]
    pub no_start: bool,
    /// Show what would be written and stop
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Target Movim release tag, e.g. v0.30.0 (default: the newest vX.Y.Z tag of the image
    /// repository)
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Finish an interrupted upgrade
    #[arg(long)]
    pub resume: bool,
    /// Upgrade even if the stack is not healthy now
    #[arg(long)]
    pub force: bool,
    /// Database dumps to keep in backups/ (besides those a recorded release still needs)
    #[arg(long, env = "MOVIM_KEEP_BACKUPS", default_value_t = 3)]
    pub keep_backups: usize,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Release to return to (default: the one before the current)
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Database dumps to keep in backups/ (besides those a recorded release still needs)
    #[arg(long, env = "MOVIM_KEEP_BACKUPS", default_value_t = 3)]
    pub keep_backups: usize,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Write a redacted tar.gz for a bug report
    #[arg(long)]
    pub bundle: Option<PathBuf>,
}

/// `--tls`: who terminates HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsChoice {
    Caddy,
    Proxy,
}

/// `--database` and `--xmpp`: the bundled service, or the user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceChoice {
    Bundled,
    External,
}

/// `init --target`: what `init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    // Not doc comments: clap would list them in --help, which already says what each does.
    Compose,
    Kube,
}

impl Target {
    /// The layout this target writes.
    #[must_use]
    pub fn layout(self) -> Layout {
        match self {
            Self::Compose => Layout::Compose,
            Self::Kube => Layout::KubePlay,
        }
    }
}

/// The name a choice has on the command line (what the answers file and the prompt use too).
fn name_of(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

macro_rules! display_as_named {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&name_of(self))
            }
        }
    )*};
}
display_as_named!(TlsChoice, ServiceChoice, Target);

/// What `-V`/`--version` prints after the name: the tool's version, the commit it was built
/// from, and the Movim release `init` installs by default.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} ({}, default Movim release {})",
        env!("CARGO_PKG_VERSION"),
        env!("MOVIM_SETUP_COMMIT"),
        crate::core::deployment::DEFAULT_TAG
    )
});

/// The whole command line as clap sees it, with what the derive cannot say statically.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command().version(VERSION.as_str())
}

/// Parses the process arguments (clap exits with status 2 on bad usage).
#[must_use]
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn version_is_the_tools_own_and_init_takes_release() {
        let err = command()
            .try_get_matches_from(["movim-setup", "--version"])
            .expect_err("prints the version");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let text = err.to_string();
        assert!(text.starts_with("movim-setup 0."), "{text}");
        assert!(text.contains("default Movim release v0."), "{text}");
        let m = command()
            .try_get_matches_from(["movim-setup", "init", "--release", "v0.30.0"])
            .expect("parses");
        let cli = Cli::from_arg_matches(&m).expect("parses");
        let Command::Init(init) = cli.command else {
            panic!("init")
        };
        assert_eq!(init.release.as_deref(), Some("v0.30.0"));
        // `init --version` is no longer the Movim release: one meaning per flag name.
        assert!(
            command()
                .try_get_matches_from(["movim-setup", "init", "--version", "v0.30.0"])
                .is_err()
        );
    }
}
