//! The command line, and nothing else: clap types that the commands convert into validated
//! requests once. Every `init` question is a flag with an env var (see `answers::QUESTIONS`).

use crate::adapters::engine::EngineKind;
use crate::core::layout::Layout;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;

use crate::core::answers::QUESTIONS;

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
        default_value = "./movim",
        help_heading = GLOBAL
    )]
    pub dir: PathBuf,
    /// Container engine (auto-detected: Docker, then Podman)
    #[arg(long, global = true, env = "MOVIM_ENGINE", help_heading = GLOBAL)]
    pub engine: Option<EngineKind>,
    /// Compose command to drive, e.g. "docker compose", "docker-compose", "podman-compose" (auto-detected)
    #[arg(long, global = true, env = "MOVIM_COMPOSE", help_heading = GLOBAL)]
    pub compose: Option<String>,
    /// Podman: when its API socket does not answer, serve it (podman system service) for this run
    /// only, and stop it at the end
    #[arg(long, global = true, env = "MOVIM_PODMAN_SERVICE", help_heading = GLOBAL)]
    pub podman_service: bool,
    /// Never prompt: take defaults, fail naming the flag of any missing answer
    #[arg(long, short = 'y', global = true, help_heading = GLOBAL)]
    pub yes: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask, write the deployment directory, pin and pull images, migrate, start, prove healthy
    #[command(after_help = INIT_EXAMPLES)]
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
    /// Build Movim's images (web, fpm, daemon) from a Movim source tree, and push them
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    #[command(
        after_help = "Examples (install.sh installs them):\n  movim-setup completions bash > ~/.local/share/bash-completion/completions/movim-setup\n  movim-setup completions zsh > ~/.zfunc/_movim-setup\n  movim-setup completions fish > ~/.config/fish/completions/movim-setup.fish"
    )]
    Completions(CompletionsArgs),
    /// Write the man pages (movim-setup.1 and one per command) into a directory
    #[command(
        after_help = "Examples (install.sh installs them):\n  movim-setup man /usr/local/share/man/man1\n  man -l /usr/local/share/man/man1/movim-setup-init.1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build movim-web, movim-fpm and movim-daemon from one Movim tree (Debian's PHP), and with
    /// --push push them and print them pinned by digest
    #[command(after_help = IMAGES_BUILD_EXAMPLES)]
    Build(ImagesBuildArgs),
}

const IMAGES_BUILD_EXAMPLES: &str = "\
Examples:
  git clone --branch v0.34.1 https://github.com/movim/movim
  (cd movim && composer install --no-dev --optimize-autoloader)
  movim-setup images build --release v0.34.1 --source ./movim
  movim-setup images build --release v0.34.1 --source ./movim \\
    --push registry.example.org/movim";

#[derive(Debug, Args)]
pub struct ImagesBuildArgs {
    /// The Movim release the tree holds, as its VERSION file says it (vX.Y or vX.Y.Z)
    #[arg(long)]
    pub release: String,
    /// The Movim source tree, with its vendor/ already installed (composer install)
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Push the images to this repository (registry/path) and print them pinned by digest
    #[arg(long, value_name = "REPO")]
    pub push: Option<String>,
    /// The Debian image to build on (its PHP packages are used; PHP 8.2 or newer)
    #[arg(long, value_name = "IMAGE", default_value = crate::core::images::DEFAULT_BASE)]
    pub base: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing)
    #[arg(value_name = "OUT_DIR")]
    pub out_dir: PathBuf,
}

/// The headings `init --help` groups its options under.
const GLOBAL: &str = "Global";
const HTTPS: &str = "HTTPS";
const DATABASE: &str = "Database";
const XMPP: &str = "XMPP";
const IMAGES: &str = "Images";

/// `init`'s examples, each line short enough that `--help` never wraps one in the middle of a
/// command (a line ending in `\` goes on, as in a shell), so that each can be pasted whole.
const INIT_EXAMPLES: &str = "\
Examples:
  movim-setup init
  movim-setup init --yes --domain movim.example.org \\
    --tls proxy --http-port 8080
  movim-setup init --yes --domain movim.example.org \\
    --tls caddy --acme-email you@example.org
  movim-setup init --yes --domain movim.example.org \\
    --database external --db-host 10.0.0.5 \\
    --db-password-file /root/movim-db.password
  movim-setup init --answers movim-answers.yaml --yes";

