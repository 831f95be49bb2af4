//! `movim-setup rollback` (not built yet: see its issue).

use super::Context;
use crate::cli::RollbackArgs;
use crate::error::{ExitStatus, Failure};

pub async fn run(_ctx: &Context, _args: RollbackArgs) -> Result<ExitStatus, Failure> {
    Err(
        Failure::usage("`movim-setup rollback` is not available yet in this version")
            .next("movim-setup doctor"),
    )
}
