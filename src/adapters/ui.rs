//! The terminal: prompts behind one [`Prompter`] trait (dialoguer on a terminal, defaults or a
//! clear error with `--yes`), progress as indicatif bars on a terminal and plain ordered lines
//! otherwise, and the one place failures are printed. `NO_COLOR` is honoured.

use crate::adapters::engine::PullProgress;
use crate::error::Failure;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

/// One question `init` asks, and where else its answer may come from.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub prompt: &'static str,
}

/// Asks the user; implemented by the terminal prompter and the non-interactive one.
pub trait Prompter {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure>;
    fn select(&self, q: &Question, choices: &[&str], default: usize) -> Result<usize, Failure>;
    fn password(&self, q: &Question) -> Result<String, Failure>;
}

fn missing(q: &Question) -> Failure {
    Failure::usage(format!("no answer for `{}`", q.key))
        .detail(format!(
            "give it with {} VALUE, the {} environment variable, or `{}:` in --answers FILE",
            q.flag, q.env, q.key
        ))
        .next(format!("movim-setup init {} VALUE …", q.flag))
}

/// `--yes` or no terminal: take the default, or fail naming the flag.
#[derive(Debug, Default)]
pub struct Defaults;

impl Prompter for Defaults {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure> {
        default.map(str::to_owned).ok_or_else(|| missing(q))
    }
    fn select(&self, _q: &Question, _choices: &[&str], default: usize) -> Result<usize, Failure> {
        Ok(default)
    }
    fn password(&self, q: &Question) -> Result<String, Failure> {
        Err(missing(q))
    }
}

/// Interactive prompts on the terminal.
#[derive(Debug, Default)]
pub struct Terminal;

fn prompt_failed(q: &Question, e: dialoguer::Error) -> Failure {
    Failure::usage(format!("could not ask `{}`", q.key))
        .because(e)
        .next(format!("movim-setup init --yes {} VALUE", q.flag))
}

impl Prompter for Terminal {
    fn text(&self, q: &Question, default: Option<&str>) -> Result<String, Failure> {
        let mut input = dialoguer::Input::<String>::new().with_prompt(q.prompt);
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
}

/// How the tool talks to the user: bars and colour on a terminal, plain lines elsewhere.
#[derive(Debug)]
pub struct Ui {
    fancy: bool,
}

impl Ui {
    #[must_use]
    pub fn new() -> Self {
        let fancy = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { fancy }
    }

    #[must_use]
    pub fn is_fancy(&self) -> bool {
        self.fancy
    }

    /// One step of a command, as an ordered line on stderr.
    pub fn step(&self, message: &str) {
        if self.fancy {
            eprintln!("\x1b[1m==>\x1b[0m {message}");
        } else {
            eprintln!("==> {message}");
        }
    }

    pub fn info(&self, message: &str) {
        eprintln!("    {message}");
    }

    pub fn warn(&self, message: &str) {
        if self.fancy {
            eprintln!("\x1b[33mwarning:\x1b[0m {message}");
        } else {
            eprintln!("warning: {message}");
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
        eprintln!("    pulled {image}");
    }
}

/// Prints a failure: what failed, why, details, and the next command(s).
pub fn report_failure(f: &Failure) {
    eprintln!("error: {}", f.what);
    if let Some(cause) = &f.cause {
        for line in format!("{cause:#}").lines() {
            eprintln!("  cause: {line}");
        }
    }
    for d in &f.details {
        eprintln!("  {d}");
    }
    for n in &f.next {
        eprintln!("  next: {n}");
    }
}
