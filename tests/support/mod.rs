//! What the test modules share: a browser on the websocket (`browser`), the CLI builder and project guard (`cli`), the test world
//! (`world`), Podman's helpers (`podman`, and `rootless` for an unprivileged user's own), what a browser sees through web (`web`), and fakes of every adapter trait (`fakes`).

pub mod browser;
pub mod cli;
pub mod fakes;
pub mod podman;
pub mod rootless;
pub mod web;
pub mod world;
