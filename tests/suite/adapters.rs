//! The database and compose adapters against the real programs of the test world:
//! PostgreSQL from the world's image, Compose v2 as a docker CLI plugin and docker-compose v1.
//! Each test names its containers and projects uniquely and removes them in a `Drop` guard, so a
//! failing assertion leaves nothing behind.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use crate::support::world;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use movim_setup::adapters::db::{self, DbTarget};
use movim_setup::adapters::runner::compose::{self, Flavor};
use movim_setup::core::secret::Secret;

/// `<prefix>-<pid>-<nanos>`: unique across parallel tests and reruns, valid as a compose project.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------------

/// A throwaway PostgreSQL container, removed with its anonymous volume on drop.
struct Postgres {
    name: String,
    port: u16,
}

/// The awkward password: a dollar, a hash, both quotes and a space.
const PASSWORD: &str = "p$a#s\"s' w";

impl Postgres {
    fn start(image: &str) -> Self {
        let name = unique("movim-adapters-pg");
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1::5432",
            "-e",
            "POSTGRES_USER=movim_owner",
            "-e",
            &format!("POSTGRES_PASSWORD={PASSWORD}"),
            "-e",
            "POSTGRES_DB=movim_test",
            image,
        ]);
        let mut guard = Self { name, port: 0 };
        let mapped = docker(&["port", &guard.name, "5432/tcp"]);
        let port: u16 = mapped
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected `docker port` output: {mapped}"));
        guard.port = port;
        guard
    }

    fn target(&self, password: &str) -> DbTarget {
        DbTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            name: "movim_test".into(),
            user: "movim_owner".into(),
            password: Secret::new(password),
            container: None,
        }
    }

    /// Connects once the server accepts TCP (the entrypoint's init server is socket-only, and
    /// docker-proxy accepts then drops connections until the real server listens).
    async fn ready(&self) -> sqlx::PgConnection {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            match db::connect(&self.target(PASSWORD), Duration::from_secs(5)).await {
                Ok(conn) => return conn,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    let logs = Command::new("docker").args(["logs", &self.name]).output();
                    panic!("postgres never became ready: {e:#}\n{logs:?}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[tokio::test]
async fn database_facts_through_an_awkward_password() {
    let w = world::World::get();
    let pg = Postgres::start(&w.library_image("postgres:15"));
    let mut conn = pg.ready().await;

    let facts = db::facts(&mut conn).await.unwrap();
    assert!(facts.server_version.starts_with("15."), "{facts:?}");
    assert!(facts.size_bytes > 0, "{facts:?}");
    assert!(facts.pgcrypto_available, "{facts:?}");
    assert!(!facts.pgcrypto_installed, "{facts:?}");
    assert!(
        facts.can_create_extension,
        "the owner is superuser: {facts:?}"
    );
    assert_eq!(facts.phinxlog, None);

    sqlx::raw_sql(
        "create extension pgcrypto; \
         create table phinxlog (version bigint primary key, migration_name varchar(100)); \
         insert into phinxlog values (20250213000000, 'Second'), (20180410080232, 'First');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let facts = db::facts(&mut conn).await.unwrap();
    assert!(facts.pgcrypto_installed, "{facts:?}");
    assert_eq!(
        facts.phinxlog,
        Some(vec![20_180_410_080_232, 20_250_213_000_000])
    );

    // Checksums: stable across reads, changed by a write, and safe with odd table names.
    sqlx::raw_sql(
        "create table \"odd \"\"name\" (id int); insert into \"odd \"\"name\" values (1), (2);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let tables = ["phinxlog", "public.odd \"name"];
    let before = db::table_checksums(&mut conn, &tables).await.unwrap();
    assert_eq!(before["phinxlog"].0, 2);
    assert_eq!(before["public.odd \"name"].0, 2);
    assert_eq!(
        before,
        db::table_checksums(&mut conn, &tables).await.unwrap()
    );
    sqlx::raw_sql("update phinxlog set migration_name = 'Renamed' where version = 20180410080232")
        .execute(&mut conn)
        .await
        .unwrap();
    let after = db::table_checksums(&mut conn, &tables).await.unwrap();
    assert_eq!(after["phinxlog"].0, 2);
    assert_ne!(after["phinxlog"].1, before["phinxlog"].1);
    assert_eq!(after["public.odd \"name"], before["public.odd \"name"]);
    let missing = db::table_checksums(&mut conn, &["no_such_table"])
        .await
        .unwrap_err();
    assert!(
        format!("{missing:#}").contains("no_such_table"),
        "{missing:#}"
    );

    // A role without CREATE on the database cannot add pgcrypto; granting it can.
    sqlx::raw_sql("create role limited_role login password 'limited pw'; grant select on phinxlog to limited_role")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut limited = pg.target("limited pw");
    limited.user = "limited_role".into();
    let mut limited_conn = db::connect(&limited, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        !db::facts(&mut limited_conn)
            .await
            .unwrap()
            .can_create_extension
    );
    sqlx::raw_sql("grant create on database movim_test to limited_role")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        db::facts(&mut limited_conn)
            .await
            .unwrap()
            .can_create_extension
    );

    // A wrong password: the auth-failed message, naming the target, never the password.
    let err = db::connect(&pg.target("Wr0ngPassw0rd"), Duration::from_secs(10))
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}/movim_test as movim_owner", pg.port)),
        "{err}"
    );
    assert!(!err.contains("Wr0ngPassw0rd"), "{err}");

    // A database that does not exist.
    let mut missing_db = pg.target(PASSWORD);
    missing_db.name = "nope".into();
    let err = format!(
        "{:#}",
        db::connect(&missing_db, Duration::from_secs(10))
            .await
            .unwrap_err()
    );
    assert!(err.contains("does not exist"), "{err}");

    // A closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut refused = pg.target(PASSWORD);
    refused.port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = format!(
        "{:#}",
        db::connect(&refused, Duration::from_secs(10))
            .await
            .unwrap_err()
    );
    assert!(err.contains("refused"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Compose tools
// ---------------------------------------------------------------------------------------------

/// A compose project in a temporary directory; `down -v` with the same tool on drop.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    /// The tool's command line, as given to `detect`.
    command: Vec<String>,
}

impl Project {
    fn new(command: &[&str], image: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let compose = format!(
            "services:\n\
             \x20 sleeper:\n\
             \x20   image: {image}\n\
             \x20   command: [\"sh\", \"-c\", \"echo started; exec sleep 300\"]\n\
             \x20   volumes:\n\
             \x20     - data:/data\n\
             volumes:\n\
             \x20 data: {{}}\n"
        );
        std::fs::write(dir.path().join(compose::COMPOSE_FILE), compose).unwrap();
        Self {
            dir,
            name: unique("movim-adapters"),
            command: command.iter().map(|&s| s.to_owned()).collect(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn containers(&self, all: bool) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let mut args = vec![
            "ps",
            "--filter",
            &filter,
            "--format",
            "{{.Label \"com.docker.compose.service\"}}",
        ];
        if all {
            args.push("-a");
        }
        docker(&args).lines().map(str::to_owned).collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let file = self.dir.path().join(compose::COMPOSE_FILE);
        let _ = Command::new(&self.command[0])
            .args(&self.command[1..])
            .arg("-f")
            .arg(&file)
            .args(["-p", &self.name, "down", "-v", "--remove-orphans"])
            .output();
    }
}

/// The whole life of a small project through one tool.
async fn drive(command: &[&str], expected: Flavor, expected_version: &str) {
    let w = world::World::get();
    let image = w.library_image("debian:bookworm");
    // What the real tool does before `up`: pull. `up` itself is told never to.
    docker(&["pull", "-q", &image]);
    let project = Project::new(command, &image);

    let tool = compose::detect(Some(&command.join(" ")), false)
        .await
        .unwrap();
    assert_eq!(tool.flavor(), expected);
    assert_eq!(tool.version(), expected_version);
    assert_eq!(tool.display_command(), command.join(" "));

    let config = tool.config(project.dir(), &project.name).await.unwrap();
    assert!(
        config.contains("sleeper") && config.contains(&image),
        "{config}"
    );

    tool.up(project.dir(), &project.name, &["sleeper"])
        .await
        .unwrap();
    assert_eq!(project.containers(false), ["sleeper"]);

    let (code, output) = tool
        .run_oneshot(
            project.dir(),
            &project.name,
            "sleeper",
            Some("sh"),
            &["-c", "echo hi; exit 3"],
        )
        .await
        .unwrap();
    assert_eq!(code, 3, "{output}");
    assert!(output.lines().any(|l| l.trim() == "hi"), "{output}");

    let mut logs = String::new();
    for _ in 0..20 {
        logs = tool
            .logs(project.dir(), &project.name, "sleeper", 10)
            .await
            .unwrap();
        if logs.contains("started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(logs.contains("started"), "{logs}");

    tool.stop(project.dir(), &project.name, &["sleeper"])
        .await
        .unwrap();
    assert!(project.containers(false).is_empty());
    assert_eq!(project.containers(true), ["sleeper"]);

    tool.down(project.dir(), &project.name).await.unwrap();
    assert!(project.containers(true).is_empty());
    // `down` never removes volumes: the database lives in one.
    docker(&["volume", "inspect", &format!("{}_data", project.name)]);

    // A failure quotes the command line and the tool's own message. (Another directory: the
    // guard's `down -v` needs the valid file.)
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join(compose::COMPOSE_FILE),
        "services: [not, a, map]\n",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        tool.config(broken.path(), &project.name).await.unwrap_err()
    );
    assert!(
        err.contains(&format!("-p {} ", project.name)) && err.contains("config"),
        "{err}"
    );
    assert!(
        err.lines().count() > 1,
        "the tool's message follows the command line: {err}"
    );
}

/// The version the tool prints itself, checked independently of our parser.
fn reported_version(program: &Path) -> String {
    let out = Command::new(program).arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or_else(|| panic!("no version in {text}"));
    word.trim_start_matches('v')
        .trim_end_matches(',')
        .to_owned()
}

#[tokio::test]
async fn compose_v2_as_a_docker_plugin() {
    let w = world::World::get();
    let version = reported_version(&w.compose_v2);
    drive(&["docker", "compose"], Flavor::DockerPlugin, &version).await;

    // The same binary run standalone is Compose v2 as `docker-compose`.
    let path = w.compose_v2.to_string_lossy();
    let tool = compose::detect(Some(&path), false).await.unwrap();
    assert_eq!(tool.flavor(), Flavor::Standalone2);
    assert_eq!(tool.version(), version);
}

#[tokio::test]
async fn compose_v1_standalone() {
    let w = world::World::get();
    let version = reported_version(&w.compose_v1);
    assert!(version.starts_with("1."), "{version}");
    let path = w.compose_v1.to_string_lossy().into_owned();
    drive(&[&path], Flavor::Standalone1, &version).await;
}

#[tokio::test]
async fn a_missing_compose_tool_is_a_clear_error() {
    let err = compose::detect(Some("/nonexistent/bin/docker-compose"), false)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("/nonexistent/bin/docker-compose") && err.contains("not found"),
        "{err}"
    );
}

/// A dump that cannot be restored in full: a table owned by a role that is gone by the time of the
/// restore (pg_restore stops at `ALTER TABLE … OWNER TO ghost`, after recreating other tables).
/// Returns the dump and leaves the database with one row more than the dump holds.
async fn an_unrestorable_dump(
    engine: &movim_setup::adapters::engine::Engine,
    source: &movim_setup::adapters::backup::Source,
    conn: &mut sqlx::PgConnection,
    dir: &Path,
) -> movim_setup::core::lockfile::BackupRef {
    use movim_setup::adapters::backup;
    sqlx::raw_sql(
        "create table precious (note text); insert into precious values ('before'); \
         create role ghost; create table haunted (id int); alter table haunted owner to ghost;",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let dump = backup::dump(engine, source, dir, "v0.0.1").await.unwrap();
    sqlx::raw_sql(
        "drop table haunted; drop role ghost; insert into precious values ('written since');",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    dump
}

async fn notes(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("select note from precious order by note")
        .fetch_all(conn)
        .await
        .unwrap()
}

/// A restore that fails half-way leaves the database as it was, for the bundled database (its
/// container's own pg_restore into a database that takes its place only on success) and for an
/// external one (one transaction through a one-shot container, rolled back).
#[tokio::test]
async fn a_restore_that_fails_half_way_leaves_the_database_as_it_was() {
    use movim_setup::adapters::backup::{self, Source};
    use movim_setup::adapters::engine::{Engine, EngineKind};
    let w = world::World::get();
    let image = w.library_image("postgres:15");
    let engine = Engine::connect(Some(EngineKind::Docker)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // Bundled: pg_restore inside the database's own container.
    let pg = Postgres::start(&image);
    let mut conn = pg.ready().await;
    let bundled = Source::Container {
        id: pg.name.clone(),
        user: "movim_owner".into(),
        database: "movim_test".into(),
    };
    let dump = an_unrestorable_dump(&engine, &bundled, &mut conn, tmp.path()).await;
    drop(conn);
    let err = backup::restore(&engine, &bundled, tmp.path(), &dump)
        .await
        .expect_err("the role is gone");
    assert!(format!("{err:#}").contains("ghost"), "{err:#}");
    let mut conn = pg.ready().await;
    assert_eq!(notes(&mut conn).await, ["before", "written since"]);
    drop(conn);

    // External: the same through a one-shot container of the tool image, on the host network.
    let pg = Postgres::start(&image);
    let mut conn = pg.ready().await;
    let external = Source::OneShot {
        cli: "docker".into(),
        image: image.clone(),
        target: pg.target(PASSWORD),
    };
    let dir = tmp.path().join("external");
    let dump = an_unrestorable_dump(&engine, &external, &mut conn, &dir).await;
    let err = backup::restore(&engine, &external, &dir, &dump)
        .await
        .expect_err("the role is gone");
    assert!(format!("{err:#}").contains("ghost"), "{err:#}");
    assert_eq!(notes(&mut conn).await, ["before", "written since"]);

    // A dump that can be restored still is: the ghost's table left out, the rows as dumped.
    sqlx::raw_sql("drop table precious; create table precious (note text); insert into precious values ('dumped')")
        .execute(&mut conn)
        .await
        .unwrap();
    let good = backup::dump(&engine, &external, &dir, "v0.0.2")
        .await
        .unwrap();
    sqlx::raw_sql("insert into precious values ('lost on purpose')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    backup::restore(&engine, &external, &dir, &good)
        .await
        .unwrap();
    let mut conn = pg.ready().await;
    assert_eq!(notes(&mut conn).await, ["dumped"]);
}
