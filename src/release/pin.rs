//! Pinning images by digest at the registry, one policy for `init` and for a release transition
//! (and the pinned `pg_dump` image that backs up an external database).

use crate::adapters::registry::Registry;
use crate::context::Context;
use crate::core::deployment::{Deployment, POSTGRES_TAG};
use crate::core::image_ref::ImageRef;
use crate::core::lockfile::{self, Lock};
use crate::core::plan::{Kind, Observed};
use crate::error::{Failure, OrFail};
use std::collections::BTreeMap;

/// What a failed resolution tells the user: `detail` (if any) and the command to fix it.
pub struct OnError {
    pub detail: Option<&'static str>,
    pub next: &'static str,
}

/// `init`'s words: nothing runs yet, the answers name the images.
pub const INIT: OnError = OnError {
    detail: None,
    next: "check --release and --image-repository, then: movim-setup init",
};

/// An upgrade's or rollback's words: nothing was touched yet.
pub const RELEASE: OnError = OnError {
    detail: Some("nothing was stopped or changed"),
    next: "check the release name (--to) and that the registry answers",
};

/// The one pinning policy: every image of `d`, by digest. A service whose unpinned reference is
/// the one `locked` pins keeps its recorded digest — a re-pointed mutable tag never changes what
/// a deployment runs, and the database is not upgraded behind the user's back; the others are
/// resolved at their registry.
pub async fn pin_images(
    ctx: &Context,
    d: &Deployment,
    locked: Option<&BTreeMap<String, String>>,
    on_error: &OnError,
) -> Result<BTreeMap<String, String>, Failure> {
    let client = ctx
        .registries
        .client(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let mut images = BTreeMap::new();
    for (service, reference) in d.images() {
        if let Some(kept) = locked.and_then(|l| lockfile::kept_pin(l, &service, &reference)) {
            images.insert(service, kept.to_owned());
            continue;
        }
        let pinned = resolve(client.as_ref(), &reference, on_error).await?;
        ctx.ui.info(&format!("{service}: {pinned}"));
        images.insert(service, pinned);
    }
    Ok(images)
}

/// Pins the target release's images ([`pin_images`], keeping what the lock pins).
pub async fn pin_target(
    ctx: &Context,
    to: &Deployment,
    lock: &Lock,
) -> Result<BTreeMap<String, String>, Failure> {
    ctx.ui
        .step(&format!("resolving the images of {} by digest", to.version));
    pin_images(ctx, to, Some(&lock.images), &RELEASE).await
}

/// `reference` pinned by the digest its registry serves now.
pub async fn resolve(
    client: &dyn Registry,
    reference: &str,
    on_error: &OnError,
) -> Result<String, Failure> {
    let image = ImageRef::parse(reference)
        .map_err(|e| Failure::usage(format!("bad image reference {reference}: {e}")))?;
    let digest = client.resolve(&image).await.map_err(|e| {
        let mut f = Failure::new(format!("cannot resolve {reference} at its registry")).because(e);
        if let Some(detail) = on_error.detail {
            f = f.detail(detail);
        }
        f.next(on_error.next)
    })?;
    Ok(image.pinned(&digest))
}

/// The postgres image whose `pg_dump` backs up an external database, pinned: the server's major
/// release (`pg_dump` refuses a newer server), `<library_repository>/postgres:<major>`. Asked
/// before anything stops; when it cannot be resolved the run is refused, naming the server's
/// version, the image and how to make it available.
pub async fn backup_tool(ctx: &Context, d: &Deployment, o: &Observed) -> Result<String, Failure> {
    let major = o.db_major.clone().unwrap_or_else(|| {
        ctx.ui.warn(&format!(
            "cannot tell the major release of PostgreSQL from its version {:?}; backing it up with postgres:{POSTGRES_TAG}",
            o.db_version
        ));
        POSTGRES_TAG.to_owned()
    });
    let reference = d.backup_tool_image(&major);
    ctx.ui.info(&format!(
        "the external database runs PostgreSQL {}: it is backed up with pg_dump from {reference}",
        o.db_version
    ));
    let client = ctx
        .registries
        .client(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let dir = ctx.dir.display();
    let again = match o.kind {
        Kind::Upgrade => format!("movim-setup upgrade --dir {dir} --to {}", o.target),
        Kind::Rollback => format!("movim-setup rollback --dir {dir} --to {}", o.target),
    };
    let image = ImageRef::parse(&reference)
        .map_err(|e| Failure::usage(format!("bad image reference {reference}: {e}")))?;
    let digest = client.resolve(&image).await.map_err(|e| {
        Failure::new(format!(
            "the external database runs PostgreSQL {}, so backing it up needs pg_dump {major} from {reference}, which cannot be resolved at its registry",
            o.db_version
        ))
        .because(e)
        .detail("nothing was stopped or changed")
        .next(format!(
            "make {reference} available (for instance: docker pull docker.io/library/postgres:{major} && docker tag docker.io/library/postgres:{major} {reference} && docker push {reference}), then: {again}"
        ))
        .next(format!(
            "or take the postgres images from a registry that serves postgres:{major}: movim-setup init --dir {dir} --library-repository REGISTRY/PATH, then: {again}"
        ))
    })?;
    Ok(image.pinned(&digest))
}
