//! HTTP Range requests on download URLs, answered as S3 answers them for
//! ECR's pre-signed layer URLs, and the body that serves a blob's bytes.
//!
//! - `bytes=N-`, `bytes=N-M` and the suffix form `bytes=-N` select one
//!   range (an end past the blob is cut to its last byte) → 206 with
//!   `Content-Range: bytes N-M/TOTAL`.
//! - A start at or past the end (or `bytes=-0`) → 416 with
//!   `Content-Range: bytes */TOTAL`.
//! - A header S3 cannot parse — another unit, several ranges, `N-M` with
//!   `M < N`, garbage — is ignored: 200 with the whole blob, as S3 does.
//!
//! Bodies are slices of the stored [`Bytes`], never copies of the blob.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::HeaderValue;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// What a request's `Range` header asks of a blob of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No (usable) range: 200 with every byte.
    Whole,
    /// 206 with bytes `start..=end` (inclusive, as `Content-Range` shows).
    Partial { start: u64, end: u64 },
    /// 416: nothing of the blob lies in the range.
    Unsatisfiable,
}

/// Decides the answer for `header` (the `Range` value, if any) on a blob of
/// `total` bytes.
pub fn decide(header: Option<&HeaderValue>, total: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.to_str().ok()) else {
        return RangeAnswer::Whole;
    };
    match parse(spec) {
        None => RangeAnswer::Whole,
        Some(Spec::From { start, end }) => {
            if start >= total {
                return RangeAnswer::Unsatisfiable;
            }
            let last = total - 1;
            RangeAnswer::Partial {
                start,
                end: end.map_or(last, |end| end.min(last)),
            }
        }
        Some(Spec::Suffix(length)) => {
            if length == 0 || total == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Partial {
                start: total - length.min(total),
                end: total - 1,
            }
        }
    }
}

/// One syntactically valid byte-range-spec (RFC 9110 §14.1.1).
#[derive(Debug, PartialEq, Eq)]
enum Spec {
    /// `N-` or `N-M` (with `M >= N`).
    From { start: u64, end: Option<u64> },
    /// `-N`: the last N bytes.
    Suffix(u64),
}

/// Parses `bytes=<one range>`; `None` for anything S3 would ignore.
fn parse(spec: &str) -> Option<Spec> {
    let (unit, ranges) = spec.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    // S3 serves one range per GET; a list of ranges is ignored whole.
    if ranges.contains(',') {
        return None;
    }
    let (first, last) = ranges.split_once('-')?;
    match (digits(first), digits(last)) {
        (None, Some(length)) if first.is_empty() => Some(Spec::Suffix(length)),
        (Some(start), None) if last.is_empty() => Some(Spec::From { start, end: None }),
        (Some(start), Some(end)) if end >= start => Some(Spec::From {
            start,
            end: Some(end),
        }),
        _ => None,
    }
}

/// A non-empty run of ASCII digits (no sign, no spaces) that fits a u64.
fn digits(text: &str) -> Option<u64> {
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| text.parse().ok()).flatten()
}

/// A body of a few ready chunks with an exact length, so the answer carries
/// `Content-Length`; lets a corrupted answer reuse the stored bytes around
/// the one altered byte instead of copying them.
#[derive(Debug)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    /// `bytes` as they are.
    pub fn new(bytes: Bytes) -> Self {
        Self::from_parts([bytes, Bytes::new()])
    }

    /// `bytes` with its last byte XOR 0xff (nothing to alter when empty):
    /// same length, different sha256.
    pub fn corrupted(bytes: Bytes) -> Self {
        match bytes.len().checked_sub(1) {
            None => Self::new(bytes),
            Some(last) => {
                let flipped = Bytes::copy_from_slice(&[bytes[last] ^ 0xff]);
                Self::from_parts([bytes.slice(..last), flipped])
            }
        }
    }

    fn from_parts(parts: [Bytes; 2]) -> Self {
        let chunks: VecDeque<Bytes> = parts.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks, remaining }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    fn answer(range: &str, total: u64) -> RangeAnswer {
        decide(Some(&HeaderValue::from_str(range).unwrap()), total)
    }

    fn partial(start: u64, end: u64) -> RangeAnswer {
        RangeAnswer::Partial { start, end }
    }

    #[test]
    fn no_header_serves_everything() {
        assert_eq!(decide(None, 10), RangeAnswer::Whole);
        assert_eq!(decide(None, 0), RangeAnswer::Whole);
    }

    #[test]
    fn ranges_inside_the_blob_are_served_as_asked() {
        assert_eq!(answer("bytes=0-", 10), partial(0, 9));
        assert_eq!(answer("bytes=4-", 10), partial(4, 9));
        assert_eq!(answer("bytes=9-", 10), partial(9, 9));
        assert_eq!(answer("bytes=0-0", 10), partial(0, 0));
        assert_eq!(answer("bytes=2-5", 10), partial(2, 5));
        assert_eq!(answer("bytes=-3", 10), partial(7, 9));
        assert_eq!(answer("Bytes=2-5", 10), partial(2, 5));
    }

    #[test]
    fn ends_past_the_blob_are_cut_to_its_last_byte() {
        assert_eq!(answer("bytes=2-10", 10), partial(2, 9));
        assert_eq!(answer("bytes=2-18446744073709551615", 10), partial(2, 9));
        assert_eq!(answer("bytes=-50", 10), partial(0, 9));
    }

    #[test]
    fn starts_at_or_past_the_end_are_unsatisfiable() {
        assert_eq!(answer("bytes=10-", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=11-20", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=-0", 10), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=-5", 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5-2",
            "bytes=a-5",
            "bytes=1-b",
            "bytes=+1-5",
            "bytes=1 2-5",
            "bytes= 1-5",
            "bytes=0-1,3-4",
            "items=0-5",
            "0-5",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(answer(bad, 10), RangeAnswer::Whole, "{bad:?}");
        }
        let not_text = HeaderValue::from_bytes(b"bytes=\xff-1").unwrap();
        assert_eq!(decide(Some(&not_text), 10), RangeAnswer::Whole);
    }

    async fn collect(body: Chunks) -> Vec<u8> {
        let body = axum::body::Body::new(body);
        axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn bodies_know_their_length_and_corruption_flips_one_byte() {
        let stored = Bytes::from_static(b"layer bytes");
        let whole = Chunks::new(stored.clone());
        assert_eq!(whole.size_hint().exact(), Some(11));
        assert_eq!(collect(whole).await, b"layer bytes");

        let bad = Chunks::corrupted(stored.slice(2..7));
        assert_eq!(bad.size_hint().exact(), Some(5));
        let served = collect(bad).await;
        assert_eq!(&served[..4], b"yer ");
        assert_eq!(served[4], b'b' ^ 0xff);

        let empty = Chunks::corrupted(Bytes::new());
        assert_eq!(empty.size_hint().exact(), Some(0));
        assert!(collect(empty).await.is_empty());
    }
}
