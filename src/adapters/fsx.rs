//! Changes to the deployment directory as a transaction: every file is written atomically (temp
//! file, fsync, rename), every file it replaces is first copied to `backups/files/<time>/`, and if
//! the transaction is dropped without [`Transaction::commit`] everything it wrote is put back.
//! Crash-safe by construction: a kill leaves either the old or the new file, never half of one.

use crate::core::trust::DirFacts;
use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes `content` to `path` atomically with `mode`, creating parent directories. The temporary
/// file beside it is created exclusively under a random name (`O_EXCL`: never a file or symbolic
/// link someone planted), and removed if anything fails.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("a file path without a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .context("a file path without a name")?
        .to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let shown = tmp.path().display().to_string();
    let f = tmp.as_file_mut();
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(content)
        .with_context(|| format!("cannot write {shown} (disk full?)"))?;
    f.sync_all()
        .with_context(|| format!("cannot flush {shown} (disk full?)"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        // Best effort: makes the rename itself durable on filesystems that need it.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens the regular file `path` (for reading), never through a symbolic link: one at `path` is
/// refused, and so is a file swapped in between the look and the open.
pub fn open_regular(path: &Path) -> Result<fs::File> {
    use std::os::unix::fs::MetadataExt as _;
    let seen =
        fs::symlink_metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    anyhow::ensure!(
        seen.file_type().is_file(),
        "{} is not a regular file (a symbolic link?); refusing to follow it",
        path.display()
    );
    let f = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let opened = f.metadata()?;
    anyhow::ensure!(
        (opened.dev(), opened.ino()) == (seen.dev(), seen.ino()),
        "{} was replaced while being opened; refusing it",
        path.display()
    );
    Ok(f)
}

/// Gives the regular file `path` to `uid:uid`, changed on the file opened ([`open_regular`]),
/// never on what a symbolic link at `path` points to.
pub fn give_to(path: &Path, uid: u32) -> Result<()> {
    let f = open_regular(path)?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(uid))
        .with_context(|| format!("chown {uid}:{uid} {}", path.display()))
}

/// The effective uid of this process: `/proc/self` belongs to it (`u32::MAX` if unreadable).
#[must_use]
pub fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Owners and modes of the deployment directory `dir` (made absolute; `None` when it does not
/// exist yet) and of every existing directory above it, nearest first; symbolic links are read as
/// themselves, never followed.
pub fn dir_facts(dir: &Path) -> Result<(Option<DirFacts>, Vec<DirFacts>)> {
    use std::os::unix::fs::MetadataExt as _;
    let dir =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let facts = |p: &Path| -> Result<Option<DirFacts>> {
        match fs::symlink_metadata(p) {
            Ok(m) => Ok(Some(DirFacts {
                path: p.display().to_string(),
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o7777,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot stat {}", p.display())),
        }
    };
    let target = facts(&dir)?;
    let mut ancestors = Vec::new();
    for a in dir.ancestors().skip(1) {
        ancestors.extend(facts(a)?);
    }
    Ok((target, ancestors))
}

/// What one transaction did to one path, so it can be undone.
#[derive(Debug)]
enum Undo {
    /// The path did not exist: remove it.
    Remove(PathBuf),
    /// The path existed: its old content and mode, and where the backup copy went.
    Restore {
        path: PathBuf,
        old: Vec<u8>,
        mode: u32,
    },
}

/// A set of file changes under one directory that undoes itself unless committed.
#[derive(Debug)]
pub struct Transaction {
    root: PathBuf,
    backup_dir: PathBuf,
    undo: Vec<Undo>,
    backed_up: Vec<PathBuf>,
    committed: bool,
}

impl Transaction {
    /// Starts a transaction; backups of replaced files go to `root/backups/files/<stamp>/`.
    #[must_use]
    pub fn new(root: &Path, stamp: &str) -> Self {
        Self {
            root: root.to_owned(),
            backup_dir: root.join("backups").join("files").join(stamp),
            undo: Vec::new(),
            backed_up: Vec::new(),
            committed: false,
        }
    }

    /// Writes `rel` (relative to the root) unless it already has exactly this content and mode.
    /// Returns whether anything changed.
    pub fn write(&mut self, rel: &str, content: &[u8], mode: u32) -> Result<bool> {
        let path = self.root.join(rel);
        match fs::read(&path) {
            Ok(old) => {
                let old_mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
                if old == content && old_mode == mode {
                    return Ok(false);
                }
                let backup = self.backup_dir.join(rel);
                write_atomic(&backup, &old, 0o600).with_context(|| {
                    format!("cannot back up {} before replacing it", path.display())
                })?;
                self.backed_up.push(backup);
                self.undo.push(Undo::Restore {
                    path: path.clone(),
                    old,
                    mode: old_mode,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.undo.push(Undo::Remove(path.clone()));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        write_atomic(&path, content, mode)?;
        Ok(true)
    }

    /// Backups this transaction made (paths of the copies).
    #[must_use]
    pub fn backups(&self) -> &[PathBuf] {
        &self.backed_up
    }

    /// Keeps every change.
    pub fn commit(mut self) -> Vec<PathBuf> {
        self.committed = true;
        std::mem::take(&mut self.backed_up)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for undo in self.undo.drain(..).rev() {
            // Undo is best effort by nature: a failure here leaves the backup copy in place.
            let _ = match undo {
                Undo::Remove(p) => fs::remove_file(p).map_err(anyhow::Error::from),
                Undo::Restore { path, old, mode } => write_atomic(&path, &old, mode),
            };
        }
    }
}

/// How long `df` may take (a dead network mount can hang it).
const DF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Free bytes on the filesystem holding `path` (statvfs through `df`, which every system has).
pub fn free_bytes(path: &Path) -> Result<u64> {
    let mut df = crate::adapters::subprocess::blocking_command("df");
    df.args(["-P", "-k"]).arg(path);
    let out = crate::adapters::subprocess::output_within(df, DF_TIMEOUT)
        .with_context(|| format!("cannot run df on {}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).context("df printed nothing")?;
    let avail: u64 = line
        .split_whitespace()
        .nth(3)
        .context("df line too short")?
        .parse()?;
    Ok(avail * 1024)
}

/// Packs `name` (a directory inside `parent`) into the gzipped tarball `out`, with the system's
/// `tar`.
///
/// # Errors
/// `tar` cannot run or fails (its stderr is quoted).
pub fn tar_gz(parent: &Path, name: &str, out: &Path) -> Result<()> {
    let done = crate::adapters::subprocess::blocking_command("tar")
        .arg("-czf")
        .arg(std::path::absolute(out).unwrap_or_else(|_| out.to_owned()))
        .arg("-C")
        .arg(parent)
        .arg(name)
        .output()
        .context("cannot run tar")?;
    anyhow::ensure!(
        done.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&done.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_planted_at_the_old_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").expect("seed");
        let planted = dir
            .path()
            .join(format!(".movim.env.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).expect("plant");

        write_atomic(&dir.path().join("movim.env"), b"new", 0o600).expect("write");

        assert_eq!(fs::read_to_string(&victim).expect("read"), "precious");
        let written = fs::symlink_metadata(dir.path().join("movim.env")).expect("stat");
        assert!(written.file_type().is_file(), "{written:?}");
        assert_eq!(
            fs::read_to_string(dir.path().join("movim.env")).expect("read"),
            "new"
        );
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(left.len(), 3, "no temporary file left: {left:?}");
    }

    #[test]
    fn ownership_is_not_given_through_a_symlink() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").expect("seed");
        let link = dir.path().join("movim.env");
        std::os::unix::fs::symlink(&victim, &link).expect("plant");
        let before = fs::metadata(&victim).expect("stat").uid();
        let uid = before + 1;

        let refused = give_to(&link, uid).expect_err("a symbolic link is refused");

        assert!(refused.to_string().contains("symbolic link"), "{refused:#}");
        assert_eq!(fs::metadata(&victim).expect("stat").uid(), before);
        // A regular file is handed over (where this process may: as root).
        let own = dir.path().join("own");
        fs::write(&own, "x").expect("seed");
        if give_to(&own, uid).is_ok() {
            assert_eq!(fs::metadata(&own).expect("stat").uid(), uid);
        }
    }

    #[test]
    fn uncommitted_transactions_put_everything_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), "old").expect("seed");
        {
            let mut tx = Transaction::new(dir.path(), "t1");
            assert!(tx.write("a", b"new", 0o600).expect("write"));
            assert!(tx.write("sub/b", b"fresh", 0o644).expect("write"));
            assert_eq!(
                fs::read_to_string(dir.path().join("a")).expect("read"),
                "new"
            );
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("a")).expect("read"),
            "old"
        );
        assert!(!dir.path().join("sub/b").exists());
    }

    #[test]
    fn committed_transactions_keep_changes_and_back_up_replaced_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), "old").expect("seed");
        let mut tx = Transaction::new(dir.path(), "t2");
        assert!(tx.write("a", b"new", 0o600).expect("write"));
        assert!(
            !tx.write("a", b"new", 0o600)
                .expect("same content is no change")
        );
        let backups = tx.commit();
        assert_eq!(
            fs::read_to_string(dir.path().join("a")).expect("read"),
            "new"
        );
        assert_eq!(backups, vec![dir.path().join("backups/files/t2/a")]);
        assert_eq!(fs::read_to_string(&backups[0]).expect("read"), "old");
        let mode = fs::metadata(dir.path().join("a"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
