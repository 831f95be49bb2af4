//! `compose.yaml` as typed data. Each service starts from its reviewable fragment in `compose/`
//! (embedded at build time) and Rust adds what depends on the answers (ports, dependencies,
//! aliases). One self-contained file in the compose-spec subset that compose v2, docker-compose
//! v1 and podman-compose all accept.

use super::template;
use crate::core::deployment::DbEndpoint;
use crate::core::deployment::{Database, Deployment, Tls, Xmpp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComposeFile {
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Volume>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Absent means compose's default, `no` (which YAML 1.1 parsers would read as false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkAttachment>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependsOn {
    pub condition: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: String,
    pub timeout: String,
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
}

/// The fragments, embedded so the binary is self-contained; reviewed as files in `compose/`.
const MOVIM_COMMON: &str = include_str!("../../../compose/movim-common.yaml");
const FPM: &str = include_str!("../../../compose/fpm.yaml");
const DAEMON: &str = include_str!("../../../compose/daemon.yaml");
const WEB: &str = include_str!("../../../compose/web.yaml");
const POSTGRES: &str = include_str!("../../../compose/postgres.yaml");
const PROSODY: &str = include_str!("../../../compose/prosody.yaml");
const CADDY: &str = include_str!("../../../compose/caddy.yaml");
const PREPARE: &str = include_str!("../../../compose/prepare.yaml");

/// The one-shot service that hands the shared volumes to Movim's uid.
pub const PREPARE_SERVICE: &str = "prepare";

/// Where a CA bundle given with `--ca-bundle` is mounted in the containers that make TLS
/// connections (daemon and fpm to the XMPP server, Caddy to the ACME server).
pub const CA_MOUNT: &str = "/etc/movim-setup/ca.pem";

fn fragment(name: &str, texts: &[&str], vars: &BTreeMap<&str, String>) -> Result<Service, String> {
    // Later fragments add to or override earlier ones, key by key.
    let mut merged = yaml_serde::Mapping::new();
    for text in texts {
        let rendered = template::render(name, text, vars)?;
        let value: yaml_serde::Value =
            yaml_serde::from_str(&rendered).map_err(|e| format!("compose/{name}.yaml: {e}"))?;
        if let yaml_serde::Value::Mapping(m) = value {
            merged.extend(m);
        }
    }
    yaml_serde::from_value(yaml_serde::Value::Mapping(merged))
        .map_err(|e| format!("compose/{name}.yaml: {e}"))
}

fn healthy(on: &[&str]) -> BTreeMap<String, DependsOn> {
    on.iter()
        .map(|s| {
            (
                (*s).to_owned(),
                DependsOn {
                    condition: "service_healthy".into(),
                },
            )
        })
        .collect()
}

/// A plain `compose up` (by hand) runs `prepare` to completion before fpm and the daemon.
fn prepared() -> BTreeMap<String, DependsOn> {
    BTreeMap::from([(
        PREPARE_SERVICE.to_owned(),
        DependsOn {
            condition: "service_completed_successfully".into(),
        },
    )])
}

/// Builds the compose file for a deployment whose images are `pinned` (service → `repo:tag@digest`).
#[allow(clippy::too_many_lines)] // the compose file read top to bottom, service by service
pub fn build(d: &Deployment, pinned: &BTreeMap<String, String>) -> Result<ComposeFile, String> {
    let image = |service: &str| {
        pinned
            .get(service)
            .cloned()
            .ok_or_else(|| format!("no pinned image for service {service}"))
    };
    let vars = |service: &str| -> Result<BTreeMap<&'static str, String>, String> {
        let DbEndpoint { name, user, .. } = d.database.endpoint();
        Ok(BTreeMap::from([
            ("image", image(service)?),
            ("db_name", name.to_owned()),
            ("db_user", user.to_owned()),
        ]))
    };
    let mut services = BTreeMap::new();
    let mut volumes: BTreeMap<String, Volume> = [
        "movim-cache",
        "movim-public-cache",
        "movim-public-images",
        "movim-log",
    ]
    .into_iter()
    .map(|v| (v.to_owned(), Volume {}))
    .collect();

    let db_dep: Vec<&str> = if d.database == Database::Bundled {
        vec!["postgres"]
    } else {
        vec![]
    };
    let mut fpm = fragment("fpm", &[MOVIM_COMMON, FPM], &vars("fpm")?)?;
    fpm.depends_on = healthy(&db_dep);
    fpm.depends_on.extend(prepared());
    let mut daemon = fragment("daemon", &[MOVIM_COMMON, DAEMON], &vars("daemon")?)?;
    daemon.depends_on = healthy(&db_dep);
    daemon.depends_on.extend(prepared());
    if matches!(d.xmpp, Xmpp::Bundled { .. }) {
        daemon.depends_on.extend(healthy(&["prosody"]));
    }
    if d.ca_bundle.is_some() {
        for s in [&mut fpm, &mut daemon] {
            s.volumes.push(format!("./ca.pem:{CA_MOUNT}:ro"));
            s.environment
                .insert("SSL_CERT_FILE".into(), CA_MOUNT.into());
        }
    }
    let prepare = fragment("prepare", &[PREPARE], &vars("daemon")?)?;
    let mut web = fragment("web", &[WEB], &vars("web")?)?;
    web.depends_on = healthy(&["fpm", "daemon"]);
    match &d.tls {
        Tls::Proxy { http_port } => web.ports.push(format!("127.0.0.1:{http_port}:80")),
        Tls::Caddy { .. } => {
            let mut caddy = fragment("caddy", &[CADDY], &vars("caddy")?)?;
            caddy.ports = vec!["80:80".into(), "443:443".into()];
            caddy.depends_on = healthy(&["web"]);
            if d.ca_bundle.is_some() {
                caddy.volumes.push(format!("./ca.pem:{CA_MOUNT}:ro"));
            }
            services.insert("caddy".to_owned(), caddy);
            volumes.insert("caddy-data".into(), Volume {});
            volumes.insert("caddy-config".into(), Volume {});
        }
    }
    if d.database == Database::Bundled {
        services.insert(
            "postgres".to_owned(),
            fragment("postgres", &[POSTGRES], &vars("postgres")?)?,
        );
        volumes.insert("postgres-data".into(), Volume {});
    }
    if let Xmpp::Bundled { domain, .. } = &d.xmpp {
        let mut prosody = fragment("prosody", &[PROSODY], &vars("prosody")?)?;
        prosody.ports = vec!["5222:5222".into(), "5269:5269".into()];
        prosody.networks = Some(BTreeMap::from([(
            "default".to_owned(),
            NetworkAttachment {
                aliases: vec![domain.to_string()],
            },
        )]));
        services.insert("prosody".to_owned(), prosody);
        volumes.insert("prosody-data".into(), Volume {});
    }
    services.insert("fpm".to_owned(), fpm);
    services.insert("daemon".to_owned(), daemon);
    services.insert("web".to_owned(), web);
    services.insert(PREPARE_SERVICE.to_owned(), prepare);
    Ok(ComposeFile { services, volumes })
}

/// The file as written: a header saying who wrote it, then the YAML.
pub fn to_yaml(file: &ComposeFile) -> Result<String, String> {
    let body =
        yaml_serde::to_string(file).map_err(|e| format!("cannot serialise compose file: {e}"))?;
    Ok(format!(
        "# Written by movim-setup from its answers (movim-setup.yaml) and pinned images (movim-setup.lock).\n\
         # Re-run `movim-setup init` to change it; `movim-setup doctor` reports hand edits.\n{body}"
    ))
}
