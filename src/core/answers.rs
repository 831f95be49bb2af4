//! The answers `init` needs, from wherever they come: a flag or its env var (clap), an answers
//! file, the answers saved by a previous run, the prompt, or the default. Every question is
//! listed once in [`QUESTIONS`]; [`resolve`] turns the merged answers into a validated
//! [`Deployment`] or fails naming the flag to give.

use crate::core::deployment::{
    self, DEFAULT_HTTP_PORT, DEFAULT_IMAGE_REPOSITORY, DEFAULT_LIBRARY_REPOSITORY, DEFAULT_TAG,
    Database, Deployment, Domain, MovimTag, Tls, Xmpp,
};
use crate::core::secret::Secret;
use crate::error::Failure;
use serde::Deserialize;
use std::path::PathBuf;

/// Every answer, each optional: flat, so that flags, env vars and the answers file share keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    pub project: Option<String>,
    pub domain: Option<String>,
    pub tls: Option<String>,
    pub http_port: Option<u16>,
    pub acme_email: Option<String>,
    pub acme_ca: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub database: Option<String>,
    pub db_host: Option<String>,
    pub db_port: Option<u16>,
    pub db_name: Option<String>,
    pub db_user: Option<String>,
    pub db_password: Option<Secret>,
    pub xmpp: Option<String>,
    pub xmpp_domain: Option<String>,
    pub xmpp_cert: Option<PathBuf>,
    pub xmpp_key: Option<PathBuf>,
    /// The Movim release; `version:` is the key's older name, still read.
    #[serde(alias = "version")]
    pub release: Option<String>,
    pub image_repository: Option<String>,
    pub library_repository: Option<String>,
}

/// One question `init` asks, and where else its answer may come from.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub prompt: &'static str,
}

/// Asks the user; implemented by the terminal prompter and the non-interactive one.
pub trait Prompter: Send + Sync {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure>;
    fn select(&self, q: &Question, choices: &[&str], default: usize) -> Result<usize, Failure>;
    fn password(&self, q: &Question) -> Result<String, Failure>;
    /// Whether someone answers (a terminal, without `--yes`): unattended runs take defaults and
    /// never wait on a question.
    fn interactive(&self) -> bool;
    /// A yes/no question; `default` is the answer offered.
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Failure>;
}

fn missing(q: &Question) -> Failure {
    Failure::usage(format!("no answer for `{}`", q.key))
        .detail(format!(
            "give it with {} VALUE, the {} environment variable, or `{}:` in --answers FILE",
            q.flag, q.env, q.key
        ))
        .next(format!("movim-setup init {} VALUE …", q.flag))
}

/// `--yes` or no terminal: take the default, or fail naming the flag.
#[derive(Debug, Default)]
pub struct Defaults;

impl Prompter for Defaults {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure> {
        default.map(str::to_owned).ok_or_else(|| missing(q))
    }
    fn select(&self, _q: &Question, _choices: &[&str], default: usize) -> Result<usize, Failure> {
        Ok(default)
    }
    fn password(&self, q: &Question) -> Result<String, Failure> {
        Err(missing(q))
    }
    fn interactive(&self) -> bool {
        false
    }
    fn confirm(&self, _prompt: &str, default: bool) -> Result<bool, Failure> {
        Ok(default)
    }
}

