//! The host ports a deployment publishes, in one list `init` checks before writing anything: each
//! must be free, and publishable by the engine (a rootless one binds them as the user, so not
//! below the kernel's `net.ipv4.ip_unprivileged_port_start`).

use crate::core::deployment::{Deployment, Tls, Xmpp};
use std::net::Ipv4Addr;

/// One host port the stack publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub service: &'static str,
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The flag that avoids or moves it.
    pub flag: &'static str,
}

/// Every host port `d` publishes: web's loopback port behind a proxy, or Caddy's 80 and 443;
/// the bundled Prosody's 5222 and 5269.
#[must_use]
pub fn published(d: &Deployment) -> Vec<Published> {
    let p = |service, ip, port, flag| Published {
        service,
        ip,
        port,
        flag,
    };
    let mut all = match d.tls {
        Tls::Proxy { http_port } => vec![p("web", Ipv4Addr::LOCALHOST, http_port, "--http-port")],
        Tls::Caddy { .. } => vec![
            p("caddy", Ipv4Addr::UNSPECIFIED, 80, "--tls proxy"),
            p("caddy", Ipv4Addr::UNSPECIFIED, 443, "--tls proxy"),
        ],
    };
    if matches!(d.xmpp, Xmpp::Bundled { .. }) {
        all.push(p("prosody", Ipv4Addr::UNSPECIFIED, 5222, "--xmpp external"));
        all.push(p("prosody", Ipv4Addr::UNSPECIFIED, 5269, "--xmpp external"));
    }
    all
}

/// Why an engine that can publish no port below `lowest` cannot run `d`, with what to do
/// instead: `(summary, details, next steps)`, or `None` when every port is publishable.
#[must_use]
pub fn unpublishable(d: &Deployment, lowest: u16) -> Option<(String, Vec<String>, Vec<String>)> {
    let below: Vec<Published> = published(d)
        .into_iter()
        .filter(|p| p.port < lowest)
        .collect();
    let first = below.first()?;
    let ports: Vec<String> = below
        .iter()
        .map(|p| format!("{} ({})", p.port, p.service))
        .collect();
    let summary = format!(
        "the engine runs rootless and cannot publish port {}: ports below {lowest} need privileges",
        ports.join(", ")
    );
    let details = vec![
        "a rootless engine binds published ports as your user; the kernel lets unprivileged users \
         bind only from net.ipv4.ip_unprivileged_port_start"
            .to_owned(),
        format!("net.ipv4.ip_unprivileged_port_start is {lowest} on this machine"),
    ];
    let proxy = if first.service == "web" {
        format!(
            "--http-port {} (1024 or above), with the reverse proxy on the host forwarding to it",
            lowest.max(8080)
        )
    } else {
        "--tls proxy --http-port 8080, with a reverse proxy on the host (nginx, Caddy, HAProxy) \
         serving 443 and forwarding to 127.0.0.1:8080"
            .to_owned()
    };
    let next = vec![
        proxy,
        format!(
            "or let unprivileged users bind from port {}: sudo sysctl net.ipv4.ip_unprivileged_port_start={}   (kept across reboots in /etc/sysctl.d/)",
            first.port, first.port
        ),
    ];
    Some((summary, details, next))
}

/// Why an engine whose containers this tool cannot reach at their addresses cannot run `d`, or
/// `None`: in Caddy mode the proof and doctor reach web at its container address (behind a
/// proxy, through the published loopback port).
#[must_use]
pub fn unreachable_web(d: &Deployment) -> Option<(String, Vec<String>, Vec<String>)> {
    if !matches!(d.tls, Tls::Caddy { .. }) {
        return None;
    }
    Some((
        "with --tls caddy, movim-setup proves the stack through web's container address, which \
         cannot be reached from the host when the engine runs rootless"
            .to_owned(),
        vec![
            "a rootless engine's networks live in your user's own network namespace; only \
             published ports reach its containers"
                .to_owned(),
        ],
        vec![
            "--tls proxy --http-port 8080, with a reverse proxy on the host (nginx, Caddy, \
             HAProxy) serving 443 and forwarding to 127.0.0.1:8080"
                .to_owned(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deployment::{Database, Domain, MovimTag};
    use std::collections::BTreeMap;

    fn deployment(tls: Tls, bundled_xmpp: bool) -> Deployment {
        let domain = Domain::parse("example.org").expect("domain");
        Deployment {
            project: "movim".into(),
            domain: Domain::parse("movim.example.org").expect("domain"),
            tls,
            database: Database::Bundled,
            xmpp: if bundled_xmpp {
                Xmpp::Bundled {
                    domain,
                    cert: None,
                    key: None,
                }
            } else {
                Xmpp::External { domain }
            },
            version: MovimTag::parse("v0.29.2").expect("tag"),
            image_repository: "ghcr.io/nadiamoe".into(),
            library_repository: "docker.io/library".into(),
            ca_bundle: None,
            movim_env: BTreeMap::new(),
        }
    }

    #[test]
    fn a_proxy_deployment_publishes_its_loopback_port_and_prosodys() {
        let d = deployment(Tls::Proxy { http_port: 8080 }, true);
        let ports: Vec<(&str, u16)> = published(&d).iter().map(|p| (p.service, p.port)).collect();
        assert_eq!(ports, [("web", 8080), ("prosody", 5222), ("prosody", 5269)]);
        assert_eq!(published(&d)[0].ip, Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn rootless_refuses_caddys_80_and_443_naming_the_proxy_and_the_sysctl() {
        let d = deployment(
            Tls::Caddy {
                acme_email: None,
                acme_ca: None,
            },
            true,
        );
        assert!(unpublishable(&d, 0).is_none());
        let (summary, details, next) = unpublishable(&d, 1024).expect("refused");
        assert!(summary.contains("80 (caddy), 443 (caddy)"), "{summary}");
        assert!(!summary.contains("5222"), "{summary}");
        assert!(details.iter().any(|l| l.contains("is 1024")), "{details:?}");
        assert!(next[0].contains("--tls proxy"), "{next:?}");
        assert!(
            next[1].contains("sysctl net.ipv4.ip_unprivileged_port_start=80"),
            "{next:?}"
        );
        // Lowered to 80 by the administrator: Caddy's ports are publishable.
        assert!(unpublishable(&d, 80).is_none());
    }

    #[test]
    fn rootless_refuses_a_low_proxy_port_but_not_prosodys() {
        let low = deployment(Tls::Proxy { http_port: 81 }, true);
        let (summary, _, next) = unpublishable(&low, 1024).expect("refused");
        assert!(summary.contains("port 81 (web)"), "{summary}");
        assert!(next[0].starts_with("--http-port 8080"), "{next:?}");
        let high = deployment(Tls::Proxy { http_port: 8080 }, true);
        assert!(unpublishable(&high, 1024).is_none());
    }

    #[test]
    fn only_caddy_mode_needs_web_at_its_container_address() {
        assert!(unreachable_web(&deployment(Tls::Proxy { http_port: 8080 }, false)).is_none());
        let (summary, _, next) = unreachable_web(&deployment(
            Tls::Caddy {
                acme_email: None,
                acme_ca: None,
            },
            false,
        ))
        .expect("refused");
        assert!(summary.contains("rootless"), "{summary}");
        assert!(next[0].contains("--tls proxy"), "{next:?}");
    }
}
