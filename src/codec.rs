//! The protobuf codec of `ecr.v1` (set in `build.rs`): prost's, except that
//! a request message that does not decode is INVALID_ARGUMENT — the caller
//! sent bad bytes — rather than tonic's INTERNAL, which tells the caller
//! the facade failed and invites a retry of the same bytes.
//!
//! The generated client uses the same codec; a response that does not
//! decode stays INTERNAL there (gRPC's code for it). Requests are told apart
//! by their type's name: every request message of `ecr.v1` ends in
//! `Request` (`PushLayerRequest` included), no response or nested type does.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use crate::error::Error;

/// [`ProstCodec`] with request decode errors as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct FacadeCodec<T, U> {
    prost: ProstCodec<T, U>,
}

impl<T, U> Default for FacadeCodec<T, U> {
    fn default() -> Self {
        Self {
            prost: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for FacadeCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = FacadeDecoder<<ProstCodec<T, U> as Codec>::Decoder, U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.prost.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        FacadeDecoder {
            prost: self.prost.decoder(),
            decoded: PhantomData,
        }
    }
}

/// The decoder of [`FacadeCodec`].
#[derive(Debug)]
pub struct FacadeDecoder<D, U> {
    prost: D,
    decoded: PhantomData<fn() -> U>,
}

impl<D, U> Decoder for FacadeDecoder<D, U>
where
    D: Decoder<Item = U, Error = Status>,
{
    type Item = U;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.prost.decode(src).map_err(|status| {
            if status.code() == Code::Internal && is_request::<U>() {
                // prost's message names the field and wire problem, never
                // the bytes themselves.
                Error::malformed(format!("malformed request message: {}", status.message()))
                    .to_status()
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.prost.buffer_settings()
    }
}

/// Whether `U` is a request message of `ecr.v1`.
fn is_request<U>() -> bool {
    std::any::type_name::<U>().ends_with("Request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn requests_are_told_from_responses_by_name() {
        assert!(is_request::<pb::CreateRepositoryRequest>());
        assert!(is_request::<pb::BatchCheckLayerAvailabilityRequest>());
        assert!(!is_request::<pb::CreateRepositoryResponse>());
        assert!(!is_request::<pb::Repository>());
    }
}
