//! The database as Movim's migrations see it, through sqlx: can we log in, which server is it,
//! can the role create `pgcrypto` (a migration needs it), which Phinx migrations ran. Connection
//! options are built field by field, never as a URL, so passwords with `$#"' ` and spaces work
//! unescaped and never appear in a string that could be printed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions};

use crate::core::deployment::DbEndpoint;
use crate::core::secret::Secret;

/// Why the facts could not be read: the login, or what came after.
#[derive(Debug)]
pub enum DbError {
    Login(anyhow::Error),
    Read(anyhow::Error),
}

impl DbError {
    /// The cause, whichever it was.
    #[must_use]
    pub fn into_cause(self) -> anyhow::Error {
        match self {
            Self::Login(e) | Self::Read(e) => e,
        }
    }
}

/// Where and as whom to log in. `Debug` shows everything but the password ([`Secret`] redacts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: Secret,
    /// The bundled postgres container, when the database is that: where its facts are read from
    /// inside when this process cannot reach the container's address (a rootless engine).
    pub container: Option<String>,
}

impl DbTarget {
    /// The connection as libpq's programs take it (`-h HOST -p PORT -U USER -d NAME`); the
    /// password never: it travels as `PGPASSWORD`.
    #[must_use]
    pub fn client_args(&self) -> [String; 8] {
        [
            "-h".into(),
            self.host.clone(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            self.user.clone(),
            "-d".into(),
            self.name.clone(),
        ]
    }

    /// `endpoint` as this tool reaches it: at `host` ([`crate::core::containers::db_host`]).
    #[must_use]
    pub fn at(endpoint: DbEndpoint<'_>, host: String, password: Secret) -> Self {
        Self {
            host,
            port: endpoint.port,
            name: endpoint.name.to_owned(),
            user: endpoint.user.to_owned(),
            password,
            container: None,
        }
    }

    /// The same target, in the bundled postgres `container` (by id), if any.
    #[must_use]
    pub fn in_container(mut self, container: Option<String>) -> Self {
        self.container = container;
        self
    }

    /// `host:port/db as user`, the way every error names the target.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{}:{}/{} as {}", self.host, self.port, self.name, self.user)
    }

    fn options(&self) -> PgConnectOptions {
        // Without pgpass: the user's ~/.pgpass must not silently override what they told us.
        PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .database(&self.name)
            .username(&self.user)
            .password(self.password.expose())
            .application_name("movim-setup")
    }
}

/// Logs in, or says which of the usual causes it is.
///
/// # Errors
/// Refused or unreachable, timed out, authentication failed (SQLSTATE 28P01), database missing
/// (3D000), or anything else the server said; each names `host:port/db as user`.
pub async fn connect(t: &DbTarget, timeout: Duration) -> anyhow::Result<PgConnection> {
    match tokio::time::timeout(timeout, t.options().connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(explain_connect_error(t, e)),
        Err(_) => Err(anyhow!(
            "cannot connect to the database {}: timed out after {timeout:?} (is the host \
             reachable, a firewall dropping packets, or the server still starting?)",
            t.describe()
        )),
    }
}

fn explain_connect_error(t: &DbTarget, e: sqlx::Error) -> anyhow::Error {
    let target = t.describe();
    let reason = match &e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: no PostgreSQL listens there (is the database container running, \
             and is the port right?)"
                .to_owned()
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            "timed out (is the host reachable?)".to_owned()
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!(
                "authentication failed for user {:?}: the password is wrong (check DB_PASSWORD in \
                 movim.env)",
                t.user
            ),
            Some("3D000") => format!(
                "database {:?} does not exist (create it, or check DB_DATABASE in movim.env)",
                t.name
            ),
            Some("28000") => format!(
                "the server refused user {:?} (no pg_hba.conf entry or no such role): {}",
                t.user,
                db.message()
            ),
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        // DNS, TLS, protocol: sqlx's own chain says it best.
        _ => return anyhow!(e).context(format!("cannot connect to the database {target}")),
    };
    // The reason above already carries the server's message; sqlx's chain would repeat it.
    anyhow!("cannot connect to the database {target}: {reason}")
}

/// What doctor and upgrade need to know about the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFacts {
    /// `SHOW server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub server_version: String,
    pub size_bytes: i64,
    /// The server ships the extension (contrib installed).
    pub pgcrypto_available: bool,
    /// `CREATE EXTENSION pgcrypto` already ran in this database.
    pub pgcrypto_installed: bool,
    /// The role may run `CREATE EXTENSION pgcrypto` (trusted since PostgreSQL 13, so `CREATE` on
    /// the database suffices), or is superuser.
    pub can_create_extension: bool,
    /// Applied Phinx migration versions in order; `None` when the table is absent (fresh database).
    pub phinxlog: Option<Vec<i64>>,
}

