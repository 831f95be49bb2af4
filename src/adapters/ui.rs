//! The terminal: prompts behind the core's [`Prompter`] trait (dialoguer on a terminal; the
//! core's `Defaults` answer with `--yes`), progress as indicatif bars on a terminal and plain ordered lines
//! otherwise, and the one place failures are printed. `NO_COLOR` is honoured.

use crate::adapters::engine::{BuildProgress, PullProgress};
use crate::adapters::env;
use crate::core::answers::{Defaults, NoTerminal, Prompter, Question};
use crate::error::Failure;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

/// The prompter for this run: the terminal when there is one and `--yes` was not given, else
/// the defaults.
#[must_use]
pub fn prompter(yes: bool) -> Box<dyn Prompter> {
    if yes {
        Box::new(Defaults)
    } else if !env::stdin_is_terminal() {
        Box::new(NoTerminal)
    } else {
        Box::new(Terminal)
    }
}

/// Interactive prompts on the terminal.
#[derive(Debug, Default)]
pub struct Terminal;

fn prompt_failed(q: &Question, e: dialoguer::Error) -> Failure {
    interrupted(&e).unwrap_or_else(|| {
        Failure::usage(format!("could not ask `{}`", q.key))
            .because(e)
            .next(format!("movim-setup init --yes {} VALUE", q.flag))
    })
}

/// Ctrl-C in a prompt: dialoguer reads keys in raw mode, so the terminal sends no SIGINT but the
/// prompt fails as interrupted, its cursor still hidden. Shown again, and the command ends as
/// SIGINT would end it (exit 130), nothing changed.
fn interrupted(e: &dialoguer::Error) -> Option<Failure> {
    crate::adapters::signals::restore_terminal();
    let dialoguer::Error::IO(io) = e;
    (io.kind() == std::io::ErrorKind::Interrupted).then(|| {
        crate::adapters::signals::Signal::Interrupt
            .failure("interrupted at the prompt (Ctrl-C)")
            .detail("nothing was stopped or changed")
    })
}

/// A line on stderr. Never panics (unlike `eprintln!`): once an SSH connection drops, the
/// terminal is gone and writing to it fails, and the run must go on.
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

impl Prompter for Terminal {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure> {
        let mut input = dialoguer::Input::<String>::new().with_prompt(q.prompt);
        if let Some(d) = default {
            input = input.default(d.to_owned());
        }
        input.interact_text().map_err(|e| prompt_failed(q, e))
    }
    fn text_checked(
        &self,
        q: &Question,
        default: Option<&str>,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, Failure> {
        // dialoguer prints the refusal under the prompt and asks again until `check` agrees.
        let mut input = dialoguer::Input::<String>::new()
            .with_prompt(q.prompt)
            .validate_with(|v: &String| check(v));
        if let Some(d) = default {
            input = input.default(d.to_owned());
        }
        input.interact_text().map_err(|e| prompt_failed(q, e))
    }
    fn select(&self, q: &Question, choices: &[&str], default: usize) -> Result<usize, Failure> {
        dialoguer::Select::new()
            .with_prompt(q.prompt)
            .items(choices.iter().copied())
            .default(default)
            .interact()
            .map_err(|e| prompt_failed(q, e))
    }
    fn password(&self, q: &Question) -> Result<String, Failure> {
        dialoguer::Password::new()
            .with_prompt(q.prompt)
            .interact()
            .map_err(|e| prompt_failed(q, e))
    }
    fn interactive(&self) -> bool {
        true
    }
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Failure> {
        dialoguer::Confirm::new()
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(|e| {
                interrupted(&e).unwrap_or_else(|| {
                    Failure::usage("could not ask for confirmation")
                        .because(e)
                        .next("pass --yes")
                })
            })
    }
}

/// How the tool talks to the user: bars and colour on a terminal, plain lines elsewhere.
#[derive(Debug)]
pub struct Ui {
    fancy: bool,
}

impl Ui {
    #[must_use]
    pub fn new() -> Self {
        let fancy = env::stderr_is_fancy();
        Self { fancy }
    }

