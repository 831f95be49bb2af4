//! `movim-setup images build`: Movim's three images (web, fpm, daemon) built from one Movim source
//! tree with the recipe embedded in the binary (`templates/images/`, Debian's PHP), tagged
//! `<repo>/movim-<component>:<release>`, and with `--push` pushed and printed pinned by the digest
//! the registry serves — the references `init --image-repository <repo> --release <release>` pins.
//! Fetching Movim (git clone, composer install) is the user's: the tree must hold its `vendor/`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::adapters::engine::{BuildProgress, BuildRequest, Engine, build_context};
use crate::cli::{ImagesBuildArgs, ImagesCommand};
use crate::context::Context;
use crate::core::deployment::MovimTag;
use crate::core::image_ref::ImageRef;
use crate::core::images::{
    COMPONENTS, LOCAL_REPOSITORY, RECIPE, check_version_file, image_name, known_release,
};
use crate::error::{ExitStatus, Failure, OrFail};
use crate::stack::Machine;

/// How many of the builder's last lines a failed build shows.
const FAILED_BUILD_LINES: usize = 25;

pub async fn run(ctx: &Context, command: ImagesCommand) -> Result<ExitStatus, Failure> {
    match command {
        ImagesCommand::Build(args) => build(ctx, args).await,
    }
}

async fn build(ctx: &Context, args: ImagesBuildArgs) -> Result<ExitStatus, Failure> {
    let release =
        MovimTag::parse(&args.release).map_err(|e| Failure::usage(format!("--release: {e}")))?;
    let source = check_source(&args.source, &release)?;
    let repository = match &args.push {
        Some(repo) => check_repository(repo, &release)?,
        None => LOCAL_REPOSITORY.to_owned(),
    };
    ImageRef::parse(&args.base).map_err(|e| Failure::usage(format!("--base: {e}")))?;
    match known_release(&release) {
        Some(known) => ctx.ui.step(&format!(
            "building Movim {release} (upstream commit {}) from {} on {}",
            &known.commit[..12],
            source.display(),
            args.base
        )),
        None => ctx.ui.warn(&format!(
            "{release} is not a Movim release movim-setup knows (the newest it knows is {}): \
             building it anyway",
            crate::core::images::RELEASES[crate::core::images::RELEASES.len() - 1].tag
        )),
    }

    let context = build_context(&source, &RECIPE)
        .or_fail(|| format!("cannot pack the build context from {}", source.display()))?;
    ctx.ui.info(&format!(
        "build context: {:.1} MiB",
        context.len() as f64 / (1024.0 * 1024.0)
    ));
    let engine = Machine::engine(ctx).await?;
    let progress = Tail::new(ctx.ui.build_progress());
    let build_args = [
        ("BASE", args.base.clone()),
        ("MOVIM_VERSION", release.to_string()),
    ];
    let mut built = Vec::new();
    for component in COMPONENTS {
        let tag = image_name(&repository, component, &release);
        ctx.ui.step(&format!("building {tag}"));
        let request = BuildRequest {
            tag: &tag,
            target: component,
            build_args: &build_args,
        };
        let id = engine
            .build_image(&context, &request, &progress)
            .await
            .map_err(|e| progress.failure(format!("building {tag} failed"), e))?;
        built.push((tag, id));
    }
    if args.push.is_none() {
        for (tag, id) in &built {
            println!("{tag} {id}");
        }
        return Ok(ExitStatus::Success);
    }
    push_and_pin(ctx, &engine, &built, &progress).await
}

/// Pushes each image, then prints it as `repo:tag@sha256:…` with the digest the registry serves
/// for the tag now.
async fn push_and_pin(
    ctx: &Context,
    engine: &Engine,
    built: &[(String, String)],
    progress: &Tail,
) -> Result<ExitStatus, Failure> {
    let registry = ctx
        .registries
        .client(None)
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let mut pinned = Vec::new();
    for (tag, _) in built {
        let image = ImageRef::parse(tag).map_err(Failure::usage)?;
        ctx.ui.step(&format!("pushing {tag}"));
        engine
            .push_image(&image, progress)
            .await
            .map_err(|e| progress.failure(format!("pushing {tag} failed"), e))?;
        let digest = registry
            .resolve(&image)
            .await
            .or_fail(|| format!("{tag} was pushed but its registry does not serve it"))?;
        pinned.push(image.pinned(&digest));
    }
    for reference in pinned {
        println!("{reference}");
    }
    Ok(ExitStatus::Success)
}

/// The source tree as the build needs it: a directory holding `vendor/` and a `VERSION` that is
/// `release`. Anything else is refused before anything is built (exit 2).
fn check_source(source: &Path, release: &MovimTag) -> Result<PathBuf, Failure> {
    let refuse = |why: String| {
        Failure::usage(format!(
            "{} is not a Movim {release} source tree ready to build: {why}",
            source.display()
        ))
    };
    if !source.is_dir() {
        return Err(refuse("it is not a directory".to_owned()));
    }
    if !source.join("vendor").is_dir() {
        return Err(
            refuse("it has no vendor/ directory".to_owned()).next(format!(
                "(cd {} && composer install --no-dev)",
                source.display()
            )),
        );
    }
    let version = std::fs::read_to_string(source.join("VERSION"))
        .map_err(|e| refuse("it has no readable VERSION file".to_owned()).because(e))?;
    check_version_file(&version, release).map_err(refuse)?;
    std::path::absolute(source).or_fail(|| format!("cannot resolve {}", source.display()))
}

/// `--push REPO`: a repository the three images' names can be made under.
fn check_repository(repo: &str, release: &MovimTag) -> Result<String, Failure> {
    let repo = repo.trim_end_matches('/');
    let image = ImageRef::parse(&image_name(repo, "web", release))
        .map_err(|e| Failure::usage(format!("--push {repo}: {e}")))?;
    if image.digest.is_some() || repo.contains('@') {
        return Err(Failure::usage(format!(
            "--push {repo}: a repository, without tag or digest"
        )));
    }
    Ok(repo.to_owned())
}

/// The build's progress as the user sees it, keeping the last lines for a failure's details.
struct Tail {
    inner: Box<dyn BuildProgress>,
    lines: Mutex<VecDeque<String>>,
}

impl Tail {
    fn new(inner: Box<dyn BuildProgress>) -> Self {
        Self {
            inner,
            lines: Mutex::default(),
        }
    }

    fn failure(&self, what: String, cause: anyhow::Error) -> Failure {
        let mut failure = Failure::new(what).because(cause);
        if let Ok(lines) = self.lines.lock() {
            for line in lines.iter() {
                failure = failure.detail(format!("| {line}"));
            }
        }
        failure
    }
}

impl BuildProgress for Tail {
    fn line(&self, image: &str, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == FAILED_BUILD_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_owned());
        }
        self.inner.line(image, line);
    }

    fn done(&self, image: &str, summary: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.clear();
        }
        self.inner.done(image, summary);
    }
}
