//! The HTTP client that fetches a layer from its pre-signed download URL
//! (S3 behind ECR, or the emulator), so that callers need no route to S3.
//!
//! hyper-util's client with rustls (the native root store): HTTP/1.1, a
//! connect timeout, and no redirects at all (a 3xx is an error, so a URL can
//! never send the facade to another host). The body is read frame by frame
//! by the caller, with its own idle timeout.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::Code;

use crate::error::{self, Error};

/// A response to a layer download, with the layer's total size.
pub struct Download {
    /// The body, from the requested offset on.
    pub body: hyper::body::Incoming,
    /// The layer's size in bytes.
    pub total_size: u64,
    /// Bytes at the start of `body` that come before the requested offset
    /// (the server ignored the range): the caller drops them.
    pub skip: u64,
}

type Https = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Fetches download URLs; the client (and the system's root store) is made
/// on the first pull.
pub struct HttpClient {
    connect_timeout: Duration,
    client: OnceLock<Https>,
}

impl HttpClient {
    /// A client that will connect within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &Https {
        self.client.get_or_init(|| build(self.connect_timeout))
    }
}

fn build(connect_timeout: Duration) -> Https {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    // An unreadable system store leaves the facade unable to fetch HTTPS
    // URLs, which every pull reports; it does not stop the service.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Plain http is allowed because ECR hands out the URL: the emulator's
    // and test upstreams' URLs are http on loopback, S3's are https.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(connector)
}

impl HttpClient {
    /// GETs `url` from byte `offset` on (an HTTP Range when `offset > 0`).
    pub async fn get(&self, url: &str, offset: u64) -> Result<Download, Error> {
        let mut request = Request::get(url);
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| download_failed("ecr returned a download url that is not a valid url"))?;
        let response = self.client().request(request).await.map_err(|e| {
            download_failed(&format!(
                "could not fetch the layer from its download url: {}",
                kind(&e)
            ))
        })?;
        let status = response.status();
        let headers = response.headers();
        match status {
            StatusCode::OK => {
                let total_size = content_length(headers).ok_or_else(|| {
                    download_failed("the download url answered without a content-length")
                })?;
                if offset >= total_size && offset > 0 {
                    return Err(past_the_end(offset, total_size));
                }
                Ok(Download {
                    body: response.into_body(),
                    total_size,
                    skip: offset,
                })
            }
            StatusCode::PARTIAL_CONTENT => {
                let (start, total_size) = content_range(headers).ok_or_else(|| {
                    download_failed("the download url answered 206 without a valid content-range")
                })?;
                if start != offset {
                    return Err(download_failed(
                        "the download url answered another range than asked",
                    ));
                }
                Ok(Download {
                    body: response.into_body(),
                    total_size,
                    skip: 0,
                })
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = unsatisfied_total(headers).unwrap_or(0);
                Err(past_the_end(offset, total))
            }
            other => Err(download_failed(&format!(
                "the download url answered http {}",
                other.as_u16()
            ))),
        }
    }
}

/// The download URL could not be fetched: UNAVAILABLE (`DOWNLOAD_FAILED`).
pub(super) fn download_failed(message: &str) -> Error {
    Error::facade(Code::Unavailable, error::REASON_DOWNLOAD_FAILED, message)
}

fn past_the_end(offset: u64, total: u64) -> Error {
    Error::invalid_field(
        "offset",
        format!("{offset} is past the end of the layer ({total} bytes)"),
    )
}

/// What kind of failure, without the URL (it carries a signature).
fn kind(err: &hyper_util::client::legacy::Error) -> &'static str {
    if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(headers: &http::HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total): (u64, u64, u64) =
        (start.parse().ok()?, end.parse().ok()?, total.parse().ok()?);
    (start <= end && end < total).then_some((start, total))
}

/// `Content-Range: bytes */TOTAL` of a 416 → TOTAL.
fn unsatisfied_total(headers: &http::HeaderMap) -> Option<u64> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    value.strip_prefix("bytes */")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert(name, value.parse().unwrap());
        map
    }

    #[test]
    fn content_ranges_are_read_strictly() {
        let range = |v: &str| content_range(&headers(header::CONTENT_RANGE, v));
        assert_eq!(range("bytes 5-9/10"), Some((5, 10)));
        assert_eq!(range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(range("bytes 9-5/10"), None);
        assert_eq!(range("bytes 5-10/10"), None);
        assert_eq!(range("bytes */10"), None);
        assert_eq!(range("items 5-9/10"), None);
        let total = |v: &str| unsatisfied_total(&headers(header::CONTENT_RANGE, v));
        assert_eq!(total("bytes */10"), Some(10));
        assert_eq!(total("bytes 0-1/10"), None);
    }
}
