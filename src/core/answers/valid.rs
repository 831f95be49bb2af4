//! The checks an answer passes before it reaches a file or a command: each says what is wrong
//! with the value, and the answers name the flag or file it came from.

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
