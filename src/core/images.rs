//! What `images build` makes, as data: the image recipe embedded in the binary
//! (`templates/images/`), the Movim releases movim-setup knows with their upstream commits, the
//! names of the three images, and how a source tree's `VERSION` is judged against the release asked
//! for. The build itself (context, engine, registry) is the adapters' and the command's.

use crate::core::deployment::MovimTag;

/// One file of the recipe: its name in the build context's recipe directory, its text, its mode.
#[derive(Debug, Clone, Copy)]
pub struct RecipeFile {
    pub name: &'static str,
    pub text: &'static str,
    pub mode: u32,
}

/// Where the recipe sits in the build context, beside the Movim tree (the tree's own files keep
/// their paths; the `tree` stage removes this directory).
pub const RECIPE_DIR: &str = ".movim-setup";

/// The recipe: one Dockerfile with a stage per image, the configuration files it copies in.
pub const RECIPE: [RecipeFile; 6] = [
    RecipeFile {
        name: "Dockerfile",
        text: include_str!("../../templates/images/Dockerfile"),
        mode: 0o644,
    },
    RecipeFile {
        name: "php-fpm.conf",
        text: include_str!("../../templates/images/php-fpm.conf"),
        mode: 0o644,
    },
    RecipeFile {
        name: "movim-php.ini",
        text: include_str!("../../templates/images/movim-php.ini"),
        mode: 0o644,
    },
    RecipeFile {
        name: "daemon-entrypoint.sh",
        text: include_str!("../../templates/images/daemon-entrypoint.sh"),
        mode: 0o755,
    },
    RecipeFile {
        name: "web-entrypoint.sh",
        text: include_str!("../../templates/images/web-entrypoint.sh"),
        mode: 0o755,
    },
    RecipeFile {
        name: "default.conf.template",
        text: include_str!("../../templates/images/default.conf.template"),
        mode: 0o644,
    },
];

/// The base image when none is given: Debian's current stable (PHP 8.4 from its packages).
pub const DEFAULT_BASE: &str = "debian:trixie-slim";

/// Where images are tagged when they are not pushed.
pub const LOCAL_REPOSITORY: &str = "localhost/movim";

/// The three images, in build order: `daemon` is `fpm` plus its entrypoint, so building `fpm`
/// first leaves the builder's cache warm for it.
pub const COMPONENTS: [&str; 3] = ["fpm", "daemon", "web"];

/// A Movim release movim-setup knows: its tag and the upstream commit the tag resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub tag: &'static str,
    pub commit: &'static str,
}

/// The releases movim-setup knows (`git rev-parse TAG^{commit}` in github.com/movim/movim),
/// oldest first; `docs/movim-contract.md` lists what changed in each.
pub const RELEASES: [Release; 10] = [
    Release {
        tag: "v0.29.2",
        commit: "2bd64421b48b6a2c7cacf2c07a239645ccc22d32",
    },
    Release {
        tag: "v0.30",
        commit: "89da8fd03ac96cc5a976f8d8ad866672d5df28a8",
    },
    Release {
        tag: "v0.30.1",
        commit: "1b06f45a2ebd64c46fb42377a41bd1a11ea172c0",
    },
    Release {
        tag: "v0.31",
        commit: "cd7b1db0270f003465f7b42fa5d36acbb3d5ba6d",
    },
    Release {
        tag: "v0.32",
        commit: "4b952b7d0b74b317b55fdf085a829c5e4bd8116e",
    },
    Release {
        tag: "v0.32.1",
        commit: "5d92cd1f104174a5197a5aef8698170c916945de",
    },
    Release {
        tag: "v0.33",
        commit: "828ce8c45735b36c3dbac0f646ac274b57ec2deb",
    },
    Release {
        tag: "v0.33.1",
        commit: "5139f05554449a1ce083ff53e7b163f591f2d5d6",
    },
    Release {
        tag: "v0.34",
        commit: "8923377aeba4b0925c84e9f0d41b5fc52a152380",
    },
    Release {
        tag: "v0.34.1",
        commit: "1f53a9944929360315feeed224b6361d00ce4c24",
    },
];

/// The known release spelled exactly `tag` (upstream's tags have two or three parts: `v0.30`, not
/// `v0.30.0`).
#[must_use]
pub fn known_release(tag: &MovimTag) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.tag == tag.as_str())
}

