//! What the test modules share: the CLI builder and project guard (`cli`), the test world
//! (`world`), Podman's helpers (`podman`), and fakes of every adapter trait (`fakes`).

pub mod cli;
pub mod fakes;
pub mod podman;
pub mod world;