macro_rules! questions {
    ($($key:ident $flag:literal $env:literal $prompt:literal;)*) => {
        /// Every question: its answers-file key, flag, env var and prompt.
        pub const QUESTIONS: &[Question] = &[$(Question { key: stringify!($key), flag: $flag, env: $env, prompt: $prompt }),*];
        #[allow(dead_code)] // every question has a constant; not every one is asked by name
        mod q {
            use crate::core::answers::Question;
            $(#[allow(non_upper_case_globals)] pub const $key: Question = Question { key: stringify!($key), flag: $flag, env: $env, prompt: $prompt };)*
        }
    };
}

questions! {
    project "--project" "MOVIM_PROJECT" "Compose project name";
    domain "--domain" "MOVIM_DOMAIN" "Public domain of Movim (e.g. movim.example.org)";
    tls "--tls" "MOVIM_TLS" "HTTPS: a bundled Caddy with automatic certificates, or your own reverse proxy";
    http_port "--http-port" "MOVIM_HTTP_PORT" "Port on 127.0.0.1 your reverse proxy forwards to";
    acme_email "--acme-email" "MOVIM_ACME_EMAIL" "E-mail for the ACME account (optional)";
    acme_ca "--acme-ca" "MOVIM_ACME_CA" "ACME directory URL (empty: Let's Encrypt)";
    ca_bundle "--ca-bundle" "MOVIM_CA_BUNDLE" "Extra CA bundle (PEM) the containers trust";
    database "--database" "MOVIM_DATABASE" "Database: a bundled PostgreSQL, or an external server";
    db_host "--db-host" "MOVIM_DB_HOST" "External database host (as the containers reach it)";
    db_port "--db-port" "MOVIM_DB_PORT" "External database port";
    db_name "--db-name" "MOVIM_DB_NAME" "External database name";
    db_user "--db-user" "MOVIM_DB_USER" "External database role";
    db_password "--db-password-file" "MOVIM_DB_PASSWORD" "External database password";
    xmpp "--xmpp" "MOVIM_XMPP" "XMPP server: a bundled Prosody, or an existing server";
    xmpp_domain "--xmpp-domain" "MOVIM_XMPP_DOMAIN" "XMPP domain (users are user@this-domain)";
    xmpp_cert "--xmpp-cert" "MOVIM_XMPP_CERT" "Certificate (PEM, full chain) for the XMPP domain";
    xmpp_key "--xmpp-key" "MOVIM_XMPP_KEY" "Private key (PEM) for the XMPP domain";
    release "--release" "MOVIM_VERSION" "Movim release";
    image_repository "--image-repository" "MOVIM_IMAGE_REPOSITORY" "Image repository prefix for movim-web, movim-fpm, movim-daemon";
    library_repository "--library-repository" "MOVIM_LIBRARY_REPOSITORY" "Image repository prefix for postgres, prosody, caddy";
}

impl Answers {
    /// Reads an answers file (YAML, keys as in [`QUESTIONS`]).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, Failure> {
        yaml_serde::from_str(text).map_err(|e| {
            Failure::usage(format!("cannot read the answers file {origin}")).because(e)
        })
    }

    /// The answers a previous run saved (`movim-setup.yaml`), as answers of lowest precedence.
    #[must_use]
    pub fn from_deployment(d: &Deployment) -> Self {
        let mut a = Self {
            project: Some(d.project.clone()),
            domain: Some(d.domain.to_string()),
            tls: Some(d.tls.mode().to_owned()),
            database: Some(d.database.mode().to_owned()),
            xmpp: Some(d.xmpp.mode().to_owned()),
            xmpp_domain: Some(d.xmpp.domain().to_string()),
            release: Some(d.version.to_string()),
            image_repository: Some(d.image_repository.clone()),
            library_repository: Some(d.library_repository.clone()),
            ca_bundle: d.ca_bundle.clone(),
            ..Self::default()
        };
        match &d.tls {
            Tls::Proxy { http_port } => a.http_port = Some(*http_port),
            Tls::Caddy {
                acme_email,
                acme_ca,
            } => {
                a.acme_email.clone_from(acme_email);
                a.acme_ca.clone_from(acme_ca);
            }
        }
        if let Database::External {
            host,
            port,
            name,
            user,
        } = &d.database
        {
            a.db_host = Some(host.clone());
            a.db_port = Some(*port);
            a.db_name = Some(name.clone());
            a.db_user = Some(user.clone());
        }
        if let Xmpp::Bundled { cert, key, .. } = &d.xmpp {
            a.xmpp_cert.clone_from(cert);
            a.xmpp_key.clone_from(key);
        }
        a
    }

    /// Fills every answer this one lacks from `lower` (lower precedence).
    #[must_use]
    pub fn or(self, lower: Self) -> Self {
        macro_rules! pick { ($($f:ident),*) => { Self { $($f: self.$f.or(lower.$f)),* } } }
        pick!(
            project,
            domain,
            tls,
            http_port,
            acme_email,
            acme_ca,
            ca_bundle,
            database,
            db_host,
            db_port,
            db_name,
            db_user,
            db_password,
            xmpp,
            xmpp_domain,
            xmpp_cert,
            xmpp_key,
            release,
            image_repository,
            library_repository
        )
    }
}

fn invalid(q: &Question, why: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("{} is not valid: {why}", q.flag))
        .next(format!("movim-setup init {} VALUE", q.flag))
}

fn choose(
    p: &dyn Prompter,
    q: &Question,
    given: Option<String>,
    choices: &[&str],
    default: usize,
) -> Result<String, Failure> {
    match given {
        Some(v) if choices.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(invalid(
            q,
            format!("`{v}` is not one of {}", choices.join(", ")),
        )),
        None => Ok(choices[p.select(q, choices, default)?].to_owned()),
    }
}

