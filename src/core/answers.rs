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
use std::collections::BTreeMap;
use std::path::PathBuf;
use valid::{acme_ca, acme_email, db_host, port};
pub use valid::{deployment_dir, suggested_project};

/// The origin of the answers a previous run saved (`movim-setup.yaml`): the project they name is
/// kept as it is, since renaming it would leave the running containers and volumes behind.
pub const SAVED_BY_A_PREVIOUS_RUN: &str = "the answers a previous run saved";

mod valid;

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
    /// Settings of `movim.env` that movim-setup does not manage (`KEY: value`), kept across
    /// re-runs and upgrades; an empty value removes a saved one.
    pub movim_env: Option<BTreeMap<String, String>>,
    /// Where each answer came from when it was not a flag or its env var (an answers file, the
    /// answers saved by a previous run), by key: errors name the file instead of the flag.
    #[serde(skip)]
    pub origins: BTreeMap<&'static str, String>,
}

/// One question `init` asks, and where else its answer may come from.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub prompt: &'static str,
    /// The default as `--help` shows it; empty when there is none.
    pub default: &'static str,
}

/// Asks the user; implemented by the terminal prompter and the non-interactive one.
pub trait Prompter: Send + Sync {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure>;
    fn select(&self, q: &Question, choices: &[&str], default: usize) -> Result<usize, Failure>;
    fn password(&self, q: &Question) -> Result<String, Failure>;
    /// [`Prompter::text`] whose answer `check` must accept: a terminal says why and asks again;
    /// otherwise a refused answer is an error naming the flag.
    fn text_checked(
        &self,
        q: &Question,
        default: Option<&str>,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, Failure> {
        let v = self.text(q, default)?;
        check(&v).map_err(|e| invalid(q, None, e))?;
        Ok(v)
    }
    /// Whether someone answers (a terminal, without `--yes`): unattended runs take defaults and
    /// never wait on a question.
    fn interactive(&self) -> bool;
    /// A yes/no question; `default` is the answer offered.
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Failure>;
    /// Nobody can be asked and nobody agreed up front (no terminal, no `--yes`): what needs a
    /// confirmation is refused rather than taken as agreed.
    fn nobody_agreed(&self) -> bool {
        false
    }
}

fn missing(q: &Question) -> Failure {
    Failure::usage(format!("no answer for `{}`", q.key))
        .detail(format!(
            "give it with {} VALUE, the {} environment variable, or `{}:` in --answers FILE",
            q.flag, q.env, q.key
        ))
        .next(format!("movim-setup init {} VALUE …", q.flag))
}

/// No terminal and no `--yes`: the defaults for questions (`init` takes them), but nothing that
/// needs a confirmation is taken as agreed.
#[derive(Debug, Default)]
pub struct NoTerminal;

impl Prompter for NoTerminal {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure> {
        Defaults.text(q, default)
    }
    fn select(&self, q: &Question, choices: &[&str], default: usize) -> Result<usize, Failure> {
        Defaults.select(q, choices, default)
    }
    fn password(&self, q: &Question) -> Result<String, Failure> {
        Defaults.password(q)
    }
    fn interactive(&self) -> bool {
        false
    }
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Failure> {
        Defaults.confirm(prompt, default)
    }
    fn nobody_agreed(&self) -> bool {
        true
    }
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
    ($($key:ident $flag:literal $env:literal $prompt:literal $default:literal;)*) => {
        /// Every question: its answers-file key, flag, env var, prompt and shown default.
        pub const QUESTIONS: &[Question] = &[$(q::$key),*];
        #[allow(dead_code)] // every question has a constant; not every one is asked by name
        mod q {
            use crate::core::answers::Question;
            $(#[allow(non_upper_case_globals)] pub const $key: Question = Question { key: stringify!($key), flag: $flag, env: $env, prompt: $prompt, default: $default };)*
        }
    };
}

questions! {
    project "--project" "MOVIM_PROJECT" "Compose project name" "the directory's name";
    domain "--domain" "MOVIM_DOMAIN" "Public domain of Movim (e.g. movim.example.org)" "";
    tls "--tls" "MOVIM_TLS" "HTTPS: a bundled Caddy with automatic certificates, or your own reverse proxy" "proxy";
    http_port "--http-port" "MOVIM_HTTP_PORT" "Port on 127.0.0.1 your reverse proxy forwards to" "8080";
    acme_email "--acme-email" "MOVIM_ACME_EMAIL" "E-mail for the ACME account (optional)" "";
    acme_ca "--acme-ca" "MOVIM_ACME_CA" "ACME directory URL (empty: Let's Encrypt)" "Let's Encrypt";
    ca_bundle "--ca-bundle" "MOVIM_CA_BUNDLE" "Extra CA bundle (PEM) the containers trust" "";
    database "--database" "MOVIM_DATABASE" "Database: a bundled PostgreSQL, or an external server" "bundled";
    db_host "--db-host" "MOVIM_DB_HOST" "External database host (as the containers reach it)" "";
    db_port "--db-port" "MOVIM_DB_PORT" "External database port" "5432";
    db_name "--db-name" "MOVIM_DB_NAME" "External database name" "movim";
    db_user "--db-user" "MOVIM_DB_USER" "External database role" "movim";
    db_password "--db-password-file" "MOVIM_DB_PASSWORD" "External database password" "";
    xmpp "--xmpp" "MOVIM_XMPP" "XMPP server: a bundled Prosody, or an existing server" "external";
    xmpp_domain "--xmpp-domain" "MOVIM_XMPP_DOMAIN" "XMPP domain (users are user@this-domain)" "the domain's parent";
    xmpp_cert "--xmpp-cert" "MOVIM_XMPP_CERT" "Certificate (PEM, full chain) for the XMPP domain" "";
    xmpp_key "--xmpp-key" "MOVIM_XMPP_KEY" "Private key (PEM) for the XMPP domain" "";
    release "--release" "MOVIM_VERSION" "Movim release" "v0.29.2";
    image_repository "--image-repository" "MOVIM_IMAGE_REPOSITORY" "Image repository prefix for movim-web, movim-fpm, movim-daemon" "ghcr.io/nadiamoe";
    library_repository "--library-repository" "MOVIM_LIBRARY_REPOSITORY" "Image repository prefix for postgres, prosody, caddy" "docker.io/library";
    movim_env "--movim-env" "MOVIM_ENV" "Extra movim.env setting KEY=VALUE (repeatable; KEY= removes one)" "";
}

/// Runs `$m!` on every answer field (the one list the merging and the origin marking share).
macro_rules! each_field {
    ($m:ident) => {
        $m!(
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
    };
}

impl Answers {
    /// Reads an answers file (YAML, keys as in [`QUESTIONS`]); every answer it gives is marked
    /// as coming from it, so that a bad value is reported as the file's.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, Failure> {
        let a: Self = yaml_serde::from_str(text).map_err(|e| {
            Failure::usage(format!("cannot read the answers file {origin}")).because(e)
        })?;
        Ok(a.from_source(&format!("the answers file {origin}")))
    }

    /// Marks every answer given here (and not already marked) as coming from `source`.
    #[must_use]
    pub fn from_source(mut self, source: &str) -> Self {
        macro_rules! mark { ($($f:ident),*) => { $(
            if self.$f.is_some() {
                self.origins.entry(stringify!($f)).or_insert_with(|| source.to_owned());
            }
        )* } }
        each_field!(mark);
        if self.movim_env.is_some() {
            self.origins
                .entry("movim_env")
                .or_insert_with(|| source.to_owned());
        }
        self
    }

    /// Where the answer to `key` came from, when not from a flag or its env var.
    #[must_use]
    pub fn origin(&self, key: &str) -> Option<&str> {
        self.origins.get(key).map(String::as_str)
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
            movim_env: (!d.movim_env.is_empty()).then(|| d.movim_env.clone()),
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

    /// Fills every answer this one lacks from `lower` (lower precedence), with its origin.
    #[must_use]
    pub fn or(self, lower: Self) -> Self {
        let mut origins = self.origins.clone();
        macro_rules! inherit { ($($f:ident),*) => { $(
            if self.$f.is_none() && let Some(o) = lower.origins.get(stringify!($f)) {
                origins.insert(stringify!($f), o.clone());
            }
        )* } }
        each_field!(inherit);
        // Extra settings merge key by key: a higher source adds to, or changes, the saved ones.
        let movim_env = match (self.movim_env.clone(), lower.movim_env.clone()) {
            (Some(high), Some(mut low)) => {
                low.extend(high);
                Some(low)
            }
            (high, low) => {
                if high.is_none()
                    && let Some(o) = lower.origins.get("movim_env")
                {
                    origins.insert("movim_env", o.clone());
                }
                high.or(low)
            }
        };
        macro_rules! pick { ($($f:ident),*) => { Self { $($f: self.$f.or(lower.$f),)* movim_env, origins } } }
        each_field!(pick)
    }
}

/// A bad answer: named by its flag when it came from a flag or env var, by its key and file when
/// it came from an answers file (or the answers saved by a previous run).
fn invalid(q: &Question, origin: Option<&str>, why: impl std::fmt::Display) -> Failure {
    match origin {
        None => Failure::usage(format!("{} is not valid: {why}", q.flag))
            .next(format!("movim-setup init {} VALUE", q.flag)),
        Some(source) => Failure::usage(format!("`{}:` in {source} is not valid: {why}", q.key))
            .next(format!(
                "fix `{}:` in {source}, or give it with movim-setup init {} VALUE",
                q.key, q.flag
            )),
    }
}

/// What [`resolve`] works with: the merged answers' origins and the prompter.
struct Ask<'a> {
    p: &'a dyn Prompter,
    origins: BTreeMap<&'static str, String>,
}

impl Ask<'_> {
    fn invalid(&self, q: &Question, why: impl std::fmt::Display) -> Failure {
        invalid(q, self.origins.get(q.key).map(String::as_str), why)
    }

