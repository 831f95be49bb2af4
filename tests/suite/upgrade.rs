//! `movim-setup upgrade` and `rollback` against the real test world: every upgrade
//! ends healthy, on the new release or back on the old one, with every row kept. Rows are written
//! through the stand-in (`setAdmin`, `config`) and with psql, and compared with
//! `db::table_checksums` (all tables but `sessions`, which the daemon empties on every start).
//!
//! A stack takes ~20 s to come up on a 2-core machine, so each test brings ONE stack up and walks
//! it through several scenarios in turn, checking after each that it is healthy and intact.

use crate::support::cli;
use crate::support::web;
use crate::support::world;

use cli::{Project, Run, Setup, free_port, tree};
use movim_setup::adapters::db::{self, DbTarget};
use movim_setup::core::secret::Secret;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BASE: &str = "v0.29.2";
const NEXT: &str = "v0.30.0";
/// The newest release the world holds, with v0.33+'s start-up (log and image directories).
const NEWEST: &str = "v0.34.1";
const CHECKPOINTS: [&str; 6] = [
    "after-prepull",
    "after-stop",
    "after-backup",
    "after-write",
    "after-migrate",
    "after-start",
];

/// One deployment of the world's stand-in, brought up by `init` exactly as `tests/init.rs` does.
struct Stack {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    project: Project,
    port: u16,
}

impl Stack {
    fn up(prefix: &str) -> Stack {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("movim");
        let project = Project::new(prefix);
        let port = free_port();
        cli::init_world(&dir, &project, port, &[("--release", BASE)])
            .run()
            .success();
        Stack {
            _tmp: tmp,
            dir,
            project,
            port,
        }
    }

    /// `movim-setup <verb> --yes`: without a terminal, upgrade and rollback need it to go on.
    fn cmd(&self, verb: &str) -> Setup {
        Setup::new(verb, &self.dir).arg("--yes")
    }

    fn upgrade(&self, to: &str) -> Setup {
        self.cmd("upgrade").args(["--to", to])
    }

    fn container(&self, service: &str) -> String {
        let out = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        let id = out.lines().next().unwrap_or_default().trim().to_owned();
        assert!(!id.is_empty(), "no running {service} container");
        id
    }

