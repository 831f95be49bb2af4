//! `movim.env`, the one file Movim's fpm and daemon read their settings from. Every key is defined
//! once in [`KEYS`] (name, meaning, default, secret or not, validation); that table drives the
//! rendered file, validation on read and doctor. Values are quoted so that `$`, `#`, quotes and
//! spaces reach Movim (phpdotenv) and this tool (dotenvy) unchanged.

use crate::core::deployment::DbEndpoint;
use crate::core::deployment::Deployment;
use crate::core::render::compose::CA_MOUNT;
use crate::core::secret::Secret;
use std::collections::{BTreeMap, BTreeSet};

/// One setting Movim reads from its `.env`.
#[derive(Debug)]
pub struct EnvKey {
    pub name: &'static str,
    pub meaning: &'static str,
    /// `None`: derived from the deployment, or required.
    pub default: Option<&'static str>,
    pub secret: bool,
    pub required: bool,
    pub validate: fn(&str) -> Result<(), String>,
}

fn any(_: &str) -> Result<(), String> {
    Ok(())
}

fn not_empty(v: &str) -> Result<(), String> {
    if v.is_empty() {
        Err("is empty".into())
    } else {
        Ok(())
    }
}

fn port(v: &str) -> Result<(), String> {
    v.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("`{v}` is not a TCP port"))
}

fn pgsql(v: &str) -> Result<(), String> {
    if v == "pgsql" {
        Ok(())
    } else {
        Err(format!(
            "is `{v}`; movim-setup deploys PostgreSQL, so it must be `pgsql`"
        ))
    }
}

fn daemon_port(v: &str) -> Result<(), String> {
    if v == "8080" {
        Ok(())
    } else {
        Err(format!(
            "is `{v}`; the web image proxies /ws/ to port 8080 (hard-coded), so it must be 8080"
        ))
    }
}

fn all_interfaces(v: &str) -> Result<(), String> {
    if v == "0.0.0.0" {
        Ok(())
    } else {
        Err(format!(
            "is `{v}`; the daemon must listen on 0.0.0.0 so the web container can reach it"
        ))
    }
}

fn daemon_url(v: &str) -> Result<(), String> {
    let url = url::Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "`{v}` is not https; Movim's session cookie is Secure-only"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.port().is_some() {
        return Err(format!(
            "`{v}` must be exactly https://<host>/ (Movim is served at the root of its domain)"
        ));
    }
    Ok(())
}

/// `LOG_PATH` as the deployment mounts it (Movim appends file names to it: the `/` matters).
const LOG_PATH: &str = "/var/www/movim/log/";

fn log_path(v: &str) -> Result<(), String> {
    if v == LOG_PATH {
        Ok(())
    } else {
        Err(format!(
            "is `{v}`; the log volume, writable by fpm and the daemon, is mounted at {LOG_PATH}"
        ))
    }
}

fn ca_file(v: &str) -> Result<(), String> {
    if v == CA_MOUNT {
        Ok(())
    } else {
        Err(format!(
            "is `{v}`; the CA bundle given with --ca-bundle is mounted at {CA_MOUNT}"
        ))
    }
}

fn boolean(v: &str) -> Result<(), String> {
    if matches!(v, "true" | "false") {
        Ok(())
    } else {
        Err(format!("`{v}` is not true or false"))
    }
}

