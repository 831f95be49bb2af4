//! Tag → digest resolution straight from the registry (OCI distribution API), so the lock file pins
//! what the registry serves *now* and the engine is only ever asked to pull by digest. It needs no
//! engine: `init --dry-run`, `upgrade`'s plan and `doctor` can all ask "what does this tag point to?".
//!
//! Only the few requests resolution needs are implemented (one manifest GET, a bearer token when
//! the registry asks for one) rather than a full OCI client: the digest is computed here from the
//! manifest bytes and checked against what the registry claims.

mod auth;
mod origin;

pub use auth::{Challenge, Credentials, docker_config_credentials};
use auth::{basic_header, credentials_from_config};
use origin::scheme;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use sha2::{Digest as _, Sha256};

use crate::adapters::env;
use crate::core::image_ref::{DOCKER_HUB, ImageRef};
use crate::core::secret::Secret;

/// The manifest kinds a tag may point to; a multi-arch tag points to a list/index, and its digest
/// is what `docker pull` pins, so the index itself is what we hash.
const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The distribution spec lets registries refuse manifests above 4 MiB; anything bigger is not a
/// manifest and is not read into memory.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// How many tags one page of the tag list asks for, and how many pages are followed at most.
const TAG_PAGE_SIZE: usize = 1000;
const MAX_TAG_PAGES: usize = 50;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why resolution failed, kept distinct so commands can tell the user the right thing: a typo in
/// a tag, a missing login, a network problem, or a registry serving something it should not.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{image}: not found at {registry} (the tag or repository does not exist): {detail}")]
    NotFound {
        image: String,
        registry: String,
        detail: String,
    },
    #[error(
        "{image}: {registry} refused access ({detail}); if the image is private, run \
         `docker login {registry}` (credentials are read from docker's config.json)"
    )]
    Unauthorized {
        image: String,
        registry: String,
        detail: String,
    },
    #[error("{image}: cannot reach the registry {registry} at {url}: {detail}")]
    Unreachable {
        image: String,
        registry: String,
        url: String,
        detail: String,
    },
    #[error(
        "{image}: {registry} answered digest {claimed} but the manifest hashes to {computed}; \
         refusing to pin it"
    )]
    DigestMismatch {
        image: String,
        registry: String,
        claimed: String,
        computed: String,
    },
    #[error("{image}: unexpected answer from {registry}: {detail}")]
    Protocol {
        image: String,
        registry: String,
        detail: String,
    },
}

/// Talks to registries over HTTPS (HTTP for loopback ones), with the system's roots plus an
/// optional extra CA bundle.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// Overrides the docker config path (tests); `None` reads the usual place at each request.
    docker_config: Option<PathBuf>,
    tag_page_size: usize,
}

