//! `podman kube play` and the few `podman` commands around it: how `upgrade` and `rollback` drive
//! a deployment written by `init --target kube` (the user started it with the same command, so
//! `podman pod ps` and `podman kube down` keep working for them). Containers are inspected through
//! the engine's API like any others; only what the API cannot do (pods, playing a manifest) goes
//! through the CLI.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;

use super::{Applies, Commands, Naming, Probe, Runner};
use crate::adapters::subprocess::{Capture, Program, last_lines};
use crate::core::layout::{self, Layout};
use crate::core::lockfile::{LOCK_FILE, Lock};
use crate::core::movim::MOVIM_UID;
use crate::core::render::kube::{KUBE_ENV_FILE, PODMAN_FILE};
use futures_util::future::BoxFuture;

/// Playing creates pods and containers only: the images were pulled and verified beforehand.
const PLAY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Stopping waits for each container's grace period (30 s in the manifests).
const POD_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// One-shot containers run migrations, which may rewrite large tables.
const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const QUICK_TIMEOUT: Duration = Duration::from_secs(60);
const QUOTED_LINES: usize = 20;

/// Where Movim's tree is in its images.
const MOVIM_ROOT: &str = "/var/www/movim";

/// The `podman` CLI, for kube-played projects.
#[derive(Debug, Clone)]
pub struct KubePlay {
    cmd: Program,
}

impl KubePlay {
    /// `podman`. A remote endpoint (`tcp://`, `ssh://`) is passed on with
    /// `--remote --url`; a local socket is the store the CLI uses anyway.
    #[must_use]
    pub fn new(endpoint: &str) -> Self {
        let prefix = if endpoint.starts_with("unix://") || endpoint.is_empty() {
            Vec::new()
        } else {
            vec![
                "--remote".to_owned(),
                "--url".to_owned(),
                endpoint.to_owned(),
            ]
        };
        Self {
            cmd: Program::new("podman", prefix),
        }
    }

    /// `podman` (with `--remote --url …` when remote), for printed next steps.
    #[must_use]
    pub fn display_command(&self) -> String {
        self.cmd.display_command()
    }

    /// The command that (re)starts the deployment as the user would type it.
    #[must_use]
    pub fn play_command(&self, dir: &Path, project: &str) -> String {
        self.cmd.command_line(&play_args(dir, project))
    }

    /// Plays `kube/podman.yaml`, replacing the pods it names (their volumes stay), after making
    /// the project's network if it is missing.
    ///
    /// # Errors
    /// `podman` failed (quoted) or timed out.
    pub async fn play(&self, dir: &Path, project: &str) -> anyhow::Result<()> {
        let exists = self
            .cmd
            .exec(
                None,
                &words(&["network", "exists", project]),
                QUICK_TIMEOUT,
                Capture::Separate,
            )
            .await?;
        if exists.code != Some(0) {
            self.cmd
                .checked(
                    None,
                    &words(&["network", "create", project]),
                    QUICK_TIMEOUT,
                    QUOTED_LINES,
                )
                .await?;
        }
        self.cmd
            .checked(
                Some(dir),
                &play_args(dir, project),
                PLAY_TIMEOUT,
                QUOTED_LINES,
            )
            .await?;
        Ok(())
    }

    /// Stops Movim's pod (web, fpm, daemon); the database's pod keeps running.
    ///
    /// # Errors
    /// `podman` failed (quoted) or timed out.
    pub async fn stop_movim(&self, project: &str) -> anyhow::Result<()> {
        let pod = layout::movim_pod(project);
        self.cmd
            .checked(
                None,
                &words(&["pod", "stop", "-t", "30", &pod]),
                POD_TIMEOUT,
                QUOTED_LINES,
            )
            .await?;
        Ok(())
    }

    /// Starts the database's pod again (it exists from the last play).
    ///
    /// # Errors
    /// `podman` failed (quoted) or timed out.
    pub async fn start_postgres(&self, project: &str) -> anyhow::Result<()> {
        let pod = layout::postgres_pod(project);
        self.cmd
            .checked(
                None,
                &words(&["pod", "start", &pod]),
                POD_TIMEOUT,
                QUOTED_LINES,
            )
            .await?;
        Ok(())
    }

    /// Runs `program args…` once in a fresh container of the Movim `image` on the project's
    /// network, as uid 82 with `kube/movim.env` as Movim's `.env` (what the pod mounts), removed
    /// afterwards. Returns the exit code and the interleaved output, whatever the code.
    ///
    /// # Errors
    /// `podman` could not start, timed out, or was killed by a signal.
    pub async fn movim_oneshot(
        &self,
        dir: &Path,
        project: &str,
        image: &str,
        program: &str,
        args: &[&str],
    ) -> anyhow::Result<(i32, String)> {
        let env = std::path::absolute(dir.join(KUBE_ENV_FILE))?;
        let mut all = words(&[
            "run",
            "--rm",
            "--network",
            project,
            "--user",
            &format!("{MOVIM_UID}:{MOVIM_UID}"),
            "--workdir",
            MOVIM_ROOT,
            "--volume",
            &format!("{}:{MOVIM_ROOT}/.env:ro", env.display()),
            "--entrypoint",
            program,
            image,
        ]);
        all.extend(args.iter().map(|&a| a.to_owned()));
        let out = self
            .cmd
            .exec(None, &all, RUN_TIMEOUT, Capture::Combined)
            .await?;
        match out.code {
            Some(code) => Ok((code, out.stdout)),
            None => Err(anyhow!(
                "`{}` was killed by a signal. Output:\n{}",
                self.cmd.command_line(&all),
                last_lines(&out.stdout, QUOTED_LINES)
            )),
        }
    }
}