    fn choose(
        &self,
        q: &Question,
        given: Option<String>,
        choices: &[&str],
        default: usize,
    ) -> Result<String, Failure> {
        match given {
            Some(v) if choices.contains(&v.as_str()) => Ok(v),
            Some(v) => Err(self.invalid(q, format!("`{v}` is not one of {}", choices.join(", ")))),
            None => Ok(choices[self.p.select(q, choices, default)?].to_owned()),
        }
    }

    /// The answer given, checked by `parse`; or asked, and asked again (on a terminal) until
    /// `parse` takes it.
    fn valid<T>(
        &self,
        q: &Question,
        given: Option<String>,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let text = match given {
            Some(v) => v,
            None => self
                .p
                .text_checked(q, default, &|v: &str| parse(v).map(|_| ()))?,
        };
        parse(&text).map_err(|e| self.invalid(q, e))
    }

    fn optional(
        &self,
        q: &Question,
        given: Option<String>,
        ask: bool,
    ) -> Result<Option<String>, Failure> {
        let v = match given {
            Some(v) => v,
            None if ask => self.p.text(q, Some(""))?,
            None => String::new(),
        };
        Ok(Some(v.trim().to_owned()).filter(|v| !v.is_empty()))
    }
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
    let ask = Ask {
        p,
        origins: a.origins.clone(),
    };
    let project = a.project.unwrap_or_else(|| default_project.to_owned());
    let saved =
        (a.origins.get(q::project.key)).is_some_and(|o| o.ends_with(SAVED_BY_A_PREVIOUS_RUN));
    let project = if saved {
        deployment::parse_project(&project)
    } else {
        valid::project(&project)
    }
    .map_err(|e| ask.invalid(&q::project, e))?;
    let domain = ask.valid(&q::domain, a.domain, None, valid::domain)?;

