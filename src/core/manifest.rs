//! What a deployment's manifests say, read back from their text: the images each service runs and
//! the mounts web, fpm and daemon must have (`compose.yaml`, or the Podman rendering `kube/podman.yaml`).
//! Pure: doctor compares these with what the engine reports.

use crate::core::deployment::Deployment;
use crate::core::layout::Layout;
use crate::core::render::{self, compose::ComposeFile};
use crate::core::secret::Secret;
use std::collections::BTreeMap;

/// The images compose runs, by service, from the file as it is on disk.
pub fn compose_images(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let services = value
        .get("services")
        .and_then(yaml_serde::Value::as_mapping)
        .ok_or("it has no `services`")?;
    Ok(services
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str()?.to_owned(),
                v.get("image")
                    .and_then(yaml_serde::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        })
        .collect())
}

/// The images `podman kube play` runs, by container name (init containers included), from
/// `kube/podman.yaml` as it is on disk; an error when it holds no pod with containers.
pub fn kube_images(text: &str) -> Result<BTreeMap<String, String>, String> {
    use serde::Deserialize as _;
    let mut out = BTreeMap::new();
    let mut pods = 0;
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = yaml_serde::Value::deserialize(doc).map_err(|e| e.to_string())?;
        if value.get("kind").and_then(yaml_serde::Value::as_str) != Some("Pod") {
            continue;
        }
        pods += 1;
        let spec = value.get("spec").ok_or("a Pod has no `spec`")?;
        for list in ["initContainers", "containers"] {
            for c in spec
                .get(list)
                .and_then(yaml_serde::Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = c
                    .get("name")
                    .and_then(yaml_serde::Value::as_str)
                    .ok_or(format!("a container of `{list}` has no name"))?;
                let image = c
                    .get("image")
                    .and_then(yaml_serde::Value::as_str)
                    .unwrap_or_default();
                out.insert(name.to_owned(), image.to_owned());
            }
        }
    }
    if pods == 0 || out.is_empty() {
        return Err("it holds no Pod with containers".to_owned());
    }
    Ok(out)
}

/// A compose volume entry `source:destination[:mode]`.
pub fn parse_volume(spec: &str) -> (&str, &str, bool) {
    let mut parts = spec.splitn(3, ':');
    let source = parts.next().unwrap_or_default();
    let dest = parts.next().unwrap_or_default();
    let ro = parts
        .next()
        .is_some_and(|m| m.split(',').any(|o| o == "ro"));
    (source, dest, ro)
}

/// One mount a Movim container must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedMount {
    pub dest: String,
    pub ro: bool,
    /// The named volume it must be (shared between the containers); `None`: a bind mount.
    pub volume: Option<String>,
}

pub fn compose_mounts(compose: &ComposeFile, project: &str) -> BTreeMap<String, Vec<WantedMount>> {
    let mut out = BTreeMap::new();
    for service in ["fpm", "daemon", "web"] {
        let Some(spec) = compose.services.get(service) else {
            continue;
        };
        let wanted = spec
            .volumes
            .iter()
            .map(|v| {
                let (source, dest, ro) = parse_volume(v);
                let named = !source.starts_with(['.', '/', '~']);
                WantedMount {
                    dest: dest.to_owned(),
                    ro,
                    volume: named.then(|| format!("{project}_{source}")),
                }
            })
            .collect();
        out.insert(service.to_owned(), wanted);
    }
    out
}

/// The volume mounts of web, fpm and daemon in a Podman manifest: a `persistentVolumeClaim` is
/// the named volume of the claim, a `hostPath` a bind mount; memory-backed `emptyDir`s are left
/// out (Podman does not show them as mounts).
pub fn kube_mounts(text: &str) -> Result<BTreeMap<String, Vec<WantedMount>>, String> {
    use serde::Deserialize as _;
    use yaml_serde::Value;
    let mut out = BTreeMap::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let pod = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if pod.get("kind").and_then(Value::as_str) != Some("Pod") {
            continue;
        }
        let volumes: BTreeMap<&str, Option<Option<String>>> = pod
            .get("spec")
            .and_then(|s| s.get("volumes"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?;
                let kind = if let Some(claim) = v.get("persistentVolumeClaim") {
                    Some(Some(claim.get("claimName")?.as_str()?.to_owned()))
                } else if v.get("hostPath").is_some() {
                    Some(None)
                } else {
                    None
                };
                Some((name, kind))
            })
            .collect();
        for c in pod
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let Some(service @ ("web" | "fpm" | "daemon")) = c.get("name").and_then(Value::as_str)
            else {
                continue;
            };
            let mut wanted = Vec::new();
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                let dest = m
                    .get("mountPath")
                    .and_then(Value::as_str)
                    .ok_or(format!("a volume mount of {service} has no mountPath"))?;
                let Some(Some(volume)) = volumes.get(name) else {
                    continue; // an emptyDir or an unknown volume
                };
                wanted.push(WantedMount {
                    dest: dest.to_owned(),
                    ro: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                    volume: volume.clone(),
                });
            }
            out.insert(service.to_owned(), wanted);
        }
    }
    Ok(out)
}

