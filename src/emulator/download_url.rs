//! Download URLs: GetDownloadUrlForLayer answers a URL served by the
//! emulator itself (see `download`), standing in for ECR's pre-signed S3 URL:
//!
//! `http://<host>/_emulator/blobs/<registryId>/<digest>/<repository>?expires=<unix secs>&signature=<hex>`
//!
//! The signature is HMAC-SHA256 over registry, repository, digest and expiry
//! under a random per-process key, so URLs cannot be forged, altered or
//! reused after `expires`, and stop working when the emulator restarts.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Signs and checks download URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
    ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("UrlSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a download URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Signature missing, malformed or wrong.
    Forged,
    /// Past its `expires`.
    Expired,
}

impl UrlSigner {
    /// URLs signed with `key`, valid for `ttl`.
    pub fn new(key: [u8; 32], ttl: Duration) -> Self {
        Self { key, ttl }
    }

    fn mac(&self, registry: &str, repository: &str, digest: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        // Newline-separated: none of the fields may contain one.
        mac.update(format!("{registry}\n{repository}\n{digest}\n{expires}").as_bytes());
        mac
    }

    /// A URL under `base` (`http://host:port`) valid until `now + ttl`.
    pub fn url(
        &self,
        base: &str,
        registry: &str,
        repository: &str,
        digest: &str,
        now_unix: u64,
    ) -> String {
        let expires = now_unix.saturating_add(self.ttl.as_secs());
        let signature = hex::encode(
            self.mac(registry, repository, digest, expires)
                .finalize()
                .into_bytes(),
        );
        format!(
            "{base}/_emulator/blobs/{registry}/{digest}/{repository}?expires={expires}&signature={signature}"
        )
    }

    /// Checks a URL's parts; `now_unix` is passed in so tests control time.
    pub fn verify(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        expires: u64,
        signature_hex: &str,
        now_unix: u64,
    ) -> Result<(), Refusal> {
        let signature = hex::decode(signature_hex).map_err(|_| Refusal::Forged)?;
        self.mac(registry, repository, digest, expires)
            .verify_slice(&signature)
            .map_err(|_| Refusal::Forged)?;
        if now_unix > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123abcd";

    fn signer() -> UrlSigner {
        UrlSigner::new([3; 32], Duration::from_secs(3600))
    }

    fn parts(url: &str) -> (u64, String) {
        let query = url.split_once('?').unwrap().1;
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("signature", v) => signature = v.to_owned(),
                other => panic!("unexpected {other:?}"),
            }
        }
        (expires, signature)
    }

    #[test]
    fn a_fresh_url_verifies_until_it_expires() {
        let url = signer().url("http://h:1", "123456789012", "a/b", DIGEST, 1_000);
        assert!(url.starts_with(&format!(
            "http://h:1/_emulator/blobs/123456789012/{DIGEST}/a/b?expires=4600&signature="
        )));
        let (expires, sig) = parts(&url);
        let check = |now| signer().verify("123456789012", "a/b", DIGEST, expires, &sig, now);
        assert_eq!(check(1_000), Ok(()));
        assert_eq!(check(4_600), Ok(()));
        assert_eq!(check(4_601), Err(Refusal::Expired));
    }

    #[test]
    fn altered_or_foreign_urls_are_forged() {
        let (expires, sig) = parts(&signer().url("http://h", "123456789012", "a/b", DIGEST, 0));
        let s = signer();
        assert_eq!(
            s.verify("123456789012", "a/c", DIGEST, expires, &sig, 0),
            Err(Refusal::Forged)
        );
        assert_eq!(
            s.verify("123456789012", "a/b", "sha256:ff", expires, &sig, 0),
            Err(Refusal::Forged)
        );
        assert_eq!(
            s.verify("123456789012", "a/b", DIGEST, expires + 1, &sig, 0),
            Err(Refusal::Forged)
        );
        assert_eq!(
            s.verify("123456789012", "a/b", DIGEST, expires, "zz", 0),
            Err(Refusal::Forged)
        );
        let other = UrlSigner::new([4; 32], Duration::from_secs(3600));
        assert_eq!(
            other.verify("123456789012", "a/b", DIGEST, expires, &sig, 0),
            Err(Refusal::Forged)
        );
    }
}
