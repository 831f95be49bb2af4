//! The `movim-setup` binary: everything lives in the library so that tests can drive it.

fn main() -> std::process::ExitCode {
    movim_setup::run()
}
