//! `init --target kube`: the same answers and pins as a compose deployment, written as Kubernetes
//! manifests (`kube/movim.yaml`) and their Podman rendering (`kube/podman.yaml`, see
//! `render::kube` for why there are two). Nothing is pulled or started: `kubectl apply` or
//! `podman kube play` does that, and the summary names the exact commands.

use super::review::{changes, print_changes, review};
use super::{Context, check_dns, pin, write};
use crate::cli::InitArgs;
use crate::core::deployment::Deployment;
use crate::core::lockfile::Lock;
use crate::core::render::kube::{self, KUBE_ENV_FILE, KUBE_FILE, PODMAN_FILE};
use crate::core::render::{self, ANSWERS_FILE};
use crate::core::secret::Secret;
use crate::error::{ExitStatus, Failure, OrFail};

pub(super) async fn run(
    ctx: &Context,
    args: &InitArgs,
    d: &Deployment,
    password: &Secret,
    saved: Option<&Lock>,
) -> Result<ExitStatus, Failure> {
    ctx.ui
        .step("target kube: manifests for kubectl and for podman kube play");
    check_dns(ctx, d).await;
    let dir = std::path::absolute(&ctx.dir)
        .or_fail(|| format!("cannot resolve {}", ctx.dir.display()))?;
    let lock = pin(ctx, d, saved).await?;
    let mut files = kube::files(d, password, &lock.images, &dir)
        .map_err(|e| Failure::usage("these answers cannot be rendered for Kubernetes").detail(e))?;
    let answers =
        render::answers_yaml(d).map_err(|e| Failure::new("cannot render the answers").detail(e))?;
    files.insert(
        ANSWERS_FILE.to_owned(),
        render::File {
            content: answers,
            mode: 0o644,
            secret: false,
        },
    );
    let changes = changes(&ctx.dir, &files, &lock, KUBE_ENV_FILE)?;
    let existing = saved.is_some();
    if args.dry_run || !existing {
        print_changes(ctx, &changes);
    }
    if args.dry_run {
        ctx.ui.step("dry run: nothing written");
        return Ok(ExitStatus::Success);
    }
    if !review(ctx, &changes, existing)? {
        return Ok(ExitStatus::Failed);
    }
    if !changes.is_empty() {
        write(ctx, &files, &lock, Some(KUBE_ENV_FILE))?;
    }
    ctx.ui.step(&format!(
        "Movim {} for Kubernetes and Podman is in {}",
        d.version,
        dir.join("kube").display()
    ));
    ctx.ui.info(&format!(
        "Podman: podman network create {p}; podman kube play --network {p} {}",
        dir.join(PODMAN_FILE).display(),
        p = d.project
    ));
    ctx.ui.info(&format!(
        "Kubernetes: kubectl apply -f {}   then route your ingress for {} to the Service {}-web, port 80",
        dir.join(KUBE_FILE).display(),
        d.domain,
        d.project
    ));
    Ok(ExitStatus::Success)
}
