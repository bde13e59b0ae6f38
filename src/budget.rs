//! The memory budget of requests: how large one request message of each
//! method may be, and how many request bytes all calls may hold at once.
//!
//! tonic's `max_decoding_message_size` is one number per service, and the
//! layer check's and uploads' messages are thousands of times larger than
//! everything else's, so the per-method limits are checked by a tower layer
//! ([`BudgetLayer`]) that reads the gRPC framing of each request body as it
//! arrives: the 5-byte prefix of every message declares its length before
//! any of its bytes are buffered. A message over its method's limit is
//! refused with OUT_OF_RANGE (what tonic's own limit answers) before its
//! bytes are read; one that fits is charged to the global budget of request
//! bytes in flight, and held until the handler has answered (the decoded
//! request lives as long as the handler; a streamed answer holds it until
//! the stream ends), so a client that never reads holds no budget. With the budget spent, the call is
//! refused at once with RESOURCE_EXHAUSTED and a `RetryInfo`.
//!
//! The budget counts wire bytes; the decoded request and the work done on it
//! take a small multiple of that (about three times for the layer check), so
//! `--max-request-bytes-in-flight` of 32 MiB keeps requests to roughly
//! 100 MiB in the worst case.

mod layer;

pub use layer::BudgetLayer;

use crate::model::{Action, IMAGE_MANIFEST_MAX_CHARS, LAYER_PART_MAX_BYTES};

/// The request limit of every method without a row in [`LARGE_MESSAGES`]:
/// the largest of them (100 image ids with 300-character tags of 4-byte
/// characters, a 10,240-character policy) fits with room to spare.
pub const SMALL_MESSAGE: usize = 256 * 1024;

/// Headroom over a large payload for the rest of its message (repository
/// name, ids, field tags).
const FIELDS: usize = 64 * 1024;

/// Worst case of one BatchCheckLayerAvailability digest on the wire: 1,000
/// characters (ECR's limit) of up to 4 UTF-8 bytes, a field tag and a
/// 2-byte length.
pub const LAYER_DIGEST_WIRE_BYTES: usize = 1000 * 4 + 3;

/// Default of `--max-request-bytes-in-flight`.
pub const DEFAULT_BUDGET: usize = 32 * 1024 * 1024;

/// The request limit of one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A fixed number of bytes.
    Bytes(usize),
    /// `--max-layer-digests` digests of [`LAYER_DIGEST_WIRE_BYTES`] each.
    LayerDigests,
}

/// The methods whose request messages may be larger than [`SMALL_MESSAGE`]
/// (method name in `ecr.v1.EcrService` → limit). A method whose requests
/// can carry a large payload needs a row here.
pub const LARGE_MESSAGES: &[(&str, Limit)] = &[
    (
        Action::BatchCheckLayerAvailability.name(),
        Limit::LayerDigests,
    ),
    // ECR's layerPartBlob: at most 20 MiB decoded.
    (
        Action::UploadLayerPart.name(),
        Limit::Bytes(LAYER_PART_MAX_BYTES + FIELDS),
    ),
    // One chunk of the upload stream: at most 16 MiB.
    (
        Action::PushLayer.name(),
        Limit::Bytes(16 * 1024 * 1024 + FIELDS),
    ),
    // ECR's imageManifest: at most 4,194,304 characters (JSON: ASCII).
    (
        Action::PutImage.name(),
        Limit::Bytes(IMAGE_MANIFEST_MAX_CHARS + FIELDS),
    ),
];

/// The service whose methods [`LARGE_MESSAGES`] names.
const ECR_SERVICE: &str = "/ecr.v1.EcrService/";

/// The budget settings of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Request bytes all calls may hold at once (health and reflection aside).
    pub max_request_bytes_in_flight: usize,
    /// `--max-layer-digests`, which sizes BatchCheckLayerAvailability's limit.
    pub max_layer_digests: usize,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            max_request_bytes_in_flight: DEFAULT_BUDGET,
            max_layer_digests: crate::validate::Limits::default().max_layer_digests,
        }
    }
}

/// Why the budget settings were refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{method}'s requests may take {needs} bytes, over --max-request-bytes-in-flight \
     {budget}: {hint}"
)]
pub struct BudgetError {
    method: &'static str,
    needs: usize,
    budget: usize,
    hint: &'static str,
}

impl BudgetSettings {
    /// The largest request message `method` (a gRPC path) may send.
    pub fn message_limit(&self, path: &str) -> usize {
        let row = path
            .strip_prefix(ECR_SERVICE)
            .and_then(|name| LARGE_MESSAGES.iter().find(|(method, _)| *method == name));
        match row {
            Some((_, limit)) => self.bytes(*limit),
            None => SMALL_MESSAGE,
        }
    }

    /// The largest message of any method: tonic's own limit, a backstop.
    pub fn largest_message(&self) -> usize {
        LARGE_MESSAGES
            .iter()
            .map(|(_, limit)| self.bytes(*limit))
            .fold(SMALL_MESSAGE, usize::max)
    }

    /// Refuses settings under which a valid request of some method could
    /// never be served: its largest message would not fit the budget.
    pub fn check(&self) -> Result<(), BudgetError> {
        let budget = self.max_request_bytes_in_flight;
        for (method, limit) in LARGE_MESSAGES {
            let needs = self.bytes(*limit);
            if needs > budget {
                let hint = match limit {
                    Limit::LayerDigests => "lower --max-layer-digests or raise the budget",
                    Limit::Bytes(_) => "raise the budget",
                };
                return Err(BudgetError {
                    method,
                    needs,
                    budget,
                    hint,
                });
            }
        }
        Ok(())
    }

    fn bytes(&self, limit: Limit) -> usize {
        match limit {
            Limit::Bytes(bytes) => bytes,
            Limit::LayerDigests => self
                .max_layer_digests
                .saturating_mul(LAYER_DIGEST_WIRE_BYTES)
                .saturating_add(FIELDS),
        }
    }
}

#[cfg(test)]
mod tests;
