//! The open services: gRPC health and reflection, which every caller may
//! call. Kubernetes probes and `grpcurl list` carry no credentials and must
//! answer whatever the load, so these methods are never authenticated
//! ([`crate::security::AuthLayer`]), never shed ([`crate::rpc_layer`]) and
//! never charged to the budget of request bytes ([`crate::budget`]); their
//! messages are tiny.

/// The open methods the server serves (health v1, reflection v1 and
/// v1alpha).
pub const OPEN_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Whether `path` is a method of health or reflection (any version, so a
/// newer reflection is open as soon as it is served).
pub fn is_open_method(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;

    #[test]
    fn health_and_reflection_are_open_and_no_ecr_action_is() {
        for path in OPEN_METHODS {
            assert!(is_open_method(path), "{path}");
        }
        for action in Action::ALL {
            assert!(!is_open_method(action.method()), "{}", action.method());
        }
        // A prefix alone is not a service of its own.
        assert!(!is_open_method("/grpc.healthy.Fake/Check"));
        assert!(!is_open_method("/ecr.v1.EcrService/grpc.health.v1.Health"));
    }
}
