//! `movim-setup upgrade` (not built yet: see its issue).

use super::Context;
use crate::cli::UpgradeArgs;
use crate::error::{ExitStatus, Failure};

pub async fn run(_ctx: &Context, _args: UpgradeArgs) -> Result<ExitStatus, Failure> {
    Err(
        Failure::usage("`movim-setup upgrade` is not available yet in this version")
            .next("movim-setup doctor"),
    )
}
