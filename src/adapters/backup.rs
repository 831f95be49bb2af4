//! Database dumps for `upgrade` and `rollback`: `pg_dump -Fc` streamed (never held in memory) to
//! `<dir>/backups/db-<time>-<version>.dump` with its size and SHA-256 computed on the way, its
//! header and table of contents checked by `pg_restore --list` (the data's completeness is
//! `pg_dump`'s exit status), and restored only after the checksum matches again.
//!
//! Where `pg_dump` runs:
//! - bundled database: inside the running postgres container (`docker exec`, through the engine
//!   API), over its local socket, as the image's superuser; the client matches the server exactly;
//! - external database: the daemon image has no `pg_dump`, and compose has no service to run it
//!   from, so a one-shot container of `<library_repository>/postgres:<major>`, the server's major
//!   release (`pg_dump` refuses a newer server) — resolved and pulled by digest like every other
//!   image before anything stops, and recorded with the dump as its `backup-tool` so a restore
//!   uses the same client — runs it through the engine's CLI (`docker`/`podman run --rm -i`) on the
//!   host network, reaching the database exactly as this tool does. The password travels as an
//!   environment variable inherited by name (`-e PGPASSWORD`), never in an argument.
//!
//! A restore replaces the database as a whole, so that nothing a half-applied migration created
//! survives, and only once it succeeded: the bundled one is restored into a new database that then
//! takes its place; an external one (where the role may not own the database) has its `public`
//! schema dropped and created again and the dump restored in one transaction, rolled back if any
//! of it fails. Either way a restore that fails leaves the database as it was.

use crate::adapters::db::DbTarget;
use crate::adapters::engine::Engine;
use crate::core::lockfile::BackupRef;
use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Where dumps live, relative to the deployment directory.
pub const BACKUPS_DIR: &str = "backups";

/// How a dump is taken and restored.
#[derive(Debug, Clone)]
pub enum Source {
    /// The bundled postgres container: `pg_dump` runs in it.
    Container {
        id: String,
        user: String,
        database: String,
    },
    /// An external server: `pg_dump` runs in a one-shot container of `image` (`repo@sha256:…`)
    /// started by the engine's CLI (`docker` or `podman`).
    OneShot {
        cli: String,
        image: String,
        target: DbTarget,
    },
}

impl Source {
    /// The image recorded with a dump made this way (none for the bundled container).
    #[must_use]
    pub fn tool(&self) -> Option<String> {
        match self {
            Self::Container { .. } => None,
            Self::OneShot { image, .. } => Some(image.clone()),
        }
    }
}

/// `db-2026-11-29T101500Z-v0.29.2.dump`: names sort by time.
#[must_use]
pub fn file_name(stamp: &str, version: &str) -> String {
    format!("db-{stamp}-{version}.dump")
}

/// Dumps of `dir` (relative paths, `backups/db-….dump`), sorted.
#[must_use]
pub fn list(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join(BACKUPS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("db-") && n.ends_with(".dump"))
        .map(|n| format!("{BACKUPS_DIR}/{n}"))
        .collect();
    out.sort();
    out
}

