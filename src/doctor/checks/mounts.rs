//! `mounts.*`: the shared volumes mounted as the manifest says (web read-only), writable by uid 82.

use crate::adapters::engine::Engine;
use crate::adapters::store::Dir;
use crate::core::containers::{ContainerInfo, container_of};
use crate::core::deployment::Deployment;
use crate::core::layout::Layout;
use crate::core::manifest::WantedMount;
use crate::core::manifest::compose_mounts;
use crate::core::manifest::kube_mounts;
use crate::core::render::kube::{self, PODMAN_FILE};
use crate::core::render::{self};
use crate::doctor::MOVIM_UID;
use crate::doctor::PROBE_TIMEOUT;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};
use std::collections::BTreeMap;

/// The mounts of fpm, daemon and web as init writes them today: compose.yaml's volumes, or the
/// volume mounts of the rendered `kube/podman.yaml` (a claim is the Podman volume of its name).
pub fn expected_mounts(s: &Dir, d: &Deployment) -> Option<BTreeMap<String, Vec<WantedMount>>> {
    let lock = s.lock()?;
    match s.layout {
        Layout::Compose => {
            let compose = render::compose::build(d, &lock.images).ok()?;
            Some(compose_mounts(&compose, &d.project))
        }
        Layout::KubePlay => {
            let files = kube::files(d, &s.password()?, &lock.images, &s.dir).ok()?;
            kube_mounts(&files.get(PODMAN_FILE)?.content).ok()
        }
    }
}

/// Each Movim container mounts what compose.yaml (kube: `kube/podman.yaml`) says (named volumes
/// shared, web's read-only), and fpm and daemon can write their shared directories as the uid
/// they run as.
pub async fn check_mounts(
    engine: &Engine,
    all: &[ContainerInfo],
    s: &Dir,
    expected: Option<&BTreeMap<String, Vec<WantedMount>>>,
    hints: &Hints,
) -> Vec<Finding> {
    let Some(expected) = expected else {
        return vec![
            Finding::warn(
                Area::Containers,
                "mounts",
                format!(
                    "cannot check the mounts without a valid lock and {}",
                    s.env_file
                ),
            )
            .hint("fix the file errors above, then run: movim-setup doctor"),
        ];
    };
    let main_file = s.layout.main_file();
    let mut out = Vec::new();
    let mut probes = Vec::new();
    for service in ["fpm", "daemon", "web"] {
        let (Some(spec), Some(c)) = (expected.get(service), container_of(all, service)) else {
            continue;
        };
        let mut problems = Vec::new();
        let mut writable = Vec::new();
        for want in spec {
            let dest = want.dest.as_str();
            let Some(m) = c.mounts.iter().find(|m| m.destination == dest) else {
                problems.push(format!("{dest} is not mounted"));
                continue;
            };
            if m.read_write == want.ro {
                problems.push(format!(
                    "{dest} is mounted {} but must be {}",
                    if m.read_write {
                        "read-write"
                    } else {
                        "read-only"
                    },
                    if want.ro { "read-only" } else { "read-write" }
                ));
            }
            if let Some(volume) = &want.volume {
                if m.volume_name.as_deref() != Some(volume.as_str()) {
                    problems.push(format!(
                        "{dest} is {} instead of the shared volume {volume}",
                        m.volume_name.as_deref().unwrap_or("a bind mount")
                    ));
                }
                if !want.ro {
                    writable.push(dest.to_owned());
                }
            }
        }
        if !problems.is_empty() {
            out.push(
                Finding::error(
                    Area::Containers,
                    format!("mounts.{service}"),
                    format!("{service}'s mounts differ from {main_file}"),
                )
                .details(problems)
                .hint(format!("recreate it: {}", hints.recreate(service))),
            );
        }
        if c.running && !writable.is_empty() && service != "web" {
            probes.push((service, c, writable));
        }
    }
    let checks = probes.iter().map(|(service, c, dirs)| async move {
        let mut cmd = vec!["php", "-r", WRITABLE_PHP];
        cmd.extend(dirs.iter().map(String::as_str));
        (
            *service,
            tokio::time::timeout(PROBE_TIMEOUT, engine.exec(&c.id, &cmd)).await,
        )
    });
    for (service, result) in futures_util::future::join_all(checks).await {
        let ls = hints.exec(service, "ls -ld /var/www/movim/cache");
        match result {
            Ok(Ok((0, _))) => {}
            Ok(Ok((1, output))) => out.push(
                Finding::error(
                    Area::Containers,
                    format!("mounts.{service}.writable"),
                    format!("{service} (uid {MOVIM_UID}) cannot write its shared directories"),
                )
                .details(output.lines().map(|l| format!("not writable: {l}")))
                .hint(format!(
                    "hand them to uid {MOVIM_UID}: {}",
                    hints.chown(service)
                )),
            ),
            Ok(Ok((code, output))) => out.push(
                Finding::warn(
                    Area::Containers,
                    format!("mounts.{service}.writable"),
                    format!("cannot test writes in {service} (php exited {code})"),
                )
                .details(output.lines().take(5).map(str::to_owned))
                .hint(ls),
            ),
            Ok(Err(e)) => out.push(
                Finding::warn(
                    Area::Containers,
                    format!("mounts.{service}.writable"),
                    format!("cannot test writes in {service}"),
                )
                .detail(format!("{e:#}"))
                .hint(ls),
            ),
            Err(_) => out.push(
                Finding::warn(
                    Area::Containers,
                    format!("mounts.{service}.writable"),
                    format!("testing writes in {service} timed out"),
                )
                .hint(ls),
            ),
        }
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Containers,
            "mounts",
            format!("shared volumes mounted as {main_file} says (web read-only), writable by uid {MOVIM_UID}"),
        ));
    }
    out
}

/// Prints each argument that is not a writable directory; exits 1 if any.
pub const WRITABLE_PHP: &str = include_str!("../probes/writable.php");
