//! The test world as tests see it: where the registry, the images, the CA and the
//! compose tools are. It never skips: if the world is missing, the test fails and says how to build it.

#![allow(dead_code)] // each test binary uses a different part of the world
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Default place where `tests/world/provision.sh` keeps everything heavy (registry storage, CA, base
/// rootfs, manifest). Overridden by `MOVIM_WORLD_DIR`.
pub const DEFAULT_WORLD_DIR: &str = "/var/cache/movim-setup-world";

/// What `tests/world/provision.sh` wrote to `$MOVIM_WORLD_DIR/world.json` when it finished.
#[derive(Debug, serde::Deserialize)]
pub struct World {
    /// `127.0.0.1:5000`
    pub registry: String,
    /// Directory holding the world (CA, registry storage, …).
    #[serde(skip)]
    pub dir: PathBuf,
    /// PEM of the throwaway test CA (and its key), generated per world, never committed.
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// Absolute paths of each compose tool: compose v2 (docker CLI plugin), docker-compose v1,
    /// podman-compose.
    pub compose_v2: PathBuf,
    pub compose_v1: PathBuf,
    pub podman_compose: Option<PathBuf>,
    /// Every image the world pushed: full reference (`127.0.0.1:5000/movim/movim-web:v0.29.2`) →
    /// manifest digest (`sha256:…`) as the registry serves it.
    pub images: std::collections::BTreeMap<String, String>,
}

impl World {
    /// The world, or a panic that says how to build it. Tests call this first.
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(|| {
            let dir = PathBuf::from(
                std::env::var("MOVIM_WORLD_DIR").unwrap_or_else(|_| DEFAULT_WORLD_DIR.to_owned()),
            );
            let manifest = dir.join("world.json");
            let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
                panic!(
                    "the test world is missing ({}: {e}).\n\
                     Build it with `bash tests/world/provision.sh` (or run the whole suite with \
                     `bash tests/run-all.sh`). Tests never skip without it.",
                    manifest.display()
                )
            });
            let mut world: World = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not a world manifest: {e}", manifest.display()));
            world.dir = dir;
            world.check_registry();
            world
        })
    }

    fn check_registry(&self) {
        let out = std::process::Command::new("curl")
            .args([
                "-fsS",
                "-o",
                "/dev/null",
                &format!("http://{}/v2/", self.registry),
            ])
            .status();
        match out {
            Ok(s) if s.success() => {}
            other => panic!(
                "the test world's registry at {} does not answer ({other:?}).\n\
                 Start it with `bash tests/world/provision.sh`.",
                self.registry
            ),
        }
    }

    /// `127.0.0.1:5000/movim` — the `--image-repository` prefix for the stand-in images.
    pub fn movim_repository(&self) -> String {
        format!("{}/movim", self.registry)
    }

    /// `127.0.0.1:5000/movim/movim-<component>:<tag>`
    pub fn movim_image(&self, component: &str, tag: &str) -> String {
        format!("{}/movim-{component}:{tag}", self.movim_repository())
    }

    /// `127.0.0.1:5000/library/<name>` (postgres:15, postgres:17, prosody:0.12, caddy:2, debian:bookworm)
    pub fn library_image(&self, name_tag: &str) -> String {
        format!("{}/library/{name_tag}", self.registry)
    }

    /// The digest the registry serves for a pushed reference, as recorded at provisioning.
    pub fn digest(&self, reference: &str) -> &str {
        self.images
            .get(reference)
            .unwrap_or_else(|| panic!("the world has no image {reference}; re-run provision.sh"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether a doctor finding is one the test world itself causes on a healthy deployment, so that
/// "doctor finds nothing" means nothing else: the world's names (`example.org`) resolve nowhere,
/// and the stand-in daemon's PHP runs without OPcache, as the seed's images do (Movim's daemon
/// warns about it at every start). Both are warnings; an error is never the world's.
pub fn caused_by_the_world(id: &str, severity: &str) -> bool {
    severity == "warn" && ["web.dns", "xmpp.dns", "movim.opcache"].contains(&id)
}
