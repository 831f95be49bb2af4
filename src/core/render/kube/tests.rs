//! The kube renderings checked as Kubernetes would check them (no kubectl here): every object has
//! the fields its kind requires, every reference resolves (ConfigMap keys, Secret items, claims,
//! volumes, selectors), every image is pinned by digest, every long-running container has probes;
//! plus a snapshot of each file.

use super::*;
use crate::core::deployment::{Domain, MovimTag};
use std::collections::{BTreeMap, BTreeSet};

fn deployment(database: Database) -> Deployment {
    Deployment {
        project: "movim".into(),
        domain: Domain::parse("movim.example.org").unwrap(),
        tls: Tls::Proxy { http_port: 8080 },
        database,
        xmpp: Xmpp::External {
            domain: Domain::parse("example.org").unwrap(),
        },
        version: MovimTag::parse("v0.29.2").unwrap(),
        image_repository: "ghcr.io/nadiamoe".into(),
        library_repository: "docker.io/library".into(),
        ca_bundle: None,
        movim_env: BTreeMap::new(),
    }
}

fn pinned(d: &Deployment) -> BTreeMap<String, String> {
    d.images()
        .into_iter()
        .enumerate()
        .map(|(i, (service, image))| {
            (
                service,
                format!("{image}@sha256:{}", format!("{i:x}").repeat(64)),
            )
        })
        .collect()
}

fn rendered(d: &Deployment) -> BTreeMap<String, File> {
    files(
        d,
        &Secret::new("s3cret-pw"),
        &pinned(d),
        Path::new("/srv/movim"),
    )
    .unwrap()
}

fn documents(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .skip(1)
        .map(|doc| yaml_serde::from_str(doc).unwrap())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .unwrap()
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn list<'a>(v: &'a Value, k: &str) -> Vec<&'a Value> {
    v.get(k)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// What `kubectl apply --dry-run=server` would refuse, checked by hand for the kinds we write.