/// `init`'s options. Each question's flag takes its help text and shown default from
/// `answers::QUESTIONS` (see [`command`]) unless it says more here; the options are `Option`s, so
/// that an answer not given falls through to the answers file, the saved answers, the prompt.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Public domain Movim is served at (https://DOMAIN/)
    #[arg(long, env = "MOVIM_DOMAIN")]
    pub domain: Option<String>,
    /// Answers file (YAML: the flags' names with underscores as keys, e.g. `db_host: 10.0.0.5`)
    #[arg(long, env = "MOVIM_ANSWERS")]
    pub answers: Option<PathBuf>,
    #[arg(long, env = "MOVIM_PROJECT")]
    pub project: Option<String>,
    /// HTTPS: a bundled Caddy with automatic certificates, or your own reverse proxy
    #[arg(long, env = "MOVIM_TLS", help_heading = HTTPS)]
    pub tls: Option<TlsChoice>,
    /// --tls proxy: the port on 127.0.0.1 web listens on, which your reverse proxy forwards to
    #[arg(long, env = "MOVIM_HTTP_PORT", help_heading = HTTPS,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub http_port: Option<u16>,
    /// --tls caddy: ACME account e-mail
    #[arg(long, env = "MOVIM_ACME_EMAIL", help_heading = HTTPS)]
    pub acme_email: Option<String>,
    /// --tls caddy: ACME directory URL
    #[arg(long, env = "MOVIM_ACME_CA", help_heading = HTTPS)]
    pub acme_ca: Option<String>,
    /// Extra CA bundle (PEM) trusted by the containers and by this tool
    #[arg(long, env = "MOVIM_CA_BUNDLE", help_heading = HTTPS)]
    pub ca_bundle: Option<PathBuf>,
    /// Database: a bundled PostgreSQL, or an external server
    #[arg(long, env = "MOVIM_DATABASE", help_heading = DATABASE)]
    pub database: Option<ServiceChoice>,
    #[arg(long, env = "MOVIM_DB_HOST", help_heading = DATABASE)]
    pub db_host: Option<String>,
    #[arg(long, env = "MOVIM_DB_PORT", help_heading = DATABASE,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub db_port: Option<u16>,
    #[arg(long, env = "MOVIM_DB_NAME", help_heading = DATABASE)]
    pub db_name: Option<String>,
    #[arg(long, env = "MOVIM_DB_USER", help_heading = DATABASE)]
    pub db_user: Option<String>,
    /// File holding the external database's password (or put the password itself in
    /// MOVIM_DB_PASSWORD; never on the command line)
    #[arg(long, env = "MOVIM_DB_PASSWORD_FILE", help_heading = DATABASE)]
    pub db_password_file: Option<PathBuf>,
    /// XMPP server: a bundled Prosody, or an existing server
    #[arg(long, env = "MOVIM_XMPP", help_heading = XMPP)]
    pub xmpp: Option<ServiceChoice>,
    #[arg(long, env = "MOVIM_XMPP_DOMAIN", help_heading = XMPP)]
    pub xmpp_domain: Option<String>,
    /// Bundled Prosody: certificate (PEM, full chain) for the XMPP domain
    #[arg(long, env = "MOVIM_XMPP_CERT", help_heading = XMPP)]
    pub xmpp_cert: Option<PathBuf>,
    /// Bundled Prosody: private key (PEM) for the XMPP domain
    #[arg(long, env = "MOVIM_XMPP_KEY", help_heading = XMPP)]
    pub xmpp_key: Option<PathBuf>,
    /// Movim release tag, e.g. v0.30.0 (`upgrade --to` changes it later)
    #[arg(long, alias = "movim-version", env = "MOVIM_VERSION", help_heading = IMAGES)]
    pub release: Option<String>,
    /// Prefix for movim-web, movim-fpm, movim-daemon
    #[arg(long, env = "MOVIM_IMAGE_REPOSITORY", help_heading = IMAGES)]
    pub image_repository: Option<String>,
    /// Prefix for postgres, prosody, caddy; an external database is backed up with the pg_dump of
    /// its server's major release, from postgres:<major> here (postgres:17 for PostgreSQL 17.2)
    #[arg(long, env = "MOVIM_LIBRARY_REPOSITORY", help_heading = IMAGES)]
    pub library_repository: Option<String>,
    /// A setting of movim.env that movim-setup does not manage, KEY=VALUE (repeatable; KEY=
    /// removes a saved one; MOVIM_ENV holds one per line); kept across re-runs and upgrades
    #[arg(long, env = "MOVIM_ENV", value_name = "KEY=VALUE", value_delimiter = '\n',
          value_parser = key_value)]
    pub movim_env: Vec<(String, String)>,
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
    /// Database dumps to keep in backups/: enough for going back this many releases (at least 1);
    /// older dumps are pruned, and a rollback further back whose code cannot read the database is
    /// refused
    #[arg(long, env = "MOVIM_KEEP_BACKUPS", default_value_t = 3)]
    pub keep_backups: usize,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Release to return to (default: the one before the current)
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Database dumps to keep in backups/: enough for going back this many releases (at least 1);
    /// older dumps are pruned, and a rollback further back whose code cannot read the database is
    /// refused
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