/// Every key movim-setup writes, in the order it writes them.
pub const KEYS: &[EnvKey] = &[
    EnvKey {
        name: "DB_DRIVER",
        meaning: "database driver",
        default: Some("pgsql"),
        secret: false,
        required: true,
        validate: pgsql,
    },
    EnvKey {
        name: "DB_HOST",
        meaning: "database host as the containers see it",
        default: None,
        secret: false,
        required: true,
        validate: not_empty,
    },
    EnvKey {
        name: "DB_PORT",
        meaning: "database port",
        default: Some("5432"),
        secret: false,
        required: true,
        validate: port,
    },
    EnvKey {
        name: "DB_DATABASE",
        meaning: "database name",
        default: None,
        secret: false,
        required: true,
        validate: not_empty,
    },
    EnvKey {
        name: "DB_USERNAME",
        meaning: "database role",
        default: None,
        secret: false,
        required: true,
        validate: not_empty,
    },
    EnvKey {
        name: "DB_PASSWORD",
        meaning: "database password",
        default: None,
        secret: true,
        required: true,
        validate: any,
    },
    EnvKey {
        name: "DAEMON_URL",
        meaning: "public URL, exactly https://<host>/ (the daemon checks the websocket Origin against it)",
        default: None,
        secret: false,
        required: true,
        validate: daemon_url,
    },
    EnvKey {
        name: "DAEMON_PORT",
        meaning: "daemon websocket port (web proxies /ws/ to 8080)",
        default: Some("8080"),
        secret: false,
        required: true,
        validate: daemon_port,
    },
    EnvKey {
        name: "DAEMON_INTERFACE",
        meaning: "daemon listen address",
        default: Some("0.0.0.0"),
        secret: false,
        required: true,
        validate: all_interfaces,
    },
    EnvKey {
        name: "LOG_PATH",
        meaning: "where Movim (v0.30+) writes its log files, the daemon's session workers included: they read their settings only from this file, and die on their first logged error when they cannot write there",
        default: Some(LOG_PATH),
        secret: false,
        required: true,
        validate: log_path,
    },
    EnvKey {
        name: "SSL_CERT_FILE",
        meaning: "the CA bundle (--ca-bundle) OpenSSL trusts in the session workers, which connect to the XMPP server and see only this file's settings",
        default: None,
        secret: false,
        required: false,
        validate: ca_file,
    },
    EnvKey {
        name: "DAEMON_DEBUG",
        meaning: "daemon debug logging",
        default: Some("false"),
        secret: false,
        required: false,
        validate: boolean,
    },
    EnvKey {
        name: "DAEMON_VERBOSE",
        meaning: "daemon verbose logging",
        default: Some("false"),
        secret: false,
        required: false,
        validate: boolean,
    },
];

#[must_use]
pub fn key(name: &str) -> Option<&'static EnvKey> {
    KEYS.iter().find(|k| k.name == name)
}

/// The values of `movim.env` for a deployment and its database password.
#[must_use]
pub fn values(d: &Deployment, db_password: &Secret) -> Vec<(&'static str, String)> {
    let DbEndpoint {
        host,
        port,
        name,
        user,
    } = d.database.endpoint();
    KEYS.iter()
        .filter(|k| k.name != "SSL_CERT_FILE" || d.ca_bundle.is_some())
        .map(|k| {
            let v = match k.name {
                "DB_HOST" => host.to_owned(),
                "DB_PORT" => port.to_string(),
                "DB_DATABASE" => name.to_owned(),
                "DB_USERNAME" => user.to_owned(),
                "DB_PASSWORD" => db_password.expose().to_owned(),
                "DAEMON_URL" => d.domain.public_url(),
                "SSL_CERT_FILE" => CA_MOUNT.to_owned(),
                _ => k.default.unwrap_or_default().to_owned(),
            };
            (k.name, v)
        })
        .collect()
}

/// Renders `movim.env`: the managed `values`, then the deployment's own extra settings
/// (`init --movim-env`). Comments stand on their own lines: phpdotenv has no inline comments.
pub fn render(
    values: &[(&str, String)],
    extra: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::from(
        "# Movim settings, written by movim-setup. Read by fpm and daemon as /var/www/movim/.env.\n# Edit with care: `movim-setup doctor` checks every key. No comments after values.\n",
    );
    for (name, value) in values {
        let meaning = key(name).map_or("", |k| k.meaning);
        out.push_str(&format!("# {meaning}\n{name}={}\n", quote(name, value)?));
    }
    if !extra.is_empty() {
        out.push_str(
            "# Your own settings (init --movim-env KEY=VALUE, or movim_env: in the answers)\n",
        );
    }
    for (name, value) in extra {
        out.push_str(&format!("{name}={}\n", quote(name, value)?));
    }
    Ok(out)
}