/// Reads [`DbFacts`]; read-only.
///
/// # Errors
/// Any query failing (with which fact it was after).
pub async fn facts(conn: &mut PgConnection) -> anyhow::Result<DbFacts> {
    let server_version: String = sqlx::query_scalar("show server_version")
        .fetch_one(&mut *conn)
        .await
        .context("reading the server version")?;
    let size_bytes: i64 = sqlx::query_scalar("select pg_database_size(current_database())")
        .fetch_one(&mut *conn)
        .await
        .context("reading the database size")?;
    let (pgcrypto_available, pgcrypto_installed, can_create_extension): (bool, bool, bool) =
        sqlx::query_as(
            "select \
               exists(select 1 from pg_available_extensions where name = 'pgcrypto'), \
               exists(select 1 from pg_extension where extname = 'pgcrypto'), \
               has_database_privilege(current_database(), 'CREATE') \
                 or coalesce((select rolsuper from pg_roles where rolname = current_user), false)",
        )
        .fetch_one(&mut *conn)
        .await
        .context("checking the pgcrypto extension and the role's rights")?;
    let has_phinxlog: bool =
        sqlx::query_scalar("select to_regclass('public.phinxlog') is not null")
            .fetch_one(&mut *conn)
            .await
            .context("looking for the phinxlog table")?;
    let phinxlog = if has_phinxlog {
        Some(
            sqlx::query_scalar("select version::bigint from public.phinxlog order by version")
                .fetch_all(&mut *conn)
                .await
                .context("reading applied migrations from phinxlog")?,
        )
    } else {
        None
    };
    Ok(DbFacts {
        server_version,
        size_bytes,
        pgcrypto_available,
        pgcrypto_installed,
        can_create_extension,
        phinxlog,
    })
}

/// Row count and an md5 over every row (as text, in a stable order) of each table, keyed by the
/// name given: compare before and after an upgrade or a restore to prove data survived. A name
/// `schema.table` is split at its first dot; each part is quoted, so any name is safe.
///
/// # Errors
/// A missing table or a failed query, naming the table.
pub async fn table_checksums(
    conn: &mut PgConnection,
    tables: &[&str],
) -> anyhow::Result<BTreeMap<String, (i64, String)>> {
    let mut sums = BTreeMap::new();
    for &table in tables {
        let sql = format!(
            "select count(*)::bigint, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) \
             from {} t",
            qualified_identifier(table)
        );
        // The only interpolated text is the identifier, quoted by `qualified_identifier`.
        let row: (i64, String) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("checksumming table {table}"))?;
        sums.insert(table.to_owned(), row);
    }
    Ok(sums)
}

/// `"a""b"` for `a"b`; `"s"."t"` for `s.t`.
fn qualified_identifier(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => {
            format!("{}.{}", quote_identifier(schema), quote_identifier(table))
        }
        None => quote_identifier(name),
    }
}

fn quote_identifier(part: &str) -> String {
    format!("\"{}\"", part.replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(qualified_identifier("sessions"), "\"sessions\"");
        assert_eq!(qualified_identifier("public.users"), "\"public\".\"users\"");
        assert_eq!(
            qualified_identifier("x\"; drop table y; --"),
            "\"x\"\"; drop table y; --\""
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let t = DbTarget {
            host: "db".into(),
            port: 5432,
            name: "movim".into(),
            user: "movim".into(),
            password: Secret::new("p$a#s\"s' w"),
            container: None,
        };
        let shown = format!("{t:?} {}", t.describe());
        assert!(!shown.contains("p$a#s"), "{shown}");
        assert!(shown.contains("db:5432/movim as movim"), "{shown}");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = DbTarget {
            host: "127.0.0.1".into(),
            port,
            name: "movim".into(),
            user: "movim".into(),
            password: Secret::new("x"),
            container: None,
        };
        let err = format!(
            "{:#}",
            connect(&t, Duration::from_secs(5)).await.unwrap_err()
        );
        assert!(err.contains("refused"), "{err}");
        assert!(
            err.contains(&format!("127.0.0.1:{port}/movim as movim")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _hold = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(sock);
        });
        let t = DbTarget {
            host: "127.0.0.1".into(),
            port,
            name: "movim".into(),
            user: "movim".into(),
            password: Secret::new("x"),
            container: None,
        };
        let err = format!(
            "{:#}",
            connect(&t, Duration::from_millis(300)).await.unwrap_err()
        );
        assert!(err.contains("timed out"), "{err}");
    }
}
