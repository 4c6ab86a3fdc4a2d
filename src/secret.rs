//! A wrapper that keeps credentials out of logs.

use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A password, token or key. `Debug` prints `<redacted>`, so a secret that
/// ends up in a struct that is logged does not leak; `==` compares in
/// constant time (no derived `PartialEq`), so no comparison of secrets can
/// leak by timing where their contents differ.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is compared or hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
