//! Rootless engines (Podman run by an unprivileged user, Docker's rootless mode): found out once
//! when connecting, and what they cannot do that a rootful engine can — publish a host port below
//! the kernel's unprivileged start, or let this process reach a container at its address (their
//! networks live in the user's own network namespace; published ports are forwarded by
//! rootlessport or rootlesskit).

use super::*;

/// Where the kernel says from which port on an unprivileged process may listen.
const UNPRIVILEGED_PORT_START: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
/// The kernel's default, when the setting cannot be read.
const DEFAULT_UNPRIVILEGED_PORT_START: u16 = 1024;

/// What a rootless engine is: how its user namespace maps ids (container id, host id, count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Rootless {
    pub(super) uids: Vec<(u32, u32, u32)>,
    pub(super) gids: Vec<(u32, u32, u32)>,
}

/// Whether the engine at `endpoint` runs rootless, and its id maps: Docker says so in its security
/// options (`name=rootless`; its map is not told); Podman's Docker-compatible `/info` does not, its
/// own `libpod/info` does (`host.security.rootless`, `host.idMappings`). Unknown counts as
/// rootful, which changes nothing.
pub(super) async fn detect(
    security_options: &[String],
    podman: bool,
    endpoint: &str,
) -> Option<Rootless> {
    if podman && let Ok((200, body)) = libpod_get(endpoint, "/v4.0.0/libpod/info").await {
        return libpod_rootless(&body);
    }
    says_rootless(security_options).then(Rootless::default)
}

/// `name=rootless` among Docker's security options (each `name=…,key=value`).
fn says_rootless(security_options: &[String]) -> bool {
    security_options
        .iter()
        .any(|o| o.split(',').any(|kv| kv.trim() == "name=rootless"))
}

/// `host.security.rootless` and `host.idMappings` in Podman's `libpod/info` answer.
fn libpod_rootless(body: &str) -> Option<Rootless> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let host = &v["host"];
    if host["security"]["rootless"].as_bool() != Some(true) {
        return None;
    }
    let map = |key: &str| -> Vec<(u32, u32, u32)> {
        host["idMappings"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let n = |k: &str| m[k].as_u64().and_then(|n| u32::try_from(n).ok());
                Some((n("container_id")?, n("host_id")?, n("size")?))
            })
            .collect()
    };
    Some(Rootless {
        uids: map("uidmap"),
        gids: map("gidmap"),
    })
}

/// The id a host id has inside the user namespace `map` (unchanged when no range holds it).
fn inside(map: &[(u32, u32, u32)], host: u32) -> u32 {
    map.iter()
        .find(|&&(_, h, size)| host >= h && host - h < size)
        .map_or(host, |&(c, h, _)| c + (host - h))
}

/// Whether host id `host` is one of the namespace's subordinate ids (mapped to a container id
/// other than root, which is the user itself).
fn subordinate(map: &[(u32, u32, u32)], host: u32) -> bool {
    map.iter()
        .any(|&(c, h, size)| c > 0 && host >= h && host - h < size)
}

/// `net.ipv4.ip_unprivileged_port_start` as `/proc` reads.
fn unprivileged_port_start(text: Option<&str>) -> u16 {
    text.and_then(|t| t.trim().parse().ok())
        .unwrap_or(DEFAULT_UNPRIVILEGED_PORT_START)
}

impl Engine {
    /// Whether the engine runs rootless.
    #[must_use]
    pub fn rootless(&self) -> bool {
        self.rootless.is_some()
    }

    /// The lowest host port the engine can publish: any when rootful; rootless, the kernel's
    /// `net.ipv4.ip_unprivileged_port_start` (1024 unless an administrator lowered it), since
    /// the port is bound by the user's own forwarder, without privileges.
    #[must_use]
    pub fn lowest_publishable_port(&self) -> u16 {
        if self.rootless.is_none() {
            return 0;
        }
        let text = std::fs::read_to_string(UNPRIVILEGED_PORT_START).ok();
        unprivileged_port_start(text.as_deref())
    }

    /// Whether this process reaches containers at their network addresses: not when rootless.
    #[must_use]
    pub fn reaches_container_addresses(&self) -> bool {
        self.rootless.is_none()
    }

    /// A host file's owner `(uid, gid)` as the containers see it (rootless: through the user
    /// namespace, so the user is root and its subordinate ids are the others).
    #[must_use]
    pub fn owner_in_containers(&self, uid: u32, gid: u32) -> (u32, u32) {
        match &self.rootless {
            Some(r) => (inside(&r.uids, uid), inside(&r.gids, gid)),
            None => (uid, gid),
        }
    }