/// Removes what a killed dump left (`*.dump.partial`).
pub fn remove_partials(dir: &Path) {
    for entry in std::fs::read_dir(dir.join(BACKUPS_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(".dump.partial")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Dumps the database to a new file in `<dir>/backups/`, named after `version` (the release the
/// data belongs to). The file appears under its final name only once complete, flushed and
/// proven readable.
///
/// # Errors
/// `pg_dump` failed (its stderr is quoted), the disk filled up, or the dump is unreadable; no
/// file is left behind.
pub async fn dump(
    engine: &Engine,
    source: &Source,
    dir: &Path,
    version: &str,
) -> anyhow::Result<BackupRef> {
    let backups = dir.join(BACKUPS_DIR);
    std::fs::create_dir_all(&backups)
        .with_context(|| format!("cannot create {}", backups.display()))?;
    let stamp = crate::adapters::clock::now_rfc3339().replace(':', "");
    let mut name = file_name(&stamp, version);
    let mut n = 2;
    while backups.join(&name).exists() {
        name = file_name(&format!("{stamp}-{n}"), version);
        n += 1;
    }
    let path = backups.join(&name);
    let partial = backups.join(format!("{name}.partial"));
    let result = dump_to(engine, source, &partial).await;
    let (bytes, sha256) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot move the dump into place as {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&backups) {
        // Best effort: makes the rename durable where the filesystem needs it.
        let _ = d.sync_all();
    }
    if let Err(e) = check_readable(engine, source, &path).await {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(BackupRef {
        file: format!("{BACKUPS_DIR}/{name}"),
        bytes,
        sha256,
        tool: source.tool(),
    })
}

async fn dump_to(
    engine: &Engine,
    source: &Source,
    partial: &Path,
) -> anyhow::Result<(u64, String)> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut sink = Hashing::new(file);
    let (code, stderr) = match source {
        Source::Container { id, user, database } => {
            engine
                .exec_stream_stdout(
                    id,
                    &[
                        "pg_dump",
                        "--no-password",
                        "-Fc",
                        "-U",
                        user,
                        "-d",
                        database,
                    ],
                    &mut sink,
                )
                .await?
        }
        Source::OneShot { cli, image, target } => {
            let conn = target.client_args();
            let mut cmd = vec!["pg_dump", "--no-password", "-Fc"];
            cmd.extend(conn.iter().map(String::as_str));
            one_shot(cli, image, target, &cmd, None, Some(&mut sink)).await?
        }
    };
    if code != 0 {
        bail!("pg_dump exited {code}: {}", last_lines(&stderr, 10));
    }
    sink.flush()
        .await
        .with_context(|| format!("cannot write {} (disk full?)", partial.display()))?;
    let (file, bytes, sha256) = sink.finish();
    file.sync_all()
        .await
        .with_context(|| format!("cannot flush {} (disk full?)", partial.display()))?;
    if bytes == 0 {
        bail!("pg_dump wrote nothing");
    }
    Ok((bytes, sha256))
}

/// `pg_restore --list` reads the archive's header and its whole table of contents: it proves the
/// file is a custom-format dump this `pg_restore` understands, listing every object. It does not
/// read the table data: that the data is all there rests on `pg_dump` exiting 0 (only once it
/// wrote everything) with the stream fully written and flushed, and that it stays as written, on
/// the SHA-256 checked again before any restore.
async fn check_readable(engine: &Engine, source: &Source, path: &Path) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (code, out) = match source {
        Source::Container { id, .. } => {
            engine
                .exec_stream_stdin(id, &["pg_restore", "--list"], file)
                .await?
        }
        Source::OneShot { cli, image, target } => {
            one_shot(
                cli,
                image,
                target,
                &["pg_restore", "--list"],
                Some(path),
                None,
            )
            .await?
        }
    };
    if code != 0 {
        bail!(
            "the dump {} is not readable by pg_restore (exit {code}): {}",
            path.display(),
            last_lines(&out, 5)
        );
    }
    Ok(())
}

/// SHA-256 (hex) and size of a file, read as a stream.
///
/// # Errors
/// The file cannot be read.
pub async fn checksum(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Replaces the database with the dump `backup` (relative to `dir`), after checking its size and
/// checksum against the record.
///
/// # Errors
/// The file is missing or differs from the record (then nothing was touched), or a restore
/// command failed (its output is quoted).
#[allow(clippy::too_many_lines)] // one restore, whose drop, create and pg_restore share the checked dump and the source
pub async fn restore(
    engine: &Engine,
    source: &Source,
    dir: &Path,
    backup: &BackupRef,
) -> anyhow::Result<()> {
    let path: PathBuf = dir.join(&backup.file);
    let (bytes, sha256) = checksum(&path).await?;
    if bytes != backup.bytes || sha256 != backup.sha256 {
        bail!(
            "{} is not the recorded dump ({bytes} bytes, sha256 {sha256}; recorded {} bytes, sha256 {}); the database was not touched",
            path.display(),
            backup.bytes,
            backup.sha256
        );
    }
    match source {
        Source::Container { id, user, database } => {
            restore_bundled(engine, id, user, database, &path).await
        }
        Source::OneShot { cli, image, target } => restore_external(cli, image, target, &path).await,
    }
}

/// The bundled database is restored into a new database beside it, which replaces it only once
/// the restore succeeded: a dump that fails half-way leaves the database as it was.
async fn restore_bundled(
    engine: &Engine,
    id: &str,
    user: &str,
    database: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let staging = staging_name(database);
    let psql = |sql: Vec<String>| bundled_psql(engine, id, user, sql);
    let (code, out) = psql(vec![
        drop_database(&staging),
        format!(
            "CREATE DATABASE {} OWNER {}",
            quote_identifier(&staging),
            quote_identifier(user)
        ),
    ])
    .await?;
    if code != 0 {
        bail!(
            "creating the database {staging} to restore into failed (exit {code}); {database} was not touched: {}",
            last_lines(&out, 5)
        );
    }
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (code, out) = engine
        .exec_stream_stdin(
            id,
            &[
                "pg_restore",
                "--no-password",
                "--exit-on-error",
                "--single-transaction",
                "-U",
                user,
                "-d",
                &staging,
            ],
            file,
        )
        .await?;
    if code != 0 {
        let _ = psql(vec![drop_database(&staging)]).await;
        bail!(
            "pg_restore exited {code}; {database} was not touched: {}",
            last_lines(&out, 10)
        );
    }
    // Two statements, each its own transaction (neither may run inside one): a kill between them
    // leaves the restored copy under its staging name, and the next restore starts again from
    // the dump, which is still there.
    let (code, out) = psql(vec![
        drop_database(database),
        format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_identifier(&staging),
            quote_identifier(database)
        ),
    ])
    .await?;
    if code != 0 {
        bail!(
            "putting the restored database {staging} in place of {database} failed (exit {code}): {}",
            last_lines(&out, 5)
        );
    }
    Ok(())
}

/// `psql` as `user` on the maintenance database of the bundled server, one `-c` per statement.
async fn bundled_psql(
    engine: &Engine,
    id: &str,
    user: &str,
    statements: Vec<String>,
) -> anyhow::Result<(i64, String)> {
    let mut cmd = vec![
        "psql",
        "--no-psqlrc",
        "--no-password",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        user,
        "-d",
        "postgres",
    ];
    for statement in &statements {
        cmd.extend(["-c", statement.as_str()]);
    }
    engine.exec(id, &cmd).await
}

/// `DROP DATABASE … WITH (FORCE)`: other sessions are ended first (Movim's are stopped already).
fn drop_database(name: &str) -> String {
    format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_identifier(name)
    )
}

/// `<database>_restoring`, within PostgreSQL's 63-byte names.
fn staging_name(database: &str) -> String {
    const SUFFIX: &str = "_restoring";
    let mut keep = database.len().min(63 - SUFFIX.len());
    while !database.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{SUFFIX}", &database[..keep])
}

/// An external database (where the role may own neither the database nor the right to create
/// one) is emptied and restored in ONE transaction: its `public` schema dropped and created again,
/// then the dump's script, committed only when `pg_restore` read the whole dump and every statement
/// succeeded; otherwise rolled back, leaving the database as it was. The drop waits at most
/// [`LOCK_TIMEOUT`] for a lock another client holds, instead of hanging the downtime.
async fn restore_external(
    cli: &str,
    image: &str,
    target: &DbTarget,
    path: &Path,
) -> anyhow::Result<()> {
    // The connection's words come after the script as its arguments ("$@"), never inside it.
    let script = format!(
        "set -o pipefail; {{ printf '%s\\n' 'BEGIN;' \"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';\" \
         'DROP SCHEMA IF EXISTS public CASCADE;' 'CREATE SCHEMA public;'; \
         pg_restore --single-transaction --exit-on-error -f -; }} \
         | psql --no-psqlrc --no-password --quiet -v ON_ERROR_STOP=1 \"$@\""
    );
    let conn = target.client_args();
    let mut cmd = vec!["bash", "-c", &script, "restore"];
    cmd.extend(conn.iter().map(String::as_str));
    let (code, out) = one_shot(cli, image, target, &cmd, Some(path), None).await?;
    if code != 0 {
        bail!(
            "restoring {} failed (exit {code}); it was rolled back, the database is as it was (the role must own the public schema): {}",
            target.describe(),
            last_lines(&out, 10)
        );
    }
    Ok(())
}

/// How long the external restore waits for a lock another client holds.
const LOCK_TIMEOUT: &str = "60s";

/// Runs `cmd` in a throwaway container of `image` on the host network, with `PGPASSWORD` passed
/// by name, `stdin` fed from a file and stdout streamed to `stdout` when given. Returns the exit
/// code and the end of stderr (of all output when stdout is not streamed).
async fn one_shot(
    cli: &str,
    image: &str,
    target: &DbTarget,
    cmd: &[&str],
    stdin: Option<&Path>,
    stdout: Option<&mut Hashing<tokio::fs::File>>,
) -> anyhow::Result<(i64, String)> {
    let mut args = vec!["run", "--rm", "--network", "host", "-e", "PGPASSWORD"];
    if stdin.is_some() {
        args.push("-i");
    }
    args.push(image);
    args.extend_from_slice(cmd);
    let line = format!("{cli} {}", args.join(" "));
    let mut child = crate::adapters::subprocess::command(cli)
        .args(&args)
        .env("PGPASSWORD", target.password.expose())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let feed = async {
        if let (Some(path), Some(mut input)) = (stdin, child.stdin.take()) {
            let mut file = tokio::fs::File::open(path).await?;
            tokio::io::copy(&mut file, &mut input).await?;
            input.shutdown().await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let drain_out = async {
        let mut kept = Vec::new();
        if let Some(pipe) = out_pipe.as_mut() {
            match stdout {
                Some(sink) => {
                    tokio::io::copy(pipe, sink).await?;
                }
                None => {
                    pipe.read_to_end(&mut kept).await?;
                }
            }
        }
        Ok::<_, std::io::Error>(kept)
    };
    let drain_err = async {
        let mut kept = Vec::new();
        if let Some(pipe) = err_pipe.as_mut() {
            pipe.read_to_end(&mut kept).await?;
        }
        Ok::<_, std::io::Error>(kept)
    };
    let (fed, out, err) = tokio::join!(feed, drain_out, drain_err);
    let status = child
        .wait()
        .await
        .with_context(|| format!("`{line}` did not finish"))?;
    let out = out.with_context(|| format!("writing the output of `{line}` (disk full?)"))?;
    let err = err.with_context(|| format!("reading the errors of `{line}`"))?;
    let code = i64::from(status.code().unwrap_or(-1));
    if let Err(e) = fed
        && code == 0
    {
        return Err(anyhow::Error::new(e).context(format!("feeding the input of `{line}`")));
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push_str(&String::from_utf8_lossy(&err));
    Ok((code, text))
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Counts and hashes what passes through to the file.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.hasher.update(&buf[..n]);
            this.bytes += n as u64;
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_hashing_writer_counts_and_hashes_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = tokio::fs::File::create(&path).await.unwrap();
        let mut w = Hashing::new(file);
        w.write_all(b"hello ").await.unwrap();
        w.write_all(b"world").await.unwrap();
        w.flush().await.unwrap();
        let (_, bytes, sha) = w.finish();
        assert_eq!(bytes, 11);
        assert_eq!(
            sha,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(checksum(&path).await.unwrap(), (11, sha));
    }

    #[test]
    fn dumps_are_listed_in_time_order_and_partials_removed() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join(BACKUPS_DIR);
        std::fs::create_dir_all(b.join("files")).unwrap();
        for n in [
            "db-2026-01-02T000000Z-v0.30.0.dump",
            "db-2026-01-01T000000Z-v0.29.2.dump",
            "db-2026-01-03T000000Z-v0.30.0.dump.partial",
            "other.txt",
        ] {
            std::fs::write(b.join(n), "x").unwrap();
        }
        assert_eq!(
            list(dir.path()),
            [
                "backups/db-2026-01-01T000000Z-v0.29.2.dump",
                "backups/db-2026-01-02T000000Z-v0.30.0.dump"
            ]
        );
        remove_partials(dir.path());
        assert!(
            !b.join("db-2026-01-03T000000Z-v0.30.0.dump.partial")
                .exists()
        );
        assert!(b.join("other.txt").exists());
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
