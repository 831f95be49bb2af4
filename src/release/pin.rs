//! Pinning images by digest at the registry, one policy for `init` and for a release transition
//! (and the pinned `pg_dump` image that backs up an external database).

use crate::adapters::registry::Registry;
use crate::context::Context;
use crate::core::deployment::{Deployment, POSTGRES_TAG};
use crate::core::image_ref::ImageRef;
use crate::core::lockfile::{self, Lock};
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

/// The postgres image whose `pg_dump` backs up an external database, pinned.
pub async fn backup_tool(ctx: &Context, d: &Deployment) -> Result<String, Failure> {
    let reference = format!(
        "{}/postgres:{POSTGRES_TAG}",
        d.library_repository.trim_end_matches('/')
    );
    ctx.ui.info(&format!(
        "the external database is backed up with pg_dump from {reference}"
    ));
    let client = ctx
        .registries
        .client(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    resolve(client.as_ref(), &reference, &RELEASE).await
}
