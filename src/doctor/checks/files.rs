//! `files.*`: each generated file present and parseable; `compose.yaml` judged by the compose tool.

use crate::adapters::store::Dir;
use crate::core::layout::Layout;
use crate::core::lockfile::LOCK_FILE;
use crate::core::manifest::compose_images;
use crate::core::manifest::kube_images;
use crate::core::render::kube::PODMAN_FILE;
use crate::core::render::{ANSWERS_FILE, COMPOSE_FILE};
use crate::doctor::facts::{ComposeInfo, Outcome};
use crate::doctor::report::{Area, Finding};

#[allow(clippy::too_many_lines)] // one finding per generated file, in the order a reader meets them
pub fn check_files(s: &Dir) -> Vec<Finding> {
    let restore = |name: &str| {
        format!(
            "restore {name} from {d}/backups/files/, or let init write it again: movim-setup init --dir {d}",
            d = s.dir.display()
        )
    };
    let mut out = Vec::new();
    out.push(match &s.deployment {
        Ok(d) => Finding::ok(
            Area::Files,
            "files.answers",
            format!(
                "{ANSWERS_FILE}: project {}, {}, Movim {}",
                d.project,
                d.domain.public_url(),
                d.version
            ),
        ),
        Err(e) => Finding::error(
            Area::Files,
            "files.answers",
            format!("{ANSWERS_FILE} is not valid"),
        )
        .detail(e.clone())
        .hint(restore(ANSWERS_FILE)),
    });
    if s.layout == Layout::KubePlay {
        out.push(match s.main_text.as_deref().map(kube_images) {
            None => Finding::error(
                Area::Files,
                "files.kube",
                format!("{PODMAN_FILE} is missing"),
            )
            .hint(restore(PODMAN_FILE)),
            Some(Err(e)) => Finding::error(
                Area::Files,
                "files.kube",
                format!("{PODMAN_FILE} is not a valid pod manifest"),
            )
            .detail(e)
            .hint(restore(PODMAN_FILE)),
            Some(Ok(images)) => Finding::ok(
                Area::Files,
                "files.kube",
                format!(
                    "{PODMAN_FILE}: pods for `podman kube play`, {} containers",
                    images.len()
                ),
            ),
        });
    }
    // compose.yaml: parsed here only when no compose tool can judge it (see `compose_config`).
    if s.layout == Layout::Compose && s.main_text.is_none() {
        out.push(
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{COMPOSE_FILE} is missing"),
            )
            .hint(restore(COMPOSE_FILE)),
        );
    }
    let env_file = s.env_file;
    out.push(match &s.env {
        None => Finding::error(Area::Files, "files.env", format!("{env_file} is missing"))
            .hint(restore(env_file)),
        Some(Err(e)) => Finding::error(
            Area::Files,
            "files.env",
            format!("{env_file} cannot be parsed"),
        )
        .detail(e.clone())
        .hint(restore(env_file)),
        Some(Ok(v)) => Finding::ok(
            Area::Files,
            "files.env",
            format!("{env_file}: {} keys", v.len()),
        ),
    });
    out.push(match &s.lock {
        None => Finding::error(Area::Files, "files.lock", format!("{LOCK_FILE} is missing"))
            .hint(restore(LOCK_FILE)),
        Some(Err(e)) => Finding::error(
            Area::Files,
            "files.lock",
            format!("{LOCK_FILE} is not valid"),
        )
        .detail(e.clone())
        .hint(restore(LOCK_FILE)),
        Some(Ok(l)) => Finding::ok(
            Area::Files,
            "files.lock",
            format!(
                "{LOCK_FILE}: Movim {}, {} pinned images",
                l.movim,
                l.images.len()
            ),
        ),
    });
    out
}

/// `files.compose`: the compose tool's own `config` is the judge of whether the file is valid
/// (`config`: what it answered, when a tool was found).
pub fn compose_config(
    s: &Dir,
    compose: Option<&Result<ComposeInfo, String>>,
    config: Option<&Outcome>,
) -> Vec<Finding> {
    let (Layout::Compose, Some(text)) = (s.layout, &s.main_text) else {
        return Vec::new(); // missing: reported with the other files; kube: `files.kube`
    };
    let fix = format!(
        "restore what init writes: movim-setup init --dir {}",
        s.dir.display()
    );
    if let Err(e) = compose_images(text) {
        return vec![
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{COMPOSE_FILE} is not valid YAML"),
            )
            .detail(e)
            .hint(fix),
        ];
    }
    let (Some(Ok(tool)), Some(config)) = (compose, config) else {
        return vec![Finding::ok(
            Area::Files,
            "files.compose",
            format!("{COMPOSE_FILE} parses (no compose tool to validate it)"),
        )];
    };
    match config {
        Outcome::Ran(..) => vec![Finding::ok(
            Area::Files,
            "files.compose",
            format!("{COMPOSE_FILE} accepted by {}", tool.display),
        )],
        Outcome::Failed(e) => vec![
            Finding::error(
                Area::Files,
                "files.compose",
                format!("{} rejects {COMPOSE_FILE}", tool.display),
            )
            .details(e.lines().take(10).map(str::to_owned))
            .hint(fix),
        ],
        Outcome::TimedOut => vec![
            Finding::warn(
                Area::Files,
                "files.compose",
                format!("{} config did not answer in time", tool.display),
            )
            .hint(tool.config_command.clone()),
        ],
    }
}
