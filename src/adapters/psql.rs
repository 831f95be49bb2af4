//! The database's facts read by `psql` inside the bundled postgres container, through the
//! engine's exec API, for when this process cannot reach the container's address (a rootless
//! engine keeps its networks in the user's own namespace). `psql` logs in at the container's own
//! address, as Movim does over the network (so the password is proven, where the image's loopback
//! and socket would trust anyone), with the password fed on stdin, never in an argument.

use crate::adapters::db::{DbError, DbFacts, DbTarget};
use crate::adapters::engine::Engine;
use anyhow::anyhow;
use std::time::Duration;

/// The marks of the two answer lines among psql's output.
const FACTS: &str = "movim-setup-facts";
const PHINXLOG: &str = "movim-setup-phinxlog";

/// What `psql` runs: the facts of [`crate::adapters::db::facts`] in one row, then the applied
/// migrations in one more, only when `phinxlog` exists.
const SCRIPT: &str = "\
select 'movim-setup-facts', current_setting('server_version'), \
  pg_database_size(current_database()), \
  exists(select 1 from pg_available_extensions where name = 'pgcrypto'), \
  exists(select 1 from pg_extension where extname = 'pgcrypto'), \
  has_database_privilege(current_database(), 'CREATE') \
    or coalesce((select rolsuper from pg_roles where rolname = current_user), false), \
  to_regclass('public.phinxlog') is not null;
select to_regclass('public.phinxlog') is not null as has_phinxlog \\gset
\\if :has_phinxlog
select 'movim-setup-phinxlog', \
  coalesce(string_agg(version::text, ',' order by version::bigint), '') from public.phinxlog;
\\endif
";

/// Logs in to `target` from inside `container` within `login_timeout` and reads its facts.
pub async fn facts(
    engine: &Engine,
    container: &str,
    target: &DbTarget,
    login_timeout: Duration,
) -> Result<DbFacts, DbError> {
    let timeout = format!("PGCONNECT_TIMEOUT={}", login_timeout.as_secs().max(2));
    let conn = target.client_args();
    // The first line of stdin is the password; psql reads the rest as its script.
    let cmd = [
        "env",
        &timeout,
        "sh",
        "-c",
        "IFS= read -r PGPASSWORD; export PGPASSWORD; \
         exec psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 \"$@\"",
        "psql",
    ];
    let cmd: Vec<&str> = cmd
        .into_iter()
        .chain(conn.iter().map(String::as_str))
        .collect();
    let input = format!("{}\n{SCRIPT}", target.password.expose());
    let run = engine.exec_stream_stdin(container, &cmd, input.as_bytes());
    let (code, output) = tokio::time::timeout(login_timeout + Duration::from_secs(10), run)
        .await
        .map_err(|_| {
            DbError::Login(anyhow!(
                "cannot reach the database {} from inside its container: timed out",
                target.describe()
            ))
        })?
        .map_err(DbError::Login)?;
    match code {
        0 => parse(&output).map_err(DbError::Read),
        // psql: 2 is a failed connection (login), 3 a failed statement.
        2 => Err(DbError::Login(anyhow!(
            "cannot connect to the database {} (from inside its container): {}",
            target.describe(),
            output.trim()
        ))),
        _ => Err(DbError::Read(anyhow!(
            "psql in the postgres container exited {code}: {}",
            output.trim()
        ))),
    }
}

/// Reads psql's answer (`-A -t -F '|'`): the facts line, then the migrations line if any.
fn parse(output: &str) -> anyhow::Result<DbFacts> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{FACTS}|")))
        .ok_or_else(|| anyhow!("psql did not answer the facts: {}", output.trim()))?;
    let fields: Vec<&str> = line.split('|').collect();
    let [
        server_version,
        size,
        available,
        installed,
        can_create,
        has_phinxlog,
    ] = fields[..]
    else {
        anyhow::bail!("psql answered an unexpected facts line: {line}");
    };
    let flag = |v: &str| v == "t";
    let phinxlog = if flag(has_phinxlog) {
        let list = output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{PHINXLOG}|")))
            .ok_or_else(|| anyhow!("psql did not list the applied migrations"))?;
        Some(
            list.split(',')
                .filter(|v| !v.is_empty())
                .map(|v| v.parse::<i64>().map_err(|e| anyhow!("migration {v}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?,
        )
    } else {
        None
    };
    Ok(DbFacts {
        server_version: server_version.to_owned(),
        size_bytes: size
            .parse()
            .map_err(|e| anyhow!("database size {size}: {e}"))?,
        pgcrypto_available: flag(available),
        pgcrypto_installed: flag(installed),
        can_create_extension: flag(can_create),
        phinxlog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migrated_database_is_read_from_psqls_lines() {
        let out = "movim-setup-facts|15.8 (Debian 15.8-0+deb12u1)|8053295|t|t|t|t\n\
                   movim-setup-phinxlog|20180101000000,20250415093000\n";
        let f = parse(out).expect("parsed");
        assert_eq!(f.server_version, "15.8 (Debian 15.8-0+deb12u1)");
        assert_eq!(f.size_bytes, 8_053_295);
        assert!(f.pgcrypto_available && f.pgcrypto_installed && f.can_create_extension);
        assert_eq!(
            f.phinxlog,
            Some(vec![20_180_101_000_000, 20_250_415_093_000])
        );
    }

    #[test]
    fn a_fresh_database_has_no_phinxlog_and_an_empty_one_no_migrations() {
        let fresh = parse("movim-setup-facts|15.8|7000000|t|f|t|f\n").expect("parsed");
        assert_eq!(fresh.phinxlog, None);
        assert!(!fresh.pgcrypto_installed);
        let empty = parse("movim-setup-facts|15.8|7000000|t|f|f|t\nmovim-setup-phinxlog|\n")
            .expect("parsed");
        assert_eq!(empty.phinxlog, Some(vec![]));
        assert!(!empty.can_create_extension);
    }

    #[test]
    fn anything_else_is_an_error_naming_what_psql_said() {
        let err =
            parse("psql: error: FATAL: role \"movim\" does not exist").expect_err("no facts line");
        assert!(format!("{err}").contains("does not exist"), "{err}");
        assert!(parse("movim-setup-facts|15.8|x|t|t|t|f").is_err());
        assert!(parse("movim-setup-facts|15.8|1|t|t|t|t\n").is_err());
    }
}