    /// Whether host group `gid` is a subordinate id of the rootless engine's namespace (no host
    /// user's group).
    #[must_use]
    pub fn is_subordinate_gid(&self, gid: u32) -> bool {
        self.rootless
            .as_ref()
            .is_some_and(|r| subordinate(&r.gids, gid))
    }

    /// Lets `uid` (as the containers see it, with its group of the same number) read the private
    /// file `path`. Rootful, a plain chown to `uid:uid` (root may). Rootless Podman, the user keeps
    /// the file (it must read it again) and gives it to the group inside its namespace, mode 0640:
    /// `podman unshare chown 0:uid` (inside the namespace, where the user may); that group is
    /// a subordinate id, no host user's.
    ///
    /// # Errors
    /// The chown is refused (a rootful engine run by a user who is not root), or `podman unshare`
    /// fails.
    pub async fn hand_over(&self, path: &std::path::Path, uid: u32) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        if self.rootless.is_none() || self.kind != EngineKind::Podman {
            return crate::adapters::fsx::give_to(path, uid);
        }
        // Never through a symbolic link: the mode is set on the file opened.
        crate::adapters::fsx::open_regular(path)?
            .set_permissions(std::fs::Permissions::from_mode(0o640))
            .with_context(|| format!("chmod 640 {}", path.display()))?;
        let owner = format!("0:{uid}");
        let out = crate::adapters::subprocess::command("podman")
            .args(["unshare", "chown", &owner])
            .arg(path)
            .output()
            .await
            .context("cannot run `podman unshare`")?;
        if !out.status.success() {
            bail!(
                "`podman unshare chown {owner} {}` failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_says_rootless_in_its_security_options() {
        let opts = |o: &[&str]| o.iter().map(|&s| s.to_owned()).collect::<Vec<_>>();
        assert!(says_rootless(&opts(&[
            "name=seccomp,profile=default",
            "name=rootless"
        ])));
        assert!(says_rootless(&opts(&[
            "name=seccomp,profile=builtin,name=rootless"
        ])));
        // Podman 4.3's compatible /info, rootless or not: nothing said.
        assert!(!says_rootless(&opts(&["name=seccomp,profile=default"])));
        assert!(!says_rootless(&opts(&["name=rootlessish"])));
    }

    #[test]
    fn podman_says_rootless_and_its_id_maps_in_its_own_info() {
        let rootless = r#"{"host":{"security":{"rootless":true},"idMappings":{
            "uidmap":[{"container_id":0,"host_id":1001,"size":1},
                      {"container_id":1,"host_id":100000,"size":65536}],
            "gidmap":[{"container_id":0,"host_id":1001,"size":1}]}}}"#;
        let r = libpod_rootless(rootless).expect("rootless");
        assert_eq!(r.uids, [(0, 1001, 1), (1, 100_000, 65536)]);
        assert_eq!(r.gids, [(0, 1001, 1)]);
        assert!(libpod_rootless(r#"{"host":{"security":{"rootless":false}}}"#).is_none());
        assert!(libpod_rootless("not json").is_none());
        assert_eq!(
            libpod_rootless(r#"{"host":{"security":{"rootless":true}}}"#),
            Some(Rootless::default())
        );
    }

    #[test]
    fn host_ids_are_seen_through_the_user_namespace() {
        let map = [(0, 1001, 1), (1, 100_000, 65536)];
        // The user is root inside; uid 82 (www-data) is subordinate id 100081.
        assert_eq!(inside(&map, 1001), 0);
        assert_eq!(inside(&map, 100_081), 82);
        assert_eq!(inside(&map, 100_000 + 65535), 65536);
        // Outside every range: unchanged (nobody inside has it).
        assert_eq!(inside(&map, 0), 0);
        assert_eq!(inside(&map, 5000), 5000);
        assert_eq!(inside(&[], 82), 82);
        // Only the subordinate ids are no host user's.
        assert!(subordinate(&map, 100_081));
        assert!(!subordinate(&map, 1001));
        assert!(!subordinate(&map, 33));
    }

    #[test]
    fn the_unprivileged_port_start_defaults_to_the_kernels() {
        assert_eq!(unprivileged_port_start(Some("1024\n")), 1024);
        assert_eq!(unprivileged_port_start(Some("80\n")), 80);
        assert_eq!(unprivileged_port_start(Some("0")), 0);
        assert_eq!(unprivileged_port_start(Some("garbage")), 1024);
        assert_eq!(unprivileged_port_start(None), 1024);
    }
}
