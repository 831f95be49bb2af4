//! A release transition: the journaled, checkpointed move of a deployment from one Movim release
//! to another, and its undo. `upgrade` and `rollback` are two doors into it; neither knows the
//! other.

pub mod observe;
pub mod pin;
pub mod preflight;
pub mod resume;
pub mod run;
pub mod steps;
pub mod undo;

use crate::adapters::Tools;
use crate::adapters::store::Saved;
use crate::context::Context;
use crate::core::deployment::{Deployment, MovimTag};
use crate::core::journal::{self, Journal};
use crate::core::secret::Secret;
use crate::error::Failure;
use std::path::Path;

/// One upgrade or rollback being executed, rebuilt from its journal when resumed.
pub struct Run<'a> {
    pub ctx: &'a Context,
    pub tools: &'a Tools,
    pub password: Secret,
    pub journal: Journal,
    /// The release left (its answers as they were) and the one gone to.
    pub from: Deployment,
    pub to: Deployment,
    pub keep_backups: usize,
}

impl<'a> Run<'a> {
    /// Everything a run needs is in the journal, but the password (kept in `movim.env`).
    pub fn from_journal(
        ctx: &'a Context,
        tools: &'a Tools,
        saved: &Saved,
        journal: Journal,
        keep_backups: usize,
    ) -> Result<Self, Failure> {
        let broken = |e: String| {
            Failure::new(format!(
                "{} does not describe the deployment it interrupted",
                ctx.dir.join(journal::JOURNAL_FILE).display()
            ))
            .detail(e)
            .next("movim-setup doctor")
        };
        let from: Deployment =
            yaml_serde::from_str(&journal.previous.answers).map_err(|e| broken(e.to_string()))?;
        let mut to = from.clone();
        to.version = MovimTag::parse(&journal.to.movim).map_err(broken)?;
        Ok(Self {
            ctx,
            tools,
            password: preflight::password(ctx, saved)?,
            journal,
            from,
            to,
            keep_backups,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.ctx.dir
    }
}