/// Quotes a value so that phpdotenv (Movim) and dotenvy (this tool) both read it back unchanged.
/// Plain values stay bare; anything else goes in single quotes (literal in both parsers); a value
/// holding a single quote or a backslash goes in double quotes with `\\`, `\"` and `\$` escaped, the three
/// escapes both parsers share (so no `${VAR}` is ever expanded).
pub fn quote(name: &str, value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(format!(
            "{name} contains a line break; env files cannot hold it"
        ));
    }
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/@+,=%".contains(&b));
    if bare {
        return Ok(value.to_owned());
    }
    // dotenvy reads `\\` as an escape even in single quotes; phpdotenv does not.
    if !value.contains(['\'', '\\']) {
        return Ok(format!("'{value}'"));
    }
    Ok(format!(
        "\"{}\"",
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
    ))
}

/// Reads an env file the way this tool reads `movim.env` (dotenvy), keeping the order-free map.
///
/// A line that cannot be read is named by its number and key only: the parser's own message
/// quotes the raw line, which may hold a password, and this error reaches reports and bundles.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (k, v) = item.map_err(|e| unreadable_line(text, &e))?;
        out.insert(k, v);
    }
    Ok(out)
}

/// Where `text` could not be parsed, without any value.
fn unreadable_line(text: &str, e: &dotenvy::Error) -> String {
    let dotenvy::Error::LineParse(line, _) = e else {
        return "cannot be read".to_owned();
    };
    let first = line.lines().next().unwrap_or_default();
    let number = text
        .lines()
        .position(|l| l == first)
        .map_or_else(String::new, |n| format!(" {}", n + 1));
    let key = first
        .split_once('=')
        .map(|(k, _)| k.trim().trim_start_matches("export ").trim())
        .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !k.is_empty())
        .map_or_else(String::new, |k| format!(" ({k}=…)"));
    format!("cannot parse line{number}{key}: its value is not valid env-file syntax")
}

/// Problems with the values of an existing `movim.env`, one line each (`KEY: why`).
#[must_use]
pub fn problems(values: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for k in KEYS {
        match values.get(k.name) {
            None if k.required => out.push((k.name.to_owned(), "is missing".to_owned())),
            None => {}
            Some(v) => {
                if let Err(why) = (k.validate)(v) {
                    out.push((k.name.to_owned(), why));
                }
            }
        }
    }
    out
}

