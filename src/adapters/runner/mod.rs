//! What runs a deployment's containers: its compose tool, or `podman kube play`.

pub mod compose;
pub mod kube_play;
