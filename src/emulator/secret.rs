//! The emulator's secrets: random key material (download-URL signing keys,
//! pagination token keys) and the admin token. Neither ever reaches a log.

use axum::http::{HeaderMap, header};

/// `N` bytes from the OS random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

/// The secret the admin endpoints require. `Debug` shows no character of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Checks a given token: 16 to 256 visible ASCII characters (it travels
    /// in a header; shorter ones are too easy to guess).
    pub fn parse(token: &str) -> anyhow::Result<Self> {
        let visible = token.bytes().all(|b| b.is_ascii_graphic());
        anyhow::ensure!(
            visible && (16..=256).contains(&token.len()),
            "the admin token must be 16 to 256 visible ASCII characters"
        );
        Ok(Self(token.to_owned()))
    }

    /// Wraps a command-line value unchecked, so that clap's error for a bad
    /// one (which quotes the value) never happens; `EmulatorConfig::check`
    /// checks it with [`AdminToken::parse`] instead.
    pub(crate) fn from_arg(token: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(token.to_owned()))
    }

    /// A fresh random token (256 bits, hex).
    pub fn random() -> Self {
        Self(hex::encode(random_bytes::<32>()))
    }

    /// The token itself, for the caller that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`,
    /// compared in constant time.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let (given, expected) = (given.trim().as_bytes(), self.0.as_bytes());
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}
