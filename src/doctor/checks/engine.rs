//! `engine.*` and `compose.tool`: the engine answers (and, for a kube-played deployment, is Podman),
//! a compose tool is found; and, when either is missing, the one finding that says why the stack
//! was not checked.

use crate::adapters::runner;
use crate::core::layout::Layout;
use crate::core::render::kube::PODMAN_FILE;
use crate::doctor::facts::Facts;
use crate::doctor::report::{Area, Finding};

pub fn check_engine(f: &Facts) -> Vec<Finding> {
    let kube = f.dir.layout == Layout::KubePlay;
    let mut out = Vec::new();
    match &f.engine {
        Ok(e) => out.push(Finding::ok(
            Area::Engine,
            "engine.reachable",
            format!("{} {} (API {}) at {}", e.kind, e.version, e.api_version, e.endpoint),
        )),
        Err(why) => out.push(
            Finding::error(Area::Engine, "engine.reachable", "the container engine does not answer")
                .detail(why.clone())
                .hint(if kube {
                    "start Podman's API service (podman system service --time=0 &), then check: podman info"
                } else {
                    "start it (sudo systemctl start docker; for Podman: podman system service --time=0 &), then check: docker info"
                }),
        ),
    }
    // A kube-played deployment runs on Podman only: another engine has none of its containers.
    if let (true, Ok(e)) = (kube, &f.engine) {
        out.push(if runner::engine_fits(f.dir.layout, e.kind) {
            Finding::ok(
                Area::Engine,
                "engine.runner",
                format!(
                    "{PODMAN_FILE} is run by `podman kube play` on {} {}",
                    e.kind, e.version
                ),
            )
        } else {
            Finding::error(
                Area::Engine,
                "engine.runner",
                format!(
                    "{PODMAN_FILE} is run by `podman kube play`, but the engine found is {}",
                    e.kind
                ),
            )
            .hint(format!(
                "check it on Podman: movim-setup doctor --engine podman --dir {}",
                f.dir.dir.display()
            ))
        });
    }
    match &f.compose {
        None => {}
        Some(Ok(c)) => out.push(Finding::ok(Area::Engine, "compose.tool", c.describe.clone())),
        Some(Err(why)) => out.push(
            Finding::error(Area::Engine, "compose.tool", "no compose tool found")
                .details(why.lines().map(str::to_owned))
                .hint("install Docker Compose v2, or name yours: movim-setup doctor --compose \"docker-compose\""),
        ),
    }
    out
}

/// When the engine or the answers are missing, the stack checks cannot run: one finding says so.
pub fn skipped(f: &Facts) -> Finding {
    let engine_missing = f
        .engine
        .as_ref()
        .map_or(true, |e| !runner::engine_fits(f.dir.layout, e.kind));
    let why = if engine_missing && f.dir.layout == Layout::KubePlay {
        "the engine does not answer or is not Podman"
    } else if engine_missing {
        "the engine does not answer"
    } else if f.dir.deployment.is_err() {
        "movim-setup.yaml is not valid"
    } else {
        "of an earlier problem"
    };
    Finding::warn(
        Area::Containers,
        "containers.skipped",
        format!("containers, database, web and XMPP were not checked because {why}"),
    )
    .hint("fix the errors above, then run: movim-setup doctor")
}
