//! The engine as the rest of the tool drives it: the [`ContainerEngine`] trait, with [`Engine`] as
//! its real implementation and fakes in the tests.

use super::*;

/// The container engine as the commands, the release steps and doctor use it: a project's
/// containers, their logs, commands run in them, health, images. [`Engine`] is the real one
/// (bollard); tests drive the same code with a fake.
pub trait ContainerEngine: Send + Sync {
    /// Docker or Podman, as the engine described itself.
    fn kind(&self) -> EngineKind;
    /// The engine's version (`20.10.24`, `4.3.1`, …).
    fn version(&self) -> &str;
    /// The API version negotiated with the engine.
    fn api_version(&self) -> &str;
    /// Where the engine was reached (`unix:///var/run/docker.sock`).
    fn endpoint(&self) -> &str;
    /// The lowest host port the engine can publish (above 0 only when it runs rootless).
    fn lowest_publishable_port(&self) -> u16 {
        0
    }
    /// Whether this process reaches containers at their network addresses (not when rootless:
    /// only published ports reach them).
    fn reaches_container_addresses(&self) -> bool {
        true
    }
    /// Gives a host file to `uid:uid` as the containers see it.
    fn hand_over<'a>(
        &'a self,
        path: &'a std::path::Path,
        uid: u32,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { crate::adapters::fsx::give_to(path, uid) })
    }
    /// Every container of `project` in `layout`, stopped ones included, each named back to its
    /// service.
    fn service_containers<'a>(
        &'a self,
        project: &'a str,
        layout: Layout,
    ) -> BoxFuture<'a, anyhow::Result<Vec<ContainerInfo>>>;
    /// The state of one container (by id or name).
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<ContainerInfo>>;
    /// The last `lines` lines of a container's log.
    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, anyhow::Result<String>>;
    /// Runs `cmd` in a running container: its exit code and interleaved output.
    fn exec<'a>(
        &'a self,
        id: &'a str,
        cmd: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i64, String)>>;
    /// Waits until the container is healthy; fails as soon as it exits or restarts.
    fn wait_healthy<'a>(
        &'a self,
        id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<ContainerInfo>>;
    /// `c` with its health as the engine would know it with systemd.
    fn with_health_now<'a>(&'a self, c: ContainerInfo) -> BoxFuture<'a, ContainerInfo>;
    /// Whether the engine holds `repo@sha256:…`.
    fn has_image<'a>(&'a self, repo_at_digest: &'a str) -> BoxFuture<'a, anyhow::Result<bool>>;
    /// Pulls `image` by `digest` and proves the engine now holds exactly that digest.
    fn pull<'a>(
        &'a self,
        image: &'a ImageRef,
        digest: &'a str,
        progress: &'a dyn PullProgress,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

impl ContainerEngine for Engine {
    fn kind(&self) -> EngineKind {
        Engine::kind(self)
    }
    fn version(&self) -> &str {
        Engine::version(self)
    }
    fn api_version(&self) -> &str {
        Engine::api_version(self)
    }
    fn endpoint(&self) -> &str {
        Engine::endpoint(self)
    }
    fn lowest_publishable_port(&self) -> u16 {
        Engine::lowest_publishable_port(self)
    }
    fn reaches_container_addresses(&self) -> bool {
        Engine::reaches_container_addresses(self)
    }
    fn hand_over<'a>(
        &'a self,
        path: &'a std::path::Path,
        uid: u32,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(Engine::hand_over(self, path, uid))
    }
    fn service_containers<'a>(
        &'a self,
        project: &'a str,
        layout: Layout,
    ) -> BoxFuture<'a, anyhow::Result<Vec<ContainerInfo>>> {
        Box::pin(Engine::service_containers(self, project, layout))
    }
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<ContainerInfo>> {
        Box::pin(Engine::inspect(self, id))
    }
    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(Engine::logs_tail(self, id, lines))
    }
    fn exec<'a>(
        &'a self,
        id: &'a str,
        cmd: &'a [&'a str],
    ) -> BoxFuture<'a, anyhow::Result<(i64, String)>> {
        Box::pin(Engine::exec(self, id, cmd))
    }
    fn wait_healthy<'a>(
        &'a self,
        id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<ContainerInfo>> {
        Box::pin(Engine::wait_healthy(self, id, timeout))
    }
    fn with_health_now<'a>(&'a self, c: ContainerInfo) -> BoxFuture<'a, ContainerInfo> {
        Box::pin(Engine::with_health_now(self, c))
    }
    fn has_image<'a>(&'a self, repo_at_digest: &'a str) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(Engine::has_image(self, repo_at_digest))
    }
    fn pull<'a>(
        &'a self,
        image: &'a ImageRef,
        digest: &'a str,
        progress: &'a dyn PullProgress,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(Engine::pull(self, image, digest, progress))
    }
}
