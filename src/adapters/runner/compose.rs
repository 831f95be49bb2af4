//! The user's compose tool as a subprocess. We drive the tool they already use (so `docker compose
//! ps`, `logs`, `down` keep working for them afterwards) and never reimplement it; the price is
//! that three dialects differ in flags, so each flag we add is checked against the detected one.
//!
//! Every call runs `<tool> -f <dir>/compose.yaml -p <project> [--project-directory <dir>] …` with a
//! bounded timeout, captures the output, and turns a non-zero exit into an error that shows the exact
//! command line and the end of stderr.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::{Applies, Commands, Naming, Probe, Runner};
use crate::adapters::engine::EngineKind;
use crate::adapters::subprocess::{Capture, Captured, Program, describe_exit, last_lines};
use crate::core::deployment::Service;
use crate::core::layout::Layout;
use crate::core::movim::{MOVIM_UID, SHARED_DIRS};
use crate::core::render::compose::PREPARE_SERVICE;
use futures_util::future::BoxFuture;

/// Name of the compose file inside a deployment directory.
pub const COMPOSE_FILE: &str = "compose.yaml";

const VERSION_TIMEOUT: Duration = Duration::from_secs(20);
const CONFIG_TIMEOUT: Duration = Duration::from_secs(60);
/// Creating containers only: images are pulled beforehand and `up` is told not to pull.
const UP_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const STOP_TIMEOUT: Duration = Duration::from_secs(3 * 60);
const DOWN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// One-shot containers run migrations, which may rewrite large tables.
const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const LOGS_TIMEOUT: Duration = Duration::from_secs(60);

/// How many lines of stderr a failure quotes.
const QUOTED_LINES: usize = 20;

/// Which compose tool, as the user would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `docker compose`, Compose v2+ as a docker CLI plugin.
    DockerPlugin,
    /// `docker-compose` being Compose v2+ (the same Go binary, standalone).
    Standalone2,
    /// `docker-compose` 1.x (Python; end of life, still on many servers).
    Standalone1,
    /// `podman-compose` (Python).
    PodmanCompose,
    /// `podman compose`, which hands over to an external provider (detected behind it).
    PodmanBuiltin,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DockerPlugin => "docker compose (Compose v2 plugin)",
            Self::Standalone2 => "docker-compose (Compose v2, standalone)",
            Self::Standalone1 => "docker-compose (Compose v1)",
            Self::PodmanCompose => "podman-compose",
            Self::PodmanBuiltin => "podman compose",
        })
    }
}

/// The command-line dialect actually spoken, which decides the flags we may pass. For
/// `podman compose` it is the provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Compose v2 and later (Go).
    Go,
    /// docker-compose 1.x.
    Python1,
    PodmanCompose,
}

/// A detected compose tool, ready to run.
#[derive(Debug, Clone)]
pub struct ComposeTool {
    /// The program and the words between it and our arguments (`compose` for `docker compose`).
    cmd: Program,
    flavor: Flavor,
    /// Without a leading `v`: `2.40.3`, `1.29.2`, `1.6.0`.
    version: String,
    dialect: Dialect,
}

/// Finds the compose tool to drive. With `preference` (a command line such as `docker compose`,
/// `/usr/local/bin/docker-compose`, `podman compose`), only that one; otherwise the first that
/// answers `version` among `docker compose`, `docker-compose`, `podman-compose`, `podman compose`
/// (the Podman ones first when the engine is Podman).
///
/// # Errors
/// The preferred tool is missing or not a compose tool, or no candidate answers; the message lists
/// what was tried and why each failed.
pub async fn detect(
    preference: Option<&str>,
    engine_is_podman: bool,
) -> anyhow::Result<ComposeTool> {
    if let Some(preference) = preference {
        let (program, prefix) = split_command(preference)?;
        return probe(program, prefix).await;
    }
    let mut candidates = vec![
        "docker compose",
        "docker-compose",
        "podman-compose",
        "podman compose",
    ];
    if engine_is_podman {
        candidates.rotate_left(2);
    }
    let mut tried = Vec::new();
    for candidate in candidates {
        let (program, prefix) = split_command(candidate)?;
        match probe(program, prefix).await {
            Ok(tool) => return Ok(tool),
            Err(e) => tried.push(format!(
                "  `{candidate}`: {}",
                first_line(&format!("{e:#}"))
            )),
        }
    }
    bail!(
        "no compose tool found. Tried:\n{}\nInstall Docker Compose v2 (or podman-compose with \
         Podman), or name the command to use explicitly.",
        tried.join("\n")
    )
}

