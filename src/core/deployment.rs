//! The deployment as data: every answer `init` collects, parsed once into types that cannot hold
//! an invalid value ("parse, don't validate"). Rendering, planning and doctor all read this model;
//! nothing here does I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// A DNS host name Movim is served at (no scheme, no port, no IP address: the session cookie is
/// Secure-only and the daemon compares Origin hosts, so Movim needs a real name at a domain root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut s = input.trim().to_ascii_lowercase();
        for scheme in ["https://", "http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                s = rest.to_owned();
            }
        }
        if let Some(rest) = s.strip_suffix('/') {
            s = rest.to_owned();
        }
        if s.is_empty() {
            return Err("the domain is empty".into());
        }
        if s.contains('/') {
            return Err(format!(
                "`{input}` has a path; Movim must be served at the root of its own domain (e.g. movim.example.org)"
            ));
        }
        if s.contains(':')
            || s.parse::<IpAddr>().is_ok()
            || s.trim_start_matches('[').parse::<IpAddr>().is_ok()
        {
            return Err(format!(
                "`{input}` is an address or has a port; Movim needs a DNS name (its session cookie is Secure-only and HTTPS needs a certificate for a name)"
            ));
        }
        if s.len() > 253 {
            return Err(format!("`{input}` is longer than 253 characters"));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(format!(
                "`{input}` is not a fully qualified domain name (e.g. movim.example.org)"
            ));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "`{input}` has an invalid label `{label}` (letters, digits and inner hyphens only)"
                ));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "`{input}` ends in a numeric label; that is not a domain name"
            ));
        }
        Ok(Self(s))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://<domain>/`, the exact value the daemon wants in `DAEMON_URL`.
    #[must_use]
    pub fn public_url(&self) -> String {
        format!("https://{}/", self.0)
    }
}

impl TryFrom<String> for Domain {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> Self {
        d.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Movim release tag as published (`v0.29.2`, `v0.30`, or a test world tag such as
/// `v0.30.1-daemon-exits`). Movim reports its release in `/infos` as its `VERSION` file holds it,
/// with the `v` (`v0.29.2`, `v0.30`): compare through [`MovimTag::is_reported_as`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MovimTag(String);

impl MovimTag {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let with_v = if s.starts_with('v') {
            s.to_owned()
        } else {
            format!("v{s}")
        };
        let core = with_v[1..].split('-').next().unwrap_or_default();
        let parts: Vec<&str> = core.split('.').collect();
        let numeric = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let tag_chars = with_v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !numeric || !tag_chars || with_v.len() > 128 {
            return Err(format!(
                "`{input}` is not a Movim release tag (vX.Y or vX.Y.Z, e.g. v0.29.2)"
            ));
        }
        Ok(Self(with_v))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The release's number without the `v` or a test world suffix (`0.29.2` for
    /// `v0.29.2-anything`).
    #[must_use]
    pub fn version(&self) -> &str {
        self.0[1..].split('-').next().unwrap_or_default()
    }

    /// Numeric parts for ordering releases (`v0.30` = `v0.30.0`).
    #[must_use]
    pub fn numbers(&self) -> [u32; 3] {
        let mut out = [0; 3];
        for (slot, part) in out.iter_mut().zip(self.version().split('.')) {
            *slot = part.parse().unwrap_or(0);
        }
        out
    }
}

impl MovimTag {
    /// Whether the `version` a running Movim reports (`/infos`, from its `VERSION` file) is this
    /// release: with or without its `v`, and a two-part release equal to its `.0` (`v0.30` is
    /// `0.30.0`). Anything that is not a release number is not this release.
    #[must_use]
    pub fn is_reported_as(&self, reported: &str) -> bool {
        Self::parse(reported)
            .is_ok_and(|r| r.numbers() == self.numbers() && !r.version().is_empty())
            && !reported.trim().contains('-')
    }
}

impl TryFrom<String> for MovimTag {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<MovimTag> for String {
    fn from(t: MovimTag) -> Self {
        t.0
    }
}

impl fmt::Display for MovimTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The release `init` installs when nobody says otherwise: the last one the seed's images publish.
pub const DEFAULT_TAG: &str = "v0.29.2";
/// Where the seed's images live; `movim-web`, `movim-fpm` and `movim-daemon` are appended.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ghcr.io/nadiamoe";
/// Where the bundled services' images (postgres, prosody, caddy) come from.
pub const DEFAULT_LIBRARY_REPOSITORY: &str = "docker.io/library";

/// How HTTPS reaches Movim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Tls {
    /// A bundled Caddy terminates TLS with automatic HTTPS (ACME) on 80/443.
    Caddy {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acme_email: Option<String>,
        /// ACME directory URL; Let's Encrypt when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acme_ca: Option<String>,
    },
    /// The user's own reverse proxy terminates TLS; web listens on 127.0.0.1:`http_port`.
    Proxy { http_port: u16 },
}

impl Tls {
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Caddy { .. } => "caddy",
            Self::Proxy { .. } => "proxy",
        }
    }
}

pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Where Movim's database lives. Passwords are not here: they are secrets, kept in `movim.env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Database {
    /// A `postgres` service in the same compose project.
    Bundled,
    /// A PostgreSQL server the user runs; the role needs the right to `create extension pgcrypto`.
    External {
        host: String,
        port: u16,
        name: String,
        user: String,
    },
}

