//! The whole test suite as one binary (one link, one place for the shared helpers): each module is
//! one subject, from the pure renderings and plans to the real-world runs on Docker and Podman.

#![allow(clippy::disallowed_methods)] // tests drive docker, podman and psql by hand, and read the world's variables

#[path = "../support/mod.rs"]
mod support;

mod adapters;
mod commands;
mod doctor;
mod images;
mod init;
mod install;
mod plan;
mod podman;
mod registry_engine;
mod release;
mod render;
mod rootless;
mod signals;
mod upgrade;
mod world_infra;
mod world_movim;