/// `docker compose` → (`docker`, [`compose`]); a path to an existing file is taken whole, spaces and
/// all.
fn split_command(command: &str) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let trimmed = command.trim();
    if trimmed.contains('/') && Path::new(trimmed).is_file() {
        return Ok((PathBuf::from(trimmed), Vec::new()));
    }
    let mut words = trimmed.split_whitespace().map(str::to_owned);
    let program = words
        .next()
        .ok_or_else(|| anyhow!("the compose command is empty"))?;
    Ok((PathBuf::from(program), words.collect()))
}

async fn probe(program: PathBuf, prefix: Vec<String>) -> anyhow::Result<ComposeTool> {
    let mut tool = ComposeTool {
        cmd: Program::new(program, prefix),
        // Placeholders until `version` answers.
        flavor: Flavor::DockerPlugin,
        version: String::new(),
        dialect: Dialect::Go,
    };
    let out = tool
        .cmd
        .exec(
            None,
            &["version".to_owned()],
            VERSION_TIMEOUT,
            Capture::Combined,
        )
        .await?;
    if out.code != Some(0) {
        bail!(
            "`{}` failed with {}: {}",
            tool.cmd.command_line(&["version".to_owned()]),
            describe_exit(out.code),
            first_line(out.stdout.trim())
        );
    }
    let (dialect, version) = parse_version(&out.stdout).ok_or_else(|| {
        anyhow!(
            "`{} version` does not look like a compose tool: {}",
            tool.cmd.display_command(),
            first_line(out.stdout.trim())
        )
    })?;
    tool.flavor = flavor_of(&tool.cmd.program, &tool.cmd.prefix, dialect);
    tool.version = version;
    tool.dialect = dialect;
    Ok(tool)
}

/// Reads the dialect and version from `version` output, whichever tool printed it:
/// `Docker Compose version v2.40.3`, `docker-compose version 1.29.2, build 5becea4c`,
/// `podman-compose version 1.6.0` (podman's own lines and banners around it are ignored).
fn parse_version(output: &str) -> Option<(Dialect, String)> {
    let version_after = |line: &str, marker: &str| -> Option<String> {
        let rest = &line[line.to_ascii_lowercase().find(marker)? + marker.len()..];
        let word = rest.split_whitespace().next()?;
        let word = word.trim_end_matches(',').trim_start_matches('v');
        word.starts_with(|c: char| c.is_ascii_digit())
            .then(|| word.to_owned())
    };
    // podman-compose first: `podman compose version` also prints podman's own version line.
    for line in output.lines() {
        if let Some(v) = version_after(line, "podman-compose version") {
            return Some((Dialect::PodmanCompose, v));
        }
    }
    for line in output.lines() {
        let found = version_after(line, "docker compose version")
            .or_else(|| version_after(line, "docker-compose version"));
        if let Some(v) = found {
            let dialect = if v.starts_with("1.") {
                Dialect::Python1
            } else {
                Dialect::Go
            };
            return Some((dialect, v));
        }
    }
    None
}

fn flavor_of(program: &Path, prefix: &[String], dialect: Dialect) -> Flavor {
    let name = program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let subcommand = prefix.first().is_some_and(|w| w == "compose");
    match (name, subcommand, dialect) {
        ("podman", true, _) => Flavor::PodmanBuiltin,
        (_, _, Dialect::PodmanCompose) => Flavor::PodmanCompose,
        (_, _, Dialect::Python1) => Flavor::Standalone1,
        (_, true, Dialect::Go) => Flavor::DockerPlugin,
        (_, false, Dialect::Go) => Flavor::Standalone2,
    }
}

