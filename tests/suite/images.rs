//! `movim-setup images build` on the real world: the recipe embedded in the binary builds the three
//! images from one Movim tree (the stand-in's, made self-contained) on the world's Debian, pushes
//! them to the world's registry under a repository of the test's own, prints them pinned by the
//! digest the registry serves; `init` deploys exactly those to a verified websocket handshake with
//! fpm and the daemon on a read-only root filesystem. A tree the build cannot use is refused first,
//! with nothing built.

#[path = "../support/images.rs"]
mod source;

use crate::support::cli::{Project, Setup, free_port, with_world_flags};
use crate::support::podman;
use crate::support::web;
use crate::support::world::World;

use std::path::Path;
use std::process::Command;

const RELEASE: &str = "v0.34.1";

fn build(source: &Path, release: &str, push: &str) -> Setup {
    build_with(Setup::new("images", source), source, release, push)
}

/// `images build … --push REPO` on the world's Debian, from `setup` (`movim-setup images`, with
/// the engine's flags).
fn build_with(setup: Setup, source: &Path, release: &str, push: &str) -> Setup {
    let w = World::get();
    setup
        .args(["build", "--release", release, "--source"])
        .arg(source)
        .args(["--push", push])
        .args(["--base", &w.library_image("debian:bookworm")])
}

fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .expect("docker runs")
        .status
        .success()
}

/// `docker run --rm --read-only --tmpfs /tmp --user 82:82 --entrypoint sh IMAGE -c SCRIPT` (a
/// read-only root and a /tmp, as compose runs fpm and the daemon): its stdout.
fn run_in(image: &str, script: &str) -> String {
    source::docker(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        "82:82",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ])
}

#[test]
fn built_images_are_pushed_pinned_and_init_deploys_them_read_only() {
    let w = World::get();
    let project = Project::new("img");
    let repository = format!("{}/{}", w.registry, project.name);
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = source::source_tree(
        &tmp.path().join("movim-src"),
        RELEASE,
        &w.movim_image("fpm", RELEASE),
    );
    let web_tag = format!("{repository}/movim-web:{RELEASE}");

    // Refused before anything is built: a VERSION that is not the release, a tree without vendor/.
    build(&tree, "v0.34", &repository)
        .run()
        .code(2)
        .stderr_has("its VERSION file says v0.34.1, not v0.34");
    let bare = tmp.path().join("bare");
    source::copy_dir(&tree, &bare);
    std::fs::remove_dir_all(bare.join("vendor")).expect("rm vendor");
    build(&bare, RELEASE, &repository)
        .run()
        .code(2)
        .stderr_has("it has no vendor/ directory");
    assert!(!image_exists(&web_tag), "a refused build built {web_tag}");

    let run = build(&tree, RELEASE, &repository).run().success();
    let printed: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    assert_pinned_as_served(&printed, &repository);
    assert_seed_contract(&printed[0]);
    let dir = tmp.path().join("movim");
    deploy("docker", Setup::init(&dir), &dir, &project, &printed);
}

/// Podman (its API's builder, buildah) builds the same recipe, pushes it, and `init` on Podman
/// deploys it the same way.
#[test]
fn podman_builds_the_same_recipe_and_init_on_podman_deploys_it() {
    let _one = podman::one_stack_at_a_time();
    let _socket = podman::PodmanSocket::acquire();
    let w = World::get();
    let project = Project::new("imgp");
    let repository = format!("{}/{}", w.registry, project.name);
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = source::source_tree(
        &tmp.path().join("movim-src"),
        RELEASE,
        &w.movim_image("fpm", RELEASE),
    );
    let images = Setup::new("images", &tree).args(podman::flags());
    let run = build_with(images, &tree, RELEASE, &repository)
        .run()
        .success();
    let printed: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    assert_eq!(printed.len(), 3, "{printed:?}");
    for (line, component) in printed.iter().zip(["fpm", "daemon", "web"]) {
        let prefix = format!("{repository}/movim-{component}:{RELEASE}@sha256:");
        assert!(line.starts_with(&prefix), "{line} should start {prefix}");
    }
    let dir = tmp.path().join("movim");
    deploy(
        "podman",
        podman::on_podman("init", &dir),
        &dir,
        &project,
        &printed,
    );
}