    let tls = match ask.choose(&q::tls, a.tls, &["caddy", "proxy"], 1)?.as_str() {
        "caddy" => Tls::Caddy {
            acme_email: ask
                .optional(&q::acme_email, a.acme_email, false)?
                .map(|v| acme_email(&v).map_err(|e| ask.invalid(&q::acme_email, e)))
                .transpose()?,
            acme_ca: ask
                .optional(&q::acme_ca, a.acme_ca, false)?
                .map(|v| acme_ca(&v).map_err(|e| ask.invalid(&q::acme_ca, e)))
                .transpose()?,
        },
        _ => Tls::Proxy {
            http_port: ask.valid(
                &q::http_port,
                a.http_port.map(|p| p.to_string()),
                Some(&DEFAULT_HTTP_PORT.to_string()),
                port,
            )?,
        },
    };

    let mut db_password = a.db_password;
    let database = match ask
        .choose(&q::database, a.database, &["bundled", "external"], 0)?
        .as_str()
    {
        "external" => {
            let host = ask.valid(&q::db_host, a.db_host, None, db_host)?;
            let port = ask.valid(
                &q::db_port,
                a.db_port.map(|p| p.to_string()),
                Some("5432"),
                port,
            )?;
            let name = ask.valid(&q::db_name, a.db_name, Some("movim"), |v| Ok(v.to_owned()))?;
            let user = ask.valid(&q::db_user, a.db_user, Some("movim"), |v| Ok(v.to_owned()))?;
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

    let xmpp = xmpp(
        &ask,
        &a.xmpp,
        &a.xmpp_domain,
        &a.xmpp_cert,
        &a.xmpp_key,
        &domain,
    )?;
    let version = ask.valid(&q::release, a.release, Some(DEFAULT_TAG), MovimTag::parse)?;
    let image_repository = repository(
        &ask,
        &q::image_repository,
        a.image_repository,
        DEFAULT_IMAGE_REPOSITORY,
    )?;
    let library_repository = repository(
        &ask,
        &q::library_repository,
        a.library_repository,
        DEFAULT_LIBRARY_REPOSITORY,
    )?;

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
            ca_bundle: a.ca_bundle,
            movim_env: extra_env(&ask, a.movim_env)?,
        },
        db_password,
    })
}

