//! The database as the commands and the release steps use it: what its state is (login, server,
//! pgcrypto, applied migrations), and dumps taken and restored. [`Postgres`] is the real one
//! (sqlx for the facts, or `psql` inside the bundled container when its address cannot be reached
//! from here; `pg_dump`/`pg_restore` through the engine for the dumps); tests drive the same code
//! with a fake.

use crate::adapters::backup::{self, Source};
pub use crate::adapters::db::DbError;
use crate::adapters::db::{self, DbFacts, DbTarget};
use crate::adapters::engine::Engine;
use crate::adapters::psql;
use crate::core::lockfile::BackupRef;
use futures_util::future::BoxFuture;
use std::path::Path;
use std::time::Duration;

/// How long reading the facts may take once logged in.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Movim's database.
pub trait DbClient: Send + Sync {
    /// Logs in to `target` within `login_timeout` and reads its [`DbFacts`]; read-only.
    fn facts<'a>(
        &'a self,
        target: &'a DbTarget,
        login_timeout: Duration,
    ) -> BoxFuture<'a, Result<DbFacts, DbError>>;

    /// Dumps the database to a new file in `<dir>/backups/`, named after `version`.
    fn dump<'a>(
        &'a self,
        source: &'a Source,
        dir: &'a Path,
        version: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BackupRef>>;

    /// Replaces the database with the dump `backup` records, once its checksum matches.
    fn restore<'a>(
        &'a self,
        source: &'a Source,
        dir: &'a Path,
        backup: &'a BackupRef,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// PostgreSQL, reached by sqlx and dumped through the engine.
pub struct Postgres {
    pub engine: Engine,
}

impl DbClient for Postgres {
    fn facts<'a>(
        &'a self,
        target: &'a DbTarget,
        login_timeout: Duration,
    ) -> BoxFuture<'a, Result<DbFacts, DbError>> {
        Box::pin(async move {
            if !self.engine.reaches_container_addresses()
                && let Some(container) = &target.container
            {
                return psql::facts(&self.engine, container, target, login_timeout).await;
            }
            let mut conn = db::connect(target, login_timeout)
                .await
                .map_err(DbError::Login)?;
            match tokio::time::timeout(READ_TIMEOUT, db::facts(&mut conn)).await {
                Ok(facts) => facts.map_err(DbError::Read),
                Err(_) => Err(DbError::Read(anyhow::anyhow!(
                    "reading its state timed out"
                ))),
            }
        })
    }

    fn dump<'a>(
        &'a self,
        source: &'a Source,
        dir: &'a Path,
        version: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BackupRef>> {
        Box::pin(backup::dump(&self.engine, source, dir, version))
    }

    fn restore<'a>(
        &'a self,
        source: &'a Source,
        dir: &'a Path,
        backup: &'a BackupRef,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(backup::restore(&self.engine, source, dir, backup))
    }
}