fn text(
    p: &dyn Prompter,
    q: &Question,
    given: Option<String>,
    default: Option<&str>,
) -> Result<String, Failure> {
    match given {
        Some(v) => Ok(v),
        None => p.text(q, default),
    }
}

fn optional(
    p: &dyn Prompter,
    q: &Question,
    given: Option<String>,
    ask: bool,
) -> Result<Option<String>, Failure> {
    let v = match given {
        Some(v) => v,
        None if ask => p.text(q, Some(""))?,
        None => String::new(),
    };
    Ok(Some(v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// The deployment, and the external database password when one was given.
pub struct Resolved {
    pub deployment: Deployment,
    pub db_password: Option<Secret>,
}

/// Turns merged answers into a validated deployment, asking `p` for whatever is missing.
/// `default_project` is the directory's name.
#[allow(clippy::too_many_lines)] // every question in the order it is asked, each a few lines
pub fn resolve(a: Answers, p: &dyn Prompter, default_project: &str) -> Result<Resolved, Failure> {
    let project = match a.project {
        Some(v) => v,
        None => default_project.to_owned(),
    };
    let project = deployment::parse_project(&project).map_err(|e| invalid(&q::project, e))?;
    let domain =
        Domain::parse(&text(p, &q::domain, a.domain, None)?).map_err(|e| invalid(&q::domain, e))?;

    let tls = match choose(p, &q::tls, a.tls, &["caddy", "proxy"], 1)?.as_str() {
        "caddy" => Tls::Caddy {
            acme_email: optional(p, &q::acme_email, a.acme_email, false)?,
            acme_ca: optional(p, &q::acme_ca, a.acme_ca, false)?,
        },
        _ => {
            let port = match a.http_port {
                Some(port) => port,
                None => text(p, &q::http_port, None, Some(&DEFAULT_HTTP_PORT.to_string()))?
                    .parse()
                    .map_err(|e| invalid(&q::http_port, e))?,
            };
            if port == 0 {
                return Err(invalid(&q::http_port, "port 0"));
            }
            Tls::Proxy { http_port: port }
        }
    };

    let mut db_password = a.db_password;
    let database = match choose(p, &q::database, a.database, &["bundled", "external"], 0)?.as_str()
    {
        "external" => {
            let host = text(p, &q::db_host, a.db_host, None)?;
            if host.trim().is_empty() || host.contains(char::is_whitespace) {
                return Err(invalid(&q::db_host, format!("`{host}` is not a host name")));
            }
            if matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1") {
                return Err(invalid(
                    &q::db_host,
                    "it is the containers' own loopback; give an address the containers can reach (e.g. the host's bridge address)",
                ));
            }
            let port = match a.db_port {
                Some(port) => port,
                None => text(p, &q::db_port, None, Some("5432"))?
                    .parse()
                    .map_err(|e| invalid(&q::db_port, e))?,
            };
            let name = text(p, &q::db_name, a.db_name, Some("movim"))?;
            let user = text(p, &q::db_user, a.db_user, Some("movim"))?;
            if db_password.is_none() {
                db_password = Some(Secret::new(p.password(&q::db_password)?));
            }
            Database::External {
                host,
                port,
                name,
                user,
            }
        }
        _ => Database::Bundled,
    };

    let xmpp_mode = choose(p, &q::xmpp, a.xmpp, &["bundled", "external"], 1)?;
    let default_xmpp = domain
        .as_str()
        .split_once('.')
        .map_or(domain.as_str(), |(_, parent)| parent)
        .to_owned();
    let default_xmpp = if default_xmpp.contains('.') {
        default_xmpp
    } else {
        domain.to_string()
    };
    let xmpp_domain = Domain::parse(&text(
        p,
        &q::xmpp_domain,
        a.xmpp_domain,
        Some(&default_xmpp),
    )?)
    .map_err(|e| invalid(&q::xmpp_domain, e))?;
    let xmpp = if xmpp_mode == "bundled" {
        let cert = optional(
            p,
            &q::xmpp_cert,
            a.xmpp_cert.map(|c| c.display().to_string()),
            true,
        )?
        .map(PathBuf::from);
        let key = optional(
            p,
            &q::xmpp_key,
            a.xmpp_key.map(|c| c.display().to_string()),
            cert.is_some(),
        )?
        .map(PathBuf::from);
        if cert.is_some() != key.is_some() {
            return Err(invalid(
                &q::xmpp_key,
                "--xmpp-cert and --xmpp-key go together",
            ));
        }
        Xmpp::Bundled {
            domain: xmpp_domain,
            cert,
            key,
        }
    } else {
        Xmpp::External {
            domain: xmpp_domain,
        }
    };

    let version = MovimTag::parse(&text(p, &q::release, a.release, Some(DEFAULT_TAG))?)
        .map_err(|e| invalid(&q::release, e))?;
    let image_repository = repository(
        &q::image_repository,
        a.image_repository,
        DEFAULT_IMAGE_REPOSITORY,
    )?;
    let library_repository = repository(
        &q::library_repository,
        a.library_repository,
        DEFAULT_LIBRARY_REPOSITORY,
    )?;
    let ca_bundle = a.ca_bundle;

    Ok(Resolved {
        deployment: Deployment {
            project,
            domain,
            tls,
            database,
            xmpp,
            version,
            image_repository,
            library_repository,
            ca_bundle,
        },
        db_password,
    })
}

fn repository(q: &Question, given: Option<String>, default: &str) -> Result<String, Failure> {
    let v = given.unwrap_or_else(|| default.to_owned());
    let v = v.trim().trim_end_matches('/').to_owned();
    let ok = !v.is_empty()
        && !v.contains(['@', ' '])
        && !v.rsplit('/').next().unwrap_or_default().contains(':');
    if ok {
        Ok(v)
    } else {
        Err(invalid(
            q,
            format!("`{v}` is not a repository prefix (e.g. {default})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Answers {
        Answers {
            domain: Some("movim.example.org".into()),
            ..Answers::default()
        }
    }

    #[test]
    fn defaults_give_a_proxy_deployment_with_bundled_services() {
        let r = resolve(base(), &Defaults, "movim").expect("resolves");
        let d = r.deployment;
        assert_eq!(d.tls, Tls::Proxy { http_port: 8080 });
        assert_eq!(d.database, Database::Bundled);
        assert_eq!(
            d.xmpp,
            Xmpp::External {
                domain: Domain::parse("example.org").expect("valid")
            }
        );
        assert_eq!(d.version.as_str(), DEFAULT_TAG);
        assert_eq!(d.image_repository, DEFAULT_IMAGE_REPOSITORY);
    }

    #[test]
    fn a_missing_required_answer_names_its_flag() {
        let err = resolve(Answers::default(), &Defaults, "movim")
            .err()
            .expect("fails");
        assert!(err.to_string().contains("--domain"), "{err}");
        let err = resolve(
            Answers {
                database: Some("external".into()),
                ..base()
            },
            &Defaults,
            "movim",
        )
        .err()
        .expect("fails");
        assert!(err.to_string().contains("--db-host"), "{err}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (a, flag) in [
            (
                Answers {
                    domain: Some("10.0.0.1".into()),
                    ..Answers::default()
                },
                "--domain",
            ),
            (
                Answers {
                    tls: Some("letsencrypt".into()),
                    ..base()
                },
                "--tls",
            ),
            (
                Answers {
                    release: Some("latest".into()),
                    ..base()
                },
                "--release",
            ),
            (
                Answers {
                    database: Some("external".into()),
                    db_host: Some("localhost".into()),
                    ..base()
                },
                "--db-host",
            ),
        ] {
            let err = resolve(a, &Defaults, "movim").err().expect("fails");
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn higher_precedence_wins_and_saved_answers_fill_the_rest() {
        let saved = resolve(
            Answers {
                http_port: Some(9000),
                ..base()
            },
            &Defaults,
            "movim",
        )
        .expect("resolves")
        .deployment;
        let merged = Answers {
            release: Some("v0.30.0".into()),
            ..Answers::default()
        }
        .or(Answers::from_deployment(&saved));
        let d = resolve(merged, &Defaults, "other")
            .expect("resolves")
            .deployment;
        assert_eq!(d.version.as_str(), "v0.30.0");
        assert_eq!(d.tls, Tls::Proxy { http_port: 9000 });
        assert_eq!(d.project, "movim");
    }

    #[test]
    fn the_release_key_also_reads_its_older_name() {
        for text in ["release: v0.30.0\n", "version: v0.30.0\n"] {
            let a = Answers::from_yaml(text, "a.yaml").expect("parses");
            assert_eq!(a.release.as_deref(), Some("v0.30.0"), "{text}");
        }
    }

    #[test]
    fn answers_files_refuse_unknown_keys() {
        assert!(Answers::from_yaml("domian: x.example.org\n", "a.yaml").is_err());
        let a = Answers::from_yaml("domain: x.example.org\ndb_password: 'p$#'\n", "a.yaml")
            .expect("parses");
        assert_eq!(
            a.db_password.map(|s| s.expose().to_owned()),
            Some("p$#".into())
        );
    }
}
