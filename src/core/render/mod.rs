//! Everything `init` writes, rendered in memory from the deployment model: one pure function used
//! both to write the deployment directory and to check it for drift (`doctor`), so the two can
//! never disagree.

pub mod compose;
pub mod kube;
pub mod template;

use crate::core::deployment::DbEndpoint;
use crate::core::deployment::{Database, Deployment, Tls, Xmpp};
use crate::core::envfile;
use crate::core::secret::Secret;
use std::collections::BTreeMap;

/// The secrets a deployment keeps in its directory; generated once, kept on every re-run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub db_password: Secret,
}

/// Content that comes from files the user named (read by the command, not here).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// PEM bundle to trust in the containers (user's CA plus the system roots).
    pub ca_pem: Option<String>,
    /// Prosody certificate and key (PEM).
    pub xmpp_cert: Option<(String, Secret)>,
}

/// One file of the deployment directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub content: String,
    pub mode: u32,
    /// Whether the file holds secrets (never shown in diffs or bundles).
    pub secret: bool,
}

pub const COMPOSE_FILE: &str = "compose.yaml";
pub const ENV_FILE: &str = "movim.env";
pub const POSTGRES_ENV_FILE: &str = "postgres.env";
pub const ANSWERS_FILE: &str = "movim-setup.yaml";
pub const PROJECT_ENV_FILE: &str = ".env";
pub const CADDYFILE: &str = "caddy/Caddyfile";
pub const PROSODY_CFG: &str = "prosody/prosody.cfg.lua";
pub const CA_FILE: &str = "ca.pem";

const CADDYFILE_TEMPLATE: &str = include_str!("../../../templates/Caddyfile");
const PROSODY_TEMPLATE: &str = include_str!("../../../templates/prosody.cfg.lua");

fn public(content: String) -> File {
    File {
        content,
        mode: 0o644,
        secret: false,
    }
}

fn private(content: String) -> File {
    File {
        content,
        mode: 0o600,
        secret: true,
    }
}

/// `movim.env`: the settings movim-setup manages, then the user's own.
fn env_text(d: &Deployment, db_password: &Secret) -> Result<String, String> {
    envfile::render(&envfile::values(d, db_password), &d.movim_env)
}

/// Renders every generated file of the deployment directory, keyed by relative path.
pub fn files(
    d: &Deployment,
    secrets: &Secrets,
    pinned: &BTreeMap<String, String>,
    extras: &Extras,
) -> Result<BTreeMap<String, File>, String> {
    let mut out = BTreeMap::new();
    let compose_file = compose::build(d, pinned)?;
    out.insert(
        COMPOSE_FILE.to_owned(),
        public(compose::to_yaml(&compose_file)?),
    );
    out.insert(
        ENV_FILE.to_owned(),
        private(env_text(d, &secrets.db_password)?),
    );
    out.insert(ANSWERS_FILE.to_owned(), public(answers_yaml(d)?));
    out.insert(
        PROJECT_ENV_FILE.to_owned(),
        public(format!(
            "# Written by movim-setup so that compose commands run here use the same project.\nCOMPOSE_PROJECT_NAME={}\n",
            d.project
        )),
    );
    if d.database == Database::Bundled {
        let DbEndpoint { name, user, .. } = d.database.endpoint();
        // Generated passwords are letters and digits: no quoting, which compose tools disagree on.
        out.insert(
            POSTGRES_ENV_FILE.to_owned(),
            private(format!(
                "POSTGRES_USER={user}\nPOSTGRES_PASSWORD={}\nPOSTGRES_DB={name}\n",
                envfile::quote("POSTGRES_PASSWORD", secrets.db_password.expose())?
            )),
        );
    }
    if let Tls::Caddy {
        acme_email,
        acme_ca,
    } = &d.tls
    {
        let mut global = Vec::new();
        if let Some(email) = acme_email {
            global.push(format!("\temail {email}"));
        }
        if let Some(ca) = acme_ca {
            global.push(format!("\tacme_ca {ca}"));
        }
        if d.ca_bundle.is_some() {
            global.push(format!("\tacme_ca_root {}", compose::CA_MOUNT));
        }
        let vars = BTreeMap::from([
            ("domain", d.domain.to_string()),
            ("global_options", global.join("\n")),
        ]);
        out.insert(
            CADDYFILE.to_owned(),
            public(template::render("Caddyfile", CADDYFILE_TEMPLATE, &vars)?),
        );
    }
    if let Xmpp::Bundled { domain, .. } = &d.xmpp {
        let vars = BTreeMap::from([("xmpp_domain", domain.to_string())]);
        out.insert(
            PROSODY_CFG.to_owned(),
            public(template::render(
                "prosody.cfg.lua",
                PROSODY_TEMPLATE,
                &vars,
            )?),
        );
        if let Some((cert, key)) = &extras.xmpp_cert {
            let (cert_file, key_file) = xmpp_cert_files(domain);
            out.insert(cert_file, public(cert.clone()));
            // Prosody reads the key as its own uid, which this tool does not know; the key is
            // protected by the deployment directory itself, which is 0700.
            out.insert(
                key_file,
                File {
                    content: key.expose().to_owned(),
                    mode: 0o644,
                    secret: true,
                },
            );
        }
    }
    if let Some(ca) = &extras.ca_pem {
        out.insert(CA_FILE.to_owned(), public(ca.clone()));
    }
    Ok(out)
}

