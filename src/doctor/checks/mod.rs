//! Doctor's checks, one file per area: each turns what was read into findings with their fix.

pub mod containers;
pub mod database;
pub mod drift;
pub mod env;
pub mod files;
pub mod host;
pub mod images;
pub mod mounts;
pub mod web;
pub mod xmpp;