/// `KEY=VALUE` (the value may be empty, and may hold `=`).
fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// The whole command line as clap sees it, with what the derive cannot say statically: the
/// version line, and `init`'s help texts and defaults from its questions.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
        .version(VERSION.as_str())
        .mut_subcommand("init", |init| {
            QUESTIONS.iter().fold(init, |init, q| {
                let id = q.flag.trim_start_matches("--").replace('-', "_");
                init.mut_arg(id, |arg| {
                    let text = arg
                        .get_help()
                        .map_or_else(|| q.prompt.to_owned(), ToString::to_string);
                    let text = if q.default.is_empty() {
                        text
                    } else {
                        format!("{text} [default: {}]", q.default)
                    };
                    arg.help(text)
                })
            })
        })
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

    /// `init` as `movim-setup init --help` shows it (built: the global options propagated).
    fn init() -> clap::Command {
        let mut cli = command();
        cli.build();
        cli.find_subcommand("init")
            .expect("init is a command")
            .clone()
    }

    #[test]
    fn every_question_is_a_flag_with_its_env_var_help_default_and_answers_key() {
        let init = init();
        for q in QUESTIONS {
            let arg = init
                .get_arguments()
                .find(|a| a.get_long().map(|l| format!("--{l}")).as_deref() == Some(q.flag))
                .unwrap_or_else(|| panic!("{} has no flag {}", q.key, q.flag));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(!help.is_empty(), "{} has no help text", q.flag);
            if !q.default.is_empty() {
                assert!(
                    help.contains(&format!("[default: {}]", q.default)),
                    "{}: {help}",
                    q.flag
                );
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            if q.key == "db_password" {
                // The password itself is never a flag: the flag names a file, the variable holds it.
                assert!(help.contains(q.env), "{}: {help}", q.flag);
            } else {
                assert_eq!(env.as_deref(), Some(q.env), "{}", q.flag);
            }
            let yaml = format!("{}: null\n", q.key);
            assert!(
                crate::core::answers::Answers::from_yaml(&yaml, "a.yaml").is_ok(),
                "`{}:` is not an answers-file key",
                q.key
            );
        }
        // And the other way: every option of init is a question, or one of these.
        let not_questions = ["answers", "target", "no_start", "dry_run", "help"];
        for arg in init.get_arguments().filter(|a| !a.is_global_set()) {
            let id = arg.get_id().as_str();
            let flag = format!("--{}", id.replace('_', "-"));
            assert!(
                not_questions.contains(&id) || QUESTIONS.iter().any(|q| q.flag == flag),
                "init {flag} is neither a question nor known"
            );
        }
    }

    #[test]
    fn the_default_shown_for_a_port_is_the_default_taken() {
        let q = QUESTIONS
            .iter()
            .find(|q| q.key == "http_port")
            .expect("asked");
        assert_eq!(
            q.default,
            crate::core::deployment::DEFAULT_HTTP_PORT.to_string()
        );
        let q = QUESTIONS
            .iter()
            .find(|q| q.key == "release")
            .expect("asked");
        assert_eq!(q.default, crate::core::deployment::DEFAULT_TAG);
    }

    #[test]
    fn init_help_groups_its_options_under_headings() {
        let help = init().render_help().to_string();
        let mut at = 0;
        for heading in [
            "HTTPS:",
            "Database:",
            "XMPP:",
            "Images:",
            "Global:",
            "Examples:",
        ] {
            let found = help[at..]
                .find(&format!("\n{heading}\n"))
                .unwrap_or_else(|| panic!("no {heading} after the previous heading in\n{help}"));
            at += found + 1;
        }
    }

    #[test]
    fn the_examples_survive_a_narrow_terminal_and_parse() {
        for width in [60, 80, 200] {
            let help = init().term_width(width).render_help().to_string();
            let examples = help
                .split_once("Examples:\n")
                .expect("examples")
                .1
                .to_owned();
            // Paste each example as a shell would read it: `\` at the end of a line goes on.
            let joined = examples.replace("\\\n", " ");
            let mut n = 0;
            for line in joined.lines().filter(|l| !l.trim().is_empty()) {
                let words: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(
                    words[0], "movim-setup",
                    "width {width}: a broken example: {line}"
                );
                command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|e| panic!("width {width}: `{line}` does not parse: {e}"));
                n += 1;
            }
            assert_eq!(n, 5, "width {width}: {examples}");
        }
    }

    #[test]
    fn ports_are_one_to_65535() {
        let parse = |port: &str| {
            command().try_get_matches_from(["movim-setup", "init", "--http-port", port])
        };
        assert!(parse("0").is_err());
        assert!(parse("65536").is_err());
        assert!(parse("1").is_ok());
        let err = parse("99999").expect_err("refused").to_string();
        assert!(err.contains("1..=65535"), "{err}");
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