    fn psql(&self, sql: &str) -> String {
        docker(&[
            "exec",
            &self.container("postgres"),
            "psql",
            "-U",
            "movim",
            "-d",
            "movim",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
    }

    /// Rows a user would have: an admin and pod settings set through Movim's own console, and a
    /// user with messages and a session written with psql.
    fn write_rows(&self, tag: &str) {
        let daemon = self.container("daemon");
        docker(&[
            "exec",
            &daemon,
            "php",
            "daemon.php",
            "setAdmin",
            &format!("admin-{tag}@example.test"),
        ]);
        docker(&[
            "exec",
            &daemon,
            "php",
            "daemon.php",
            "config",
            &format!("--description=pod at {tag}"),
        ]);
        self.psql(&format!(
            "insert into users (id, nickname) values ('u-{tag}@example.test', 'nick {tag}');\
             insert into messages (user_id, jidfrom, jidto, body)\
               select 'u-{tag}@example.test', 'u-{tag}@example.test', 'friend@example.test', 'message ' || g || ' ''quoted'' é'\
               from generate_series(1, 300) g;\
             insert into sessions (id, user_id) values ('s-{tag}', 'u-{tag}@example.test');"
        ));
    }

    fn tables(&self) -> Vec<String> {
        self.psql(
            "select tablename from pg_tables where schemaname = 'public' and tablename <> 'sessions' order by 1",
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn target(&self) -> DbTarget {
        let ip = docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            &self.container("postgres"),
        ]);
        let env = std::fs::read_to_string(self.dir.join("movim.env")).expect("movim.env");
        let env = movim_setup::core::envfile::parse(&env).expect("movim.env parses");
        DbTarget {
            host: ip
                .split_whitespace()
                .next()
                .expect("postgres ip")
                .to_owned(),
            port: 5432,
            name: "movim".into(),
            user: "movim".into(),
            password: Secret::new(env["DB_PASSWORD"].clone()),
            container: None,
        }
    }

    /// Row count and md5 of every row of every table but `sessions`.
    fn checksums(&self) -> BTreeMap<String, (i64, String)> {
        let tables = self.tables();
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        let target = self.target();
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async {
                let mut conn = db::connect(&target, Duration::from_secs(10))
                    .await
                    .expect("connect to postgres");
                db::table_checksums(&mut conn, &names)
                    .await
                    .expect("checksums")
            })
    }

    /// The same, over the columns each table has in `before`'s schema (an upgrade may add some).
    fn checksums_over(&self, columns: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
        columns
            .iter()
            .map(|(table, cols)| {
                let row = cols
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sum = self.psql(&format!(
                    "select count(*) || ' ' || md5(coalesce(string_agg(r, '|' order by r), '')) \
                     from (select row({row})::text as r from \"{table}\") s"
                ));
                (table.clone(), sum)
            })
            .collect()
    }

    fn columns(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in self
            .psql(
                "select table_name || ' ' || column_name from information_schema.columns \
                 where table_schema = 'public' and table_name not in ('sessions', 'phinxlog') \
                 order by table_name, ordinal_position",
            )
            .lines()
        {
            let (t, c) = line.split_once(' ').expect("table column");
            out.entry(t.to_owned()).or_default().push(c.to_owned());
        }
        out
    }

    fn phinxlog(&self) -> Vec<String> {
        self.psql("select version from phinxlog order by version")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn lock(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("movim-setup.lock")).expect("lock");
        yaml_serde::from_str(&text).expect("lock is YAML")
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_default()
    }

    /// Id, state, start time and restarts of every container of the project.
    fn containers(&self) -> Vec<String> {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project.name),
        ]);
        let mut out: Vec<String> = ids
            .split_whitespace()
            .map(|id| {
                docker(&[
                    "inspect",
                    "-f",
                    "{{.Name}} {{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}",
                    id,
                ])
                .trim()
                .to_owned()
            })
            .collect();
        out.sort();
        out
    }

    /// The proof, re-done by the test itself: a 101 through web and the version in `/infos`.
    fn assert_healthy_on(&self, version: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = web::try_handshake(self.port, "https://movim.test");
            let infos = web::infos_version(self.port);
            if status.as_ref().is_ok_and(web::Ws::trusted) && infos.as_deref() == Some(version) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not healthy on {version}: handshake {status:?}, /infos version {infos:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn assert_no_journal(&self) {
        assert!(!self.dir.join("upgrade.journal").exists(), "journal left");
        assert!(
            !self.dir.join("movim-setup.run-lock").exists(),
            "run lock left"
        );
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn killed(run: &Run) -> bool {
    run.output.status.signal() == Some(9)
}

/// The plan printout without what differs between runs (project, digests, sizes).
fn redact(plan: &str, project: &str) -> String {
    let mut out = String::new();
    for line in plan.replace(project, "<project>").lines() {
        if line.starts_with("database: ") {
            out.push_str("database: <size>; backup needs up to <size>, <size> free\n");
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("sha256:") {
            out.push_str(&rest[..i + 7]);
            out.push_str("<digest>");
            let after = &rest[i + 7..];
            let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
            rest = &after[hex..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// Unmounts the tmpfs a test put on `backups/`, however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn upgrades_keep_every_row_and_every_faulty_release_rolls_back() {
    let s = Stack::up("up");
    s.write_rows("base");
    let before = s.checksums();
    let lock_before = s.file("movim-setup.lock");
    let compose_before = s.file("compose.yaml");
    let answers_before = s.file("movim-setup.yaml");
    assert!(before["messages"].0 >= 300, "{before:?}");

    // --dry-run prints the plan and changes nothing: files, containers, database.
    let (files, containers) = (tree(&s.dir), s.containers());
    let dry = s.upgrade(NEXT).arg("--dry-run").run().success();
    assert_eq!(tree(&s.dir), files, "--dry-run changed the directory");
    assert_eq!(s.containers(), containers, "--dry-run touched containers");
    assert_eq!(s.checksums(), before);
    insta::assert_snapshot!("dry_run_plan", redact(&dry.stdout(), &s.project.name));
    // Without --to: the newest plain release the repository lists (v0.34.1; the world's
    // faulty builds carry suffixes and are never picked by themselves), the same plan.
    let newest = s.cmd("upgrade").arg("--dry-run").run().success();
    let said = format!(
        "the newest release in {} is {NEWEST}",
        world::World::get().movim_repository()
    );
    assert!(newest.stderr().contains(&said), "{}", newest.stderr());
    let to_newest = s.upgrade(NEWEST).arg("--dry-run").run().success();
    // The same plan, but for the free space, which other processes change meanwhile.
    let same = |plan: &str| {
        plan.lines()
            .filter(|l| !l.starts_with("database: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(same(&newest.stdout()), same(&to_newest.stdout()));
    assert_eq!(tree(&s.dir), files, "--dry-run changed the directory");

    // Older than the current release: that is `rollback`, refused as bad usage.
    s.upgrade("v0.28.0")
        .run()
        .code(2)
        .stderr_has("going back is `rollback`");

    // Disk full where backups/ lives: refused before anything is stopped.
    let backups = s.dir.join("backups");
    std::fs::create_dir_all(&backups).expect("backups dir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&backups)
        .status()
        .expect("mount runs");
    assert!(status.success(), "mount a 1 MiB tmpfs on backups/");
    let mount = Mount(backups.clone());
    let containers = s.containers();
    s.upgrade(NEXT)
        .run()
        .code(1)
        .stderr_has("the backup needs up to")
        .stderr_has("nothing was stopped or changed");
    assert_eq!(
        s.containers(),
        containers,
        "a refused upgrade touched containers"
    );
    assert_eq!(s.file("movim-setup.lock"), lock_before);
    drop(mount);
    s.assert_no_journal();

    // Another run holds the lock (a live pid in the run-lock file): refused, nothing changed.
    let mut holder = Command::new("sleep").arg("120").spawn().expect("sleep");
    std::fs::write(
        s.dir.join("movim-setup.run-lock"),
        format!("pid {}\nstarted now\ncommand upgrade\n", holder.id()),
    )
    .expect("write run lock");
    s.upgrade(NEXT)
        .run()
        .code(1)
        .stderr_has("another movim-setup run holds")
        .stderr_has(&format!("pid {}", holder.id()));
    let _ = holder.kill();
    let _ = holder.wait();
    std::fs::remove_file(s.dir.join("movim-setup.run-lock")).expect("remove run lock");

    // Each faulty release ends back on v0.29.2, healthy, with the same files and rows.
    for (tag, failed_at, says) in [
        (
            "v0.30.1-daemon-exits",
            "failed at step `start`",
            "last log lines of daemon",
        ),
        (
            "v0.30.2-migration-fails",
            "failed at step `migrate`",
            "AddRetractedToMessagesTable",
        ),
        (
            "v0.30.3-never-healthy",
            "failed at step `prove`",
            "last log lines of daemon",
        ),
    ] {
        let started = Instant::now();
        s.upgrade(tag)
            .run()
            .code(1)
            .stderr_has(failed_at)
            .stderr_has(says)
            .stderr_has("rolled back: Movim v0.29.2 runs again and is healthy");
        eprintln!("{tag}: failed and rolled back in {:?}", started.elapsed());
        s.assert_healthy_on("v0.29.2");
        s.assert_no_journal();
        assert_eq!(
            s.file("movim-setup.lock"),
            lock_before,
            "{tag}: lock not put back"
        );
        assert_eq!(
            s.file("compose.yaml"),
            compose_before,
            "{tag}: compose not put back"
        );
        assert_eq!(s.file("movim-setup.yaml"), answers_before, "{tag}");
        assert_eq!(s.checksums(), before, "{tag}: the database differs");
    }

    // Two upgrades at once: the second refuses while the first runs, and the first succeeds.
    let columns = s.columns();
    let old_rows = s.checksums_over(&columns);
    let phinx_before = s.phinxlog();
    let mut first = Command::new(env!("CARGO_BIN_EXE_movim-setup"))
        .args(["upgrade", "--yes", "--to", NEXT, "--dir"])
        .arg(&s.dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("first upgrade starts");
    let lock_file = s.dir.join("movim-setup.run-lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&lock_file)
        .is_ok_and(|t| t.contains(&format!("pid {}", first.id())))
    {
        assert!(
            Instant::now() < deadline,
            "the first upgrade never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.upgrade(NEXT)
        .run()
        .code(1)
        .stderr_has("another movim-setup run holds")
        .stderr_has(&format!("pid {}", first.id()));
    let mut first_err = String::new();
    first
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut first_err)
        .expect("read stderr");
    let status = first.wait().expect("first upgrade ends");
    assert!(status.success(), "the first upgrade failed:\n{first_err}");

    // v0.29.2 -> v0.30.0: healthy on 0.30.0, every row kept, one more applied migration.
    s.assert_healthy_on("v0.30.0");
    s.assert_no_journal();
    assert_eq!(s.checksums_over(&columns), old_rows, "rows lost or changed");
    let phinx_after = s.phinxlog();
    assert_eq!(phinx_after.len(), phinx_before.len() + 1);
    assert!(phinx_before.iter().all(|v| phinx_after.contains(v)));
    let lock = s.lock();
    assert_eq!(lock["movim"], NEXT);
    let last = &lock["history"][1];
    assert_eq!(last["outcome"], "upgraded");
    let dump = last["backup"]["file"].as_str().expect("backup recorded");
    let (bytes, sha) = (
        last["backup"]["bytes"].as_u64().expect("bytes"),
        last["backup"]["sha256"].as_str().expect("sha256"),
    );
    let content = std::fs::read(s.dir.join(dump)).expect("the dump exists");
    assert_eq!(content.len() as u64, bytes);
    assert!(content.starts_with(b"PGDMP"), "a pg_dump custom archive");
    use sha2::Digest as _;
    assert_eq!(hex::encode(sha2::Sha256::digest(&content)), sha);
    assert!(
        s.dir.join("backups/files").is_dir(),
        "the previous compose and lock are kept"
    );

    // rollback by hand: back on v0.29.2 with the database as it was before the upgrade.
    s.write_rows("next");
    s.cmd("rollback")
        .run()
        .success()
        .stderr_has("rolled back from v0.30.0");
    s.assert_healthy_on("v0.29.2");
    s.assert_no_journal();
    assert_eq!(
        s.checksums(),
        before,
        "rollback did not restore the database"
    );
    assert_eq!(s.lock()["history"][2]["outcome"], "rolled-back");
    assert_eq!(s.file("compose.yaml"), compose_before);
}

/// Kills the process at every checkpoint of an upgrade and recovers with `rollback` and with
/// `upgrade --resume` (and at every checkpoint of a rollback by hand, recovered by `rollback`).
/// Real releases can have two-part tags (`v0.30`, which `/infos` reports as `v0.30`), and from
/// v0.33 the daemon creates its log and image directories at start and stops without a writable
/// log: init on v0.30, then an upgrade to v0.34.1, each proven as a browser would, doctor clean.
#[test]
fn a_two_part_release_upgrades_to_the_newest_and_both_are_healthy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("two");
    let port = free_port();
    cli::init_world(&dir, &project, port, &[("--release", "v0.30")])
        .run()
        .success();
    let s = Stack {
        _tmp: tmp,
        dir,
        project,
        port,
    };
    s.assert_healthy_on("v0.30");
    s.write_rows("two");
    let columns = s.columns();
    let before = s.checksums_over(&columns);
    s.upgrade(NEWEST).run().success();
    s.assert_healthy_on(NEWEST);
    assert_eq!(s.checksums_over(&columns), before, "rows lost or changed");
    s.cmd("doctor").run().success();
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn a_kill_at_any_checkpoint_is_recovered_by_resume_or_rollback() {
    cli::require_test_hooks();
    let s = Stack::up("crash");
    s.write_rows("base");
    let before = s.checksums();
    let columns = s.columns();
    let old_rows = s.checksums_over(&columns);
    let mut table: Vec<(String, String, String)> = Vec::new();
    let crash = |setup: Setup, at: &str| {
        let run = setup.env("MOVIM_SETUP_CRASH_AT", at).run();
        assert!(
            killed(&run),
            "expected a SIGKILL at {at}, got {:?}:\n{}",
            run.output.status,
            run.stderr()
        );
        assert!(
            s.dir.join("upgrade.journal").exists(),
            "no journal after a kill at {at}"
        );
        // A plain upgrade now refuses, naming both ways out.
        s.upgrade(NEXT)
            .run()
            .code(1)
            .stderr_has("upgrade --resume")
            .stderr_has("movim-setup rollback");
    };
    // A kill right after the pre-pull changes nothing (the journal then stands for no interrupted
    // upgrade): a_rollback_after_a_crash_past_start_keeps_the_rows_written_since_in_a_named_dump.
    for at in CHECKPOINTS.into_iter().filter(|at| *at != "after-prepull") {
        // Killed upgrade, undone by `rollback`.
        crash(s.upgrade(NEXT), at);
        let t = Instant::now();
        s.cmd("rollback").run().success();
        s.assert_healthy_on("v0.29.2");
        s.assert_no_journal();
        assert_eq!(
            s.checksums(),
            before,
            "{at} + rollback: the database differs"
        );
        table.push((
            format!("upgrade killed {at}"),
            "rollback".into(),
            format!("healthy on 0.29.2, rows equal ({:.0?})", t.elapsed()),
        ));

        // Killed upgrade, finished by `upgrade --resume`.
        crash(s.upgrade(NEXT), at);
        let t = Instant::now();
        s.cmd("upgrade").arg("--resume").run().success();
        s.assert_healthy_on("v0.30.0");
        s.assert_no_journal();
        assert_eq!(
            s.checksums_over(&columns),
            old_rows,
            "{at} + resume: rows differ"
        );
        table.push((
            format!("upgrade killed {at}"),
            "upgrade --resume".into(),
            format!("healthy on 0.30.0, rows kept ({:.0?})", t.elapsed()),
        ));

        // Back to v0.29.2 by a rollback by hand that is itself killed, then finished by `rollback`
        // (a rollback restores where an upgrade migrates).
        let at = if at == "after-migrate" {
            "after-restore"
        } else {
            at
        };
        let run = s.cmd("rollback").env("MOVIM_SETUP_CRASH_AT", at).run();
        assert!(
            killed(&run),
            "rollback not killed at {at}: {}",
            run.stderr()
        );
        let t = Instant::now();
        s.cmd("rollback").run().success();
        s.assert_healthy_on("v0.29.2");
        s.assert_no_journal();
        assert_eq!(
            s.checksums(),
            before,
            "{at}: rollback killed and finished: rows differ"
        );
        table.push((
            format!("rollback killed {at}"),
            "rollback".into(),
            format!("healthy on 0.29.2, rows equal ({:.0?})", t.elapsed()),
        ));
    }
    eprintln!("\n{:<36} {:<18} outcome", "step", "recovery");
    for (step, recovery, outcome) in &table {
        eprintln!("{step:<36} {recovery:<18} {outcome}");
    }
    // Retention: after all these runs, at most 3 dumps besides those the history needs.
    let dumps = std::fs::read_dir(s.dir.join("backups"))
        .expect("backups")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".dump"))
        .count();
    assert!(dumps <= 6, "{dumps} dumps kept");
}

/// What users write on a new release before a crash is not lost by the rollback that follows: a
/// kill right after the pre-pull left nothing to undo (rollback says so); a kill right after
/// `start` (v0.30.0 served, a user wrote a row), then `rollback`, restores v0.29.2's database only
/// after dumping the served one to a kept, named file, and the command it prints reads the row back.
#[test]
fn a_rollback_after_a_crash_past_start_keeps_the_rows_written_since_in_a_named_dump() {
    cli::require_test_hooks();
    let s = Stack::up("keep");
    s.write_rows("base");
    let before = s.checksums();

    let run = s
        .upgrade(NEXT)
        .env("MOVIM_SETUP_CRASH_AT", "after-prepull")
        .run();
    assert!(
        killed(&run),
        "not killed after the pre-pull: {}",
        run.stderr()
    );
    let undo = s.cmd("rollback").run().success();
    assert!(
        format!("{}{}", undo.stdout(), undo.stderr()).contains("nothing to undo"),
        "{}",
        undo.stderr()
    );
    s.assert_no_journal();

    let run = s
        .upgrade(NEXT)
        .env("MOVIM_SETUP_CRASH_AT", "after-start")
        .run();
    assert!(killed(&run), "not killed after start: {}", run.stderr());
    s.psql("insert into users (id, nickname) values ('late@example.test', 'written on v0.30.0')");
    let t = Instant::now();
    let back = s.cmd("rollback").run().success();
    eprintln!("rollback after a kill past start: {:.0?}", t.elapsed());
    s.assert_healthy_on(BASE);
    s.assert_no_journal();
    assert_eq!(s.checksums(), before, "the database of v0.29.2 is not back");

    let out = format!("{}{}", back.stdout(), back.stderr());
    assert!(out.contains("rows written on v0.30.0 since"), "{out}");
    let dump = out
        .split_whitespace()
        .find(|w| w.contains("/backups/db-") && w.ends_with("-v0.30.0.dump"))
        .unwrap_or_else(|| panic!("no kept dump named:\n{out}"));
    assert!(std::path::Path::new(dump).is_file(), "{dump} is not kept");
    let command = out
        .lines()
        .find_map(|l| l.split_once("to read them back into a database of their own: "))
        .map_or_else(
            || panic!("no command to read the rows back:\n{out}"),
            |(_, c)| c.trim().to_owned(),
        );
    let read_back = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh runs");
    assert!(
        read_back.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&read_back.stderr)
    );
    let row = docker(&[
        "exec",
        &s.container("postgres"),
        "psql",
        "-U",
        "movim",
        "-d",
        "movim_v0_30_0",
        "-Atc",
        "select nickname from users where id = 'late@example.test'",
    ]);
    assert_eq!(row.trim(), "written on v0.30.0");
}

/// An external PostgreSQL server the test starts (the world's `postgres:<major>`, published on the
/// host's address on Docker's default bridge), removed with its volume when dropped.
struct ExternalPostgres {
    name: String,
    host: String,
    port: u16,
}

impl ExternalPostgres {
    const USER: &'static str = "movimext";
    const PASSWORD: &'static str = "ext p$ss'word";

    fn start(major: &str) -> ExternalPostgres {
        let w = world::World::get();
        let ip = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "docker0"])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&ip.stdout);
        let host = text
            .split_whitespace()
            .nth(3)
            .and_then(|cidr| cidr.split('/').next())
            .unwrap_or_else(|| panic!("docker0 has no IPv4 address: {text}"))
            .to_owned();
        let port = free_port();
        let pg = ExternalPostgres {
            name: format!("movim-extdb{major}-{}", std::process::id()),
            host,
            port,
        };
        docker(&[
            "run",
            "-d",
            "--name",
            &pg.name,
            "-e",
            &format!("POSTGRES_USER={}", Self::USER),
            "-e",
            &format!("POSTGRES_PASSWORD={}", Self::PASSWORD),
            "-e",
            &format!("POSTGRES_DB={}", Self::USER),
            "-p",
            &format!("{}:{port}:5432", pg.host),
            &w.library_image(&format!("postgres:{major}")),
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Command::new("docker")
            .args([
                "exec",
                &pg.name,
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-U",
                Self::USER,
            ])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "the external postgres never became ready"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        pg
    }

    fn psql(&self, sql: &str) -> String {
        docker(&[
            "exec",
            &self.name,
            "psql",
            "-U",
            Self::USER,
            "-d",
            Self::USER,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
    }

    /// Row count and md5 of every row of every table but `sessions` (emptied by every start).
    fn checksums(&self) -> BTreeMap<String, String> {
        self.psql(
            "select tablename from pg_tables where schemaname = 'public' and tablename <> 'sessions' order by 1",
        )
        .lines()
        .map(|table| {
            let sum = self.psql(&format!(
                "select count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from \"{table}\" t"
            ));
            (table.to_owned(), sum)
        })
        .collect()
    }
}

impl Drop for ExternalPostgres {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

/// An external database on PostgreSQL 17, newer than the bundled 15: it is dumped and restored
/// with `pg_dump` 17 (`postgres:17` of the library repository), so a release whose migration fails
/// is rolled back with the database restored from its dump through the external restore path,
/// every row kept; a good release upgrades; and rolling back from it restores the dump again.
#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[test]
fn an_external_postgres_17_is_dumped_and_restored_with_its_own_pg_dump_across_upgrades() {
    let pg = ExternalPostgres::start("17");
    assert!(
        pg.psql("show server_version").starts_with("17."),
        "not PostgreSQL 17"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("movim");
    let project = Project::new("ext17");
    let port = free_port();
    let db_port = pg.port.to_string();
    let t = Instant::now();
    cli::init_world(
        &dir,
        &project,
        port,
        &[
            ("--release", BASE),
            ("--database", "external"),
            ("--db-host", &pg.host),
            ("--db-port", &db_port),
            ("--db-name", ExternalPostgres::USER),
            ("--db-user", ExternalPostgres::USER),
        ],
    )
    .env("MOVIM_DB_PASSWORD", ExternalPostgres::PASSWORD)
    .run()
    .success();
    eprintln!("init on an external PostgreSQL 17: {:.0?}", t.elapsed());
    let s = Stack {
        _tmp: tmp,
        dir,
        project,
        port,
    };
    s.assert_healthy_on(BASE);
    pg.psql(
        "insert into users (id, nickname) values ('ext@example.test', 'written on v0.29.2');\
         insert into messages (user_id, jidfrom, jidto, body)\
           select 'ext@example.test', 'ext@example.test', 'friend@example.test', 'message ' || g || ' ''quoted'' é'\
           from generate_series(1, 300) g;",
    );
    let before = pg.checksums();
    let lock_before = s.file("movim-setup.lock");
    let tool = world::World::get().library_image("postgres:17");

    // A migration that fails: back on v0.29.2 with the database restored from the dump pg_dump 17
    // took, through the external restore path.
    let t = Instant::now();
    let failed = s
        .upgrade("v0.30.2-migration-fails")
        .run()
        .code(1)
        .stderr_has(&format!("backed up with pg_dump from {tool}"))
        .stderr_has("failed at step `migrate`")
        .stderr_has("restoring the database of v0.29.2 from backups/db-")
        .stderr_has("rolled back: Movim v0.29.2 runs again and is healthy");
    eprintln!(
        "a failed migration rolled back on PostgreSQL 17: {:.0?}",
        t.elapsed()
    );
    assert!(!failed.stderr().contains("version mismatch"));
    s.assert_healthy_on(BASE);
    s.assert_no_journal();
    assert_eq!(s.file("movim-setup.lock"), lock_before, "lock not put back");
    assert_eq!(pg.checksums(), before, "the database was not restored");
    assert_eq!(
        pg.psql("select nickname from users where id = 'ext@example.test'"),
        "written on v0.29.2\n"
    );

    // A good release: upgraded, the row kept, the dump recorded with the tool that made it.
    let t = Instant::now();
    s.upgrade(NEXT).run().success();
    eprintln!("upgrade on PostgreSQL 17: {:.0?}", t.elapsed());
    s.assert_healthy_on("v0.30.0");
    s.assert_no_journal();
    assert_eq!(
        pg.psql("select count(*) from messages where user_id = 'ext@example.test'"),
        "300\n"
    );
    let lock = s.lock();
    let recorded = lock["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|r| r["backup"]["backup-tool"].as_str())
        .unwrap_or_default()
        .to_owned();
    let by_digest = format!(
        "{}@{}",
        tool.rsplit_once(':')
            .map_or(tool.as_str(), |(repo, _)| repo),
        world::World::get().digest(&tool)
    );
    assert_eq!(recorded, by_digest, "{lock}");

    // Back to v0.29.2, whose code does not read v0.30.0's migrations: its dump is restored.
    let t = Instant::now();
    s.cmd("rollback").run().success();
    eprintln!("rollback on PostgreSQL 17: {:.0?}", t.elapsed());
    s.assert_healthy_on(BASE);
    s.assert_no_journal();
    assert_eq!(
        pg.checksums(),
        before,
        "the database of v0.29.2 is not back"
    );
}