impl ComposeTool {
    /// Adds an environment variable for every call (e.g. `DOCKER_HOST` pointing at Podman's socket).
    #[must_use]
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cmd.env.push((key.into(), value.into()));
        self
    }

    #[must_use]
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The tool's own version, without a leading `v`.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The command as the user types it (`docker compose`, `/usr/bin/docker-compose`), for printed
    /// next steps such as `docker compose logs daemon`.
    #[must_use]
    pub fn display_command(&self) -> String {
        self.cmd.display_command()
    }

    /// The tool's normalised rendering of the file: success proves it accepts it.
    ///
    /// # Errors
    /// The tool rejected the file (its message is quoted), or could not run.
    pub async fn config(&self, dir: &Path, project: &str) -> anyhow::Result<String> {
        let out = self
            .checked(dir, project, &["config"], &[], CONFIG_TIMEOUT)
            .await?;
        Ok(out.stdout)
    }

    /// Creates and starts `services` (all when empty) in the background without touching their
    /// dependencies, building, or pulling: images were pulled and verified by digest beforehand.
    ///
    /// # Errors
    /// The tool failed (quoted) or timed out.
    pub async fn up(&self, dir: &Path, project: &str, services: &[&str]) -> anyhow::Result<()> {
        self.checked(dir, project, &self.up_verb(), services, UP_TIMEOUT)
            .await?;
        Ok(())
    }

    /// `up` that neither touches dependencies, builds nor pulls (images were pulled and verified by
    /// digest beforehand).
    fn up_verb(&self) -> Vec<&'static str> {
        let mut verb = vec!["up", "-d", "--no-deps", "--no-build"];
        if self.supports_up_pull() {
            verb.extend(["--pull", "never"]);
        }
        verb
    }

    /// `run` of a one-shot container: removed afterwards, dependencies untouched, no TTY.
    fn oneshot_verb(entrypoint: Option<&str>) -> Vec<&str> {
        let mut verb = vec!["run", "--rm", "--no-deps", "-T"];
        if let Some(e) = entrypoint {
            verb.extend(["--entrypoint", e]);
        }
        verb
    }

    fn logs_verb(&self) -> Vec<&'static str> {
        let mut verb = vec!["logs"];
        if self.dialect != Dialect::PodmanCompose {
            verb.push("--no-color");
        }
        verb
    }

    /// The `config` command [`ComposeTool::config`] runs, as the user types it.
    #[must_use]
    pub fn config_command(&self, dir: &Path, project: &str) -> String {
        self.command_line(&self.args(dir, project, &["config"], &[]))
    }

    /// This tool, driving the engine of `kind` at `endpoint`: podman-compose drives the `podman`
    /// CLI itself, Docker's compose tools need Podman's socket named.
    #[must_use]
    pub fn for_engine(self, kind: EngineKind, endpoint: &str) -> Self {
        let docker_tool = matches!(
            self.flavor,
            Flavor::DockerPlugin | Flavor::Standalone2 | Flavor::Standalone1
        );
        if kind == EngineKind::Podman && docker_tool {
            self.with_env("DOCKER_HOST", endpoint)
        } else {
            self
        }
    }

    /// Docker Compose v2, as doctor names it in its fixes when no compose tool answers.
    #[must_use]
    pub fn assumed() -> Self {
        Self {
            cmd: Program::new("docker", vec!["compose".to_owned()]),
            flavor: Flavor::DockerPlugin,
            version: String::new(),
            dialect: Dialect::Go,
        }
    }

    /// The commands of the deployment in `dir`, as this tool runs them.
    #[must_use]
    pub fn commands(&self, dir: &Path, project: &str) -> Commands {
        let words = |verb: &[&str]| -> Vec<String> {
            let mut out = self.cmd.words();
            out.extend(self.args(dir, project, verb, &[]));
            out
        };
        let line = |verb: &[&str], operands: &[&str]| -> String {
            let mut all = self.cmd.words();
            all.extend(self.args(dir, project, verb, operands));
            Commands::line(&all, &[])
        };
        let mut logs = self.logs_verb();
        logs.extend(["--tail", "50"]);
        let mut apply = self.up_verb();
        apply.push("--force-recreate");
        let migrate = format!(
            "{} && {}",
            line(
                &Self::oneshot_verb(Some("php")),
                &["daemon", "vendor/bin/phinx", "migrate"]
            ),
            line(&["restart"], &["daemon"])
        );
        let uid = format!("{MOVIM_UID}:{MOVIM_UID}");
        let mut chown_after = vec!["-R".to_owned(), uid];
        chown_after.extend(SHARED_DIRS.iter().map(|d| (*d).to_owned()));
        Commands {
            logs: words(&logs),
            exec: words(&["exec"]),
            exec_input: words(&["exec", "-T"]),
            start: words(&self.up_verb()),
            apply: Applies::Services(words(&apply)),
            restart: Applies::Services(words(&["restart"])),
            migrate,
            start_stack: format!("movim-setup init --dir {}", dir.display()),
            chown: Applies::Around(
                words(&[
                    "run",
                    "--rm",
                    "--no-deps",
                    "--user",
                    "0",
                    "--entrypoint",
                    "chown",
                ]),
                chown_after,
            ),
            list: line(&["ps", "-a"], &[]),
            prepare: line(&Self::oneshot_verb(None), &[PREPARE_SERVICE]),
            naming: Naming::Service,
        }
    }

    /// Stops `services` (all when empty), keeping the containers.
    ///
    /// # Errors
    /// The tool failed (quoted) or timed out.
    pub async fn stop(&self, dir: &Path, project: &str, services: &[&str]) -> anyhow::Result<()> {
        self.checked(dir, project, &["stop"], services, STOP_TIMEOUT)
            .await?;
        Ok(())
    }

    /// Removes the project's containers and networks. Never volumes: they hold the database.
    ///
    /// # Errors
    /// The tool failed (quoted) or timed out.
    pub async fn down(&self, dir: &Path, project: &str) -> anyhow::Result<()> {
        self.checked(dir, project, &["down"], &[], DOWN_TIMEOUT)
            .await?;
        Ok(())
    }

    /// Runs `cmd` once in a fresh `service` container (removed afterwards, dependencies untouched,
    /// no TTY). Returns the exit code and stdout+stderr interleaved, whatever the code: the caller
    /// knows what, say, `phinx status` exiting 3 means.
    ///
    /// # Errors
    /// The tool could not start, timed out, or was killed by a signal.
    pub async fn run_oneshot(
        &self,
        dir: &Path,
        project: &str,
        service: &str,
        entrypoint: Option<&str>,
        cmd: &[&str],
    ) -> anyhow::Result<(i32, String)> {
        // Movim's daemon image runs a script that ignores its arguments, so one-shot commands
        // name their program as the entrypoint.
        let opts = Self::oneshot_verb(entrypoint);
        let mut tail = vec![service];
        tail.extend_from_slice(cmd);
        let args = self.args(dir, project, &opts, &tail);
        let out = self
            .exec(Some(dir), &args, RUN_TIMEOUT, Capture::Combined)
            .await?;
        match out.code {
            Some(code) => Ok((code, out.stdout)),
            None => Err(anyhow!(
                "`{}` was killed by a signal. Output:\n{}",
                self.command_line(&args),
                last_lines(&out.stdout, QUOTED_LINES)
            )),
        }
    }

    /// The last `tail` lines of a service's logs (stdout and stderr interleaved).
    ///
    /// # Errors
    /// The tool failed (quoted) or timed out.
    pub async fn logs(
        &self,
        dir: &Path,
        project: &str,
        service: &str,
        tail: usize,
    ) -> anyhow::Result<String> {
        let tail = tail.to_string();
        let mut verb = self.logs_verb();
        verb.extend(["--tail", &tail]);
        let args = self.args(dir, project, &verb, &[service]);
        let out = self
            .exec(Some(dir), &args, LOGS_TIMEOUT, Capture::Combined)
            .await?;
        if out.code != Some(0) {
            bail!(
                "`{}` failed with {}:\n{}",
                self.command_line(&args),
                describe_exit(out.code),
                last_lines(&out.stdout, QUOTED_LINES)
            );
        }
        Ok(out.stdout)
    }

    /// `up --pull never` exists since Compose v2.8 (docker/compose 9976077, "introduce --pull");
    /// v1 and podman-compose have no such flag (podman-compose's `--pull` means the opposite).
    fn supports_up_pull(&self) -> bool {
        self.dialect == Dialect::Go && version_at_least(&self.version, (2, 8))
    }

    /// Only Compose v1 and v2 know `--project-directory`; podman-compose takes the directory of the
    /// first `-f`, which is the same place.
    fn supports_project_directory(&self) -> bool {
        self.dialect != Dialect::PodmanCompose
    }

    /// Global options, then the subcommand and its flags, then operands.
    fn args(&self, dir: &Path, project: &str, verb: &[&str], operands: &[&str]) -> Vec<String> {
        let mut args = vec![
            "-f".to_owned(),
            dir.join(COMPOSE_FILE).to_string_lossy().into_owned(),
            "-p".to_owned(),
            project.to_owned(),
        ];
        if self.supports_project_directory() {
            args.push("--project-directory".to_owned());
            args.push(dir.to_string_lossy().into_owned());
        }
        args.extend(verb.iter().chain(operands).map(|&s| s.to_owned()));
        args
    }

    /// Runs and fails on a non-zero exit, quoting the command line and the end of stderr.
    async fn checked(
        &self,
        dir: &Path,
        project: &str,
        verb: &[&str],
        operands: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Captured> {
        let args = self.args(dir, project, verb, operands);
        self.cmd
            .checked(Some(dir), &args, timeout, QUOTED_LINES)
            .await
    }

    async fn exec(
        &self,
        dir: Option<&Path>,
        args: &[String],
        timeout: Duration,
        capture: Capture,
    ) -> anyhow::Result<Captured> {
        self.cmd.exec(dir, args, timeout, capture).await
    }

    fn command_line(&self, args: &[String]) -> String {
        self.cmd.command_line(args)
    }
}

fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Where a release that does not run yet is asked something (its compose file beside links to the
/// deployment's real configuration), removed right after.
const PROBE_DIR: &str = ".upgrade-probe";

/// Fills `probe` with `compose_file` and links to everything else in `dir`: the compose file names
/// its mounts relative to its own directory.
fn write_probe_dir(dir: &Path, probe: &Path, compose_file: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    crate::adapters::fsx::write_atomic(&probe.join(COMPOSE_FILE), compose_file.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", probe.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let name = entry?.file_name();
        let skip = [
            COMPOSE_FILE,
            PROBE_DIR,
            crate::adapters::backup::BACKUPS_DIR,
        ];
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let real = std::path::absolute(dir.join(&name))
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        std::os::unix::fs::symlink(&real, probe.join(&name))
            .with_context(|| format!("cannot link {} into {}", real.display(), probe.display()))?;
    }
    Ok(())
}

/// The Movim services a compose deployment stops for an upgrade, web (what browsers reach) first;
/// the database and XMPP server keep running.
const MOVIM_STOP_ORDER: [&str; 3] = [
    Service::Web.name(),
    Service::Daemon.name(),
    Service::Fpm.name(),
];

impl Runner for ComposeTool {
    fn layout(&self) -> Layout {
        Layout::Compose
    }

    fn describe(&self) -> String {
        format!("{} {}", self.flavor, self.version)
    }

    fn commands(&self, dir: &Path, project: &str) -> Commands {
        ComposeTool::commands(self, dir, project)
    }

    fn up<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        services: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(ComposeTool::up(self, dir, project, services))
    }

    fn stop_movim<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.stop(dir, project, &MOVIM_STOP_ORDER))
    }

    fn daemon_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        Box::pin(self.run_oneshot(dir, project, "daemon", Some("php"), args))
    }

    fn probe_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        release: &'a Probe<'a>,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        Box::pin(async move {
            let probe = dir.join(PROBE_DIR);
            let _ = std::fs::remove_dir_all(&probe);
            let result = async {
                write_probe_dir(dir, &probe, release.compose_file)?;
                self.run_oneshot(&probe, project, "daemon", Some("php"), args)
                    .await
            }
            .await;
            let _ = std::fs::remove_dir_all(&probe);
            result
        })
    }

    fn movim_start_order(&self) -> &'static [&'static [&'static str]] {
        &[&["fpm", "daemon"], &["web"]]
    }

    fn prepare_volumes<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        Box::pin(self.run_oneshot(dir, project, PREPARE_SERVICE, None, &[]))
    }

    fn retries_lost_lookups(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn tool(program: &str, prefix: &[&str], dialect: Dialect, version: &str) -> ComposeTool {
        let program = PathBuf::from(program);
        let prefix: Vec<String> = prefix.iter().map(|&s| s.to_owned()).collect();
        ComposeTool {
            flavor: flavor_of(&program, &prefix, dialect),
            cmd: Program::new(program, prefix),
            version: version.to_owned(),
            dialect,
        }
    }

    #[test]
    fn the_commands_a_fix_names_are_the_ones_the_tool_runs() {
        let dir = Path::new("/srv/movim");
        let t = tool("docker", &["compose"], Dialect::Go, "2.40.3")
            .with_env("DOCKER_HOST", "unix:///run/podman/podman.sock");
        let c = t.commands(dir, "movim");
        let runs = |verb: &[&str], operands: &[&str]| {
            t.command_line(&t.args(dir, "movim", verb, operands))
        };
        assert_eq!(c.start("daemon"), runs(&t.up_verb(), &["daemon"]));
        assert_eq!(
            c.prepare,
            runs(&ComposeTool::oneshot_verb(None), &[PREPARE_SERVICE])
        );
        assert_eq!(t.config_command(dir, "movim"), runs(&["config"], &[]));
        assert_eq!(
            c.logs("web"),
            "DOCKER_HOST=unix:///run/podman/podman.sock docker compose -f /srv/movim/compose.yaml -p movim --project-directory /srv/movim logs --no-color --tail 50 web"
        );
        assert!(c.migrate.contains(&runs(
            &ComposeTool::oneshot_verb(Some("php")),
            &["daemon", "vendor/bin/phinx", "migrate"]
        )));
    }

    #[test]
    fn versions_of_each_tool_are_recognised() {
        let cases = [
            ("Docker Compose version v2.40.3\n", Dialect::Go, "2.40.3"),
            (
                "Docker Compose version 2.20.2+ds1-0+deb12u1\n",
                Dialect::Go,
                "2.20.2+ds1-0+deb12u1",
            ),
            ("Docker Compose version v5.4.0\n", Dialect::Go, "5.4.0"),
            (
                "docker-compose version 1.29.2, build unknown\ndocker-py version: 5.0.3\n",
                Dialect::Python1,
                "1.29.2",
            ),
            (
                "podman-compose version 1.6.0\npodman version 4.3.1\n",
                Dialect::PodmanCompose,
                "1.6.0",
            ),
            (
                ">>>> Executing external compose provider \"/usr/bin/podman-compose\". <<<<\n\
                 podman-compose version: 1.0.6\n['podman', '--version', '']\n\
                 using podman version: 4.3.1\npodman-compose version 1.0.6\npodman --version \n\
                 podman version 4.3.1\nexit code: 0\n",
                Dialect::PodmanCompose,
                "1.0.6",
            ),
        ];
        for (output, dialect, version) in cases {
            assert_eq!(
                parse_version(output),
                Some((dialect, version.to_owned())),
                "{output}"
            );
        }
        assert_eq!(
            parse_version("docker: 'compose' is not a docker command.\n"),
            None
        );
    }

    #[test]
    fn flavours_follow_how_the_tool_is_invoked() {
        assert_eq!(
            tool("docker", &["compose"], Dialect::Go, "2.40.3").flavor,
            Flavor::DockerPlugin
        );
        assert_eq!(
            tool("docker-compose", &[], Dialect::Go, "2.40.3").flavor,
            Flavor::Standalone2
        );
        assert_eq!(
            tool("/usr/bin/docker-compose", &[], Dialect::Python1, "1.29.2").flavor,
            Flavor::Standalone1
        );
        assert_eq!(
            tool("podman-compose", &[], Dialect::PodmanCompose, "1.6.0").flavor,
            Flavor::PodmanCompose
        );
        assert_eq!(
            tool("podman", &["compose"], Dialect::PodmanCompose, "1.6.0").flavor,
            Flavor::PodmanBuiltin
        );
        assert_eq!(
            tool("podman", &["compose"], Dialect::Go, "2.40.3").flavor,
            Flavor::PodmanBuiltin
        );
    }

    #[test]
    fn preferences_split_into_program_and_prefix() {
        let (p, rest) = split_command("  docker compose ").unwrap();
        assert_eq!(
            (p, rest),
            (PathBuf::from("docker"), vec!["compose".to_owned()])
        );
        let (p, rest) = split_command("/usr/local/bin/docker-compose").unwrap();
        assert_eq!(
            (p, rest),
            (PathBuf::from("/usr/local/bin/docker-compose"), vec![])
        );
        assert!(split_command("   ").is_err());
    }

    #[test]
    fn up_flags_match_each_dialect() {
        let dir = Path::new("/srv/movim");
        let up = |t: &ComposeTool| {
            let mut verb = vec!["up", "-d", "--no-deps", "--no-build"];
            if t.supports_up_pull() {
                verb.extend(["--pull", "never"]);
            }
            t.command_line(&t.args(dir, "movim", &verb, &["web"]))
        };
        assert_eq!(
            up(&tool("docker", &["compose"], Dialect::Go, "2.40.3")),
            "docker compose -f /srv/movim/compose.yaml -p movim --project-directory /srv/movim \
             up -d --no-deps --no-build --pull never web"
        );
        assert_eq!(
            up(&tool("docker-compose", &[], Dialect::Go, "2.7.0")),
            "docker-compose -f /srv/movim/compose.yaml -p movim --project-directory /srv/movim \
             up -d --no-deps --no-build web"
        );
        assert_eq!(
            up(&tool("docker-compose", &[], Dialect::Python1, "1.29.2")),
            "docker-compose -f /srv/movim/compose.yaml -p movim --project-directory /srv/movim \
             up -d --no-deps --no-build web"
        );
        assert_eq!(
            up(
                &tool("podman-compose", &[], Dialect::PodmanCompose, "1.6.0")
                    .with_env("DOCKER_HOST", "unix:///run/podman/podman.sock")
            ),
            "DOCKER_HOST=unix:///run/podman/podman.sock podman-compose -f /srv/movim/compose.yaml \
             -p movim up -d --no-deps --no-build web"
        );
    }

    #[test]
    fn command_lines_quote_what_the_shell_would_split() {
        let t = tool("docker", &["compose"], Dialect::Go, "2.40.3");
        let line = t.command_line(&[
            "run".into(),
            "sh".into(),
            "-c".into(),
            "echo 'hi'; exit 3".into(),
        ]);
        assert_eq!(line, r"docker compose run sh -c 'echo '\''hi'\''; exit 3'");
    }

    #[test]
    fn failures_quote_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let quoted = last_lines(&text, 20);
        assert!(
            quoted.starts_with("line 11\n") && quoted.ends_with("line 30"),
            "{quoted}"
        );
    }

    #[test]
    fn version_comparison() {
        assert!(version_at_least("2.8.0", (2, 8)));
        assert!(version_at_least("2.40.3", (2, 8)));
        assert!(version_at_least("5.0.1", (2, 8)));
        assert!(!version_at_least("2.7.1", (2, 8)));
        assert!(!version_at_least("1.29.2", (2, 8)));
    }

    #[tokio::test]
    async fn a_missing_tool_says_so() {
        let err = detect(Some("/nonexistent/docker-compose"), false)
            .await
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("not found") && err.contains("/nonexistent/docker-compose"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_tool_that_is_not_compose_is_rejected() {
        let err = detect(Some("echo hello"), false).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("does not look like a compose tool"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn combined_output_keeps_order_and_the_exit_code() {
        let t = tool("sh", &["-c"], Dialect::Go, "2.40.3");
        let out = t
            .exec(
                None,
                &["echo out1; echo err1 >&2; echo out2; exit 3".to_owned()],
                Duration::from_secs(10),
                Capture::Combined,
            )
            .await
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out1\nerr1\nout2\n");
    }

    #[tokio::test]
    async fn a_hung_tool_is_stopped_at_the_timeout() {
        let t = tool("sleep", &[], Dialect::Go, "2.40.3");
        let err = t
            .exec(
                None,
                &["30".to_owned()],
                Duration::from_millis(200),
                Capture::Separate,
            )
            .await
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("did not finish within"),
            "{err:#}"
        );
    }
}
