//! `movim-setup doctor` (being written).

use super::Context;
use crate::cli::DoctorArgs;
use crate::error::{ExitStatus, Failure};

pub async fn run(_ctx: &Context, _args: DoctorArgs) -> Result<ExitStatus, Failure> {
    Err(Failure::usage(
        "`movim-setup doctor` is not available yet in this version",
    ))
}
