//! `init --target kube`: the seed's own layout (one pod running web, fpm and daemon around shared
//! volumes, see `docs/movim-contract.md`) as Kubernetes objects, plus PostgreSQL. Two renderings of one model:
//!
//! - `kube/movim.yaml` for `kubectl apply`: a ConfigMap (non-secret settings), a Secret
//!   (`movim.env` and the database password), PersistentVolumeClaims, a Deployment and a Service
//!   each for Movim and PostgreSQL. Images are pinned by digest; probes follow `docs/movim-contract.md`.
//! - `kube/podman.yaml` for `podman kube play`, with what Podman 4.3 (Debian 12's) needs instead:
//!   its Secrets are unusable (stored as YAML but read as JSON, podman#16269; secret volumes get
//!   base64 text; `subPath` is ignored), so the secret files come from the deployment directory
//!   as `hostPath` files, written 0600 beside the manifest; it names a Deployment's pod
//!   `<name>-pod-0` and ignores Services, so the objects are bare Pods whose names are the DNS names
//!   the other pod uses; re-playing fails on a PersistentVolumeClaim whose volume exists, so the
//!   claims are left to Podman, which creates a named volume per claim on first use and keeps it
//!   across `podman kube down`; web's port is published on 127.0.0.1 with `hostPort`; and exec
//!   probes are one shell-quoted word, since Podman runs them as shell lines.
//!
//! The pod specs live in `templates/kube/` (reviewable YAML with `{{var}}` slots); Rust adds the
//! objects around them and applies the Podman differences above, so the two files cannot drift
//! apart in anything else.

use super::{File, template};
use crate::core::deployment::DbEndpoint;
use crate::core::deployment::{Database, Deployment, Tls, Xmpp};
use crate::core::envfile;
use crate::core::secret::Secret;
use std::collections::BTreeMap;
use std::path::Path;
use yaml_serde::{Mapping, Value};

/// The manifest set for `kubectl apply -f`.
pub const KUBE_FILE: &str = "kube/movim.yaml";
/// The manifest set for `podman kube play`.
pub const PODMAN_FILE: &str = "kube/podman.yaml";
/// `movim.env` as the kube pods see it (the database by its Service name); Podman mounts it.
pub const KUBE_ENV_FILE: &str = "kube/movim.env";
/// The bundled database's password, for Podman to mount as PostgreSQL's `POSTGRES_PASSWORD_FILE`.
pub const PODMAN_DB_PASSWORD_FILE: &str = "kube/postgres-password";

const MOVIM_TEMPLATE: &str = include_str!("../../../templates/kube/movim.yaml");
const POSTGRES_TEMPLATE: &str = include_str!("../../../templates/kube/postgres.yaml");

/// Which tool reads the manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Kubernetes,
    Podman,
}