    #[must_use]
    pub fn is_fancy(&self) -> bool {
        self.fancy
    }

    /// One step of a command, as an ordered line on stderr.
    pub fn step(&self, message: &str) {
        if self.fancy {
            say(&format!("\x1b[1m==>\x1b[0m {message}"));
        } else {
            say(&format!("==> {message}"));
        }
    }

    pub fn info(&self, message: &str) {
        say(&format!("    {message}"));
    }

    pub fn warn(&self, message: &str) {
        if self.fancy {
            say(&format!("\x1b[33mwarning:\x1b[0m {message}"));
        } else {
            say(&format!("warning: {message}"));
        }
    }

    /// A pull progress reporter: one bar per image on a terminal, a line per image otherwise.
    #[must_use]
    pub fn pull_progress(&self) -> Box<dyn PullProgress> {
        if self.fancy {
            Box::new(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            })
        } else {
            Box::new(Lines)
        }
    }

    /// A build and push progress reporter: a spinner per image with its latest line on a
    /// terminal, the builder's steps as lines otherwise.
    #[must_use]
    pub fn build_progress(&self) -> Box<dyn BuildProgress> {
        if self.fancy {
            Box::new(Spinners {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            })
        } else {
            Box::new(Steps)
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

/// One image's bar and its layers' (current, total) bytes.
type ImageBar = (ProgressBar, HashMap<String, (u64, u64)>);

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ImageBar>>,
}

impl PullProgress for Bars {
    fn update(
        &self,
        image: &str,
        layer: &str,
        _status: &str,
        current: Option<u64>,
        total: Option<u64>,
    ) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let (bar, layers) = bars.entry(image.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            if let Ok(style) =
                ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes}/{total_bytes}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(image.rsplit('/').next().unwrap_or(image).to_owned());
            (bar, HashMap::new())
        });
        if let (Some(c), Some(t)) = (current, total) {
            layers.insert(layer.to_owned(), (c, t));
            bar.set_length(layers.values().map(|v| v.1).sum());
            bar.set_position(layers.values().map(|v| v.0).sum());
        }
    }

    fn done(&self, image: &str) {
        if let Ok(bars) = self.bars.lock()
            && let Some((bar, _)) = bars.get(image)
        {
            bar.finish();
        }
    }
}

struct Lines;

impl PullProgress for Lines {
    fn update(
        &self,
        _image: &str,
        _layer: &str,
        _status: &str,
        _current: Option<u64>,
        _total: Option<u64>,
    ) {
    }

    fn done(&self, image: &str) {
        say(&format!("    pulled {image}"));
    }
}

struct Spinners {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Spinners {
    fn bar(&self, image: &str, f: impl FnOnce(&ProgressBar)) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(image.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:30!} {wide_msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(image.rsplit('/').next().unwrap_or(image).to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        f(bar);
    }
}

impl BuildProgress for Spinners {
    fn line(&self, image: &str, line: &str) {
        self.bar(image, |bar| bar.set_message(line.trim().to_owned()));
    }

    fn done(&self, image: &str, summary: &str) {
        self.bar(image, |bar| bar.finish_with_message(summary.to_owned()));
    }
}

/// Plain output: the builder's step lines and each image's end.
struct Steps;

impl BuildProgress for Steps {
    fn line(&self, image: &str, line: &str) {
        // Docker's classic builder says `Step 3/19 : …`, Podman's `[2/5] STEP 3/4: …`.
        if line.starts_with("Step ") || line.contains("STEP ") {
            say(&format!("    {image}: {line}"));
        }
    }

    fn done(&self, image: &str, summary: &str) {
        say(&format!("    {image}: {summary}"));
    }
}

/// Prints a failure: what failed, why, details, and the next command(s).
pub fn report_failure(f: &Failure) {
    say(&format!("error: {}", f.what));
    if let Some(cause) = &f.cause {
        for line in format!("{cause:#}").lines() {
            say(&format!("  cause: {line}"));
        }
    }
    for d in &f.details {
        say(&format!("  {d}"));
    }
    for n in &f.next {
        say(&format!("  next: {n}"));
    }
}
