//! Generated protobuf code for `ecr.v1` and the descriptor set served by
//! reflection.

use std::fmt;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    tonic::include_proto!("ecr.v1");
}

pub use generated::*;

/// Encoded `FileDescriptorSet` with `ecr.v1` and the `google.rpc` error
/// details, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ecr_descriptor");

/// `AuthorizationData` holds a registry password: its `Debug` output shows
/// only whether a token is present, never the token itself.
impl fmt::Debug for AuthorizationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationData")
            .field(
                "authorization_token",
                &self.authorization_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("proxy_endpoint", &self.proxy_endpoint)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_data_debug_hides_the_token() {
        let data = AuthorizationData {
            authorization_token: Some("QVdTOnNlY3JldC1wYXNzd29yZA==".to_owned()),
            expires_at: None,
            proxy_endpoint: Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
        };
        let shown = format!(
            "{data:?} {:?}",
            GetAuthorizationTokenResponse {
                authorization_data: vec![data.clone()],
            }
        );
        assert!(!shown.contains("QVdTOnNlY3JldC1wYXNzd29yZA"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("123456789012.dkr.ecr"));
    }
}
