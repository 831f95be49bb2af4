//! Every file `init` renders, for each combination of answers, as insta snapshots; every compose
//! file validated against the official compose-spec schema and accepted by `config` of each real
//! compose tool of the test world.

use crate::support::world;

use movim_setup::core::deployment::{Database, Deployment, Domain, MovimTag, Tls, Xmpp};
use movim_setup::core::render::{self, Extras, Secrets};
use movim_setup::core::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn deployment(tls: Tls, database: Database, xmpp: Xmpp, ca: bool) -> Deployment {
    Deployment {
        project: "movim".into(),
        domain: Domain::parse("movim.example.org").expect("valid"),
        tls,
        database,
        xmpp,
        version: MovimTag::parse("v0.29.2").expect("valid"),
        image_repository: "ghcr.io/nadiamoe".into(),
        library_repository: "docker.io/library".into(),
        ca_bundle: ca.then(|| PathBuf::from("/etc/ssl/private-ca.pem")),
        movim_env: std::collections::BTreeMap::new(),
    }
}

fn pinned(d: &Deployment) -> BTreeMap<String, String> {
    d.images()
        .into_iter()
        .enumerate()
        .map(|(i, (service, image))| {
            (
                service,
                format!(
                    "{image}@sha256:{}",
                    format!("{i:x}")
                        .repeat(64)
                        .get(..64)
                        .unwrap_or_default()
                        .to_owned()
                ),
            )
        })
        .collect()
}

fn combos() -> Vec<(&'static str, Deployment)> {
    let example = Domain::parse("example.org").expect("valid");
    vec![
        (
            "caddy_bundled-db_external-xmpp",
            deployment(
                Tls::Caddy {
                    acme_email: None,
                    acme_ca: None,
                },
                Database::Bundled,
                Xmpp::External {
                    domain: example.clone(),
                },
                false,
            ),
        ),
        (
            "proxy_external-db_bundled-xmpp-no-cert",
            deployment(
                Tls::Proxy { http_port: 9443 },
                Database::External {
                    host: "10.0.0.5".into(),
                    port: 5432,
                    name: "movim".into(),
                    user: "movim".into(),
                },
                Xmpp::Bundled {
                    domain: example.clone(),
                    cert: None,
                    key: None,
                },
                false,
            ),
        ),
        (
            "proxy_bundled-db_external-xmpp",
            deployment(
                Tls::Proxy { http_port: 8080 },
                Database::Bundled,
                Xmpp::External {
                    domain: example.clone(),
                },
                false,
            ),
        ),
        (
            "caddy_external-db_bundled-xmpp_ca",
            deployment(
                Tls::Caddy {
                    acme_email: Some("admin@example.org".into()),
                    acme_ca: Some("https://127.0.0.1:14000/dir".into()),
                },
                Database::External {
                    host: "db.internal".into(),
                    port: 5433,
                    name: "movimdb".into(),
                    user: "movimrole".into(),
                },
                Xmpp::Bundled {
                    domain: example,
                    cert: Some("/c.pem".into()),
                    key: Some("/k.pem".into()),
                },
                true,
            ),
        ),
    ]
}

fn rendered(d: &Deployment) -> BTreeMap<String, render::File> {
    let secrets = Secrets {
        db_password: Secret::new("p$a#s\"s' w"),
    };
    let extras = Extras {
        ca_pem: d
            .ca_bundle
            .as_ref()
            .map(|_| "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into()),
        xmpp_cert: matches!(d.xmpp, Xmpp::Bundled { cert: Some(_), .. }).then(|| {
            (
                "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n".into(),
                Secret::new("-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n"),
            )
        }),
    };
    render::files(d, &secrets, &pinned(d), &extras).expect("renders")
}

#[test]
fn every_rendered_file_matches_its_snapshot() {
    for (name, d) in combos() {
        for (path, file) in rendered(&d) {
            let snap = format!("{name}__{}", path.replace(['/', '.'], "_"));
            insta::assert_snapshot!(
                snap,
                format!("mode: {:o}\n---\n{}", file.mode, file.content)
            );
        }
    }
}

#[test]
fn secret_files_are_private() {
    for (_, d) in combos() {
        for (path, file) in rendered(&d) {
            if path == "movim.env" || path == "postgres.env" {
                assert_eq!(file.mode, 0o600, "{path}");
                assert!(file.secret);
            }
        }
    }
}

#[test]
fn compose_files_validate_against_the_official_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../data/compose-spec.schema.json"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for (name, d) in combos() {
        let text = &rendered(&d)["compose.yaml"].content;
        let value: serde_json::Value = yaml_serde::from_str(text).expect("compose.yaml is YAML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
    // The validator really rejects what compose would reject.
    let bad: serde_json::Value =
        serde_json::json!({"services": {"web": {"image": "x", "restart_policy": "always"}}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn the_web_container_only_reads_the_shared_public_tree() {
    let (_, d) = &combos()
        .into_iter()
        .find(|(name, _)| *name == "proxy_bundled-db_external-xmpp")
        .expect("the default combination");
    let text = &rendered(d)["compose.yaml"].content;
    let file: serde_json::Value = yaml_serde::from_str(text).expect("yaml");
    let web_volumes = file["services"]["web"]["volumes"]
        .as_array()
        .expect("web volumes");
    assert!(
        web_volumes
            .iter()
            .all(|v| v.as_str().is_some_and(|v| v.ends_with(":ro"))),
        "{web_volumes:?}"
    );
    for service in ["fpm", "daemon"] {
        assert_eq!(file["services"][service]["user"], "82:82");
        assert_eq!(file["services"][service]["read_only"], true);
    }
    assert_eq!(file["services"]["web"]["ports"][0], "127.0.0.1:8080:80");
}

/// Each real compose tool of the test world accepts every generated file.
#[test]
fn every_compose_tool_accepts_the_generated_files() {
    let w = world::World::get();
    let mut tools = vec![
        (
            "compose v2",
            vec!["docker".to_owned(), "compose".to_owned()],
        ),
        ("compose v1", vec![w.compose_v1.display().to_string()]),
    ];
    if let Some(p) = &w.podman_compose {
        tools.push(("podman-compose", vec![p.display().to_string()]));
    }
    for (name, d) in combos() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, file) in rendered(&d) {
            let full = dir.path().join(&path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(&full, &file.content).expect("write");
        }
        for (tool, argv) in &tools {
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .args(["-f", "compose.yaml", "-p", "movim", "config"])
                .current_dir(dir.path())
                .output()
                .expect("compose tool runs");
            assert!(
                out.status.success(),
                "{tool} rejects {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