impl Database {
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Bundled => "bundled",
            Self::External { .. } => "external",
        }
    }

    /// Host, port, database and role as the containers see them.
    #[must_use]
    pub fn endpoint(&self) -> DbEndpoint<'_> {
        match self {
            Self::Bundled => DbEndpoint {
                host: BUNDLED_DB_HOST,
                port: 5432,
                name: BUNDLED_DB_NAME,
                user: BUNDLED_DB_USER,
            },
            Self::External {
                host,
                port,
                name,
                user,
            } => DbEndpoint {
                host,
                port: *port,
                name,
                user,
            },
        }
    }
}

/// Where Movim's database is and as whom Movim logs in, as the containers see it (the bundled
/// one is the `postgres` service; this tool reaches it at its container's address instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbEndpoint<'a> {
    pub host: &'a str,
    pub port: u16,
    pub name: &'a str,
    pub user: &'a str,
}

pub const BUNDLED_DB_HOST: &str = "postgres";
pub const BUNDLED_DB_NAME: &str = "movim";
pub const BUNDLED_DB_USER: &str = "movim";

/// The XMPP server Movim's daemon connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Xmpp {
    /// A `prosody` service configured for Movim (see `docs/movim-contract.md`). The daemon rejects self-signed
    /// certificates, so Prosody needs a real one: files the user names (`cert`, `key`).
    Bundled {
        domain: Domain,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cert: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<PathBuf>,
    },
    /// An XMPP server the user already runs.
    External { domain: Domain },
}

impl Xmpp {
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Bundled { .. } => "bundled",
            Self::External { .. } => "external",
        }
    }

    #[must_use]
    pub fn domain(&self) -> &Domain {
        match self {
            Self::Bundled { domain, .. } | Self::External { domain } => domain,
        }
    }
}

/// Everything `init` decided, minus secrets. Saved as `movim-setup.yaml` so that a re-run keeps the
/// answers and `upgrade`/`doctor` can re-render what `init` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Compose project name (container and volume prefix).
    pub project: String,
    pub domain: Domain,
    pub tls: Tls,
    pub database: Database,
    pub xmpp: Xmpp,
    pub version: MovimTag,
    /// Prefix to which `movim-web`, `movim-fpm`, `movim-daemon` are appended.
    pub image_repository: String,
    /// Prefix for `postgres`, `prosody`, `caddy`.
    pub library_repository: String,
    /// A CA bundle (PEM) the containers trust in addition to the system roots: private CAs, or a
    /// test ACME server's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    /// Settings of `movim.env` that movim-setup does not manage, written after its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub movim_env: BTreeMap<String, String>,
}

/// A service of a deployment: Movim's three (one image each, sharing one tree on disk) and the
/// bundled ones. Its name is the compose service's and the lock's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Web,
    Fpm,
    Daemon,
    Postgres,
    Prosody,
    Caddy,
}

impl Service {
    /// Movim's three services.
    pub const MOVIM: [Self; 3] = [Self::Web, Self::Fpm, Self::Daemon];
    const ALL: [Self; 6] = [
        Self::Web,
        Self::Fpm,
        Self::Daemon,
        Self::Postgres,
        Self::Prosody,
        Self::Caddy,
    ];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Fpm => "fpm",
            Self::Daemon => "daemon",
            Self::Postgres => "postgres",
            Self::Prosody => "prosody",
            Self::Caddy => "caddy",
        }
    }

    /// The service of that name, if it is one of a deployment's.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Deployment {
    /// `<repository>/movim-<component>:<tag>` (unpinned; the lock file adds the digest).
    #[must_use]
    pub fn movim_image(&self, component: Service) -> String {
        format!(
            "{}/movim-{component}:{}",
            self.image_repository.trim_end_matches('/'),
            self.version
        )
    }

    /// The images of the bundled services this deployment runs, by service name.
    #[must_use]
    pub fn bundled_images(&self) -> Vec<(&'static str, String)> {
        let lib = self.library_repository.trim_end_matches('/');
        let mut out = Vec::new();
        if self.database == Database::Bundled {
            out.push(("postgres", format!("{lib}/postgres:{POSTGRES_TAG}")));
        }
        if matches!(self.xmpp, Xmpp::Bundled { .. }) {
            out.push(("prosody", format!("{lib}/prosody:{PROSODY_TAG}")));
        }
        if matches!(self.tls, Tls::Caddy { .. }) {
            out.push(("caddy", format!("{lib}/caddy:{CADDY_TAG}")));
        }
        out
    }

    /// The postgres image whose `pg_dump` and `pg_restore` (of PostgreSQL `major`, see
    /// [`postgres_major`]) back up an external database: `<library_repository>/postgres:<major>`.
    #[must_use]
    pub fn backup_tool_image(&self, major: &str) -> String {
        format!(
            "{}/postgres:{major}",
            self.library_repository.trim_end_matches('/')
        )
    }

    /// Every service and its unpinned image, Movim's first.
    #[must_use]
    pub fn images(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Service::MOVIM
            .iter()
            .map(|c| (c.name().to_owned(), self.movim_image(*c)))
            .collect();
        out.extend(
            self.bundled_images()
                .into_iter()
                .map(|(s, i)| (s.to_owned(), i)),
        );
        out
    }
}

