//! `db.*`: login and server version, pgcrypto, and `phinx status` of the running image.

use crate::adapters::db::{DbFacts, DbTarget};
use crate::core::containers::{ContainerInfo, db_container, db_host};
use crate::core::deployment::{Database, DbEndpoint, Deployment};
use crate::core::movim::{self, PhinxStatus};
use crate::core::secret::Secret;
use crate::doctor::facts::Outcome;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};

/// Where this tool reaches the database ([`db_host`]).
pub fn db_target(
    all: &[ContainerInfo],
    d: &Deployment,
    password: Secret,
) -> Result<DbTarget, String> {
    let host = db_host(all, d).map_err(|e| e.to_string())?;
    Ok(DbTarget::at(d.database.endpoint(), host, password).in_container(db_container(all, d)))
}

/// The database: login and server version (`db`: the target reached and its facts, or why not),
/// pgcrypto, and `phinx status` in the running image (`phinx`: the container it ran in and what it
/// answered).
#[allow(clippy::too_many_lines)] // one finding per state of the login, pgcrypto and the migrations, in the order a reader meets them
pub fn check_database(
    d: &Deployment,
    hints: &Hints,
    db: &Result<(String, DbFacts), String>,
    phinx: Option<&(String, Outcome)>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let facts = match db {
        Ok((target, facts)) => {
            out.push(Finding::ok(
                Area::Database,
                "db.reachable",
                format!("PostgreSQL {} at {target}", facts.server_version),
            ));
            Some(facts)
        }
        Err(why) => {
            out.push(unreachable(d, hints, why));
            None
        }
    };
    let DbEndpoint { name, user, .. } = d.database.endpoint();
    if let Some(facts) = &facts {
        let migrated = facts.phinxlog.as_ref().is_some_and(|v| !v.is_empty());
        let create = match &d.database {
            Database::Bundled => hints.exec(
                "postgres",
                &format!("psql -U {user} -d {name} -c 'create extension if not exists pgcrypto'"),
            ),
            Database::External { host, port, .. } => format!(
                "psql -h {host} -p {port} -U postgres -d {name} -c 'create extension if not exists pgcrypto'"
            ),
        };
        out.push(if facts.pgcrypto_installed {
            Finding::ok(Area::Database, "db.pgcrypto", format!("pgcrypto is installed in {name}"))
        } else if !facts.pgcrypto_available {
            Finding::error(Area::Database, "db.pgcrypto", "the server does not ship pgcrypto, which Movim's migrations create")
                .hint("install PostgreSQL's contrib modules on the server (Debian: apt install postgresql-contrib), then run: movim-setup doctor")
        } else if migrated {
            Finding::error(
                Area::Database,
                "db.pgcrypto",
                format!("pgcrypto is not installed in {name} although migrations ran: Movim's queries that use it fail"),
            )
            .hint(create)
        } else if facts.can_create_extension {
            Finding::ok(Area::Database, "db.pgcrypto", "pgcrypto is available; the first migration creates it")
        } else {
            Finding::error(
                Area::Database,
                "db.pgcrypto",
                format!("role {user} may not create pgcrypto in {name}, which the first migration does"),
            )
            .hint(create)
        });
    }
    let applied = facts
        .as_ref()
        .and_then(|f| f.phinxlog.as_ref())
        .map_or(0, Vec::len);
    let cannot_run = |why: String, lines: Vec<String>| {
        Finding::warn(
            Area::Database,
            "db.migrations",
            format!("cannot compare phinxlog ({applied} applied) with the image: {why}"),
        )
        .details(lines)
        .hint(hints.exec("daemon", "php vendor/bin/phinx status"))
    };
    out.push(match read_phinx(phinx) {
        Phinx::Said(PhinxStatus::UpToDate) => Finding::ok(
            Area::Database,
            "db.migrations",
            format!("every migration of the running image is applied ({applied} in phinxlog)"),
        ),
        Phinx::Said(PhinxStatus::Pending(lines)) => Finding::error(
            Area::Database,
            "db.migrations",
            "migrations of the running image are pending: the daemon exits (code 0) until they are applied",
        )
        .details(lines.into_iter().take(10))
        .hint(format!(
            "if an upgrade was interrupted: movim-setup upgrade --resume --dir {}; otherwise apply them: {}",
            hints.dir,
            hints.migrate()
        )),
        Phinx::Said(PhinxStatus::Newer(lines)) => Finding::error(
            Area::Database,
            "db.migrations",
            "the database holds migrations this image does not know: it is newer than the code (a downgrade?)",
        )
        .details(lines.into_iter().take(10))
        .hint(format!(
            "run the release that migrated it, or return to the backup taken before: movim-setup rollback --dir {}",
            hints.dir
        )),
        Phinx::Said(PhinxStatus::Failed { code, tail }) => {
            cannot_run(format!("phinx status exited {code}"), tail)
        }
        Phinx::CannotRun(why, lines) => cannot_run(why, lines),
    });
    out
}

/// `db.reachable` when the login failed, with the way to try it by hand.
fn unreachable(d: &Deployment, hints: &Hints, why: &str) -> Finding {
    let hint = match &d.database {
        Database::Bundled => format!("read why: {}", hints.logs("postgres")),
        Database::External {
            host,
            port,
            name,
            user,
        } => {
            format!(
                "check host, port, role and DB_PASSWORD: psql -h {host} -p {port} -U {user} -d {name}"
            )
        }
    };
    Finding::error(
        Area::Database,
        "db.reachable",
        "cannot log in to the database",
    )
    .detail(why.to_owned())
    .hint(hint)
}

/// What doctor could learn from `phinx status` in the running image.
pub enum Phinx {
    Said(PhinxStatus),
    CannotRun(String, Vec<String>),
}

/// What `phinx status` answered in the running daemon (or fpm): 0 up to date, 3 pending, 2 the
/// database is newer than the code.
fn read_phinx(phinx: Option<&(String, Outcome)>) -> Phinx {
    let Some((name, outcome)) = phinx else {
        return Phinx::CannotRun("neither daemon nor fpm is running".into(), Vec::new());
    };
    let (code, output) = match outcome {
        Outcome::Ran(code, output) => (*code, output),
        Outcome::Failed(e) => return Phinx::CannotRun(e.clone(), Vec::new()),
        Outcome::TimedOut => return Phinx::CannotRun("phinx status timed out".into(), Vec::new()),
    };
    match movim::phinx_status(i32::try_from(code).unwrap_or(-1), output) {
        PhinxStatus::Failed { code, tail } => {
            Phinx::CannotRun(format!("phinx status exited {code} in {name}"), tail)
        }
        said => Phinx::Said(said),
    }
}
