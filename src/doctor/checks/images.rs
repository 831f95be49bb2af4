//! `images.*`: every image the manifest runs pinned by digest and equal to the lock.

use crate::adapters::store::Dir;
use crate::core::lockfile::LOCK_FILE;
use crate::core::manifest;
use crate::doctor::report::{Area, Finding};
use std::collections::BTreeSet;

/// Every image pinned by digest and equal to the lock (a service the lock does not name, such as
/// the one-shot `prepare`, must run one of the lock's images).
#[allow(clippy::too_many_lines)] // one finding per way an image can differ from the lock
pub fn check_images(s: &Dir) -> Vec<Finding> {
    let (Some(text), Some(lock)) = (&s.main_text, s.lock()) else {
        return Vec::new();
    };
    let main_file = s.layout.main_file();
    let read = manifest::images(s.layout, text);
    let images = match read {
        Ok(i) => i,
        Err(e) => {
            return vec![
                Finding::error(
                    Area::Images,
                    "images.pinned",
                    format!("cannot read the images of {main_file}"),
                )
                .detail(e)
                .hint(format!(
                    "restore what init writes: movim-setup init --dir {}",
                    s.dir.display()
                )),
            ];
        }
    };
    let restore = format!(
        "if the edit was not on purpose, restore the pinned file (the edited one is kept in backups/files/): movim-setup init --dir {}",
        s.dir.display()
    );
    let pinned: BTreeSet<&String> = lock.images.values().collect();
    let mut out = Vec::new();
    for (service, image) in &images {
        if !image.contains("@sha256:") {
            out.push(
                Finding::error(
                    Area::Images,
                    format!("images.{service}.pinned"),
                    format!("{service} runs `{image}`, not pinned by digest: the tag can move to other code"),
                )
                .hint(restore.clone()),
            );
            continue;
        }
        let matches = match lock.images.get(service) {
            Some(locked) => locked == image,
            None => pinned.contains(image),
        };
        if !matches {
            let locked = lock
                .images
                .get(service)
                .map_or_else(|| "none of its images".to_owned(), Clone::clone);
            out.push(
                Finding::error(
                    Area::Images,
                    format!("images.{service}.lock"),
                    format!("{service} runs `{image}` but {LOCK_FILE} pins {locked}"),
                )
                .hint(restore.clone()),
            );
        }
    }
    for service in lock.images.keys().filter(|s| !images.contains_key(*s)) {
        out.push(
            Finding::error(
                Area::Images,
                format!("images.{service}.lock"),
                format!("{LOCK_FILE} pins {service} but {main_file} has no such service"),
            )
            .hint(restore.clone()),
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            Area::Images,
            "images.pinned",
            format!(
                "all {} images pinned by digest, as in {LOCK_FILE} (Movim {})",
                images.len(),
                lock.movim
            ),
        ));
    }
    out
}
