//! `init`'s check of the host ports the stack publishes, before anything is written: an engine
//! running rootless cannot publish below the kernel's unprivileged start, nor let the proof reach
//! web at its container address (Caddy mode); every port must be free, unless our own running
//! service already holds it.

use crate::adapters::Tools;
use crate::core::deployment::Deployment;
use crate::core::ports::{self, published};
use crate::error::Failure;
use crate::stack;

/// Refuses what the engine cannot publish or reach, then any port taken by something else.
pub(super) async fn check(tools: &Tools, d: &Deployment) -> Result<(), Failure> {
    let refusal = ports::unpublishable(d, tools.engine.lowest_publishable_port()).or_else(|| {
        (!tools.engine.reaches_container_addresses())
            .then(|| ports::unreachable_web(d))
            .flatten()
    });
    if let Some((summary, details, next)) = refusal {
        let f = details
            .into_iter()
            .fold(Failure::usage(summary), Failure::detail);
        return Err(next.into_iter().fold(f, Failure::next));
    }
    for p in published(d) {
        if let Some(c) = stack::container(tools, &d.project, p.service).await?
            && c.running
        {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind((p.ip, p.port)) {
            return Err(Failure::usage(format!(
                "port {} on {} is taken; {} needs it",
                p.port, p.ip, p.service
            ))
            .because(e)
            .next(format!(
                "ss -ltnp 'sport = :{}'   (or choose another with {})",
                p.port, p.flag
            )));
        }
    }
    Ok(())
}
