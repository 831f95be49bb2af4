//! `movim-setup completions SHELL` and `movim-setup man OUT_DIR`: the command line described for
//! the shell and for `man`, generated from the same clap definition as `--help` (so they cannot
//! drift from it). `install.sh` installs both.

use crate::cli::{self, CompletionsArgs, ManArgs};
use crate::context::Context;
use crate::error::{ExitStatus, Failure, OrFail};
use std::io::Write as _;

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitStatus, Failure> {
    let mut command = cli::command();
    // Into memory first: clap_complete panics on a failed write, and `| head` is not a failure.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "movim-setup", &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = bash_hyphen_fix(&script);
    }
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new("cannot print the completion script").because(e))
        }
        _ => Ok(ExitStatus::Success),
    }
}

/// Writes `movim-setup.1` and a page per command (`movim-setup-init.1`, …) into `args.out_dir`.
pub fn man(ctx: &Context, args: &ManArgs) -> Result<ExitStatus, Failure> {
    let out = &args.out_dir;
    std::fs::create_dir_all(out).or_fail(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(cli::command(), out)
        .or_fail(|| format!("cannot write the man pages into {}", out.display()))?;
    ctx.ui
        .step(&format!("man pages written in {}", out.display()));
    Ok(ExitStatus::Success)
}

/// clap_complete's bash script names a subcommand's state `movim__setup__subcmd__init` where it
/// sets it and `movim__subcmd__setup__subcmd__init` where it matches it, for any program whose
/// name has a hyphen, so no subcommand's options ever complete
/// (<https://github.com/clap-rs/clap/issues/6421>): spell the matches as the state is set.
fn bash_hyphen_fix(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("movim__subcmd__setup", "movim__setup")
        .into_bytes()
}
