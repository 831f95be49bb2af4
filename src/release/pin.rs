//! Pinning a target release's images by digest at the registry (and the pinned `pg_dump` image
//! that backs up an external database).

use crate::adapters::registry::RegistryClient;
use crate::context::Context;
use crate::core::deployment::{Deployment, POSTGRES_TAG};
use crate::core::image_ref::ImageRef;
use crate::core::lockfile::Lock;
use crate::error::{Failure, OrFail};
use std::collections::BTreeMap;

/// Pins the target's images: a service whose unpinned reference does not change keeps its
/// digest (the database is not upgraded behind the user's back); the others are resolved.
pub async fn pin_target(
    ctx: &Context,
    to: &Deployment,
    lock: &Lock,
) -> Result<BTreeMap<String, String>, Failure> {
    ctx.ui
        .step(&format!("resolving the images of {} by digest", to.version));
    let client = RegistryClient::new(to.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    let mut images = BTreeMap::new();
    for (service, reference) in to.images() {
        if let Some(kept) = lock
            .images
            .get(&service)
            .filter(|p| p.split('@').next() == Some(reference.as_str()))
        {
            images.insert(service, kept.clone());
            continue;
        }
        let pinned = resolve(&client, &reference).await?;
        images.insert(service, pinned);
    }
    Ok(images)
}

pub async fn resolve(client: &RegistryClient, reference: &str) -> Result<String, Failure> {
    let image = ImageRef::parse(reference)
        .map_err(|e| Failure::usage(format!("bad image reference {reference}: {e}")))?;
    let digest = client.resolve(&image).await.map_err(|e| {
        Failure::new(format!("cannot resolve {reference} at its registry"))
            .because(e)
            .detail("nothing was stopped or changed")
            .next("check the release name (--to) and that the registry answers")
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
    let client = RegistryClient::new(d.ca_bundle.as_deref())
        .or_fail(|| "cannot set up the registry client".to_owned())?;
    resolve(&client, &reference).await
}
