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

/// Whether the engine at `endpoint` runs rootless: Docker says so in its security options
/// (`name=rootless`); Podman's Docker-compatible `/info` does not, its own `libpod/info` does
/// (`host.security.rootless`). Unknown counts as rootful, which changes nothing.
pub(super) async fn is_rootless(security_options: &[String], podman: bool, endpoint: &str) -> bool {
    if says_rootless(security_options) {
        return true;
    }
    if !podman {
        return false;
    }
    match libpod_get(endpoint, "/v4.0.0/libpod/info").await {
        Ok((200, body)) => libpod_says_rootless(&body),
        _ => false,
    }
}

/// `name=rootless` among Docker's security options (each `name=…,key=value`).
fn says_rootless(security_options: &[String]) -> bool {
    security_options
        .iter()
        .any(|o| o.split(',').any(|kv| kv.trim() == "name=rootless"))
}

/// `host.security.rootless` in Podman's `libpod/info` answer.
fn libpod_says_rootless(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["host"]["security"]["rootless"].as_bool())
        .unwrap_or(false)
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
        self.rootless
    }

    /// The lowest host port the engine can publish: any when rootful; rootless, the kernel's
    /// `net.ipv4.ip_unprivileged_port_start` (1024 unless an administrator lowered it), since
    /// the port is bound by the user's own forwarder, without privileges.
    #[must_use]
    pub fn lowest_publishable_port(&self) -> u16 {
        if !self.rootless {
            return 0;
        }
        let text = std::fs::read_to_string(UNPRIVILEGED_PORT_START).ok();
        unprivileged_port_start(text.as_deref())
    }

    /// Whether this process reaches containers at their network addresses: not when rootless.
    #[must_use]
    pub fn reaches_container_addresses(&self) -> bool {
        !self.rootless
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
    fn podman_says_rootless_in_its_own_info() {
        let rootless = r#"{"host":{"security":{"rootless":true,"seccompEnabled":true}}}"#;
        let rootful = r#"{"host":{"security":{"rootless":false}}}"#;
        assert!(libpod_says_rootless(rootless));
        assert!(!libpod_says_rootless(rootful));
        assert!(!libpod_says_rootless("not json"));
        assert!(!libpod_says_rootless(r#"{"host":{}}"#));
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
