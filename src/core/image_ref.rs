//! Image references (`registry/repository:tag@sha256:…`) parsed and normalised the way `docker`
//! does it, and the pinned forms the lock file and the engine use. Pure: the registry client, the
//! engine and the plan all read references through this one parser.

use std::fmt;

/// Docker Hub's name in image references, and the host that actually serves its API.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// An image reference normalised the way `docker` does it (`postgres` is
/// `docker.io/library/postgres:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`, …
    pub registry: String,
    /// `library/postgres`, `nadiamoe/movim-web`, …
    pub repository: String,
    /// `None` only when the reference names a digest and no tag.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference as `docker pull` would: no registry part means Docker Hub (with
    /// `library/` for one-component names), and no tag and no digest means `:latest`.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{reference}` is not an image reference: {why}");
        if reference.is_empty() {
            return Err(bad("it is empty"));
        }
        if reference.chars().any(char::is_whitespace) {
            return Err(bad("it contains whitespace"));
        }
        let (name_tag, digest) = match reference.split_once('@') {
            Some((name_tag, digest)) => {
                check_digest(digest).map_err(|why| bad(&why))?;
                (name_tag, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(name_tag[at + 1..].to_owned()))
            }
            None => (name_tag, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|why| bad(&why))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if registry.is_empty() || registry.ends_with(':') {
            return Err(bad("the registry host is incomplete"));
        }
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        check_repository(&repository).map_err(|why| bad(&why))?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            (tag, _) => tag,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, the name without tag or digest.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag@digest` — the form the lock file records: the tag for humans, the
    /// digest for the engine (which ignores the tag when a digest is present).
    #[must_use]
    pub fn pinned(&self, digest: &str) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}@{digest}", self.name()),
            None => self.by_digest(digest),
        }
    }

    /// `registry/repository@digest` — what is pulled and what compose references.
    #[must_use]
    pub fn by_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }

    /// The host (and port) serving the registry API: Docker Hub's API is not on `docker.io`.
    #[must_use]
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What the manifest is asked for by: the digest when the reference has one, else the tag.
    pub(crate) fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("the digest `{digest}` is not sha256:<hex>"))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "the digest `{digest}` is not sha256 followed by 64 lowercase hex digits"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` is not valid (letters, digits, `_.-`, at most 128)"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    for component in repository.split('/') {
        let valid = !component.is_empty()
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && component
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && component
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(format!(
                "the repository `{repository}` must be lowercase letters, digits and `._-` \
                 separated by `/`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn parsed(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("postgres", "docker.io/library/postgres:latest"),
            ("postgres:15", "docker.io/library/postgres:15"),
            (
                "nadiamoe/movim-web:v0.29.2",
                "docker.io/nadiamoe/movim-web:v0.29.2",
            ),
            (
                "index.docker.io/library/caddy:2",
                "docker.io/library/caddy:2",
            ),
            (
                "ghcr.io/nadiamoe/movim-web",
                "ghcr.io/nadiamoe/movim-web:latest",
            ),
            (
                "ghcr.io/nadiamoe/movim-web:v0.29.2",
                "ghcr.io/nadiamoe/movim-web:v0.29.2",
            ),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
            (
                "127.0.0.1:5000/library/postgres:15",
                "127.0.0.1:5000/library/postgres:15",
            ),
            (
                "127.0.0.1:5000/movim/movim-daemon:v0.29.2",
                "127.0.0.1:5000/movim/movim-daemon:v0.29.2",
            ),
            ("[::1]:5000/a/b:c", "[::1]:5000/a/b:c"),
            // A first component without `.`/`:` and not `localhost` is a Docker Hub namespace.
            ("myuser/app:1", "docker.io/myuser/app:1"),
        ];
        for (input, canonical) in cases {
            assert_eq!(parsed(input).to_string(), canonical, "{input}");
            // Canonical forms are fixed points.
            assert_eq!(parsed(canonical).to_string(), canonical, "{canonical}");
        }
    }

    #[test]
    fn splits_fields_and_keeps_digests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parsed(&format!("127.0.0.1:5000/movim/movim-web:v0.29.2@{d}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "movim/movim-web");
        assert_eq!(r.tag.as_deref(), Some("v0.29.2"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_reference(), d);

        let by_digest_only = parsed(&format!("postgres@{d}"));
        assert_eq!(by_digest_only.tag, None, "a digest alone implies no tag");
        assert_eq!(
            by_digest_only.to_string(),
            format!("docker.io/library/postgres@{d}")
        );
    }

    #[test]
    fn pinned_and_by_digest_forms() {
        let d = format!("sha256:{}", "0f".repeat(32));
        let r = parsed("ghcr.io/nadiamoe/movim-fpm:v0.29.2");
        assert_eq!(
            r.pinned(&d),
            format!("ghcr.io/nadiamoe/movim-fpm:v0.29.2@{d}")
        );
        assert_eq!(r.by_digest(&d), format!("ghcr.io/nadiamoe/movim-fpm@{d}"));
        assert_eq!(
            parsed("postgres:15").pinned(&d),
            format!("docker.io/library/postgres:15@{d}")
        );
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "Postgres",
            "ghcr.io/Nadiamoe/x",
            "a b",
            "postgres:",
            "postgres:-x",
            "postgres@sha256:abc",
            "postgres@md5:0123",
            "ghcr.io/",
            "a//b",
        ] {
            let err = ImageRef::parse(bad).expect_err(bad);
            assert!(err.contains("is not an image reference"), "{bad}: {err}");
        }
    }
}
