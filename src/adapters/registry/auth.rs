//! Who may pull what: the credentials the docker CLI stored for a registry, and the
//! `WWW-Authenticate` challenges a registry answers with, parsed.

use super::*;

/// Registry credentials from the docker CLI's config. The password never reaches a printout.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Credentials `docker login` stored for `registry` in `$DOCKER_CONFIG/config.json` (or
/// `~/.docker/config.json`), if any. Only inline `auths.<host>.auth` entries are read; credential
/// helpers (`credsStore`, `credHelpers`) are not run.
#[must_use]
pub fn docker_config_credentials(registry: &str) -> Option<Credentials> {
    let path = docker_config_path()?;
    let text = std::fs::read_to_string(path).ok()?;
    credentials_from_config(&text, registry)
}

pub(super) fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

pub(super) fn credentials_from_config(config_json: &str, registry: &str) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let wanted = config_key_host(registry);
    auths.iter().find_map(|(key, entry)| {
        if config_key_host(key) != wanted {
            return None;
        }
        let encoded = entry.get("auth")?.as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Credentials {
            username: username.to_owned(),
            password: Secret::new(password),
        })
    })
}

/// `https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io` and `docker.io` are
/// all Docker Hub in config.json keys; other keys may carry a scheme or a path.
pub(super) fn config_key_host(key: &str) -> String {
    let no_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = no_scheme
        .split('/')
        .next()
        .unwrap_or(no_scheme)
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => host,
    }
}

pub(super) fn basic_header(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// One `WWW-Authenticate` challenge, as registries send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"`
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// `Basic realm="Registry Realm"`
    Basic { realm: Option<String> },
}

pub(super) fn parse_auth_params(input: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        let key = key.trim().to_owned();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            let raw: String = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            value.push_str(raw.trim());
        }
        params.push((key, value));
    }
    params
}
impl Challenge {
    /// Parses one header value; unknown schemes and a bearer challenge without a realm give
    /// `None`. Parameter values may be quoted (with `\` escapes) and contain commas, as `scope`
    /// does for `pull,push`.
    #[must_use]
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let params = parse_auth_params(rest);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Self::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Some(Self::Basic {
                realm: get("realm"),
            })
        } else {
            None
        }
    }
}
