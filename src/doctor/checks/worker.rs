//! `movim.log`, `movim.errors`: what a session worker meets after a login, checked in its own
//! conditions (the daemon's explicit environment, no php.ini, `.env` read by itself): it can write
//! its log, and what Movim's error log says.

use crate::core::movim::{ERROR_LOG, worker_log};
use crate::doctor::facts::Outcome;
use crate::doctor::hints::Hints;
use crate::doctor::report::{Area, Finding};

/// OPcache for the daemon's PHP: Movim's daemon warns at every start when it is off ("Opcache is
/// disabled"), and its workers then load it by flag only where the image enables it.
pub fn check_opcache(opcache: Option<&Outcome>) -> Option<Finding> {
    match opcache? {
        Outcome::Ran(_, out) if out.trim() == "on" => Some(Finding::ok(
            Area::Containers,
            "movim.opcache",
            "OPcache is on for the daemon's PHP",
        )),
        Outcome::Ran(_, out) if out.trim() == "off" => Some(
            Finding::warn(
                Area::Containers,
                "movim.opcache",
                "OPcache is off for the daemon's PHP: Movim's daemon warns about it at every start, and runs slower",
            )
            .detail("it is the image's php.ini that enables it for PHP's command line (opcache.enable_cli=1); a deployment cannot change it without replacing that file")
            .hint("use images whose PHP has opcache.enable_cli=1 (movim-setup's own image recipe sets it)"),
        ),
        _ => None,
    }
}

/// The log probe's findings (`probe`: the container it ran in, its service, what it answered).
pub fn check_worker(
    env_path: &str,
    hints: &Hints,
    probe: Option<&(String, String, Outcome)>,
) -> Vec<Finding> {
    let Some((name, service, outcome)) = probe else {
        return vec![
            Finding::warn(
                Area::Containers,
                "movim.log",
                "cannot check where Movim's session workers log: neither daemon nor fpm is running",
            )
            .hint(format!("start the stack: {}", hints.start_stack())),
        ];
    };
    let output = match outcome {
        Outcome::Ran(_, output) => output,
        Outcome::Failed(e) => {
            return vec![
                Finding::warn(
                    Area::Containers,
                    "movim.log",
                    format!("cannot run the session worker's log check in {name}"),
                )
                .detail(e.clone()),
            ];
        }
        Outcome::TimedOut => {
            return vec![Finding::warn(
                Area::Containers,
                "movim.log",
                format!("the session worker's log check in {name} timed out"),
            )];
        }
    };
    let log = worker_log(output);
    let mut out = vec![match &log.problem {
        None => Finding::ok(
            Area::Containers,
            "movim.log",
            format!("a session worker can write its log in {}", log.dir),
        ),
        Some(why) => Finding::error(
            Area::Containers,
            "movim.log",
            format!(
                "Movim's session workers cannot write their log: {why}; each dies on its first \
                 logged error, right after a login, and its user is sent back to the login form"
            ),
        )
        .detail(
            "the daemon starts its workers with an environment of its own: they read LOG_PATH \
             only from movim.env, never from the container's environment",
        )
        .hint(format!(
            "set LOG_PATH=/var/www/movim/log/ in {env_path} (`movim-setup init` writes it, with \
             the log volume), then: {}",
            hints.restart("fpm daemon")
        )),
    }];
    if !log.last_errors.is_empty() {
        out.push(
            Finding::ok(
                Area::Containers,
                "movim.errors",
                format!(
                    "the last lines of Movim's {ERROR_LOG} (read in {service} {name}), for what \
                     failed there"
                ),
            )
            .details(log.last_errors.iter().map(|l| format!("  {l}"))),
        );
    }
    out
}
