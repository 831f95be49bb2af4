//! Secrets (database and admin passwords) as a type that cannot leak by accident: `Debug` and
//! `Display` print `<redacted>`; only [`Secret::expose`] gives the value, and every call site of it
//! is a place where the value is meant to leave the process (env file, database login).

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Letters and digits only: generated secrets then need no quoting anywhere (URLs, env files,
/// shell), and 32 of them carry about 190 bits.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh secret from the operating system's CSPRNG (`rand`'s `ThreadRng` is a CSPRNG
    /// seeded from `OsRng`).
    #[must_use]
    pub fn generate(len: usize) -> Self {
        let mut rng = rand::rng();
        Self(
            (0..len)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `text` with every occurrence of each secret value replaced by `<redacted>`. Values shorter than
/// 4 characters are left alone: they would redact ordinary words and cannot be told from them.
#[must_use]
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn generated_secrets_differ_and_use_the_safe_alphabet() {
        let a = Secret::generate(32);
        let b = Secret::generate(32);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
    }
}
