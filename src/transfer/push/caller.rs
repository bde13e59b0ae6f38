//! The caller's side of a push: its header first, then chunks until it
//! half-closes, each within the idle timeout; the sizes they add up to
//! checked against the header's `total_size`.

use bytes::Bytes;
use tokio::time::timeout;
use tonic::{Code, Status, Streaming};

use crate::error::{self, Error};
use crate::pb;
use crate::pb::push_layer_request::Message as Incoming;

/// Reads the first message of a push, which must be its header, waiting at
/// most `idle` for it.
pub async fn read_header(
    incoming: &mut Streaming<pb::PushLayerRequest>,
    idle: std::time::Duration,
) -> Result<pb::PushLayerHeader, Status> {
    let first = timeout(idle, incoming.message())
        .await
        .map_err(|_| caller_idle())??;
    match first.and_then(|m| m.message) {
        Some(Incoming::Header(header)) => Ok(header),
        Some(Incoming::Chunk(_)) => Err(Error::invalid_field(
            "header",
            "must be the first message, before any chunk",
        )
        .into()),
        None => Err(Error::invalid_field("header", "is required: the stream had no header").into()),
    }
}

fn caller_idle() -> Error {
    Error::facade(
        Code::DeadlineExceeded,
        error::REASON_CALLER_IDLE,
        "the caller sent nothing for too long; the transfer was abandoned",
    )
}

/// The caller's next chunk, `None` once it half-closed: an error when it
/// sends nothing for `idle`, breaks the stream, or sends anything but a chunk.
pub(super) async fn next_chunk(
    incoming: &mut Streaming<pb::PushLayerRequest>,
    idle: std::time::Duration,
) -> Result<Option<Bytes>, Error> {
    let message = match timeout(idle, incoming.message()).await {
        Err(_) => return Err(caller_idle()),
        Ok(Err(status)) => return Err(caller_broke(&status)),
        Ok(Ok(None)) => return Ok(None),
        Ok(Ok(Some(message))) => message,
    };
    match message.message {
        Some(Incoming::Chunk(chunk)) => Ok(Some(chunk)),
        Some(Incoming::Header(_)) => Err(Error::invalid_field(
            "header",
            "must be sent once, as the first message",
        )),
        None => Err(Error::invalid_field(
            "message",
            "is required: a header or a chunk",
        )),
    }
}

/// Refuses a push whose chunks so far, `received` bytes, exceed the
/// header's `total_size`.
pub(super) fn within_total(total_size: Option<u64>, received: u64) -> Result<(), Error> {
    if let Some(total) = total_size
        && received > total
    {
        return Err(Error::invalid_field(
            "header.total_size",
            format!("the chunks sent exceed it ({total} bytes); nothing was committed"),
        ));
    }
    Ok(())
}

/// Refuses a finished push whose chunks, `received` bytes, are not the
/// header's `total_size`.
pub(super) fn at_total(total_size: Option<u64>, received: u64) -> Result<(), Error> {
    if let Some(total) = total_size
        && received != total
    {
        return Err(Error::invalid_field(
            "header.total_size",
            format!(
                "the chunks sent add up to {received} bytes, not {total}; nothing was committed"
            ),
        ));
    }
    Ok(())
}

/// The caller's stream broke (reset, cancelled, malformed): the push stops
/// where ECR's checkpoint is and can be resumed.
fn caller_broke(status: &Status) -> Error {
    tracing::debug!(code = ?status.code(), "push stream broke");
    Error::facade(
        Code::Cancelled,
        error::REASON_CALLER_CANCELLED,
        "the push stream broke; resume it with its upload id",
    )
}