/// The values of the secret keys of an env file's `text` (none when it cannot be parsed).
#[must_use]
pub fn secret_values(text: &str) -> Vec<String> {
    parse(text)
        .map(|values| {
            values
                .into_iter()
                .filter(|(k, _)| is_secret_key(k))
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

/// Which keys of an env file differ, with values only for keys that are not secret.
pub fn env_differences(on_disk: &str, rendered: &str) -> Vec<String> {
    let (Ok(have), Ok(want)) = (parse(on_disk), parse(rendered)) else {
        return vec![
            "(cannot parse it to compare keys; content not shown: it holds secrets)".into(),
        ];
    };
    let keys: BTreeSet<&String> = have.keys().chain(want.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        let (h, w) = (have.get(key), want.get(key));
        if h == w {
            continue;
        }
        let line = match (h, w, is_secret_key(key)) {
            (_, _, true) => format!("{key} differs (secret: not shown)"),
            (Some(h), Some(w), false) => format!("{key}: on disk `{h}`, init writes `{w}`"),
            (Some(h), None, false) => format!("{key}=`{h}` is not written by init"),
            (None, Some(w), false) => format!("{key} is missing (init writes `{w}`)"),
            (None, None, false) => continue,
        };
        out.push(line);
    }
    if out.is_empty() {
        out.push("same keys and values; only comments or layout differ".into());
    }
    out
}
/// A key of the env table marked secret, or an unknown key whose name says it is one.
pub fn is_secret_key(name: &str) -> bool {
    key(name).map_or_else(
        || {
            let upper = name.to_ascii_uppercase();
            ["PASSWORD", "SECRET", "TOKEN", "KEY"]
                .iter()
                .any(|w| upper.contains(w))
        },
        |k| k.secret,
    )
}
/// `movim.env` with the value of every secret key replaced, comments and layout kept.
pub fn redacted_env(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') {
                return line.to_owned();
            }
            let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            match body.split_once('=') {
                Some((key, _)) if is_secret_key(key.trim()) => format!("{}=<redacted>", key.trim()),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &str) -> String {
        let text = render(&[("DB_PASSWORD", value.to_owned())], &BTreeMap::new()).expect("renders");
        parse(&text)
            .expect("parses")
            .remove("DB_PASSWORD")
            .expect("present")
    }

    #[test]
    fn awkward_values_survive_dotenvy() {
        for v in [
            "plain",
            "p$a#s\"s' w",
            "$#\"' ",
            "a b",
            "#",
            "$HOME",
            "${HOME}",
            "'",
            "\\",
            "x\\\"y",
            "",
            "é ü",
        ] {
            assert_eq!(round_trip(v), v, "value {v:?}");
        }
    }

    #[test]
    fn line_breaks_are_refused() {
        let err = quote("DB_PASSWORD", "a\nb").expect_err("refused");
        assert!(err.contains("DB_PASSWORD"));
    }

    #[test]
    fn plain_values_stay_bare_and_specials_are_quoted() {
        assert_eq!(
            quote("K", "https://movim.example.org/"),
            Ok("https://movim.example.org/".into())
        );
        assert_eq!(quote("K", "a#b"), Ok("'a#b'".into()));
        assert_eq!(quote("K", "it's"), Ok("\"it's\"".into()));
        assert_eq!(
            quote("K", "it's $HOME\\"),
            Ok("\"it's \\$HOME\\\\\"".into())
        );
    }

    #[test]
    fn validation_names_each_broken_key() {
        let mut v: BTreeMap<String, String> = KEYS
            .iter()
            .map(|k| (k.name.to_owned(), k.default.unwrap_or("x").to_owned()))
            .collect();
        v.insert("DAEMON_URL".into(), "http://movim.example.org/".into());
        v.insert("DAEMON_PORT".into(), "9000".into());
        v.insert("DAEMON_INTERFACE".into(), "127.0.0.1".into());
        v.remove("DB_HOST");
        v.remove("SSL_CERT_FILE");
        let keys: Vec<String> = problems(&v).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["DB_HOST", "DAEMON_URL", "DAEMON_PORT", "DAEMON_INTERFACE"]
        );
        // Session workers read LOG_PATH only from this file: without it, they cannot log.
        v.remove("LOG_PATH");
        v.insert("SSL_CERT_FILE".into(), "/etc/ssl/cert.pem".into());
        let keys: Vec<String> = problems(&v).into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"LOG_PATH".to_owned()), "{keys:?}");
        assert!(keys.contains(&"SSL_CERT_FILE".to_owned()), "{keys:?}");
    }

    #[test]
    fn an_unreadable_line_is_named_without_its_value() {
        let text = "DAEMON_URL=https://m.example.org/\nDB_PASSWORD=\"s3cr3t-pw\n";
        let err = parse(text).expect_err("an unterminated quote");
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(
            err.contains("line 2") && err.contains("DB_PASSWORD"),
            "{err}"
        );
    }

    #[test]
    fn secret_keys_are_redacted_in_the_bundled_env() {
        let text = "# database password\nDB_PASSWORD='p$ss'\nDAEMON_URL=https://m.example.org/\nSMTP_TOKEN=abc\n";
        assert_eq!(
            redacted_env(text),
            "# database password\nDB_PASSWORD=<redacted>\nDAEMON_URL=https://m.example.org/\nSMTP_TOKEN=<redacted>\n"
        );
    }

    #[test]
    fn env_differences_never_show_secret_values() {
        let lines = env_differences(
            "DB_PASSWORD=old-pw-1\nDAEMON_URL=https://a.example.org/\nEXTRA=1\n",
            "DB_PASSWORD=new-pw-2\nDAEMON_URL=https://b.example.org/\n",
        );
        let all = lines.join("\n");
        assert!(!all.contains("-pw-"), "{all}");
        assert_eq!(
            lines,
            [
                "DAEMON_URL: on disk `https://a.example.org/`, init writes `https://b.example.org/`",
                "DB_PASSWORD differs (secret: not shown)",
                "EXTRA=`1` is not written by init",
            ]
        );
    }
}