/// Three lines, fpm, daemon and web, each `repo/movim-<c>:<release>@<digest>` with the digest the
/// engine recorded when it pushed the image.
fn assert_pinned_as_served(printed: &[String], repository: &str) {
    assert_eq!(printed.len(), 3, "{printed:?}");
    for (line, component) in printed.iter().zip(["fpm", "daemon", "web"]) {
        let prefix = format!("{repository}/movim-{component}:{RELEASE}@sha256:");
        assert!(line.starts_with(&prefix), "{line} should start {prefix}");
        let digest = &line[line.find('@').expect("@") + 1..];
        let held = source::docker(&[
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            &format!("{repository}/movim-{component}:{RELEASE}"),
        ]);
        assert!(
            held.lines()
                .any(|d| d == format!("{repository}/movim-{component}@{digest}")),
            "the registry's digest {digest} is not the pushed image's: {held}"
        );
    }
}

/// The seed's contract, on a read-only root as uid 82: the tree root's, only cache/, log/ and
/// public/ uid 82's; every extension a session worker names loads under `php -n`, with OPcache.
fn assert_seed_contract(fpm: &str) {
    let owners = run_in(
        fpm,
        "stat -c '%n %u:%g' /var/www/movim /var/www/movim/VERSION /var/www/movim/cache \
         /var/www/movim/log /var/www/movim/public; id -u www-data",
    );
    assert_eq!(
        owners.trim(),
        "/var/www/movim 0:0\n/var/www/movim/VERSION 0:0\n/var/www/movim/cache 82:82\n\
         /var/www/movim/log 82:82\n/var/www/movim/public 82:82\n82",
        "{owners}"
    );
    let workers = run_in(
        fpm,
        "php -n -dextension=dom.so -dextension=imagick.so -dextension=mbstring.so \
         -dextension=pdo.so -dextension=simplexml.so -dextension=xml.so -dextension=pdo_pgsql.so \
         -dextension=curl.so -dextension=zip.so -dextension=bcmath.so -dzend_extension=opcache.so \
         -dopcache.enable_cli=1 -r 'echo opcache_get_status() ? \"opcache\" : \"none\";' 2>&1; \
         php -r 'echo \" \", ini_get(\"opcache.enable_cli\");'",
    );
    assert_eq!(workers.trim(), "opcache 1", "{workers}");
}

/// `init` (given as `setup`, on `engine`) pins and deploys exactly the pushed images, to a
/// handshake the daemon keeps open, with fpm and the daemon on a read-only root filesystem.
fn deploy(engine: &str, setup: Setup, dir: &Path, project: &Project, printed: &[String]) {
    let repository = &printed[0][..printed[0].find("/movim-fpm:").expect("repository")];
    let port = free_port();
    with_world_flags(
        setup,
        project,
        port,
        &[("--image-repository", repository), ("--release", RELEASE)],
    )
    .run()
    .success();
    let lock = std::fs::read_to_string(dir.join("movim-setup.lock")).expect("lock");
    for reference in printed {
        assert!(
            lock.contains(reference.as_str()),
            "{reference} not pinned: {lock}"
        );
    }
    assert!(web::handshake(port, "https://movim.test").trusted());
    assert_eq!(web::infos_version(port).as_deref(), Some(RELEASE));
    for service in ["fpm", "daemon"] {
        let filter = format!("label=com.docker.compose.service={service}");
        let project_filter = format!("label=com.docker.compose.project={}", project.name);
        let engine_cli = |args: &[&str]| {
            let out = Command::new(engine)
                .args(args)
                .output()
                .expect("engine CLI runs");
            assert!(out.status.success(), "{engine} {args:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let id = engine_cli(&["ps", "-q", "--filter", &filter, "--filter", &project_filter]);
        let read_only = engine_cli(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}} {{.Config.Image}}",
            &id,
        ]);
        assert!(
            read_only.starts_with("true ") && read_only.contains(repository),
            "{service}: {read_only}"
        );
    }
}