/// `<repository>/movim-<component>:<release>`.
#[must_use]
pub fn image_name(repository: &str, component: &str, release: &MovimTag) -> String {
    format!(
        "{}/movim-{component}:{release}",
        repository.trim_end_matches('/')
    )
}

/// Whether a tree's `VERSION` file is `release`: Movim reads its first line, trimmed, and holds the
/// tag with its `v` (`v0.34.1`, `v0.30`). On a mismatch, what the file says.
pub fn check_version_file(contents: &str, release: &MovimTag) -> Result<(), String> {
    let found = contents.lines().next().unwrap_or_default().trim();
    if found == release.as_str() {
        Ok(())
    } else if found.is_empty() {
        Err("its VERSION file is empty".to_owned())
    } else {
        Err(format!("its VERSION file says {found}, not {release}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    fn tag(s: &str) -> MovimTag {
        MovimTag::parse(s).unwrap()
    }

    #[test]
    fn the_releases_are_upstreams_tags_in_order_with_full_commits() {
        assert_eq!(RELEASES.first().unwrap().tag, "v0.29.2");
        assert_eq!(RELEASES.last().unwrap().tag, "v0.34.1");
        for pair in RELEASES.windows(2) {
            assert!(
                tag(pair[0].tag).numbers() < tag(pair[1].tag).numbers(),
                "{pair:?}"
            );
        }
        for r in RELEASES {
            assert_eq!(tag(r.tag).as_str(), r.tag);
            assert_eq!(r.commit.len(), 40, "{r:?}");
            assert!(r.commit.bytes().all(|b| b.is_ascii_hexdigit()), "{r:?}");
        }
        assert_eq!(
            known_release(&tag("v0.34.1")).unwrap().commit,
            "1f53a9944929360315feeed224b6361d00ce4c24"
        );
        // Upstream never tagged v0.30.0 nor v0.31.1.
        assert!(known_release(&tag("v0.30.0")).is_none());
        assert!(known_release(&tag("v0.31.1")).is_none());
    }

    #[test]
    fn version_files_match_exactly_with_their_v() {
        assert!(check_version_file("v0.34.1", &tag("v0.34.1")).is_ok());
        assert!(check_version_file("v0.30\n", &tag("v0.30")).is_ok());
        let err = check_version_file("v0.30", &tag("v0.30.0")).unwrap_err();
        assert!(err.contains("says v0.30, not v0.30.0"), "{err}");
        assert!(check_version_file("", &tag("v0.30")).is_err());
    }

    #[test]
    fn the_recipe_keeps_the_seeds_contract_in_classic_builder_syntax() {
        let dockerfile = RECIPE[0].text;
        for stage in ["AS tree", "AS php", "AS fpm", "AS daemon", "AS web"] {
            assert!(dockerfile.contains(stage), "{stage}");
        }
        assert!(dockerfile.contains(&format!("ARG BASE={DEFAULT_BASE}")));
        assert!(dockerfile.contains("usermod -u 82 -g 82 www-data"));
        assert!(dockerfile.contains("chown 82:82 cache log public"));
        let instructions: Vec<&str> = dockerfile
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        for buildkit_only in ["<<", "--chmod", "--mount", "syntax="] {
            assert!(
                !instructions.iter().any(|l| l.contains(buildkit_only)),
                "{buildkit_only}"
            );
        }
        let fpm = RECIPE[1].text;
        assert!(fpm.contains("listen = ${FPM_LISTEN}:9000"));
        for line in fpm.lines().filter(|l| !l.starts_with(';')) {
            for forbidden in ["pid", "user", "group", "clear_env"] {
                assert!(!line.trim_start().starts_with(forbidden), "{line}");
            }
        }
        assert!(RECIPE[2].text.contains("opcache.enable_cli = 1"));
        let daemon = RECIPE[3].text;
        assert!(daemon.contains("exec php daemon.php start"));
        assert!(
            !daemon.contains("phinx migrate\n"),
            "migrations are a one-shot"
        );
        let site = RECIPE[5].text;
        assert!(site.contains("proxy_pass http://${DAEMON_HOST}:8080/;"));
        assert!(site.contains("fastcgi_pass ${FPM_HOST}:9000;"));
        assert!(site.contains("proxy_set_header Upgrade $http_upgrade;"));
        assert_eq!(
            image_name("127.0.0.1:5000/x/", "web", &tag("v0.30")),
            "127.0.0.1:5000/x/movim-web:v0.30"
        );
    }
}
