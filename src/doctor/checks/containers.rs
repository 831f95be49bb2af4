//! `container.<svc>.*`: each service's container running, healthy, not looping, not OOM-killed,
//! on the locked image.

use crate::core::containers::{ContainerInfo, container_of};
use crate::core::deployment::Deployment;
use crate::core::lockfile::Lock;
use crate::core::movim::{DAEMON_EXIT_QUIRK, daemon_exit_meaning};
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};
use std::collections::{BTreeMap, BTreeSet};

/// `containers.list`: the engine could not say which containers the project has.
pub fn cannot_list(d: &Deployment, why: &str, hints: &Hints) -> Finding {
    Finding::error(
        Area::Containers,
        "containers.list",
        format!("cannot list the containers of project {}", d.project),
    )
    .detail(why.to_owned())
    .hint(hints.list())
}

/// Each service's container: running, healthy, not looping (`restarting` are the containers seen
/// restarting again while doctor watched), not OOM-killed, on the locked image; `logs` quotes
/// each container's last lines.
#[allow(clippy::too_many_lines)] // one finding per state a container can be in, in the order a reader meets them
pub fn check_containers(
    all: &[ContainerInfo],
    d: &Deployment,
    lock: Option<&Lock>,
    hints: &Hints,
    still_restarting: &BTreeSet<String>,
    logs: &BTreeMap<String, Vec<String>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let last_lines = |c: &ContainerInfo| logs.get(&c.id).cloned().unwrap_or_default();
    for (service, _) in d.images() {
        let c_id = |s: &str| format!("container.{service}.{s}");
        let Some(c) = container_of(all, &service) else {
            out.push(
                Finding::error(
                    Area::Containers,
                    c_id("running"),
                    format!("{service} has no container"),
                )
                .hint(format!(
                    "start the stack in order (migrations first): {}",
                    hints.start_stack()
                )),
            );
            continue;
        };
        // A looping container never stays up long enough to pass its healthcheck; one that
        // restarted before and is healthy now has recovered (a warning below).
        let looping = c.status == "restarting"
            || (c.restart_count >= 3 && c.health.as_deref() != Some("healthy"))
            || still_restarting.contains(&c.id);
        if looping {
            let mut f = Finding::error(
                Area::Containers,
                c_id("restarts"),
                format!(
                    "{service} ({}) is restarting in a loop: {} restarts{}",
                    c.name,
                    c.restart_count,
                    c.exit_code
                        .map_or_else(String::new, |e| format!(", last exit code {e}"))
                ),
            );
            if service == "daemon" {
                f = f.detail(daemon_exit_meaning(c.exit_code)).hint(format!(
                    "read why in its log, and if migrations are pending apply them: {}",
                    hints.migrate()
                ));
            } else {
                f = f.hint(format!("read why: {}", hints.logs(&service)));
            }
            out.push(f.details(last_lines(c)));
        } else if !c.running {
            let code = c
                .exit_code
                .map_or_else(String::new, |e| format!(" with code {e}"));
            let mut f = Finding::error(
                Area::Containers,
                c_id("running"),
                format!("{service} ({}) is not running: {}{code}", c.name, c.status),
            );
            if service == "daemon" && c.exit_code != Some(0) {
                f = f.detail(daemon_exit_meaning(c.exit_code));
            }
            let start = if service == "daemon" && c.exit_code == Some(0) {
                f = f.detail(DAEMON_EXIT_QUIRK);
                // Exit 0 may mean pending migrations.
                format!(
                    "start it: {}   (if its log says migrations are pending: {})",
                    hints.start(&service),
                    hints.migrate()
                )
            } else {
                format!("start it: {}", hints.start(&service))
            };
            out.push(f.details(last_lines(c)).hint(start));
        } else {
            let health = match c.health.as_deref() {
                Some(h) => h.to_owned(),
                None => "no healthcheck".to_owned(),
            };
            out.push(Finding::ok(
                Area::Containers,
                c_id("running"),
                format!("{service}: running, {health} ({})", c.name),
            ));
            match c.health.as_deref() {
                Some("unhealthy") => out.push(
                    Finding::error(
                        Area::Containers,
                        c_id("healthy"),
                        format!("{service} is running but unhealthy"),
                    )
                    .details(last_lines(c))
                    .hint(format!("read why: {}", hints.logs(&service))),
                ),
                Some("starting") => out.push(
                    Finding::warn(
                        Area::Containers,
                        c_id("healthy"),
                        format!("{service} is still starting (health not known yet)"),
                    )
                    .hint("wait a minute, then run: movim-setup doctor"),
                ),
                _ => {}
            }
            if c.restart_count > 0 {
                out.push(
                    Finding::warn(
                        Area::Containers,
                        c_id("restarts"),
                        format!(
                            "{service} restarted on its own {} time(s) since it was last started",
                            c.restart_count
                        ),
                    )
                    .hint(format!("read why: {}", hints.logs(&service))),
                );
            }
        }
        if c.oom_killed {
            out.push(
                Finding::error(
                    Area::Containers,
                    c_id("oom"),
                    format!("{service} was killed for lack of memory"),
                )
                .hint(format!(
                    "give the host (or the container's limit) more memory, then: {}",
                    hints.start(&service)
                )),
            );
        }
        if let Some(locked) = lock.and_then(|l| l.images.get(&service))
            && !c.runs_image(locked)
        {
            out.push(
                Finding::warn(
                    Area::Containers,
                    c_id("image"),
                    format!("{service} runs `{}`, not the locked `{locked}`", c.image),
                )
                .hint(format!(
                    "recreate it from the pinned image: {}",
                    hints.recreate(&service)
                )),
            );
        }
    }
    out
}