/// The bundled database's postgres image tag.
pub const POSTGRES_TAG: &str = "15";

/// The major release of a PostgreSQL server from what `SHOW server_version` says, as the postgres
/// image tags it: `15` for `15.8 (Debian 15.8-0+deb12u1)`, `17` for `17.2`, `16` for `16beta1`,
/// `9.6` for `9.6.24` (before 10 a major release was two numbers). `None` when it does not start
/// with one.
#[must_use]
pub fn postgres_major(server_version: &str) -> Option<String> {
    let leading = |s: &str| -> Option<(u32, usize)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        s[..n].parse().ok().map(|v| (v, n))
    };
    let text = server_version.trim();
    let (major, n) = leading(text)?;
    if major >= 10 {
        return Some(major.to_string());
    }
    let (minor, _) = leading(text[n..].strip_prefix('.')?)?;
    Some(format!("{major}.{minor}"))
}
pub const PROSODY_TAG: &str = "0.12";
pub const CADDY_TAG: &str = "2";

/// A compose project name: what compose itself accepts (lowercase letters, digits, `-`, `_`,
/// starting with a letter or digit).
pub fn parse_project(input: &str) -> Result<String, String> {
    let ok = !input.is_empty()
        && input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && input.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(input.to_owned())
    } else {
        Err(format!(
            "`{input}` is not a compose project name (lowercase letters, digits, - and _)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postgres_major_is_read_from_the_server_version() {
        for (shown, major) in [
            ("15.8 (Debian 15.8-0+deb12u1)", Some("15")),
            ("17.2", Some("17")),
            ("16beta1", Some("16")),
            ("9.6.24", Some("9.6")),
            (" 18.0 ", Some("18")),
            ("9", None),
            ("devel", None),
            ("", None),
        ] {
            assert_eq!(postgres_major(shown).as_deref(), major, "{shown:?}");
        }
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            Domain::parse("HTTPS://Movim.Example.org/").map(|d| d.public_url()),
            Ok("https://movim.example.org/".into())
        );
    }

    #[test]
    fn bad_domains_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("localhost", "fully qualified"),
            ("192.168.1.10", "address"),
            ("[::1]", "address"),
            ("movim.example.org:8443", "port"),
            ("example.org/movim", "path"),
            ("-bad.example.org", "invalid label"),
            ("a..b", "invalid label"),
            ("ex ample.org", "invalid label"),
            ("example.123", "numeric"),
        ] {
            let err = Domain::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn tags_give_the_version_movim_reports() {
        let t = MovimTag::parse("0.30.1-daemon-exits").expect("valid");
        assert_eq!(t.as_str(), "v0.30.1-daemon-exits");
        assert_eq!(t.version(), "0.30.1");
        assert_eq!(
            MovimTag::parse("v0.30").expect("valid").numbers(),
            [0, 30, 0]
        );
        assert!(MovimTag::parse("latest").is_err());
        assert!(t.is_reported_as("v0.30.1"));
        assert!(t.is_reported_as("0.30.1\n"));
        let two = MovimTag::parse("v0.30").expect("valid");
        assert!(two.is_reported_as("v0.30") && two.is_reported_as("v0.30.0"));
        assert!(!two.is_reported_as("v0.30.1") && !two.is_reported_as("v0.3"));
        assert!(!t.is_reported_as("v0.30.1-other") && !t.is_reported_as("master"));
        assert!(MovimTag::parse("v1").is_err());
        assert!(MovimTag::parse("v0.29.2 ; rm").is_err());
    }

    #[test]
    fn project_names_follow_compose() {
        assert!(parse_project("movim").is_ok());
        assert!(parse_project("Movim").is_err());
        assert!(parse_project("_x").is_err());
    }
}