impl KubePlay {
    /// The commands of the kube-played deployment in `dir`, as `podman` runs them.
    #[must_use]
    pub fn commands(&self, dir: &Path, project: &str) -> Commands {
        let podman = |verb: &[&str]| -> Vec<String> {
            let mut out = self.cmd.words();
            out.extend(words(verb));
            out
        };
        let play = self.play_command(dir, project);
        Commands {
            logs: podman(&["logs", "--tail", "50"]),
            exec: podman(&["exec"]),
            exec_input: podman(&["exec", "-i"]),
            start: podman(&["start"]),
            apply: Applies::Whole(play.clone()),
            restart: Applies::Whole(play.clone()),
            // The pod's init container `migrate` runs at every start of the pod.
            migrate: format!(
                "{play}   (its init container `migrate` applies them before the daemon starts)"
            ),
            start_stack: format!(
                "{} network exists {project} || {} network create {project}; {play}   (then check: {} pod ps)",
                self.cmd.display_command(),
                self.cmd.display_command(),
                self.cmd.display_command()
            ),
            // The pod's init container `prepare` hands the volumes to uid 82 at every start.
            chown: Applies::Whole(play),
            list: format!("{} pod ps", self.cmd.display_command()),
            prepare: self.play_command(dir, project),
            naming: Naming::KubeContainer(project.to_owned()),
        }
    }
}

impl Runner for KubePlay {
    fn layout(&self) -> Layout {
        Layout::KubePlay
    }

    fn describe(&self) -> String {
        format!("{} kube play", self.cmd.display_command())
    }

    fn commands(&self, dir: &Path, project: &str) -> Commands {
        KubePlay::commands(self, dir, project)
    }

    fn up<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        services: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if services == ["postgres"] {
                self.start_postgres(project).await
            } else {
                self.play(dir, project).await
            }
        })
    }

    fn stop_movim<'a>(
        &'a self,
        _dir: &'a Path,
        project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(KubePlay::stop_movim(self, project))
    }

    fn daemon_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        Box::pin(async move {
            // The manifest runs the daemon image the lock pins.
            let text = std::fs::read_to_string(dir.join(LOCK_FILE))?;
            let lock = Lock::parse(&text).map_err(anyhow::Error::msg)?;
            let image = lock
                .images
                .get("daemon")
                .ok_or_else(|| anyhow!("{LOCK_FILE} pins no daemon image"))?;
            self.movim_oneshot(dir, project, image, "php", args).await
        })
    }

    fn probe_php<'a>(
        &'a self,
        dir: &'a Path,
        project: &'a str,
        release: &'a Probe<'a>,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        Box::pin(self.movim_oneshot(dir, project, release.daemon_image, "php", args))
    }

    fn movim_start_order(&self) -> &'static [&'static [&'static str]] {
        &[&["fpm", "daemon", "web"]]
    }

    fn prepare_volumes<'a>(
        &'a self,
        _dir: &'a Path,
        _project: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(i32, String)>> {
        // The pod's init container `prepare` does it at every start.
        Box::pin(async { Ok((0, String::new())) })
    }

    fn retries_lost_lookups(&self) -> bool {
        false
    }
}

/// `kube play --replace --network <project> <dir>/kube/podman.yaml`
fn play_args(dir: &Path, project: &str) -> Vec<String> {
    words(&[
        "kube",
        "play",
        "--replace",
        "--network",
        project,
        &dir.join(PODMAN_FILE).to_string_lossy(),
    ])
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|&w| w.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_podman_is_named_in_every_command_a_fix_shows() {
        let k = KubePlay::new("tcp://10.0.0.2:8888");
        let c = k.commands(Path::new("/srv/movim"), "movim");
        assert_eq!(
            c.start("daemon"),
            "podman --remote --url tcp://10.0.0.2:8888 start movim-daemon"
        );
        assert_eq!(
            c.logs("postgres"),
            "podman --remote --url tcp://10.0.0.2:8888 logs --tail 50 movim-postgres-postgres"
        );
        assert_eq!(
            c.apply(&["web"]),
            "podman --remote --url tcp://10.0.0.2:8888 kube play --replace --network movim /srv/movim/kube/podman.yaml"
        );
        assert_eq!(
            c.apply(&["web"]),
            k.play_command(Path::new("/srv/movim"), "movim")
        );
        let local = KubePlay::new("unix:///run/podman/podman.sock")
            .commands(Path::new("/srv/movim"), "movim");
        assert_eq!(local.start("web"), "podman start movim-web");
    }
}