/// The extra `movim.env` settings ([`valid::env_setting`]); empty ones dropped.
fn extra_env(
    ask: &Ask<'_>,
    given: Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for (name, value) in given.unwrap_or_default() {
        valid::env_setting(&name, &value).map_err(|e| ask.invalid(&q::movim_env, e))?;
        if !value.is_empty() {
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// The XMPP server: its mode, its domain (by default the public domain's parent), and for the
/// bundled Prosody its certificate and key (both or neither).
fn xmpp(
    ask: &Ask<'_>,
    mode: &Option<String>,
    domain_given: &Option<String>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    domain: &Domain,
) -> Result<Xmpp, Failure> {
    let xmpp_mode = ask.choose(&q::xmpp, mode.clone(), &["bundled", "external"], 1)?;
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
    let xmpp_domain = ask.valid(
        &q::xmpp_domain,
        domain_given.clone(),
        Some(&default_xmpp),
        valid::domain,
    )?;
    if xmpp_mode != "bundled" {
        return Ok(Xmpp::External {
            domain: xmpp_domain,
        });
    }
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|c| c.display().to_string());
    let cert = ask
        .optional(&q::xmpp_cert, shown(cert), true)?
        .map(PathBuf::from);
    let key = ask
        .optional(&q::xmpp_key, shown(key), cert.is_some())?
        .map(PathBuf::from);
    if cert.is_some() != key.is_some() {
        return Err(ask.invalid(&q::xmpp_key, "--xmpp-cert and --xmpp-key go together"));
    }
    Ok(Xmpp::Bundled {
        domain: xmpp_domain,
        cert,
        key,
    })
}

fn repository(
    ask: &Ask<'_>,
    q: &Question,
    given: Option<String>,
    default: &str,
) -> Result<String, Failure> {
    let v = given.unwrap_or_else(|| default.to_owned());
    let v = v.trim().trim_end_matches('/').to_owned();
    let ok = !v.is_empty()
        && !v.contains(['@', ' '])
        && !v.rsplit('/').next().unwrap_or_default().contains(':');
    if ok {
        Ok(v)
    } else {
        Err(ask.invalid(
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
                    http_port: Some(0),
                    ..base()
                },
                "--http-port",
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
    fn values_that_would_reach_files_or_code_are_refused_naming_the_flag() {
        for (a, flag) in [
            (
                Answers {
                    database: Some("external".into()),
                    db_host: Some("x',1)||system('id')||fsockopen('x".into()),
                    ..base()
                },
                "--db-host",
            ),
            (
                Answers {
                    tls: Some("caddy".into()),
                    acme_email: Some("me@example.org\n}\n:80 {".into()),
                    ..base()
                },
                "--acme-email",
            ),
            (
                Answers {
                    tls: Some("caddy".into()),
                    acme_email: Some("me at example.org".into()),
                    ..base()
                },
                "--acme-email",
            ),
            (
                Answers {
                    tls: Some("caddy".into()),
                    acme_ca: Some("http://acme.test/directory".into()),
                    ..base()
                },
                "--acme-ca",
            ),
            (
                Answers {
                    movim_env: Some(BTreeMap::from([(
                        "DAEMON_URL".into(),
                        "https://x.test/".into(),
                    )])),
                    ..base()
                },
                "--movim-env",
            ),
            (
                Answers {
                    movim_env: Some(BTreeMap::from([("SMTP_PASSWORD".into(), "x".into())])),
                    ..base()
                },
                "--movim-env",
            ),
        ] {
            let err = resolve(a, &Defaults, "movim").err().expect("fails");
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }

    fn refused(a: Answers) -> String {
        resolve(a, &Defaults, "movim")
            .err()
            .expect("fails")
            .to_string()
    }

    #[test]
    fn a_project_name_kubernetes_or_dns_cannot_take_is_refused_with_a_valid_example() {
        let err = refused(Answers {
            project: Some("Movim_Prod".into()),
            ..base()
        });
        assert!(
            err.contains("--project") && err.contains("(e.g. movim-prod)"),
            "{err}"
        );
        let err = refused(Answers {
            project: Some("m".repeat(55)),
            ..base()
        });
        assert!(err.contains(&format!("(e.g. {})", "m".repeat(54))), "{err}");
        let err = refused(Answers {
            project: Some("2024".into()),
            ..base()
        });
        assert!(err.contains("(e.g. movim-2024)"), "{err}");
        // A directory's name becomes a project name that is valid.
        assert_eq!(suggested_project("movim_prod"), "movim-prod");
        assert_eq!(suggested_project("--Movim..Chat--"), "movim-chat");
        assert_eq!(suggested_project("é"), "movim");
        assert_eq!(suggested_project(""), "movim");
        assert_eq!(suggested_project(&"x".repeat(80)), "x".repeat(54));
        for odd in [
            format!("{}_b", "a".repeat(53)),
            "9".repeat(60),
            "_é-x".into(),
        ] {
            let suggested = suggested_project(&odd);
            assert!(valid::project(&suggested).is_ok(), "{odd} -> {suggested}");
        }
    }

    #[test]
    fn a_project_a_previous_run_saved_is_kept_as_it_is() {
        // Renaming it would leave the containers and volumes it names behind.
        let kept = Answers {
            project: Some("movim_prod".into()),
            ..base()
        }
        .from_source(&format!(
            "/srv/movim_prod/movim-setup.yaml, {SAVED_BY_A_PREVIOUS_RUN}"
        ));
        let d = resolve(kept, &Defaults, "movim").expect("kept").deployment;
        assert_eq!(d.project, "movim_prod");
    }

    #[test]
    fn an_internationalized_domain_is_refused_with_its_punycode_form() {
        let err = refused(Answers {
            domain: Some("movim.bücher.example".into()),
            ..base()
        });
        assert!(err.contains("--domain is not valid"), "{err}");
        assert!(
            err.contains("punycode) form: movim.xn--bcher-kva.example"),
            "{err}"
        );
        let err = refused(Answers {
            xmpp_domain: Some("bücher.example".into()),
            ..base()
        });
        assert!(err.contains("--xmpp-domain is not valid"), "{err}");
        assert!(
            err.contains("punycode) form: xn--bcher-kva.example"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_podman_volume_cannot_name_is_refused_naming_dir() {
        for bad in ["/srv/movim:prod", "/srv/movim,prod"] {
            let err = deployment_dir(bad).expect_err(bad);
            assert!(err.starts_with(&format!("--dir {bad} holds")), "{err}");
            assert!(err.contains("(e.g. --dir /srv/movim)"), "{err}");
        }
        assert!(deployment_dir("/srv/movim prod").is_ok());
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
    fn a_bad_value_from_an_answers_file_names_the_file_and_its_key() {
        let file = Answers::from_yaml("domain: movim.example.org\ntls: cady\n", "/srv/a.yaml")
            .expect("parses");
        let err = resolve(file.clone(), &Defaults, "movim")
            .err()
            .expect("fails")
            .to_string();
        assert!(
            err.contains("`tls:` in the answers file /srv/a.yaml is not valid"),
            "{err}"
        );
        assert!(err.contains("one of caddy, proxy"), "{err}");
        // The same bad value from a flag, above the file, names the flag.
        let flag = Answers {
            tls: Some("cady".into()),
            ..Answers::default()
        }
        .or(file);
        let err = resolve(flag, &Defaults, "movim")
            .err()
            .expect("fails")
            .to_string();
        assert!(err.starts_with("--tls is not valid"), "{err}");
    }

    /// A terminal that types the given answers in order, and asks again on a refused one.
    struct Typist {
        answers: std::sync::Mutex<Vec<&'static str>>,
        refused: std::sync::Mutex<Vec<String>>,
    }

    impl Prompter for Typist {
        fn text(&self, _q: &Question, _default: Option<&str>) -> Result<String, Failure> {
            let mut a = self.answers.lock().expect("lock");
            Ok(a.remove(0).to_owned())
        }
        fn text_checked(
            &self,
            q: &Question,
            default: Option<&str>,
            check: &dyn Fn(&str) -> Result<(), String>,
        ) -> Result<String, Failure> {
            loop {
                let v = self.text(q, default)?;
                match check(&v) {
                    Ok(()) => return Ok(v),
                    Err(e) => self
                        .refused
                        .lock()
                        .expect("lock")
                        .push(format!("{}: {e}", q.key)),
                }
            }
        }
        fn select(&self, _q: &Question, _c: &[&str], default: usize) -> Result<usize, Failure> {
            Ok(default)
        }
        fn password(&self, _q: &Question) -> Result<String, Failure> {
            Ok("pw".into())
        }
        fn interactive(&self) -> bool {
            true
        }
        fn confirm(&self, _prompt: &str, default: bool) -> Result<bool, Failure> {
            Ok(default)
        }
    }

    #[test]
    fn a_refused_answer_at_the_prompt_is_asked_again() {
        let typist = Typist {
            answers: std::sync::Mutex::new(vec![
                "exa mple.org",
                "movim.example.org",
                "0",
                "99999",
                "9000",
                "example.org",
                "latest",
                "v0.30.0",
            ]),
            refused: std::sync::Mutex::default(),
        };
        let d = resolve(Answers::default(), &typist, "movim")
            .expect("resolves")
            .deployment;
        assert_eq!(d.domain.as_str(), "movim.example.org");
        assert_eq!(d.tls, Tls::Proxy { http_port: 9000 });
        assert_eq!(d.version.as_str(), "v0.30.0");
        let refused = typist.refused.lock().expect("lock").clone();
        let keys: Vec<&str> = refused
            .iter()
            .map(|r| r.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            ["domain", "http_port", "http_port", "release"],
            "{refused:?}"
        );
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