/// Renders the files of `--target kube`, keyed by path relative to the deployment directory
/// `dir` (absolute: Podman's `hostPath` volumes name files in it).
///
/// # Errors
/// An answer `--target kube` does not support yet (bundled Caddy or Prosody), a missing pin, or a
/// template error.
pub fn files(
    d: &Deployment,
    db_password: &Secret,
    pinned: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<BTreeMap<String, File>, String> {
    if matches!(d.tls, Tls::Caddy { .. }) {
        return Err(
            "--target kube needs --tls proxy: TLS belongs to your ingress (Kubernetes) \
                    or reverse proxy (Podman), which forward to web"
                .to_owned(),
        );
    }
    if matches!(d.xmpp, Xmpp::Bundled { .. }) {
        return Err("--target kube does not bundle Prosody yet: use --xmpp external".to_owned());
    }
    let env = env_text(d, db_password)?;
    let mut out = BTreeMap::new();
    for (path, flavour) in [
        (KUBE_FILE, Flavour::Kubernetes),
        (PODMAN_FILE, Flavour::Podman),
    ] {
        let objects = build(d, pinned, &env, db_password, flavour, dir)?;
        out.insert(
            path.to_owned(),
            File {
                content: to_yaml(&objects, flavour, d)?,
                mode: 0o600,
                // The Kubernetes one holds the Secret; both name where the secrets are.
                secret: flavour == Flavour::Kubernetes,
            },
        );
    }
    out.insert(
        KUBE_ENV_FILE.to_owned(),
        File {
            content: env,
            mode: 0o600,
            secret: true,
        },
    );
    if d.database == Database::Bundled {
        // Read by PostgreSQL's own user after the entrypoint drops root, whose uid this tool does
        // not know; the deployment directory (0700) protects it.
        out.insert(
            PODMAN_DB_PASSWORD_FILE.to_owned(),
            File {
                content: db_password.expose().to_owned(),
                mode: 0o644,
                secret: true,
            },
        );
    }
    Ok(out)
}

/// The database's host as the Movim pod reaches it: the bundled one by its Service (Kubernetes) or
/// pod (Podman) name.
pub fn db_host(d: &Deployment) -> String {
    match d.database {
        Database::Bundled => format!("{}-postgres", d.project),
        Database::External { .. } => d.database.endpoint().host.to_owned(),
    }
}

/// `movim.env` with the database host the pods reach.
fn env_text(d: &Deployment, db_password: &Secret) -> Result<String, String> {
    let host = db_host(d);
    let values: Vec<(&str, String)> = envfile::values(d, db_password)
        .into_iter()
        .map(|(k, v)| {
            if k == "DB_HOST" {
                (k, host.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    envfile::render(&values, &d.movim_env)
}

/// Every object of one rendering, in the order they must be applied (Podman reads ConfigMaps
/// only before the pods that use them).
#[allow(clippy::too_many_lines)] // the manifests read top to bottom, object by object
pub fn build(
    d: &Deployment,
    pinned: &BTreeMap<String, String>,
    env: &str,
    db_password: &Secret,
    flavour: Flavour,
    dir: &Path,
) -> Result<Vec<Value>, String> {
    let image = |service: &str| {
        pinned
            .get(service)
            .cloned()
            .ok_or_else(|| format!("no pinned image for service {service}"))
    };
    let DbEndpoint {
        port: db_port,
        name: db_name,
        user: db_user,
        ..
    } = d.database.endpoint();
    let project = d.project.clone();
    let mut vars = BTreeMap::from([
        ("project", project.clone()),
        ("movim_version", d.version.version().to_owned()),
        ("image_web", image("web")?),
        ("image_fpm", image("fpm")?),
        ("image_daemon", image("daemon")?),
        ("db_host", db_host(d)),
        ("db_port", db_port.to_string()),
        ("db_name", db_name.to_owned()),
        ("db_user", db_user.to_owned()),
    ]);
    let bundled_db = d.database == Database::Bundled;
    if bundled_db {
        vars.insert("image_postgres", image("postgres")?);
    }

    let mut config = vec![
        // One pod: web reaches fpm and the daemon on loopback, fpm listens only there.
        ("FPM_HOST", "127.0.0.1".to_owned()),
        ("DAEMON_HOST", "127.0.0.1".to_owned()),
        ("FPM_LISTEN", "127.0.0.1".to_owned()),
    ];
    let mut secrets = vec![("movim.env", env.to_owned())];
    if bundled_db {
        config.push(("POSTGRES_USER", db_user.to_owned()));
        config.push(("POSTGRES_DB", db_name.to_owned()));
        secrets.push(("postgres-password", db_password.expose().to_owned()));
    }

    let mut objects = vec![object(
        "v1",
        "ConfigMap",
        &format!("{project}-config"),
        &project,
        "data",
        strings(&config),
    )];
    if flavour == Flavour::Kubernetes {
        let mut secret = object(
            "v1",
            "Secret",
            &format!("{project}-secrets"),
            &project,
            "type",
            Value::from("Opaque"),
        );
        insert(&mut secret, "stringData", strings(&secrets));
        objects.push(secret);
        let mut claims = vec![
            ("movim-cache", "1Gi"),
            ("movim-public-cache", "1Gi"),
            ("movim-public-images", "1Gi"),
            ("movim-log", "1Gi"),
        ];
        if bundled_db {
            claims.push(("postgres-data", "10Gi"));
        }
        for (name, size) in claims {
            objects.push(claim(&format!("{project}-{name}"), &project, size));
        }
    }
    let mut workloads = Vec::new();
    if bundled_db {
        workloads.push((
            template::render("kube/postgres.yaml", POSTGRES_TEMPLATE, &vars)?,
            ("postgres", 5432_u16),
        ));
    }
    workloads.push((
        template::render("kube/movim.yaml", MOVIM_TEMPLATE, &vars)?,
        ("web", 80),
    ));
    for (text, (port_name, port)) in workloads {
        let deployment: Value =
            yaml_serde::from_str(&text).map_err(|e| format!("templates/kube: {e}"))?;
        let name = str_at(&deployment, &["metadata", "name"])?.to_owned();
        match flavour {
            Flavour::Kubernetes => {
                let selector = at(&deployment, &["spec", "selector", "matchLabels"])?.clone();
                objects.push(deployment);
                let service_name = if port_name == "web" {
                    format!("{name}-web")
                } else {
                    name.clone()
                };
                objects.push(service(&service_name, &project, selector, port_name, port));
            }
            Flavour::Podman => {
                let mut pod = as_pod(&deployment, &name)?;
                podman_secret_files(&mut pod, dir)?;
                if port_name == "web"
                    && let Tls::Proxy { http_port } = d.tls
                {
                    publish_on_loopback(&mut pod, "web", http_port)?;
                }
                objects.push(pod);
            }
        }
    }
    Ok(objects)
}

/// The documents, each behind a `---`, after a header saying how to apply them.
fn to_yaml(objects: &[Value], flavour: Flavour, d: &Deployment) -> Result<String, String> {
    let header = match flavour {
        Flavour::Kubernetes => format!(
            "# Written by movim-setup (init --target kube) for Movim {version}, images pinned by digest.\n\
             # Apply: kubectl apply -f kube/movim.yaml   then route your ingress (TLS) for {domain} to\n\
             # the Service {project}-web, port 80, passing websockets (/ws/).\n",
            version = d.version,
            domain = d.domain,
            project = d.project
        ),
        Flavour::Podman => format!(
            "# Written by movim-setup (init --target kube) for Movim {version}, images pinned by digest.\n\
             # Run:  podman network create {project}   (once: the pods find each other by name)\n\
             #       podman kube play --network {project} kube/podman.yaml\n\
             # Stop: podman kube down kube/podman.yaml   (the volumes, hence the data, stay)\n",
            version = d.version,
            project = d.project
        ),
    };
    let mut out = header;
    for object in objects {
        out.push_str("---\n");
        out.push_str(
            &yaml_serde::to_string(object).map_err(|e| format!("cannot write YAML: {e}"))?,
        );
    }
    Ok(out)
}

fn key(k: &str) -> Value {
    Value::from(k)
}

fn insert(map: &mut Value, k: &str, v: Value) {
    if let Value::Mapping(m) = map {
        m.insert(key(k), v);
    }
}

fn strings(pairs: &[(&str, String)]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(key(k), Value::from(v.as_str()));
    }
    Value::Mapping(m)
}

fn metadata(name: &str, project: &str) -> Value {
    let mut labels = Mapping::new();
    labels.insert(key("app.kubernetes.io/part-of"), Value::from("movim"));
    labels.insert(key("app.kubernetes.io/instance"), Value::from(project));
    let mut m = Mapping::new();
    m.insert(key("name"), Value::from(name));
    m.insert(key("labels"), Value::Mapping(labels));
    Value::Mapping(m)
}

/// `{apiVersion, kind, metadata, <field>: value}`.
fn object(api: &str, kind: &str, name: &str, project: &str, field: &str, value: Value) -> Value {
    let mut m = Mapping::new();
    m.insert(key("apiVersion"), Value::from(api));
    m.insert(key("kind"), Value::from(kind));
    m.insert(key("metadata"), metadata(name, project));
    m.insert(key(field), value);
    Value::Mapping(m)
}

fn claim(name: &str, project: &str, size: &str) -> Value {
    let mut requests = Mapping::new();
    requests.insert(key("storage"), Value::from(size));
    let mut resources = Mapping::new();
    resources.insert(key("requests"), Value::Mapping(requests));
    let mut spec = Mapping::new();
    spec.insert(
        key("accessModes"),
        Value::Sequence(vec![Value::from("ReadWriteOnce")]),
    );
    spec.insert(key("resources"), Value::Mapping(resources));
    object(
        "v1",
        "PersistentVolumeClaim",
        name,
        project,
        "spec",
        Value::Mapping(spec),
    )
}

fn service(name: &str, project: &str, selector: Value, port_name: &str, port: u16) -> Value {
    let mut p = Mapping::new();
    p.insert(key("name"), Value::from(port_name));
    p.insert(key("port"), Value::from(port));
    p.insert(key("targetPort"), Value::from(port_name));
    let mut spec = Mapping::new();
    spec.insert(key("selector"), selector);
    spec.insert(key("ports"), Value::Sequence(vec![Value::Mapping(p)]));
    object("v1", "Service", name, project, "spec", Value::Mapping(spec))
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, String> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .ok_or_else(|| format!("templates/kube: no `{}`", path.join(".")))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    at(v, path)?
        .as_str()
        .ok_or_else(|| format!("templates/kube: `{}` is not a string", path.join(".")))
}

fn at_mut<'a>(v: &'a mut Value, path: &[&str]) -> Result<&'a mut Value, String> {
    let mut v = v;
    for k in path {
        v = v
            .get_mut(*k)
            .ok_or_else(|| format!("templates/kube: no `{}`", path.join(".")))?;
    }
    Ok(v)
}

/// A Deployment's pod, as a bare Pod named `name` (Podman names a Deployment's pod `<name>-pod-0`,
/// and the pod's name is the name other pods resolve).
fn as_pod(deployment: &Value, name: &str) -> Result<Value, String> {
    let mut meta = at(deployment, &["spec", "template", "metadata"])?.clone();
    insert(&mut meta, "name", Value::from(name));
    // "always": run at every start of the pod, as Kubernetes runs init containers (Podman's
    // default, "once", runs them at the first start only and then removes them).
    let mut annotations = Mapping::new();
    annotations.insert(
        key("io.podman.annotations.init.container.type"),
        Value::from("always"),
    );
    insert(&mut meta, "annotations", Value::Mapping(annotations));
    let mut m = Mapping::new();
    m.insert(key("apiVersion"), Value::from("v1"));
    m.insert(key("kind"), Value::from("Pod"));
    m.insert(key("metadata"), meta);
    let mut spec = at(deployment, &["spec", "template", "spec"])?.clone();
    // Podman 4.3 gives the init containers the pod's restart policy, so under `Always` they run
    // again and again; under `OnFailure` they run once. The other containers are still restarted
    // when they fail; a daemon exiting 0 (Movim's way to report pending migrations or a bad
    // DAEMON_URL) stays down and visible instead of looping.
    insert(&mut spec, "restartPolicy", Value::from("OnFailure"));
    for container in spec
        .get_mut("containers")
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
    {
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(command) = container
                .get_mut(probe)
                .and_then(|p| p.get_mut("exec"))
                .and_then(|e| e.get_mut("command"))
            {
                *command = shell_command(command);
            }
        }
    }
    m.insert(key("spec"), spec);
    Ok(Value::Mapping(m))
}

/// An exec probe's command as one shell-quoted word. Podman 4.3 turns an exec probe into a
/// `CMD-SHELL` health check of the words joined by spaces (`… || exit 1`), so a word holding
/// parentheses or spaces, like `php -r 'exit(…);'`, must reach the shell quoted.
fn shell_command(command: &Value) -> Value {
    let Some(words) = command
        .as_sequence()
        .map(|ws| ws.iter().filter_map(Value::as_str).collect::<Vec<_>>())
    else {
        return command.clone();
    };
    let line = words
        .iter()
        .map(|w| crate::core::shell::quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    Value::Sequence(vec![Value::from(line)])
}

/// Every Secret volume becomes the file of the same key in the deployment directory, mounted
/// whole (Podman 4.3 can neither read its Secrets nor honour `subPath`).
fn podman_secret_files(pod: &mut Value, dir: &Path) -> Result<(), String> {
    let mut secret_volumes = Vec::new();
    let volumes = at_mut(pod, &["spec", "volumes"])?
        .as_sequence_mut()
        .ok_or("templates/kube: `volumes` is not a list")?;
    for volume in volumes {
        let Some(items) = volume.get("secret").and_then(|s| s.get("items")) else {
            continue;
        };
        let item_key = items
            .get(0)
            .and_then(|i| i.get("key"))
            .and_then(Value::as_str)
            .ok_or("templates/kube: a secret volume names no item")?
            .to_owned();
        let file = match item_key.as_str() {
            "movim.env" => KUBE_ENV_FILE,
            "postgres-password" => PODMAN_DB_PASSWORD_FILE,
            other => return Err(format!("templates/kube: no file for secret key {other}")),
        };
        let name = volume
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut host_path = Mapping::new();
        host_path.insert(
            key("path"),
            Value::from(dir.join(file).to_string_lossy().as_ref()),
        );
        host_path.insert(key("type"), Value::from("File"));
        let mut replaced = Mapping::new();
        replaced.insert(key("name"), Value::from(name.as_str()));
        replaced.insert(key("hostPath"), Value::Mapping(host_path));
        *volume = Value::Mapping(replaced);
        secret_volumes.push(name);
    }
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list))
            .and_then(Value::as_sequence_mut)
        else {
            continue;
        };
        for mount in containers
            .iter_mut()
            .filter_map(|c| c.get_mut("volumeMounts"))
            .filter_map(Value::as_sequence_mut)
            .flatten()
        {
            let secret = mount
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| secret_volumes.iter().any(|s| s == n));
            if secret && let Value::Mapping(m) = mount {
                m.remove("subPath");
            }
        }
    }
    Ok(())
}

/// Publishes the container's first port on 127.0.0.1:`port`, like compose's proxy mode.
fn publish_on_loopback(pod: &mut Value, container: &str, port: u16) -> Result<(), String> {
    let containers = at_mut(pod, &["spec", "containers"])?
        .as_sequence_mut()
        .ok_or("templates/kube: `containers` is not a list")?;
    let first_port = containers
        .iter_mut()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|c| c.get_mut("ports"))
        .and_then(|p| p.get_mut(0))
        .ok_or_else(|| format!("templates/kube: {container} has no port"))?;
    insert(first_port, "hostPort", Value::from(port));
    insert(first_port, "hostIP", Value::from("127.0.0.1"));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests;