impl RegistryClient {
    /// A client trusting the platform's roots and, when given, the PEM certificates in
    /// `ca_bundle` (for private registries or a private CA).
    pub fn new(ca_bundle: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("movim-setup/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_bundle {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA bundle {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!("the CA bundle {} is not PEM certificates", path.display())
            })?;
            anyhow::ensure!(
                !certs.is_empty(),
                "the CA bundle {} holds no certificate",
                path.display()
            );
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .context("cannot set up the HTTPS client for registries")?;
        Ok(Self {
            http,
            docker_config: None,
            tag_page_size: TAG_PAGE_SIZE,
        })
    }

    /// Reads credentials from this docker config file instead of the usual place.
    #[must_use]
    pub fn with_docker_config(mut self, config_json: PathBuf) -> Self {
        self.docker_config = Some(config_json);
        self
    }

    /// Asks for tags `n` at a time (tests use a small page to follow `Link` pages).
    #[must_use]
    pub fn with_tag_page_size(mut self, n: usize) -> Self {
        self.tag_page_size = n.max(1);
        self
    }

    fn credentials(&self, registry: &str) -> Option<Credentials> {
        match &self.docker_config {
            Some(path) => credentials_from_config(&std::fs::read_to_string(path).ok()?, registry),
            None => docker_config_credentials(registry),
        }
    }

    /// The digest (`sha256:<hex>`) of the manifest `image` points to right now.
    pub async fn resolve(&self, image: &ImageRef) -> anyhow::Result<String> {
        Ok(self.resolve_checked(image).await?)
    }

    async fn resolve_checked(&self, image: &ImageRef) -> Result<String, RegistryError> {
        let ctx = Ctx {
            image: image.to_string(),
            registry: image.registry.clone(),
        };
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            scheme(image),
            image.api_host(),
            image.repository,
            image.manifest_reference()
        );
        let credentials = self.credentials(&image.registry);

        let mut response = self.get_manifest(&ctx, &url, None).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            let authorization = self
                .authorization(&ctx, image, &response, credentials.as_ref())
                .await?;
            response = self.get_manifest(&ctx, &url, Some(&authorization)).await?;
        }

        let status = response.status();
        let claimed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !status.is_success() {
            return Err(failed(&ctx, response, credentials.is_some(), &url).await);
        }

        let body = read_capped(&ctx, response).await?;
        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if let Some(claimed) = claimed
            && claimed != computed
        {
            return Err(RegistryError::DigestMismatch {
                image: ctx.image,
                registry: ctx.registry,
                claimed,
                computed,
            });
        }
        if let Some(asked) = &image.digest
            && asked != &computed
        {
            return Err(RegistryError::DigestMismatch {
                image: ctx.image,
                registry: ctx.registry,
                claimed: asked.clone(),
                computed,
            });
        }
        Ok(computed)
    }

    /// Every tag of `image`'s repository, through the tag list API (`/v2/<name>/tags/list`),
    /// following the registry's `Link` pages.
    ///
    /// # Errors
    /// As [`RegistryClient::resolve`]: not found, refused, unreachable, or an answer that is not a
    /// tag list.
    pub async fn tags(&self, image: &ImageRef) -> anyhow::Result<Vec<String>> {
        Ok(self.tags_checked(image).await?)
    }

    async fn tags_checked(&self, image: &ImageRef) -> Result<Vec<String>, RegistryError> {
        let ctx = Ctx {
            image: image.name(),
            registry: image.registry.clone(),
        };
        let base = origin::base(image);
        let credentials = self.credentials(&image.registry);
        let mut url = format!(
            "{base}/v2/{}/tags/list?n={}",
            image.repository, self.tag_page_size
        );
        let mut authorization: Option<String> = None;
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let mut response = self
                .get(&ctx, &url, "application/json", authorization.as_deref())
                .await?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && authorization.is_none() {
                let value = self
                    .authorization(&ctx, image, &response, credentials.as_ref())
                    .await?;
                response = self
                    .get(&ctx, &url, "application/json", Some(&value))
                    .await?;
                authorization = Some(value);
            }
            if !response.status().is_success() {
                return Err(failed(&ctx, response, credentials.is_some(), &url).await);
            }
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_capped(&ctx, response).await?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| ctx.protocol(format!("{url} answered no tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => {
                    url = origin::next_page(image, &url, &next).map_err(|e| ctx.protocol(e))?;
                }
                None => return Ok(tags),
            }
        }
        Err(ctx.protocol(format!(
            "more than {MAX_TAG_PAGES} pages of tags; stopped at {url}"
        )))
    }

    /// The `Authorization` value answering a 401's challenge: an (anonymous, or logged-in) bearer
    /// token from the realm, or basic credentials when the registry asks for those.
    async fn authorization(
        &self,
        ctx: &Ctx,
        image: &ImageRef,
        unauthorized: &reqwest::Response,
        credentials: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let challenge = unauthorized
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .min_by_key(|c| matches!(c, Challenge::Basic { .. }));
        match challenge {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope =
                    scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository));
                let token = self
                    .bearer_token(ctx, image, &realm, service.as_deref(), &scope, credentials)
                    .await?;
                Ok(format!("Bearer {token}"))
            }
            Some(Challenge::Basic { .. }) => credentials
                .map(basic_header)
                .ok_or_else(|| ctx.unauthorized("it asks for a login and none is stored")),
            None => Err(ctx.unauthorized("401 without a usable WWW-Authenticate challenge")),
        }
    }

    async fn get_manifest(
        &self,
        ctx: &Ctx,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        self.get(ctx, url, &MANIFEST_MEDIA_TYPES.join(", "), authorization)
            .await
    }

    async fn get(
        &self,
        ctx: &Ctx,
        url: &str,
        accept: &str,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self.http.get(url).header(reqwest::header::ACCEPT, accept);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send().await.map_err(|e| ctx.unreachable(url, &e))
    }

    async fn bearer_token(
        &self,
        ctx: &Ctx,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let mut url = url::Url::parse(realm)
            .map_err(|e| ctx.protocol(format!("the token realm `{realm}` is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        if credentials.is_some() && !origin::may_receive_login(image, &url) {
            return Err(ctx.protocol(format!(
                "it asks for the login to be sent to the token service {realm}, which is not HTTPS \
                 on {}; refusing to send it there (`docker logout {}` would pull anonymously)",
                image.api_host(),
                image.registry
            )));
        }
        let mut request = self.http.get(url.as_str());
        if let Some(c) = credentials {
            request = request.header(reqwest::header::AUTHORIZATION, basic_header(c));
        }
        let response = request
            .send()
            .await
            .map_err(|e| ctx.unreachable(realm, &e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let what = if credentials.is_some() {
                "the token service refused the stored login"
            } else {
                "the token service refused anonymous access"
            };
            return Err(ctx.unauthorized(&format!("{what} ({status})")));
        }
        if !status.is_success() {
            return Err(ctx.protocol(format!("the token service {realm} answered {status}")));
        }
        let body = read_capped(ctx, response).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            ctx.protocol(format!("the token service {realm} answered no JSON: {e}"))
        })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ctx.protocol(format!("the token service {realm} answered no token")))
    }
}

