//! The pure core: the deployment model and every rule about it, as data and functions of data.
//! Nothing here touches the world — no files, processes, network, environment or clock (those are
//! passed in) — so all of it is unit-tested without a machine to run on.

pub mod answers;
pub mod containers;
pub mod deployment;
pub mod diff;
pub mod envfile;
pub mod image_ref;
pub mod images;
pub mod journal;
pub mod layout;
pub mod lockfile;
pub mod manifest;
pub mod movim;
pub mod plan;
pub mod ports;
pub mod render;
pub mod secret;
pub mod shell;
pub mod tar;
pub mod trust;
