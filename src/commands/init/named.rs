//! The files a user names to `init` (`--ca-bundle`, `--xmpp-cert`, `--xmpp-key`): read where
//! named, relative to the working directory, only by the run that names them, and recorded by
//! their absolute path; every later run reads the copies the deployment directory keeps.

use crate::core::answers::Answers;
use crate::core::deployment::{Deployment, Xmpp};
use crate::core::render::{self, Extras};
use crate::core::secret::Secret;
use crate::error::Failure;
use std::path::Path;

/// A file named on this run, recorded as later runs (from any directory) would find it again.
fn absolute(file: &Path) -> Result<std::path::PathBuf, Failure> {
    std::path::absolute(file)
        .map_err(|e| Failure::usage(format!("cannot resolve {}", file.display())).because(e))
}

/// Which files the user names on this run (a flag, `--answers`, a prompt): those are read where
/// named (a path relative to the working directory); the others, named on an earlier run, from
/// the copies the deployment directory keeps ([`render::reading_copies`]).
pub(super) struct Named {
    ca_bundle: bool,
    xmpp_cert: bool,
}

impl Named {
    /// Whether the copy `name` of the deployment directory is of a file named on this run.
    pub(super) fn names(&self, name: &str) -> bool {
        if name == render::CA_FILE {
            self.ca_bundle
        } else {
            self.xmpp_cert
        }
    }

    /// What the answers given on this run (flags, `--answers`) name, besides what the previous
    /// run did not record at all (a prompt's answer).
    pub(super) fn on_this_run(given: &[&Answers], recorded: Option<&Deployment>) -> Self {
        Self {
            ca_bundle: given.iter().any(|a| a.ca_bundle.is_some())
                || recorded.is_none_or(|d| d.ca_bundle.is_none()),
            xmpp_cert: given
                .iter()
                .any(|a| a.xmpp_cert.is_some() || a.xmpp_key.is_some())
                || recorded.is_none_or(|d| !matches!(d.xmpp, Xmpp::Bundled { cert: Some(_), .. })),
        }
    }

    /// `d` with the paths named on this run made absolute.
    pub(super) fn absolute(&self, mut d: Deployment) -> Result<Deployment, Failure> {
        if self.ca_bundle {
            d.ca_bundle = d.ca_bundle.as_deref().map(absolute).transpose()?;
        }
        if let (true, Xmpp::Bundled { cert, key, .. }) = (self.xmpp_cert, &mut d.xmpp) {
            *cert = cert.as_deref().map(absolute).transpose()?;
            *key = key.as_deref().map(absolute).transpose()?;
        }
        Ok(d)
    }
}

/// Reads the files the answers name: the CA bundle (with the system roots appended, since it
/// replaces them in the containers; the copy in `dir` has them already) and Prosody's certificate
/// and key.
pub(super) fn read_extras(d: &Deployment, dir: &Path) -> Result<Extras, Failure> {
    let pem = |flag: &str, path: &Path, marker: &str| -> Result<String, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read {flag} {}", path.display())).because(e)
        })?;
        if !text.contains(marker) {
            return Err(Failure::usage(format!(
                "{flag} {} is not PEM ({marker} not found)",
                path.display()
            )));
        }
        Ok(text)
    };
    let mut extras = Extras::default();
    if let Some(ca) = &d.ca_bundle {
        let mut bundle = pem("--ca-bundle", ca, "BEGIN CERTIFICATE")?;
        if *ca != dir.join(render::CA_FILE)
            && let Ok(system) = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        {
            bundle.push('\n');
            bundle.push_str(&system);
        }
        extras.ca_pem = Some(bundle);
    }
    if let Xmpp::Bundled {
        cert: Some(cert),
        key: Some(key),
        ..
    } = &d.xmpp
    {
        extras.xmpp_cert = Some((
            pem("--xmpp-cert", cert, "BEGIN CERTIFICATE")?,
            Secret::new(pem("--xmpp-key", key, "PRIVATE KEY")?),
        ));
    }
    Ok(extras)
}
