//! `xmpp.*`: from inside the daemon, the XMPP domain resolves, 5222 answers, STARTTLS is valid.

use crate::core::deployment::Deployment;
use crate::doctor::CERT_WARN_DAYS;
use crate::doctor::facts::Outcome;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};

/// Resolves the XMPP domain as the daemon does (SRV `_xmpp-client._tcp`, then the domain on 5222),
/// connects, and negotiates STARTTLS with peer verification against the container's trust store,
/// which is what the daemon itself accepts. Prints one line per step; exit 0 TLS ok (last line
/// `tls <host:port> <validTo unix time>`), 1 unresolved, 2 no TCP connection, 3 no STARTTLS, 4
/// certificate rejected. Not checked: the features Movim needs from the server (PEP, MAM, …).
pub const XMPP_PHP: &str = include_str!("../probes/xmpp.php");

/// The XMPP server as the daemon reaches it (`xmpp`: the container the probe ran in, its service,
/// and what the probe answered); `now` is the time, for the certificate's lifetime.
#[allow(clippy::too_many_lines)] // one finding per step of the XMPP probe, in the order the daemon takes them
pub fn check_xmpp(
    d: &Deployment,
    hints: &Hints,
    xmpp: Option<&(String, String, Outcome)>,
    now: i64,
) -> Vec<Finding> {
    let domain = d.xmpp.domain().as_str();
    let Some((name, service, outcome)) = xmpp else {
        return vec![
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!(
                    "cannot check {domain} from inside Movim: neither daemon nor fpm is running"
                ),
            )
            .hint(format!("start the stack: {}", hints.start_stack())),
        ];
    };
    let service = service.as_str();
    let (code, output) = match outcome {
        Outcome::Ran(code, output) => (*code, output),
        Outcome::Failed(e) => {
            return vec![
                Finding::warn(
                    Area::Xmpp,
                    "xmpp.dns",
                    format!("cannot check {domain} from inside {name}"),
                )
                .detail(e.clone())
                .hint(hints.exec(service, &format!("getent hosts {domain}"))),
            ];
        }
        Outcome::TimedOut => {
            return vec![
                Finding::warn(
                    Area::Xmpp,
                    "xmpp.dns",
                    format!("looking up {domain} from inside {name} timed out"),
                )
                .hint(format!(
                    "check the container's resolver: {}",
                    hints.exec(service, &format!("getent hosts {domain}"))
                )),
            ];
        }
    };
    let lines: Vec<String> = output.lines().map(str::to_owned).collect();
    let line_with = |prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).cloned();
    let mut out = Vec::new();
    if code == 1 {
        out.push(
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!("{domain} does not resolve inside {name} (no _xmpp-client._tcp SRV, no address): nobody can log in until it does"),
            )
            .hint(format!("publish DNS for {domain} (A/AAAA, or SRV _xmpp-client._tcp.{domain}), then check: {}", hints.exec(service, &format!("getent hosts {domain}")))),
        );
        return out;
    }
    if !matches!(code, 0 | 2 | 3 | 4) {
        out.push(
            Finding::warn(
                Area::Xmpp,
                "xmpp.dns",
                format!("the XMPP probe failed in {name} (php exited {code})"),
            )
            .details(lines.iter().take(5).cloned())
            .hint(hints.exec(service, &format!("getent hosts {domain}"))),
        );
        return out;
    }
    let resolved = line_with("resolved ").unwrap_or_default();
    out.push(Finding::ok(
        Area::Xmpp,
        "xmpp.dns",
        format!(
            "{domain} resolves inside {} ({})",
            name,
            resolved.trim_start_matches("resolved ")
        ),
    ));
    if code == 2 {
        out.push(
            Finding::error(Area::Xmpp, "xmpp.connect", format!("the daemon cannot connect to the XMPP server of {domain}"))
                .details(lines.iter().filter(|l| l.starts_with("noconnect")).cloned())
                .hint(format!("make sure the XMPP server listens on 5222 and the firewall lets the containers in, then: {}", hints.exec(service, &format!("getent hosts {domain}")))),
        );
        return out;
    }
    out.push(Finding::ok(
        Area::Xmpp,
        "xmpp.connect",
        format!("the XMPP server of {domain} answers on its client port"),
    ));
    out.push(match code {
        3 => Finding::error(Area::Xmpp, "xmpp.tls", format!("the XMPP server of {domain} does not offer STARTTLS, which the daemon requires"))
            .hint("enable TLS on the XMPP server (Prosody: c2s_require_encryption = true with a certificate), then: movim-setup doctor"),
        4 => Finding::error(Area::Xmpp, "xmpp.tls", format!("the daemon rejects the XMPP server's certificate for {domain}"))
            .details(line_with("badcert "))
            .hint(format!("give the XMPP server a certificate for {domain} from a CA the daemon trusts (not self-signed; a private CA via: movim-setup init --dir {} --ca-bundle FILE)", hints.dir)),
        _ => {
            let valid_to: i64 = line_with("tls ")
                .and_then(|l| l.rsplit(' ').next().and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let days = (valid_to - now) / 86_400;
            if valid_to > 0 && days < CERT_WARN_DAYS {
                Finding::warn(Area::Xmpp, "xmpp.tls", format!("the XMPP certificate for {domain} expires in {days} days"))
                    .hint("renew it (and restart the XMPP server), then: movim-setup doctor")
            } else {
                let left = if valid_to > 0 { format!(", {days} days left") } else { String::new() };
                Finding::ok(Area::Xmpp, "xmpp.tls", format!("STARTTLS certificate for {domain} accepted by the daemon{left}"))
            }
        }
    });
    out
}
