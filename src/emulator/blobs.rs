//! Layer downloads: GetDownloadUrlForLayer answers a URL served by the
//! emulator itself, standing in for ECR's pre-signed S3 URL:
//!
//! `http://<host>/_emulator/blobs/<registryId>/<digest>/<repository>?expires=<unix secs>&signature=<hex>`
//!
//! The signature is HMAC-SHA256 over registry, repository, digest and expiry
//! under a random per-process key, so URLs cannot be forged, altered or
//! reused after `expires` (all answered 403), and stop working when the
//! emulator restarts. A valid URL returns the layer's exact bytes, as long as
//! the repository still holds the layer (404 otherwise), with
//! `Accept-Ranges: bytes`; a `Range` header is answered as S3 answers it
//! (206 / 416, see `ranges`).
//!
//! Fault: while the spec of `GetDownloadUrlForLayer` (or `*`) has
//! `corrupt_downloads`, the bytes served have their last byte XOR 0xff — same
//! length, so only a client that checks the sha256 notices.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::operation::Operation;
use super::ranges::{self, Chunks, RangeAnswer};
use super::server::Shared;

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

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The query of a download URL.
#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    expires: Option<String>,
    signature: Option<String>,
}

/// `GET /_emulator/blobs/{registry}/{digest}/{*repository}`.
pub async fn download(
    State(shared): State<Arc<Shared>>,
    Path((registry, digest, repository)): Path<(String, String, String)>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let expires = query.expires.as_deref().and_then(|e| e.parse::<u64>().ok());
    let (Some(expires), Some(signature)) = (expires, query.signature.as_deref()) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "missing or malformed expires/signature",
        );
    };
    let verdict = shared.signer.verify(
        &registry,
        &repository,
        &digest,
        expires,
        signature,
        unix_now(),
    );
    match verdict {
        Err(Refusal::Forged) => return refuse(StatusCode::FORBIDDEN, "signature does not match"),
        Err(Refusal::Expired) => return refuse(StatusCode::FORBIDDEN, "request has expired"),
        Ok(()) => {}
    }
    let blob = {
        let store = shared.store();
        store
            .repo(&registry, &repository)
            .ok()
            .filter(|repo| repo.layers.contains_key(&digest))
            .and_then(|_| store.blobs.get(&digest))
    };
    let Some(blob) = blob else {
        tracing::debug!(%registry, %repository, %digest, "blob download: no such layer");
        return refuse(StatusCode::NOT_FOUND, "the layer no longer exists");
    };
    let corrupt = shared
        .faults
        .corrupts_downloads(Operation::GetDownloadUrlForLayer);
    let range = ranges::decide(headers.get(header::RANGE), blob.len() as u64);
    tracing::debug!(%registry, %repository, %digest, ?range, corrupt, "blob download");
    serve(blob, &digest, range, corrupt)
}

/// The answer for `range` of `blob`: slices of it, never a copy.
fn serve(blob: Bytes, digest: &str, range: RangeAnswer, corrupt: bool) -> Response {
    let total = blob.len();
    let (status, bytes, content_range) = match range {
        RangeAnswer::Whole => (StatusCode::OK, blob, None),
        RangeAnswer::Partial { start, end } => {
            // `decide` keeps `start <= end < total`, so these fit usize.
            let (from, to) = (start as usize, end as usize);
            let shown = format!("bytes {start}-{end}/{total}");
            (
                StatusCode::PARTIAL_CONTENT,
                blob.slice(from..=to),
                Some(shown),
            )
        }
        RangeAnswer::Unsatisfiable => {
            let mut response = refuse(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            insert(
                &mut response,
                header::CONTENT_RANGE,
                format!("bytes */{total}"),
            );
            insert(&mut response, header::ACCEPT_RANGES, "bytes".to_owned());
            return response;
        }
    };
    let length = bytes.len();
    let body = match corrupt {
        true => Chunks::corrupted(bytes),
        false => Chunks::new(bytes),
    };
    let mut response = (status, Body::new(body)).into_response();
    insert(
        &mut response,
        header::CONTENT_TYPE,
        "application/octet-stream".to_owned(),
    );
    insert(&mut response, header::CONTENT_LENGTH, length.to_string());
    insert(&mut response, header::ACCEPT_RANGES, "bytes".to_owned());
    insert(&mut response, header::ETAG, format!("\"{digest}\""));
    if let Some(shown) = content_range {
        insert(&mut response, header::CONTENT_RANGE, shown);
    }
    response
}

fn insert(response: &mut Response, name: header::HeaderName, value: String) {
    // Every value here is built from digits and a validated digest.
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], why).into_response()
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
