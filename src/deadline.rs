//! Call deadlines: the caller's `grpc-timeout`, capped by the server's
//! default per-RPC timeout, bounds every upstream call the RPC makes.
//!
//! The RPC layer fixes a call's deadline when its headers arrive and hands it
//! to the handler as a [`CallDeadline`] request extension, so the handler's
//! upstream timeout and the layer's own bound on the whole call are the same
//! instant (and the handler's detailed answer wins the tie).

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// The `grpc-timeout` a caller sent, if well formed (gRPC over HTTP/2 spec:
/// at most 8 digits and a unit, `H M S m u n`).
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// The `grpc-timeout` of raw request headers (the RPC layer sees the call
/// before tonic makes its metadata).
pub fn grpc_timeout_header(headers: &http::HeaderMap) -> Option<Duration> {
    parse(headers.get("grpc-timeout")?.to_str().ok()?)
}

fn parse(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// How much earlier than the caller's deadline the facade answers: tonic's
/// own timer (started when the request arrived) would otherwise win the race
/// and answer CANCELLED without details. 5 ms lost that race now and then on
/// a loaded 2-core machine; 20 ms (at most a tenth of the budget) did not.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(20);

/// The instant a call must be answered by, fixed by the RPC layer when the
/// call's headers arrived (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallDeadline(pub Instant);

/// A budget less the [`ANSWER_MARGIN`] (at most a tenth of it).
pub fn with_margin(budget: Duration) -> Duration {
    budget.saturating_sub(ANSWER_MARGIN.min(budget / 10))
}

/// The deadline of `request`: [`deadline`] from its metadata, or the RPC
/// layer's [`CallDeadline`] when that is earlier (it counts from the call's
/// headers, so it is, unless the handler was given a shorter default).
pub fn of_request<T>(request: &tonic::Request<T>, default_timeout: Duration) -> Instant {
    let own = deadline(request.metadata(), default_timeout);
    match request.extensions().get::<CallDeadline>() {
        Some(CallDeadline(at)) => own.min(*at),
        None => own,
    }
}

/// When the RPC must be answered: now + the smaller of the caller's timeout
/// (less [`ANSWER_MARGIN`], at most a tenth of it) and the server's default.
pub fn deadline(metadata: &MetadataMap, default_timeout: Duration) -> Instant {
    let budget =
        grpc_timeout(metadata).map_or(default_timeout, |t| with_margin(t).min(default_timeout));
    Instant::now() + budget
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", value.parse().unwrap());
        metadata
    }

    #[test]
    fn every_unit_parses() {
        assert_eq!(grpc_timeout(&with("2H")), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout(&with("3M")), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout(&with("5S")), Some(Duration::from_secs(5)));
        assert_eq!(
            grpc_timeout(&with("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(grpc_timeout(&with("7u")), Some(Duration::from_micros(7)));
        assert_eq!(
            grpc_timeout(&with("99999999n")),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in ["", "S", "5", "5s", "123456789S", "-5S", "1.5S"] {
            assert_eq!(grpc_timeout(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&MetadataMap::new()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_smaller_budget_wins() {
        let now = Instant::now();
        let default = Duration::from_secs(60);
        assert_eq!(
            deadline(&with("2S"), default) - now,
            Duration::from_secs(2) - ANSWER_MARGIN
        );
        assert_eq!(
            deadline(&with("20m"), default) - now,
            Duration::from_millis(18)
        );
        assert_eq!(deadline(&with("5M"), default) - now, default);
        assert_eq!(deadline(&MetadataMap::new(), default) - now, default);
    }
}
