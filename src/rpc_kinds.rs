//! Which methods of the served protos stream, read once from their
//! descriptors: client-streaming ones (their global slot is taken with the
//! headers, `rpc_layer`) and server-streaming ones (their answer is bounded by
//! the deadline alone, and the budget holds their request bytes until the
//! answer ends, `budget`). A leaf: it imports only the generated protos.

use std::sync::LazyLock;

/// The paths of the served protos' methods that stream requests
/// (client-streaming: their slot is taken with the headers) and answers
/// (server-streaming: their answer is bounded by the deadline alone).
static STREAMING: LazyLock<(Vec<String>, Vec<String>)> = LazyLock::new(|| {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET) else {
        return (Vec::new(), Vec::new());
    };
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                if method.client_streaming() {
                    client.push(path.clone());
                }
                if method.server_streaming() {
                    server.push(path);
                }
            }
        }
    }
    (client, server)
});

/// Whether `path` names a client-streaming method.
pub fn is_client_streaming(path: &str) -> bool {
    STREAMING.0.iter().any(|method| method == path)
}

/// Whether `path` names a server-streaming method.
pub fn is_server_streaming(path: &str) -> bool {
    STREAMING.1.iter().any(|method| method == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_methods_come_from_the_descriptors() {
        assert!(is_client_streaming("/ecr.v1.EcrService/PushLayer"));
        assert!(is_server_streaming("/ecr.v1.EcrService/PushLayer"));
        assert!(is_server_streaming("/ecr.v1.EcrService/PullLayer"));
        assert!(is_server_streaming(
            "/ecr.v1.EcrService/BatchCheckLayerAvailability"
        ));
        for unary in ["DescribeRepositories", "PutImage"] {
            let path = format!("/ecr.v1.EcrService/{unary}");
            assert!(
                !is_client_streaming(&path) && !is_server_streaming(&path),
                "{path}"
            );
        }
        assert!(!is_client_streaming(
            "/ecr.v1.EcrService/BatchCheckLayerAvailability"
        ));
    }
}
