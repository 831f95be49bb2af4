//! Where a registry's requests may go: the scheme a registry is spoken to with, the `Link` pages
//! of a tag list that may be followed (the registry's own origin only), and the token realms that
//! may receive the stored login (HTTPS on the registry's host, or the loopback registry itself).

use std::net::IpAddr;

use crate::core::image_ref::ImageRef;

/// Docker treats these as insecure registries by default, so images on them are served over plain
/// HTTP; everything else is HTTPS.
pub(super) fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// HTTP for loopback registries (a local registry speaks plain HTTP), HTTPS for the rest.
pub(super) fn scheme(image: &ImageRef) -> &'static str {
    if is_loopback_host(image.api_host()) {
        "http"
    } else {
        "https"
    }
}

/// The registry's own origin (`https://ghcr.io`, `http://127.0.0.1:5000`).
pub(super) fn base(image: &ImageRef) -> String {
    format!("{}://{}", scheme(image), image.api_host())
}

/// The next tag page `link` (relative or absolute) names, read from the page at `current`; only a
/// page on the registry's own scheme, host and port is followed, since the login goes with it.
pub(super) fn next_page(image: &ImageRef, current: &str, link: &str) -> Result<String, String> {
    let registry = url::Url::parse(&base(image)).map_err(|e| e.to_string())?;
    let next = url::Url::parse(current)
        .and_then(|here| here.join(link))
        .map_err(|e| format!("the next tag page `{link}` is not a URL: {e}"))?;
    if next.origin() == registry.origin() {
        Ok(next.into())
    } else {
        Err(format!(
            "the next tag page {next} is not on the registry {registry}; refusing to follow it \
             (and to send it the login)"
        ))
    }
}

/// Whether the token realm may receive the stored login for `image`'s registry: HTTPS on the
/// registry's host or one under its name (Docker Hub's `auth.docker.io` for `docker.io`), or,
/// for a loopback registry spoken to over plain HTTP, that very registry.
pub(super) fn may_receive_login(image: &ImageRef, realm: &url::Url) -> bool {
    let Some(host) = realm.host_str() else {
        return false;
    };
    if realm.scheme() == "https" {
        let api = host_of(image.api_host());
        let name = host_of(&image.registry);
        host.eq_ignore_ascii_case(api)
            || host.eq_ignore_ascii_case(name)
            || host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", name.to_ascii_lowercase()))
    } else {
        url::Url::parse(&base(image))
            .is_ok_and(|r| r.scheme() == "http" && r.origin() == realm.origin())
    }
}

/// `host` of `host[:port]` (and of `[v6]:port`, brackets kept as URLs print them).
fn host_of(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        host_port
            .split_once(']')
            .map_or(host_port, |(h, _)| &host_port[..=h.len()])
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn parsed(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn a_tag_page_link_is_followed_only_on_the_registrys_own_origin() {
        let image = parsed("ghcr.io/movim/movim-web:v0.29.2");
        let here = "https://ghcr.io/v2/movim/movim-web/tags/list?n=2";
        assert_eq!(
            next_page(&image, here, "/v2/movim/movim-web/tags/list?last=b&n=2").unwrap(),
            "https://ghcr.io/v2/movim/movim-web/tags/list?last=b&n=2"
        );
        assert!(next_page(&image, here, "https://ghcr.io/v2/x/tags/list?last=b").is_ok());
        for elsewhere in [
            "https://evil.example/v2/x/tags/list?last=b",
            "http://ghcr.io/v2/x/tags/list?last=b",
            "https://ghcr.io:8443/v2/x/tags/list?last=b",
            "//evil.example/v2/x/tags/list",
        ] {
            let err = next_page(&image, here, elsewhere).unwrap_err();
            assert!(
                err.contains("is not on the registry https://ghcr.io/"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_login_goes_only_to_an_https_realm_of_the_registry_or_the_loopback_registry_itself() {
        let ghcr = parsed("ghcr.io/movim/movim-web");
        assert!(may_receive_login(&ghcr, &url("https://ghcr.io/token")));
        assert!(!may_receive_login(&ghcr, &url("http://ghcr.io/token")));
        assert!(!may_receive_login(
            &ghcr,
            &url("https://evil.example/token")
        ));
        assert!(!may_receive_login(
            &ghcr,
            &url("https://ghcr.io.evil.example/token")
        ));
        let hub = parsed("postgres:17");
        assert!(may_receive_login(
            &hub,
            &url("https://auth.docker.io/token")
        ));
        assert!(!may_receive_login(&hub, &url("https://notdocker.io/token")));
        let local = parsed("127.0.0.1:5000/movim/movim-web");
        assert!(may_receive_login(
            &local,
            &url("http://127.0.0.1:5000/token")
        ));
        assert!(!may_receive_login(
            &local,
            &url("http://127.0.0.1:5001/token")
        ));
        assert!(!may_receive_login(
            &local,
            &url("http://10.0.0.1:5000/token")
        ));
    }
}