/// The error for a registry's non-success answer to `url`: not found, refused (`logged_in`: with
/// stored credentials), or anything else.
async fn failed(
    ctx: &Ctx,
    response: reqwest::Response,
    logged_in: bool,
    url: &str,
) -> RegistryError {
    let status = response.status();
    let detail = error_summary(&read_capped(ctx, response).await.unwrap_or_default());
    match status {
        reqwest::StatusCode::NOT_FOUND => RegistryError::NotFound {
            image: ctx.image.clone(),
            registry: ctx.registry.clone(),
            detail: if detail.is_empty() {
                "404".to_owned()
            } else {
                detail
            },
        },
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            let hint = if logged_in {
                "the stored login was refused"
            } else {
                "anonymous access denied; the repository may be private or not exist"
            };
            ctx.unauthorized(format!("{status}: {hint} {detail}").trim_end())
        }
        other => ctx.protocol(
            format!("HTTP {other} for {url} {detail}")
                .trim_end()
                .to_owned(),
        ),
    }
}

/// The tag list API's answer (`tags` is null for a repository without tags on some registries).
#[derive(serde::Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

/// The `rel="next"` target of a `Link` header (`</v2/x/tags/list?last=a&n=2>; rel="next"`).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A token service's answer (`token` as Docker spells it, or `access_token` as `OAuth2` does).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// Who the errors are about.
struct Ctx {
    image: String,
    registry: String,
}

impl Ctx {
    fn unauthorized(&self, detail: &str) -> RegistryError {
        RegistryError::Unauthorized {
            image: self.image.clone(),
            registry: self.registry.clone(),
            detail: detail.to_owned(),
        }
    }

    fn protocol(&self, detail: String) -> RegistryError {
        RegistryError::Protocol {
            image: self.image.clone(),
            registry: self.registry.clone(),
            detail,
        }
    }

    fn unreachable(&self, url: &str, error: &reqwest::Error) -> RegistryError {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        RegistryError::Unreachable {
            image: self.image.clone(),
            registry: self.registry.clone(),
            url: url.to_owned(),
            detail: format!("{what}: {}", error_chain(error)),
        }
    }
}

