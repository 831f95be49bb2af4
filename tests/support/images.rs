//! A self-contained Movim source tree made from the test world's stand-in (`tests/world/movim`), as
//! `movim-setup images build --source` takes one: the shim's files, `VERSION` as upstream writes it,
//! the migrations of every release up to it, and a `vendor/` holding phpdotenv and its two
//! dependencies — copied out of the world's stand-in image, where Debian's packages installed them —
//! with an autoloader that loads them from `vendor/` instead of `/usr/share/php`.

#![allow(dead_code)] // used by the images tests only

use std::path::{Path, PathBuf};
use std::process::Command;

/// The stand-in's sources in the repository.
fn stand_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/world/movim")
}

/// What Debian's php-vlucas-phpdotenv and its dependencies install under /usr/share/php.
const PHPDOTENV_DIRS: [&str; 3] = ["Dotenv", "GrahamCampbell", "PhpOption"];
/// The stand-in autoloader's line that loads phpdotenv from Debian's include path.
const DEBIAN_DOTENV: &str = "require '/usr/share/php/Dotenv/autoload.php';";

/// Writes the tree of `release` (`v0.34.1`) into `dest` (created), taking phpdotenv from
/// `php_image` (a world stand-in image that has it installed). Returns `dest`.
pub fn source_tree(dest: &Path, release: &str, php_image: &str) -> PathBuf {
    let src = stand_in();
    copy_dir(&src.join("app"), dest);
    std::fs::write(dest.join("VERSION"), release).expect("write VERSION");
    let migrations = dest.join("database/migrations");
    std::fs::create_dir_all(&migrations).expect("mkdir database/migrations");
    let mut copied = 0;
    for entry in std::fs::read_dir(src.join("migrations")).expect("read migrations") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with('v') && numbers(&name) <= numbers(release) {
            copy_dir(&dir, &migrations);
            copied += 1;
        }
    }
    assert!(copied > 0, "no stand-in migrations up to {release}");
    vendor_phpdotenv(dest, php_image);
    dest.to_owned()
}

/// `v0.30` → [0, 30], `v0.34.1` → [0, 34, 1]: the order `sort -V` gives the stand-in's directories.
fn numbers(tag: &str) -> Vec<u32> {
    tag.trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

fn vendor_phpdotenv(dest: &Path, php_image: &str) {
    let vendor = dest.join("vendor");
    let out = docker(&["create", php_image]);
    let id = out.trim().to_owned();
    for dir in PHPDOTENV_DIRS {
        let from = format!("{id}:/usr/share/php/{dir}");
        let to = vendor.join(dir);
        docker(&["cp", &from, &to.to_string_lossy()]);
    }
    docker(&["rm", &id]);
    let autoload = vendor.join("autoload.php");
    let text = std::fs::read_to_string(&autoload).expect("read vendor/autoload.php");
    assert!(
        text.contains(DEBIAN_DOTENV),
        "the stand-in's vendor/autoload.php no longer loads phpdotenv with `{DEBIAN_DOTENV}`: \
         tests/support/images.rs must follow it"
    );
    let vendored = "set_include_path(__DIR__ . PATH_SEPARATOR . get_include_path());\n\
                    require __DIR__ . '/Dotenv/autoload.php';";
    std::fs::write(&autoload, text.replace(DEBIAN_DOTENV, vendored)).expect("write autoload.php");
}

/// `cp -a src/. dest/`.
pub fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dest)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "cp -a {} {}",
        src.display(),
        dest.display()
    );
}

/// `docker ARGS`, which must succeed; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
