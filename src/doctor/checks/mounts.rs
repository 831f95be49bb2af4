//! `mounts.*`: the shared volumes mounted as the manifest says (web read-only), writable by uid 82.

use crate::adapters::store::Dir;
use crate::core::containers::{ContainerInfo, container_of};
use crate::core::deployment::Deployment;
use crate::core::manifest;
use crate::core::manifest::WantedMount;
use crate::doctor::MOVIM_UID;
use crate::doctor::facts::Outcome;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};
use std::collections::BTreeMap;

/// The mounts of fpm, daemon and web as init writes them today: compose.yaml's volumes, or the
/// volume mounts of the rendered `kube/podman.yaml` (a claim is the Podman volume of its name).
pub fn expected_mounts(s: &Dir, d: &Deployment) -> Option<BTreeMap<String, Vec<WantedMount>>> {
    let lock = s.lock()?;
    manifest::expected_mounts(s.layout, d, &lock.images, &s.password()?, &s.dir)
}

/// How `c`'s mounts differ from `spec`, and the shared directories it must be able to write.
fn compare(spec: &[WantedMount], c: &ContainerInfo) -> (Vec<String>, Vec<String>) {
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
    (problems, writable)
}

/// The write probes to run: (service, its running container, the directories it must write) for
/// fpm and the daemon.
#[must_use]
pub fn write_probes(
    expected: &BTreeMap<String, Vec<WantedMount>>,
    all: &[ContainerInfo],
) -> Vec<(&'static str, String, Vec<String>)> {
    ["fpm", "daemon"]
        .into_iter()
        .filter_map(|service| {
            let (spec, c) = (expected.get(service)?, container_of(all, service)?);
            let (_, writable) = compare(spec, c);
            (c.running && !writable.is_empty()).then(|| (service, c.id.clone(), writable))
        })
        .collect()
}

/// Each Movim container mounts what compose.yaml (kube: `kube/podman.yaml`) says (named volumes
/// shared, web's read-only), and fpm and daemon can write their shared directories as the uid
/// they run as (`writable`: the write probe of each).
pub fn check_mounts(
    all: &[ContainerInfo],
    s: &Dir,
    expected: Option<&BTreeMap<String, Vec<WantedMount>>>,
    hints: &Hints,
    writable: &BTreeMap<String, Outcome>,
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
    for service in ["fpm", "daemon", "web"] {
        let (Some(spec), Some(c)) = (expected.get(service), container_of(all, service)) else {
            continue;
        };
        let (problems, _) = compare(spec, c);
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
    }
    for service in ["fpm", "daemon"] {
        if let Some(f) = writable
            .get(service)
            .and_then(|result| write_finding(service, result, hints))
        {
            out.push(f);
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

/// What the write probe in `service` says, when it is a problem.
fn write_finding(service: &str, result: &Outcome, hints: &Hints) -> Option<Finding> {
    let id = format!("mounts.{service}.writable");
    let ls = hints.exec(service, "ls -ld /var/www/movim/cache");
    Some(match result {
        Outcome::Ran(0, _) => return None,
        Outcome::Ran(1, output) => Finding::error(
            Area::Containers,
            id,
            format!("{service} (uid {MOVIM_UID}) cannot write its shared directories"),
        )
        .details(output.lines().map(|l| format!("not writable: {l}")))
        .hint(format!(
            "hand them to uid {MOVIM_UID}: {}",
            hints.chown(service)
        )),
        Outcome::Ran(code, output) => Finding::warn(
            Area::Containers,
            id,
            format!("cannot test writes in {service} (php exited {code})"),
        )
        .details(output.lines().take(5).map(str::to_owned))
        .hint(ls),
        Outcome::Failed(e) => Finding::warn(
            Area::Containers,
            id,
            format!("cannot test writes in {service}"),
        )
        .detail(e.clone())
        .hint(ls),
        Outcome::TimedOut => Finding::warn(
            Area::Containers,
            id,
            format!("testing writes in {service} timed out"),
        )
        .hint(ls),
    })
}

/// Prints each argument that is not a writable directory; exits 1 if any.
pub const WRITABLE_PHP: &str = include_str!("../probes/writable.php");
