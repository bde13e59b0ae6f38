//! Layer downloads: `GET` of a URL made by `download_url`. A valid URL
//! returns the layer's exact bytes, as long as the repository still holds the
//! layer (404 otherwise), with `Accept-Ranges: bytes`; a `Range` header is
//! answered as S3 answers it (206 / 416, see `ranges`). Forged, altered or
//! expired URLs are answered 403.
//!
//! Fault: while the spec of `GetDownloadUrlForLayer` (or `*`) has
//! `corrupt_downloads`, the bytes served have their last byte XOR 0xff — same
//! length, so only a client that checks the sha256 notices.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::clock::now_secs;
use super::download_url::Refusal;
use super::operation::Operation;
use super::ranges::{self, Chunks, RangeAnswer};
use super::shared::Shared;

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
        now_secs() as u64,
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