#[allow(clippy::too_many_lines)] // one rule per field the API server checks, listed together
fn validate(objects: &[Value], flavour: Flavour) {
    let allowed: &[(&str, &str)] = match flavour {
        Flavour::Kubernetes => &[
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "PersistentVolumeClaim"),
            ("v1", "Service"),
            ("apps/v1", "Deployment"),
        ],
        Flavour::Podman => &[("v1", "ConfigMap"), ("v1", "Pod")],
    };
    let mut names = BTreeSet::new();
    let mut config_keys = BTreeMap::new();
    let mut secret_keys = BTreeMap::new();
    let mut claims = BTreeSet::new();
    let mut pods = Vec::new();
    for o in objects {
        let (api, kind) = (s(o, &["apiVersion"]), s(o, &["kind"]));
        assert!(
            allowed.contains(&(api, kind)),
            "{api} {kind} in {flavour:?}"
        );
        let name = s(o, &["metadata", "name"]);
        // RFC 1123 DNS label/subdomain, as Kubernetes requires of these names.
        assert!(
            name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !name.starts_with('-')
                && !name.ends_with('-'),
            "{name}"
        );
        assert!(
            names.insert((kind.to_owned(), name.to_owned())),
            "{kind} {name} twice"
        );
        let keys = |field: &str| -> BTreeSet<String> {
            o.get(field)
                .and_then(Value::as_mapping)
                .map(|m| m.keys().map(|k| k.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        match kind {
            "ConfigMap" => {
                config_keys.insert(name.to_owned(), keys("data"));
            }
            "Secret" => {
                assert_eq!(s(o, &["type"]), "Opaque");
                secret_keys.insert(name.to_owned(), keys("stringData"));
            }
            "PersistentVolumeClaim" => {
                assert!(!list(at(o, &["spec"]).unwrap(), "accessModes").is_empty());
                s(o, &["spec", "resources", "requests", "storage"]);
                claims.insert(name.to_owned());
            }
            "Service" => {
                let selector = at(o, &["spec", "selector"]).unwrap();
                assert!(
                    objects.iter().any(|d| s(d, &["kind"]) == "Deployment"
                        && at(d, &["spec", "template", "metadata", "labels"]).unwrap() == selector),
                    "Service {name} selects no pod"
                );
                for p in list(at(o, &["spec"]).unwrap(), "ports") {
                    assert!(p.get("port").and_then(Value::as_u64).is_some());
                }
            }
            "Deployment" => {
                let selector = at(o, &["spec", "selector", "matchLabels"]).unwrap();
                let labels = at(o, &["spec", "template", "metadata", "labels"]).unwrap();
                for (k, v) in selector.as_mapping().unwrap() {
                    assert_eq!(labels.get(k.as_str().unwrap()), Some(v), "{name}: selector");
                }
                assert_eq!(s(o, &["spec", "strategy", "type"]), "Recreate");
                pods.push((
                    name.to_owned(),
                    at(o, &["spec", "template", "spec"]).unwrap(),
                ));
            }
            "Pod" => pods.push((name.to_owned(), at(o, &["spec"]).unwrap())),
            _ => unreachable!(),
        }
    }
    for (pod, spec) in pods {
        let volumes: BTreeMap<&str, &Value> = list(spec, "volumes")
            .into_iter()
            .map(|v| (v.get("name").and_then(Value::as_str).unwrap(), v))
            .collect();
        for v in volumes.values() {
            if let Some(claim) = v.get("persistentVolumeClaim") {
                let claim = s(claim, &["claimName"]);
                assert!(
                    flavour == Flavour::Podman || claims.contains(claim),
                    "{pod}: claim {claim}"
                );
            }
            if let Some(secret) = v.get("secret") {
                let keys = &secret_keys[s(secret, &["secretName"])];
                for item in list(secret, "items") {
                    assert!(keys.contains(s(item, &["key"])), "{pod}: secret item");
                }
            }
            if let Some(file) = v.get("hostPath") {
                assert_eq!(flavour, Flavour::Podman, "hostPath only for Podman");
                assert!(s(file, &["path"]).starts_with("/srv/movim/kube/"));
            }
        }
        let init = list(spec, "initContainers");
        let main = list(spec, "containers");
        assert!(!main.is_empty());
        for (c, long_running) in init
            .iter()
            .map(|c| (c, false))
            .chain(main.iter().map(|c| (c, true)))
        {
            let cname = s(c, &["name"]);
            let image = s(c, &["image"]);
            assert!(
                image.contains(":v0.29.2@sha256:") || image.contains(":15@sha256:"),
                "{cname}: {image}"
            );
            for m in list(c, "volumeMounts") {
                let vname = s(m, &["name"]);
                assert!(volumes.contains_key(vname), "{pod}/{cname}: volume {vname}");
                assert!(s(m, &["mountPath"]).starts_with('/'));
                if flavour == Flavour::Podman {
                    assert!(m.get("subPath").is_none(), "Podman 4.3 ignores subPath");
                }
            }
            for e in list(c, "env") {
                if let Some(r) = e.get("valueFrom").and_then(|v| v.get("configMapKeyRef")) {
                    assert!(
                        config_keys[s(r, &["name"])].contains(s(r, &["key"])),
                        "{cname}: env"
                    );
                }
                assert!(
                    e.get("valueFrom")
                        .and_then(|v| v.get("secretKeyRef"))
                        .is_none()
                );
            }
            // Kubernetes forbids probes on init containers; long-running ones all have both.
            assert_eq!(c.get("livenessProbe").is_some(), long_running, "{cname}");
            assert_eq!(c.get("readinessProbe").is_some(), long_running, "{cname}");
        }
    }
}

#[test]
fn both_renderings_are_valid_objects_whose_references_resolve() {
    for database in [
        Database::Bundled,
        Database::External {
            host: "db.example.org".into(),
            port: 5433,
            name: "movim".into(),
            user: "movim".into(),
        },
    ] {
        let d = deployment(database);
        let files = rendered(&d);
        validate(&documents(&files[KUBE_FILE].content), Flavour::Kubernetes);
        validate(&documents(&files[PODMAN_FILE].content), Flavour::Podman);
    }
}

#[test]
fn the_seed_layout_one_pod_sharing_movims_tree() {
    let files = rendered(&deployment(Database::Bundled));
    for path in [KUBE_FILE, PODMAN_FILE] {
        let docs = documents(&files[path].content);
        let movim = docs
            .iter()
            .find(|d| s(d, &["metadata", "name"]) == "movim")
            .unwrap();
        let spec = at(movim, &["spec"]).unwrap();
        let spec = spec
            .get("template")
            .map_or(spec, |t| at(t, &["spec"]).unwrap());
        let names: Vec<&str> = list(spec, "containers")
            .iter()
            .map(|c| s(c, &["name"]))
            .collect();
        assert_eq!(names, ["web", "fpm", "daemon"], "{path}");
        let mounts = |c: &str| -> Vec<(String, bool)> {
            let c = list(spec, "containers")
                .into_iter()
                .find(|x| s(x, &["name"]) == c)
                .unwrap();
            list(c, "volumeMounts")
                .iter()
                .map(|m| {
                    (
                        s(m, &["mountPath"]).to_owned(),
                        m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                    )
                })
                .collect()
        };
        let public = ("/var/www/movim/public/cache".to_owned(), true);
        assert!(
            mounts("web").contains(&public),
            "web reads public/cache only"
        );
        for c in ["fpm", "daemon"] {
            let m = mounts(c);
            assert!(
                m.contains(&("/var/www/movim/cache".to_owned(), false)),
                "{c}"
            );
            assert!(
                m.contains(&("/var/www/movim/public/cache".to_owned(), false)),
                "{c}"
            );
            assert!(m.contains(&("/var/www/movim/.env".to_owned(), true)), "{c}");
        }
    }
    // Podman publishes web on loopback, as compose's proxy mode does.
    assert!(files[PODMAN_FILE].content.contains("hostIP: 127.0.0.1"));
    assert!(files[PODMAN_FILE].content.contains("hostPort: 8080"));
    assert!(!files[KUBE_FILE].content.contains("hostPort"));
    // The pods reach the database by the name of its Service (Kubernetes) or pod (Podman).
    assert!(
        files[KUBE_ENV_FILE]
            .content
            .contains("DB_HOST=movim-postgres\n")
    );
}

#[test]
fn secrets_are_where_each_tool_can_read_them() {
    let files = rendered(&deployment(Database::Bundled));
    assert!(
        files[KUBE_FILE].content.contains("s3cret-pw"),
        "the Secret holds it"
    );
    assert!(
        !files[PODMAN_FILE].content.contains("s3cret-pw"),
        "Podman reads the files"
    );
    assert_eq!(files[PODMAN_DB_PASSWORD_FILE].content, "s3cret-pw");
    assert_eq!(files[KUBE_ENV_FILE].mode, 0o600);
    assert!(files[KUBE_FILE].secret && files[KUBE_ENV_FILE].secret);
}

#[test]
fn answers_kube_cannot_serve_yet_are_refused() {
    let mut d = deployment(Database::Bundled);
    d.tls = Tls::Caddy {
        acme_email: None,
        acme_ca: None,
    };
    let err = files(&d, &Secret::new("x"), &pinned(&d), Path::new("/srv/movim")).unwrap_err();
    assert!(err.contains("--tls proxy"), "{err}");
    let mut d = deployment(Database::Bundled);
    d.xmpp = Xmpp::Bundled {
        domain: Domain::parse("example.org").unwrap(),
        cert: None,
        key: None,
    };
    let err = files(&d, &Secret::new("x"), &pinned(&d), Path::new("/srv/movim")).unwrap_err();
    assert!(err.contains("--xmpp external"), "{err}");
}

#[test]
fn snapshots() {
    let files = rendered(&deployment(Database::Bundled));
    insta::assert_snapshot!("kube_movim_yaml", files[KUBE_FILE].content);
    insta::assert_snapshot!("kube_podman_yaml", files[PODMAN_FILE].content);
}
