//! `web.*`: the websocket through web with the public Origin, `/infos`, DNS and TLS of the public name.

use crate::adapters::health::{self, TlsFailure};
use crate::adapters::store::Dir;
use crate::core::containers::{ContainerInfo, container_of};
use crate::core::deployment::{Deployment, Tls};
use crate::core::lockfile::LOCK_FILE;
use crate::doctor::facts::WebFacts;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding, Severity};
use std::net::SocketAddr;

/// Where this tool reaches web: the loopback port in proxy mode, else web's container address.
pub fn web_address(all: &[ContainerInfo], d: &Deployment) -> Result<SocketAddr, String> {
    if let Tls::Proxy { http_port } = d.tls {
        return Ok(SocketAddr::from(([127, 0, 0, 1], http_port)));
    }
    let c = container_of(all, "web").ok_or("the web container does not exist")?;
    c.ips
        .first()
        .map(|(_, ip)| SocketAddr::new(*ip, 80))
        .ok_or_else(|| "the web container has no network address".to_owned())
}

/// Web as a browser reaches it (`web`: what it answered, or why it could not be reached).
#[allow(clippy::too_many_lines)] // one finding per answer web can give, in the order a reader meets them
pub fn check_web(
    s: &Dir,
    d: &Deployment,
    hints: &Hints,
    web: &Result<WebFacts, String>,
) -> Vec<Finding> {
    let host = d.domain.as_str();
    let origin = format!("https://{host}");
    let mut out = Vec::new();
    let w = match web {
        Ok(w) => w,
        Err(why) => {
            out.push(
                Finding::error(
                    Area::Web,
                    "web.websocket",
                    format!("cannot reach web: {why}"),
                )
                .hint(format!("start the stack in order: {}", hints.start_stack())),
            );
            return out;
        }
    };
    let addr = w.addr;
    let daemon_down = !w.daemon_running;
    out.push(match &w.handshake {
        Ok(h) if h.is_upgraded() => Finding::ok(
            Area::Web,
            "web.websocket",
            format!("websocket through web at {addr}: HTTP 101 with Origin {origin}"),
        ),
        Ok(h) if h.origin_refused() => Finding::error(
            Area::Web,
            "web.websocket",
            format!(
                "websocket through web at {addr}: the daemon upgraded, then closed it at once: it \
                 refuses the Origin {origin}"
            ),
        )
        .detail(h.describe())
        .hint(format!(
            "set DAEMON_URL={} in {}, then: {}",
            d.domain.public_url(),
            s.path(s.env_file),
            hints.restart("daemon")
        )),
        Ok(h) => {
            let hint = match h.status {
                502 | 504 => format!(
                    "the daemon is down or not listening on 0.0.0.0:8080; read why: {}",
                    hints.logs("daemon")
                ),
                403 => format!(
                    "set DAEMON_URL={} in {}, then: {}",
                    d.domain.public_url(),
                    s.path(s.env_file),
                    hints.restart("daemon")
                ),
                _ => format!("recreate web from its image: {}", hints.recreate("web")),
            };
            let body = answer_line(&h.body).map(|l| format!("it said: {l}"));
            Finding::error(
                Area::Web,
                "web.websocket",
                format!(
                    "websocket through web at {addr} answered HTTP {} instead of 101",
                    h.status
                ),
            )
            .detail(health::Handshake::explain(h.status))
            .details(body)
            .hint(hint)
        }
        Err(e) if daemon_down => Finding::error(
            Area::Web,
            "web.websocket",
            format!("no websocket handshake with web at {addr}: the daemon is not running"),
        )
        .detail(format!("{e:#}"))
        .detail(
            "nginx waits for the daemon's address until its proxy timeout (60 s), then answers 504",
        )
        .hint(format!("start the daemon: {}", hints.start("daemon"))),
        Err(e) => Finding::error(
            Area::Web,
            "web.websocket",
            format!("no websocket handshake with web at {addr}"),
        )
        .detail(format!("{e:#}"))
        .detail(
            "nginx looks the daemon's address up when web starts: a daemon restarted since may \
             have another address now (Podman hands out the next free one), and web still sends \
             to the old one",
        )
        .hint(format!(
            "restart web so it looks the daemon up again: {}; if that does not help, read why: {}",
            hints.restart("web"),
            hints.logs("web")
        )),
    });
    let pinned = s.lock().map(|l| l.movim.clone());
    let reported_as = |pinned: &str, reported: &str| {
        crate::core::deployment::MovimTag::parse(pinned).is_ok_and(|t| t.is_reported_as(reported))
    };
    out.push(match (&w.infos, pinned) {
        (Ok(i), Some(p)) if reported_as(&p, &i.version) => Finding::ok(
            Area::Web,
            "web.infos",
            format!("/infos reports Movim {}, as locked", i.version),
        ),
        (Ok(i), Some(p)) => Finding::error(
            Area::Web,
            "web.infos",
            format!(
                "/infos reports Movim {} but {LOCK_FILE} pins {p}",
                i.version
            ),
        )
        .hint(format!(
            "recreate the Movim containers from the pinned images: {}",
            hints.recreate("fpm daemon web")
        )),
        (Ok(i), None) => Finding::ok(
            Area::Web,
            "web.infos",
            format!("/infos reports Movim {}", i.version),
        ),
        (Err(e), _) => Finding::error(
            Area::Web,
            "web.infos",
            format!("GET /infos through web at {addr} failed"),
        )
        .detail(format!("{e:#}"))
        .hint(format!("read why: {}", hints.logs("fpm"))),
    });
    if let (true, Some((tls, via))) = (w.resolves, &w.tls) {
        out.push(Finding::ok(
            Area::Web,
            "web.dns",
            format!("{host} resolves"),
        ));
        out.push(check_public_tls(d, hints, tls, via));
    } else {
        out.push(
            Finding::warn(
                Area::Web,
                "web.dns",
                format!("{host} does not resolve from this machine: browsers reach Movim only once it does (its HTTPS certificate was not checked)"),
            )
            .hint(format!("point an A/AAAA record for {host} at this machine or your proxy, then check: getent hosts {host}")),
        );
    }
    out
}