/// Where the deployment directory keeps its copies of Prosody's certificate and key for `domain`.
#[must_use]
pub fn xmpp_cert_files(domain: &crate::core::deployment::Domain) -> (String, String) {
    (
        format!("prosody/certs/{domain}.crt"),
        format!("prosody/certs/{domain}.key"),
    )
}

/// `d` with each file the user once named (`--ca-bundle`, `--xmpp-cert`, `--xmpp-key`) replaced
/// by the copy the deployment directory `dir` keeps of it, where `kept(name)` says the directory
/// holds that copy: later runs read those, never the user's path again (it may be relative to
/// another working directory, moved or gone). The CA copy already has the system roots appended.
#[must_use]
pub fn reading_copies(
    d: &Deployment,
    dir: &std::path::Path,
    kept: impl Fn(&str) -> bool,
) -> Deployment {
    let mut d = d.clone();
    if d.ca_bundle.is_some() && kept(CA_FILE) {
        d.ca_bundle = Some(dir.join(CA_FILE));
    }
    if let Xmpp::Bundled {
        domain,
        cert: cert @ Some(_),
        key: key @ Some(_),
    } = &mut d.xmpp
    {
        let (cert_file, key_file) = xmpp_cert_files(domain);
        if kept(&cert_file) && kept(&key_file) {
            *cert = Some(dir.join(cert_file));
            *key = Some(dir.join(key_file));
        }
    }
    d
}

/// `movim-setup.yaml`: the answers, so a re-run asks nothing and `doctor` can re-render.
pub fn answers_yaml(d: &Deployment) -> Result<String, String> {
    let body = yaml_serde::to_string(d).map_err(|e| format!("cannot serialise answers: {e}"))?;
    Ok(format!(
        "# movim-setup answers (no secrets). Change them with `movim-setup init --FLAG value`.\n{body}"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn named(ca: &str, cert: &str, key: &str) -> Deployment {
        yaml_serde::from_str(&format!(
            "project: movim\ndomain: movim.example.org\ntls: {{mode: proxy, http_port: 8080}}\n\
             database: {{mode: bundled}}\n\
             xmpp: {{mode: bundled, domain: example.org, cert: {cert}, key: {key}}}\n\
             version: v0.30.0\nimage_repository: r/movim\nlibrary_repository: r/library\n\
             ca_bundle: {ca}\n"
        ))
        .unwrap()
    }

    #[test]
    fn later_runs_read_the_copies_the_directory_keeps_and_only_those() {
        let d = named("ca.pem", "certs/x.crt", "/etc/x.key");
        let dir = Path::new("/srv/movim");
        let all = reading_copies(&d, dir, |_| true);
        assert_eq!(all.ca_bundle, Some(PathBuf::from("/srv/movim/ca.pem")));
        let Xmpp::Bundled { cert, key, .. } = &all.xmpp else {
            panic!("{all:?}")
        };
        assert_eq!(
            (cert.as_deref(), key.as_deref()),
            (
                Some(Path::new("/srv/movim/prosody/certs/example.org.crt")),
                Some(Path::new("/srv/movim/prosody/certs/example.org.key"))
            )
        );
        // No copy (never written, or removed): the answer stays as recorded; a certificate
        // without its key is no pair.
        assert_eq!(reading_copies(&d, dir, |_| false), d);
        let no_key = reading_copies(&d, dir, |n| !n.ends_with(".key"));
        assert_eq!(no_key.xmpp, d.xmpp);
        assert_eq!(no_key.ca_bundle, all.ca_bundle);
    }
}
