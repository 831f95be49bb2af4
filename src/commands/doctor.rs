//! `movim-setup doctor`: read-only diagnostics (see [`crate::doctor`]).

use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::error::{ExitStatus, Failure};

pub async fn run(ctx: &Context, args: DoctorArgs) -> Result<ExitStatus, Failure> {
    crate::doctor::run(ctx, args).await
}
