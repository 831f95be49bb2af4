//! Building and pushing images through the engine's API (`images build`): the build context is the
//! Movim tree plus the recipe, sent as one tar to the classic builder (what Docker 20.10 and
//! Podman 4.3 both serve on their API), each line the builder streams handed to a
//! [`BuildProgress`]; pushing goes the same way, with the credentials `docker login` stored.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::StreamExt as _;

use super::{Engine, bollard_chain};
use crate::adapters::registry::docker_config_credentials;
use crate::core::image_ref::ImageRef;
use crate::core::images::{RECIPE_DIR, RecipeFile};
use crate::core::tar::Tar;

/// A build step (an `apt-get install` on a slow mirror) may print nothing for minutes; a build
/// silent for this long is stuck.
const BUILD_STALL_TIMEOUT: Duration = Duration::from_secs(900);
/// A push that reports nothing for this long is stuck.
const PUSH_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Receives what a build or a push streams; the terminal shows a spinner with the last line, plain
/// output prints the builder's steps.
pub trait BuildProgress: Send + Sync {
    /// One line of `image`'s build or push (a step, a command's output, a layer's status).
    fn line(&self, image: &str, line: &str);
    /// `image` is built (or pushed): `summary` says what came out.
    fn done(&self, image: &str, summary: &str);
}

/// One image to build from the context: its tag, the Dockerfile stage, the build arguments.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    pub tag: &'a str,
    pub target: &'a str,
    pub build_args: &'a [(&'a str, String)],
}

/// The build context: every file, directory and symbolic link of the Movim tree at `source`
/// (without its `.git`, which no image needs), owned by root with its modes, and the recipe under
/// [`RECIPE_DIR`].
pub fn build_context(source: &Path, recipe: &[RecipeFile]) -> anyhow::Result<Vec<u8>> {
    let mut tar = Tar::new();
    add_tree(&mut tar, source, "")?;
    tar.dir(RECIPE_DIR, 0o755);
    for file in recipe {
        tar.file(
            &format!("{RECIPE_DIR}/{}", file.name),
            file.mode,
            file.text.as_bytes(),
        );
    }
    Ok(tar.finish())
}

fn add_tree(tar: &mut Tar, dir: &Path, prefix: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            bail!("{} has a name that is not UTF-8", entry.path().display());
        };
        if prefix.is_empty() && (name == ".git" || name == RECIPE_DIR) {
            continue;
        }
        let path = entry.path();
        let inner = format!("{prefix}{name}");
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .with_context(|| format!("cannot read the link {}", path.display()))?;
            tar.symlink(&inner, &target.to_string_lossy());
        } else if meta.is_dir() {
            tar.dir(&inner, mode);
            add_tree(tar, &path, &format!("{inner}/"))?;
        } else if meta.is_file() {
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            tar.file(&inner, mode, &data);
        }
        // Sockets, fifos and devices have no place in an image's source tree: left out.
    }
    Ok(())
}

impl Engine {
    /// Builds `request` from `context` with the classic builder; returns the image's id.
    pub async fn build_image(
        &self,
        context: &[u8],
        request: &BuildRequest<'_>,
        progress: &dyn BuildProgress,
    ) -> anyhow::Result<String> {
        let args: HashMap<&str, &str> = request
            .build_args
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(&format!("{RECIPE_DIR}/Dockerfile"))
            .t(request.tag)
            .target(request.target)
            .buildargs(&args)
            .rm(true)
            .forcerm(true)
            .build();
        let body = bollard::body_full(context.to_vec().into());
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut id = None;
        loop {
            let Ok(next) = tokio::time::timeout(BUILD_STALL_TIMEOUT, stream.next()).await else {
                bail!(
                    "building {} stalled: no output for {BUILD_STALL_TIMEOUT:?}",
                    request.tag
                );
            };
            let Some(item) = next else { break };
            let info = item.map_err(|e| {
                anyhow::anyhow!("building {} failed: {}", request.tag, bollard_chain(&e))
            })?;
            if let Some(image) = &info.aux {
                id.clone_from(&image.id);
            }
            for text in [info.stream.as_deref(), info.status.as_deref()]
                .into_iter()
                .flatten()
            {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    progress.line(request.tag, line);
                }
            }
        }
        let id = match id {
            Some(id) => id,
            None => self
                .docker
                .inspect_image(request.tag)
                .await
                .with_context(|| {
                    format!("{} was built but the engine cannot show it", request.tag)
                })?
                .id
                .unwrap_or_default(),
        };
        progress.done(request.tag, &id);
        Ok(id)
    }

    /// Pushes `image` (a tag) to its registry, with the credentials `docker login` stored for it.
    pub async fn push_image(
        &self,
        image: &ImageRef,
        progress: &dyn BuildProgress,
    ) -> anyhow::Result<()> {
        let tag = image.tag.clone().unwrap_or_else(|| "latest".to_owned());
        let shown = format!("{}:{tag}", image.name());
        let credentials = docker_config_credentials(&image.registry).map(|c| DockerCredentials {
            username: Some(c.username),
            password: Some(c.password.expose().to_owned()),
            serveraddress: Some(image.registry.clone()),
            ..Default::default()
        });
        let options = PushImageOptionsBuilder::new().tag(&tag).build();
        let mut stream = self
            .docker
            .push_image(&image.name(), Some(options), credentials);
        loop {
            let Ok(next) = tokio::time::timeout(PUSH_STALL_TIMEOUT, stream.next()).await else {
                bail!("pushing {shown} stalled: no progress for {PUSH_STALL_TIMEOUT:?}");
            };
            let Some(item) = next else { break };
            let info = item.map_err(|e| {
                anyhow::anyhow!(
                    "pushing {shown} to {} failed: {}",
                    image.registry,
                    bollard_chain(&e)
                )
            })?;
            if let Some(status) = info.status.as_deref() {
                progress.line(&shown, status);
            }
        }
        progress.done(&shown, "pushed");
        Ok(())
    }
}