/// The images the manifest of `layout` runs, by service (kube: by container), from its text.
pub fn images(layout: Layout, text: &str) -> Result<BTreeMap<String, String>, String> {
    match layout {
        Layout::Compose => compose_images(text),
        Layout::KubePlay => kube_images(text),
    }
}

/// The mounts of fpm, daemon and web as `init` writes them today for `d` running `images`:
/// compose.yaml's volumes, or the volume mounts of the rendered `kube/podman.yaml` (a claim is
/// the Podman volume of its name).
pub fn expected_mounts(
    layout: Layout,
    d: &Deployment,
    images: &BTreeMap<String, String>,
    password: &Secret,
    dir: &std::path::Path,
) -> Option<BTreeMap<String, Vec<WantedMount>>> {
    match layout {
        Layout::Compose => {
            let compose = render::compose::build(d, images).ok()?;
            Some(compose_mounts(&compose, &d.project))
        }
        Layout::KubePlay => {
            let files = render::kube::files(d, password, images, dir).ok()?;
            kube_mounts(&files.get(render::kube::PODMAN_FILE)?.content).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_with_their_mode() {
        assert_eq!(
            parse_volume("movim-public-cache:/var/www/movim/public/cache:ro"),
            ("movim-public-cache", "/var/www/movim/public/cache", true)
        );
        assert_eq!(
            parse_volume("./movim.env:/var/www/movim/.env:ro"),
            ("./movim.env", "/var/www/movim/.env", true)
        );
        assert_eq!(
            parse_volume("movim-cache:/var/www/movim/cache"),
            ("movim-cache", "/var/www/movim/cache", false)
        );
    }

    const POD: &str = r"# header
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: movim}
spec:
  initContainers:
  - {name: migrate, image: 'd@sha256:1'}
  containers:
  - name: web
    image: 'w@sha256:2'
    volumeMounts:
    - {name: public-cache, mountPath: /c, readOnly: true}
  - name: fpm
    image: 'f@sha256:3'
    volumeMounts:
    - {name: env, mountPath: /e, readOnly: true}
    - {name: public-cache, mountPath: /c}
    - {name: tmp, mountPath: /tmp}
  volumes:
  - {name: env, hostPath: {path: /srv/kube/movim.env, type: File}}
  - {name: public-cache, persistentVolumeClaim: {claimName: movim-public-cache}}
  - {name: tmp, emptyDir: {medium: Memory}}
";

    #[test]
    fn kube_images_are_read_by_container_init_containers_included() {
        let images = kube_images(POD).expect("parses");
        assert_eq!(
            images.into_iter().collect::<Vec<_>>(),
            [
                ("fpm".to_owned(), "f@sha256:3".to_owned()),
                ("migrate".to_owned(), "d@sha256:1".to_owned()),
                ("web".to_owned(), "w@sha256:2".to_owned()),
            ]
        );
        assert!(kube_images("kind: ConfigMap\n").is_err());
        assert!(kube_images("kind: Pod\nspec: [").is_err());
    }

    #[test]
    fn kube_mounts_name_claims_as_volumes_and_host_paths_as_binds() {
        let mounts = kube_mounts(POD).expect("parses");
        let want = |dest: &str, ro, volume: Option<&str>| WantedMount {
            dest: dest.to_owned(),
            ro,
            volume: volume.map(str::to_owned),
        };
        assert_eq!(
            mounts["web"],
            [want("/c", true, Some("movim-public-cache"))]
        );
        // The memory-backed emptyDir is not a mount Podman shows: left out.
        assert_eq!(
            mounts["fpm"],
            [
                want("/e", true, None),
                want("/c", false, Some("movim-public-cache"))
            ]
        );
    }

    #[test]
    fn compose_images_read_any_hand_edited_file() {
        let images = compose_images("services:\n  web:\n    image: a/b:c\n    extra: 1\n  x: {}\n")
            .expect("parses");
        assert_eq!(images.get("web").map(String::as_str), Some("a/b:c"));
        assert_eq!(images.get("x").map(String::as_str), Some(""));
        assert!(compose_images("nope: 1").is_err());
    }
}
