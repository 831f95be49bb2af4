//! Whether a deployment directory can be trusted with the deployment's secrets and files: whoever
//! can write to it, or to any directory above it, can replace `compose.yaml` (what runs, as root)
//! or read `movim.env`. The rule is OpenSSH's `StrictModes`, applied to the directory and its
//! ancestors; the facts (owners and modes) are read by the caller.

/// One directory on the path to the deployment, as the file system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFacts {
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    /// The mode bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// Why a directory is not trusted, and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    pub what: String,
    pub fix: String,
}

const STICKY: u32 = 0o1000;

/// Checks the deployment directory `target` (when it exists) and its existing ancestors, nearest
/// first, for a process running as `caller`: the directory must be the caller's and writable by
/// no one else; each directory above it must be the caller's or root's, and writable by no one
/// else unless sticky (like `/tmp`), where no one can rename what they do not own.
pub fn check(
    target: Option<&DirFacts>,
    ancestors: &[DirFacts],
    caller: u32,
) -> Result<(), Untrusted> {
    if let Some(d) = target {
        if d.uid != caller {
            return Err(Untrusted {
                what: format!(
                    "{} belongs to uid {}, not to this user (uid {caller}): its owner could replace what movim-setup runs and read the deployment's secrets",
                    d.path, d.uid
                ),
                fix: format!(
                    "run movim-setup as the user who owns {p}, or use a directory of your own (--dir)",
                    p = d.path
                ),
            });
        }
        if d.mode & 0o022 != 0 {
            return Err(Untrusted {
                what: format!(
                    "{} is writable by {} (mode {:o}): they could replace the deployment's files",
                    d.path,
                    writers(d.mode),
                    d.mode
                ),
                fix: format!("chmod go-w {}", d.path),
            });
        }
    }
    for a in ancestors {
        if a.uid != caller && a.uid != 0 {
            return Err(Untrusted {
                what: format!(
                    "{} (above the deployment) belongs to uid {}, neither this user (uid {caller}) nor root: its owner could swap the deployment directory for another",
                    a.path, a.uid
                ),
                fix: "use a directory whose parents are yours or root's, e.g. --dir /srv/movim as root, or --dir ~/movim as yourself".to_owned(),
            });
        }
        let others_write = a.mode & 0o002 != 0 || (a.mode & 0o020 != 0 && a.gid != 0);
        if others_write && a.mode & STICKY == 0 {
            return Err(Untrusted {
                what: format!(
                    "{} (above the deployment) is writable by {} (mode {:o}): they could swap the deployment directory for another",
                    a.path,
                    writers(a.mode),
                    a.mode
                ),
                fix: format!("chmod go-w {}", a.path),
            });
        }
    }
    Ok(())
}

fn writers(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and everyone",
        (false, true) => "everyone",
        _ => "its group",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(path: &str, uid: u32, mode: u32) -> DirFacts {
        DirFacts {
            path: path.to_owned(),
            uid,
            gid: uid,
            mode,
        }
    }

    #[test]
    fn a_directory_of_ones_own_under_roots_and_sticky_tmp_is_trusted() {
        let up = [
            d("/tmp/x", 1000, 0o700),
            d("/tmp", 0, 0o1777),
            d("/", 0, 0o755),
        ];
        assert_eq!(
            check(Some(&d("/tmp/x/movim", 1000, 0o700)), &up, 1000),
            Ok(())
        );
        // Not created yet: only the directories above count.
        assert_eq!(check(None, &up, 1000), Ok(()));
        let home = [
            d("/home/alice", 1000, 0o750),
            d("/home", 0, 0o755),
            d("/", 0, 0o755),
        ];
        assert_eq!(check(None, &home, 1000), Ok(()));
    }

    #[test]
    fn root_is_refused_a_directory_inside_a_users_home() {
        let up = [
            d("/home/alice", 1000, 0o750),
            d("/home", 0, 0o755),
            d("/", 0, 0o755),
        ];
        let e = check(None, &up, 0).expect_err("alice could swap it");
        assert!(
            e.what.contains("/home/alice") && e.what.contains("uid 1000"),
            "{e:?}"
        );
        assert!(e.fix.contains("--dir /srv/movim"), "{e:?}");
        let e = check(Some(&d("/home/alice/movim", 1000, 0o700)), &up, 0).expect_err("alice's");
        assert!(e.what.contains("belongs to uid 1000"), "{e:?}");
    }

    #[test]
    fn a_directory_writable_by_others_is_refused_naming_the_chmod() {
        let up = [d("/srv", 0, 0o755), d("/", 0, 0o755)];
        let e = check(Some(&d("/srv/movim", 0, 0o777)), &up, 0).expect_err("writable");
        assert_eq!(e.fix, "chmod go-w /srv/movim");
        assert!(e.what.contains("everyone"), "{e:?}");
        let shared = [
            d("/srv/shared", 0, 0o777),
            d("/srv", 0, 0o755),
            d("/", 0, 0o755),
        ];
        let e = check(None, &shared, 0).expect_err("world-writable parent, not sticky");
        assert_eq!(e.fix, "chmod go-w /srv/shared");
        // A group-writable parent whose group is not root's.
        let group = [
            DirFacts {
                gid: 50,
                ..d("/srv/team", 0, 0o775)
            },
            d("/", 0, 0o755),
        ];
        let e = check(None, &group, 0).expect_err("group-writable");
        assert!(e.what.contains("its group"), "{e:?}");
    }
}
