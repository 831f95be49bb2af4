//! The checks an answer passes before it reaches a file or a command: each says what is wrong
//! with the value, and the answers name the flag or file it came from.

use crate::core::deployment::Domain;
use crate::core::envfile;

pub(super) fn port(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(0) => Err("port 0: give a port from 1 to 65535".to_owned()),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("`{v}` is not a port (1 to 65535)")),
    }
}

/// A host name (letters, digits, `-`, `.`, `_`) or an IP address, nothing that could be read as
/// code, a URL or a second argument where it is written.
pub(super) fn db_host(host: &str) -> Result<String, String> {
    let name = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !name && host.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("`{host}` is not a host name or an IP address"));
    }
    if matches!(host, "localhost" | "127.0.0.1" | "::1") {
        return Err("it is the containers' own loopback; give an address the containers can reach (e.g. the host's bridge address)".to_owned());
    }
    Ok(host.to_owned())
}

/// An e-mail address as Caddy's `email` option takes it: one word, `local@domain`, no character
/// that would end the directive or start another.
pub(super) fn acme_email(v: &str) -> Result<String, String> {
    let ok = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && v
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"{}\"'`;#".contains(&b));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!("`{}` is not an e-mail address", v.escape_debug()))
    }
}

/// An ACME directory: an `https://` URL in one word.
pub(super) fn acme_ca(v: &str) -> Result<String, String> {
    let url =
        url::Url::parse(v).map_err(|e| format!("`{}` is not a URL ({e})", v.escape_debug()))?;
    if url.scheme() != "https"
        || v.bytes()
            .any(|b| !b.is_ascii_graphic() || b"{}\"'`#".contains(&b))
    {
        return Err(format!(
            "`{}` is not an https:// URL in one word (an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory)",
            v.escape_debug()
        ));
    }
    Ok(v.to_owned())
}

/// A setting of `movim.env` that movim-setup does not manage: a name as Movim's
/// (`[A-Z][A-Z0-9_]*`), none that movim-setup writes itself (those have their own answers), none
/// that looks secret (the saved answers hold no secret), a value an env file can hold.
pub(super) fn env_setting(name: &str, value: &str) -> Result<(), String> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(format!(
            "`{name}` is not a setting name (A-Z, 0-9 and _, starting with a letter)"
        ));
    }
    if envfile::is_secret_key(name) {
        return Err(format!(
            "{name} looks like a secret (PASSWORD, SECRET, TOKEN or KEY in its name), and the saved answers (movim-setup.yaml) hold no secrets"
        ));
    }
    if envfile::key(name).is_some() {
        return Err(format!(
            "{name} is written by movim-setup from its other answers; it cannot be set here"
        ));
    }
    envfile::quote(name, value).map(|_| ())
}

/// The longest project name: the longest name made from it, the database's pod and Service
/// `<project>-postgres`, is still one DNS label (63 characters).
const MAX_PROJECT: usize = 63 - "-postgres".len();

/// A project name as every name made from it takes it: Kubernetes Service names and DNS labels
/// (`<project>-postgres`, the pods' host names) allow lowercase letters, digits and inner `-`,
/// starting with a letter, in at most 63 characters.
pub(super) fn project(v: &str) -> Result<String, String> {
    let ok = v.len() <= MAX_PROJECT
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.ends_with('-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "`{}` is not a project name: lowercase letters, digits and inner hyphens, starting \
             with a letter, at most {MAX_PROJECT} characters, as Kubernetes and DNS names take \
             them (e.g. {})",
            v.escape_debug(),
            suggested_project(v)
        ))
    }
}

/// The project name closest to `v` that [`project`] takes (`movim_prod` → `movim-prod`): what a
/// directory's name becomes as the default project, and the example a refusal gives.
#[must_use]
pub fn suggested_project(v: &str) -> String {
    let mapped: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut words: Vec<&str> = mapped.split('-').filter(|p| !p.is_empty()).collect();
    if words
        .first()
        .is_none_or(|w| !w.starts_with(|c: char| c.is_ascii_lowercase()))
    {
        words.insert(0, "movim");
    }
    // Cut to the length (ASCII, so at any byte), never ending in a hyphen.
    let joined = words.join("-");
    joined[..joined.len().min(MAX_PROJECT)]
        .trim_end_matches('-')
        .to_owned()
}

/// A public or XMPP domain: [`Domain::parse`], and for an internationalized name the ASCII
/// (punycode) form to give instead.
pub(super) fn domain(v: &str) -> Result<Domain, String> {
    if !v.is_ascii() {
        let hint = match url::Host::parse(v.trim()) {
            Ok(url::Host::Domain(ascii)) => format!("give its ASCII (punycode) form: {ascii}"),
            _ => "give its ASCII (punycode) form, e.g. xn--bcher-kva.example for bücher.example"
                .to_owned(),
        };
        return Err(format!(
            "`{}` is an internationalized domain name; {hint}",
            v.escape_debug()
        ));
    }
    Domain::parse(v)
}

/// A deployment directory `podman run --volume SOURCE:TARGET:OPTIONS` can name: no `:` (which
/// ends the source) and no `,` (which separates options).
///
/// # Errors
/// Names the character, and an example of a directory that works.
pub fn deployment_dir(path: &str) -> Result<(), String> {
    match path.chars().find(|c| matches!(c, ':' | ',')) {
        Some(c) => Err(format!(
            "--dir {path} holds `{c}`, which `podman run --volume` reads as a separator; use a \
             directory without : or , (e.g. --dir /srv/movim)"
        )),
        None => Ok(()),
    }
}