/// reqwest's top-level message hides the cause (DNS, refused, TLS); the chain says it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Reads a body, refusing more than a manifest can be.
async fn read_capped(ctx: &Ctx, mut response: reqwest::Response) -> Result<Vec<u8>, RegistryError> {
    let url = response.url().to_string();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ctx.unreachable(&url, &e))?
    {
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(ctx.protocol(format!(
                "{url} answered more than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The registry's own words (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}`), short.
fn error_summary(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|e| {
                [e.code.as_deref(), e.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(body)
            .chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_owned(),
    }
}

/// The image registry as the commands use it: a tag's digest now, and the tags a repository
/// lists. [`RegistryClient`] is the real one; tests drive the same code with a fake.
pub trait Registry: Send + Sync {
    /// [`RegistryClient::resolve`].
    fn resolve<'a>(&'a self, image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<String>>;
    /// [`RegistryClient::tags`].
    fn tags<'a>(&'a self, image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<Vec<String>>>;
}

impl Registry for RegistryClient {
    fn resolve<'a>(&'a self, image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(RegistryClient::resolve(self, image))
    }
    fn tags<'a>(&'a self, image: &'a ImageRef) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        Box::pin(RegistryClient::tags(self, image))
    }
}

/// Makes the registry client for a deployment (which trusts its CA bundle).
pub trait Registries: Send + Sync {
    fn client(&self, ca_bundle: Option<&Path>) -> anyhow::Result<Box<dyn Registry>>;
}

/// The real registries, over HTTPS (plain HTTP for loopback ones, as Docker does).
pub struct Distribution;

impl Registries for Distribution {
    fn client(&self, ca_bundle: Option<&Path>) -> anyhow::Result<Box<dyn Registry>> {
        Ok(Box::new(RegistryClient::new(ca_bundle)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::origin::is_loopback_host;
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn parsed(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn api_host_and_scheme() {
        assert_eq!(parsed("postgres").api_host(), "registry-1.docker.io");
        assert_eq!(parsed("ghcr.io/a/b").api_host(), "ghcr.io");
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("127.1.2.3"));
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("ghcr.io"));
        assert!(!is_loopback_host("registry.local:5000"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
    }

    #[test]
    fn follows_the_next_link_of_a_tag_page() {
        assert_eq!(
            next_link(r#"</v2/movim/movim-daemon/tags/list?last=v0.30.0&n=2>; rel="next""#)
                .as_deref(),
            Some("/v2/movim/movim-daemon/tags/list?last=v0.30.0&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/x/tags/list?n=1&last=a>; rel="prev", <https://r.example/v2/x/tags/list?n=1&last=b>; rel="next""#)
                .as_deref(),
            Some("https://r.example/v2/x/tags/list?n=1&last=b")
        );
        assert_eq!(next_link(r#"</v2/x/tags/list?last=a>; rel="prev""#), None);
    }

    #[test]
    fn parses_www_authenticate() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:nadiamoe/movim-web:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:nadiamoe/movim-web:pull".into()),
            })
        );
        // Commas inside quotes, spaces after commas, case-insensitive scheme and keys.
        assert_eq!(
            Challenge::parse(
                r#"bearer Realm="https://auth.docker.io/token", scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: None,
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(
            Challenge::parse("Basic"),
            Some(Challenge::Basic { realm: None })
        );
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None, "no realm");
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(
            Challenge::parse("Bearer realm=https://t.example/token,service=reg"),
            Some(Challenge::Bearer {
                realm: "https://t.example/token".into(),
                service: Some("reg".into()),
                scope: None,
            })
        );
    }

    #[test]
    fn reads_credentials_from_docker_config() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        let config = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"auth":"{auth}"}}}}}}"#
        );
        let hub = credentials_from_config(&config, "docker.io").unwrap();
        assert_eq!(hub.username, "alice");
        assert_eq!(
            hub.password.expose(),
            "s3cr:et",
            "only the first `:` separates"
        );
        assert!(credentials_from_config(&config, "ghcr.io").is_some());
        assert!(credentials_from_config(&config, "quay.io").is_none());
        assert!(
            !format!("{hub:?}").contains("s3cr"),
            "Debug must not print the password"
        );
    }

    /// A one-route HTTP/1.1 server on loopback: every request gets `respond(path, headers)`.
    /// Returns the registry host (`127.0.0.1:<port>`).
    async fn serve(
        respond: impl Fn(&str, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
    ) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let respond = std::sync::Arc::new(respond);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let respond = respond.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = socket.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let (status, headers, body) = respond(&path, &text);
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&k);
                        head.push_str(": ");
                        head.push_str(&v);
                        head.push_str("\r\n");
                    }
                    head.push_str("\r\n");
                    socket.write_all(head.as_bytes()).await.unwrap();
                    socket.write_all(&body).await.unwrap();
                    socket.shutdown().await.ok();
                });
            }
        });
        addr.to_string()
    }

    const MANIFEST: &[u8] =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;

    fn manifest_digest() -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(MANIFEST)))
    }

    #[tokio::test]
    async fn refuses_a_digest_header_that_does_not_match_the_body() {
        let wrong = format!("sha256:{}", "0".repeat(64));
        let claimed = wrong.clone();
        let host = serve(move |_, _| {
            (
                200,
                vec![("Docker-Content-Digest".into(), claimed.clone())],
                MANIFEST.to_vec(),
            )
        })
        .await;
        let image = parsed(&format!("{host}/movim/movim-web:v0.29.2"));
        let err = RegistryClient::new(None)
            .unwrap()
            .resolve(&image)
            .await
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!(
                "answered digest {wrong} but the manifest hashes to {}",
                manifest_digest()
            )),
            "{message}"
        );
        assert!(matches!(
            err.downcast_ref::<RegistryError>(),
            Some(RegistryError::DigestMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn follows_an_anonymous_bearer_challenge_and_hashes_the_body() {
        let host = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        let realm_host = host.clone();
        let addr = serve(move |path, request| {
            let authorised = request.lines().any(|l| l.eq_ignore_ascii_case("authorization: bearer t0k"));
            if path.starts_with("/token?") {
                assert!(path.contains("scope=repository%3Amovim%2Fmovim-web%3Apull"), "{path}");
                assert!(path.contains("service=test-registry"), "{path}");
                (200, vec![], br#"{"token":"t0k"}"#.to_vec())
            } else if !authorised {
                let realm = format!("http://{}/token", realm_host.get().unwrap());
                let challenge = format!(
                    r#"Bearer realm="{realm}",service="test-registry",scope="repository:movim/movim-web:pull""#
                );
                (401, vec![("WWW-Authenticate".into(), challenge)], Vec::new())
            } else if path == "/v2/movim/movim-web/manifests/v0.29.2" {
                assert!(request.contains("application/vnd.oci.image.index.v1+json"), "{request}");
                (200, vec![("Docker-Content-Digest".into(), manifest_digest())], MANIFEST.to_vec())
            } else {
                (404, vec![], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec())
            }
        })
        .await;
        host.set(addr.clone()).unwrap();
        let client = RegistryClient::new(None).unwrap();

        let found = client
            .resolve(&parsed(&format!("{addr}/movim/movim-web:v0.29.2")))
            .await
            .unwrap();
        assert_eq!(found, manifest_digest());

        let err = client
            .resolve(&parsed(&format!("{addr}/movim/movim-web:nope")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<RegistryError>(),
                Some(RegistryError::NotFound { .. })
            ),
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("MANIFEST_UNKNOWN"), "{err:#}");
    }

    /// A docker config holding a login for `registry`, and the client reading it.
    fn logged_in_client(registry: &str) -> (tempfile::TempDir, RegistryClient) {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let client = RegistryClient::new(None).unwrap().with_docker_config(path);
        (dir, client)
    }

    /// A server that answers 200 to everything and counts what it was asked.
    async fn elsewhere() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let addr = serve(move |_, _| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (
                200,
                vec![],
                br#"{"token":"t0k","tags":["stolen"]}"#.to_vec(),
            )
        })
        .await;
        (addr, hits)
    }

    #[tokio::test]
    async fn a_tag_page_link_to_another_origin_is_refused_and_gets_no_login() {
        let (other, hits) = elsewhere().await;
        let link = format!(r#"<http://{other}/v2/movim/movim-web/tags/list?last=a>; rel="next""#);
        let addr = serve(move |_, request| {
            if request
                .to_ascii_lowercase()
                .contains("authorization: basic")
            {
                (
                    200,
                    vec![("Link".into(), link.clone())],
                    br#"{"tags":["a"]}"#.to_vec(),
                )
            } else {
                let challenge = ("WWW-Authenticate".into(), r#"Basic realm="r""#.into());
                (401, vec![challenge], Vec::new())
            }
        })
        .await;
        let (_dir, client) = logged_in_client(&addr);
        let err = client
            .tags(&parsed(&format!("{addr}/movim/movim-web")))
            .await
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!("the next tag page http://{other}/v2/movim/movim-web/tags/list?last=a is not on the registry http://{addr}/")),
            "{message}"
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "followed the link"
        );
    }

    #[tokio::test]
    async fn the_login_is_refused_to_a_token_realm_that_is_not_https_on_the_registry() {
        let (other, hits) = elsewhere().await;
        let realm = format!("http://{other}/token");
        let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
        let addr = serve(move |_, _| {
            (
                401,
                vec![("WWW-Authenticate".into(), challenge.clone())],
                Vec::new(),
            )
        })
        .await;
        let (_dir, client) = logged_in_client(&addr);
        let err = client
            .resolve(&parsed(&format!("{addr}/movim/movim-web:v0.29.2")))
            .await
            .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!(
                "the token service {realm}, which is not HTTPS on {addr}"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("docker logout {addr}")),
            "{message}"
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "asked the realm"
        );
    }

    #[tokio::test]
    async fn says_unreachable_when_nothing_listens() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let image = parsed(&format!("127.0.0.1:{port}/a/b:c"));
        let err = RegistryClient::new(None)
            .unwrap()
            .resolve(&image)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<RegistryError>(),
                Some(RegistryError::Unreachable { .. })
            ),
            "{err:#}"
        );
        assert!(
            format!("{err}").contains(&format!("127.0.0.1:{port}/a/b:c")),
            "{err}"
        );
    }
}
