//! Doctor's checks, one file per area: each judges the [`Facts`] (read before, in
//! `doctor::facts`) and says what it found with its fix, touching nothing.

pub mod containers;
pub mod database;
pub mod drift;
pub mod engine;
pub mod env;
pub mod files;
pub mod host;
pub mod images;
pub mod mounts;
pub mod web;
pub mod worker;
pub mod xmpp;

use crate::core::containers::{ContainerInfo, container_of};
use crate::doctor::facts::Facts;
use crate::doctor::hints::Hints;
use crate::doctor::report::Report;

/// Every finding about the deployment, in the report's order.
#[must_use]
pub fn report(f: &Facts, tool_version: &str) -> Report {
    let s = &f.dir;
    let hints = Hints::new(
        s,
        f.compose
            .as_ref()
            .and_then(|c| c.as_ref().ok())
            .map(|c| &c.tool),
        f.engine.as_ref().ok().map(|e| e.endpoint.as_str()),
    );
    let mut report = Report::new(tool_version, s.dir.display().to_string());
    report.extend(engine::check_engine(f));
    report.extend(files::check_files(s));
    if let Some(stack) = &f.stack {
        report.extend(files::compose_config(
            s,
            f.compose.as_ref(),
            stack.config.as_ref(),
        ));
    }
    report.extend(env::check_env(s, f.env_meta, &hints));
    report.extend(images::check_images(s));
    report.extend(drift::check_drift(s, &f.expected, &f.on_disk));
    report.push(host::check_disk(&s.dir, &f.free_bytes));
    report.push(host::check_trust(&s.dir, f.untrusted.as_ref()));
    report.extend(host::check_upgrade(
        &s.dir,
        f.run_lock_holder,
        f.journal.as_ref(),
    ));
    match (&f.stack, &s.deployment) {
        (Some(stack), Ok(d)) => report.extend(stack_checks(f, stack, d, &hints)),
        _ => report.push(engine::skipped(f)),
    }
    report
}

fn stack_checks(
    f: &Facts,
    stack: &crate::doctor::facts::StackFacts,
    d: &crate::core::deployment::Deployment,
    hints: &Hints,
) -> Vec<crate::doctor::report::Finding> {
    let all = match &stack.containers {
        Ok(all) => all,
        Err(why) => return vec![containers::cannot_list(d, why, hints)],
    };
    let s = &f.dir;
    let mut out =
        containers::check_containers(all, d, s.lock(), hints, &stack.restarting, &stack.logs);
    let expected = mounts::expected_mounts(s, d);
    out.extend(mounts::check_mounts(
        all,
        s,
        expected.as_ref(),
        hints,
        &stack.writable,
    ));
    out.extend(database::check_database(
        d,
        hints,
        &stack.db,
        stack.phinx.as_ref(),
    ));
    out.extend(web::check_web(s, d, hints, &stack.web));
    out.extend(worker::check_worker(
        &s.path(s.env_file),
        hints,
        stack.worker_log.as_ref(),
    ));
    out.extend(worker::check_opcache(stack.opcache.as_ref()));
    out.extend(xmpp::check_xmpp(d, hints, stack.xmpp.as_ref(), f.now));
    out
}

/// The container PHP probes run in: the running daemon, else fpm (it carries the same tree).
#[must_use]
pub fn movim_container(all: &[ContainerInfo]) -> Option<&ContainerInfo> {
    ["daemon", "fpm"]
        .iter()
        .filter_map(|s| container_of(all, s))
        .find(|c| c.running)
}