/// The gist of an error page: its HTML title, else its first non-empty line.
pub fn answer_line(body: &str) -> Option<String> {
    if let Some((_, rest)) = body.split_once("<title>")
        && let Some((title, _)) = rest.split_once("</title>")
    {
        return Some(title.trim().to_owned());
    }
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
}

/// The public HTTPS certificate, validated the way a browser would (chain, name, dates) by a real
/// TLS client (`tls`: the status of `https://<domain>/infos`, or why it failed; `via`: how it was
/// reached). With the bundled Caddy the request goes to Caddy's container directly, trusting the
/// deployment's CA bundle; with the user's own proxy it goes wherever the name resolves. How many
/// days are left is not shown: the HTTP client does not expose the peer certificate.
pub fn check_public_tls(
    d: &Deployment,
    hints: &Hints,
    tls: &Result<u16, TlsFailure>,
    via: &str,
) -> Finding {
    let host = d.domain.as_str();
    match tls {
        Ok(status) => Finding::ok(
            Area::Web,
            "web.tls",
            format!("https://{host}/ presents a valid certificate ({via}; HTTP {status})"),
        ),
        Err(TlsFailure::Client(e)) => {
            Finding::warn(Area::Web, "web.tls", "cannot set up a TLS client")
                .detail(e.clone())
                .hint("movim-setup doctor")
        }
        Err(TlsFailure::Request(chain)) => {
            let severity = if matches!(d.tls, Tls::Caddy { .. }) {
                Severity::Error
            } else {
                Severity::Warn
            };
            Finding::new(
                Area::Web,
                "web.tls",
                severity,
                format!("HTTPS to {host} failed ({via})"),
            )
            .details(chain.clone())
            .hint(match d.tls {
                Tls::Caddy { .. } => format!("read Caddy's ACME log: {}", hints.logs("caddy")),
                Tls::Proxy { .. } => {
                    format!("check your proxy's certificate: curl -sSv https://{host}/infos")
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_are_summed_up_by_their_title() {
        assert_eq!(
            answer_line("<html>\r\n<head><title>502 Bad Gateway</title></head>").as_deref(),
            Some("502 Bad Gateway")
        );
        assert_eq!(
            answer_line("\n Origin refused \n").as_deref(),
            Some("Origin refused")
        );
        assert_eq!(answer_line(""), None);
    }
}
