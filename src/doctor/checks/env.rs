//! `env.*`: `movim.env` private, readable by Movim's uid, every key valid, `DAEMON_URL` the public URL.

use crate::adapters::store::Dir;
use crate::core::envfile;
use crate::core::secret::Secret;
use crate::doctor::MOVIM_UID;
use crate::doctor::facts::FileMeta;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};
use std::collections::BTreeMap;

/// `movim.env`: private, readable by Movim's uid, every key valid, `DAEMON_URL` the public URL.
#[allow(clippy::too_many_lines)] // one finding per rule movim.env must follow, in the order a reader meets them
pub fn check_env(s: &Dir, meta: Option<FileMeta>, hints: &Hints) -> Vec<Finding> {
    let mut out = Vec::new();
    let env_file = s.env_file;
    let path = s.path(env_file);
    if let Some(meta) = meta {
        let mode = meta.mode;
        // Group-readable is private too when the group is no host user's (rootless: Movim's
        // group inside the user namespace).
        let private = mode & 0o077 == 0 || (meta.group_private && mode & 0o037 == 0);
        out.push(if private {
            Finding::ok(Area::Env, "env.mode", format!("{env_file} is mode {mode:04o}"))
        } else {
            Finding::error(
                Area::Env,
                "env.mode",
                format!(
                    "{env_file} is mode {mode:04o}: other local users can read the database password"
                ),
            )
            .hint(format!("chmod 600 {path}"))
        });
        let readable = meta.uid == MOVIM_UID
            || (meta.gid == MOVIM_UID && mode & 0o040 != 0)
            || mode & 0o004 != 0;
        out.push(if readable {
            Finding::ok(
                Area::Env,
                "env.owner",
                format!("{env_file} is readable by uid {MOVIM_UID} (owner {}:{})", meta.uid, meta.gid),
            )
        } else {
            Finding::error(
                Area::Env,
                "env.owner",
                format!(
                    "{env_file} belongs to {}:{} with mode {mode:04o}: fpm and daemon (uid {MOVIM_UID}) cannot read it",
                    meta.uid,
                    meta.gid
                ),
            )
            .hint(format!("sudo chown {MOVIM_UID}:{MOVIM_UID} {path}"))
        });
    }
    let Some(values) = s.env() else {
        return out;
    };
    // What init would write for each key, to quote in the fix (never a secret's value).
    let expected: BTreeMap<&str, String> = s
        .deployment
        .as_ref()
        .map(|d| s.layout.env_values(d, &Secret::new(String::new())))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let problems = envfile::problems(values);
    if problems.is_empty() {
        out.push(Finding::ok(
            Area::Env,
            "env.keys",
            format!("all {} keys valid", envfile::KEYS.len()),
        ));
    }
    let restart = format!(
        "then restart what reads it: {}",
        hints.restart("fpm daemon")
    );
    for (key, why) in problems {
        let secret = envfile::key(&key).is_some_and(|k| k.secret);
        let set = match expected.get(key.as_str()) {
            Some(v) if !secret && !v.is_empty() => format!("set {key}={v} in {path}"),
            _ => format!("set {key} in {path}"),
        };
        out.push(
            Finding::error(Area::Env, format!("env.key.{key}"), format!("{key} {why}"))
                .hint(format!("{set}, {restart}")),
        );
    }
    if let (Ok(d), Some(url)) = (&s.deployment, values.get("DAEMON_URL"))
        && let Ok(parsed) = url::Url::parse(url)
    {
        let host = parsed.host_str().unwrap_or_default();
        out.push(if host.eq_ignore_ascii_case(d.domain.as_str()) {
            Finding::ok(
                Area::Env,
                "env.daemon_url.host",
                format!("DAEMON_URL {url} names the public host"),
            )
        } else {
            Finding::error(
                Area::Env,
                "env.daemon_url.host",
                format!(
                    "DAEMON_URL's host `{host}` is not the public host `{}`: the daemon refuses every browser's websocket (Origin mismatch)",
                    d.domain
                ),
            )
            .hint(format!(
                "set DAEMON_URL={} in {path}, {restart}",
                d.domain.public_url()
            ))
        });
    }
    out
}
