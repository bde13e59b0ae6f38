//! The authorization decision: `--read-only`, then the policy in force.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::identity::Identity;
use super::layer::AuthLayer;
use super::scope::{RepositoryScoped, Scope, is_mutating};
use super::store::PolicyStore;
use crate::error::FACADE_DOMAIN;

/// `ErrorInfo.reason` when the policy does not grant the call.
pub const REASON_NOT_ALLOWED: &str = "ACTION_NOT_ALLOWED";
/// `ErrorInfo.reason` when `--read-only` refuses a mutating action.
pub const REASON_READ_ONLY: &str = "READ_ONLY";
/// `ErrorInfo.reason` when a policy is in force and the caller is unknown.
pub const REASON_UNAUTHENTICATED: &str = "UNAUTHENTICATED";

/// Decides whether a caller may make a call. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Authorizer {
    store: Arc<PolicyStore>,
    read_only: bool,
}

impl Default for Authorizer {
    fn default() -> Self {
        Self::allow_all()
    }
}

impl Authorizer {
    /// Decisions by the policy of `store`, refusing mutations if `read_only`.
    pub fn new(store: Arc<PolicyStore>, read_only: bool) -> Self {
        Self { store, read_only }
    }

    /// No policy, not read-only: every call is allowed.
    pub fn allow_all() -> Self {
        Self::new(Arc::new(PolicyStore::open()), false)
    }

    /// The policy store (reload it on SIGHUP with
    /// [`watch_sighup`](super::watch_sighup)).
    pub fn store(&self) -> &Arc<PolicyStore> {
        &self.store
    }

    /// Whether mutating actions are refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The tower layer that authenticates callers for this authorizer.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }

    /// One line for the startup log describing how calls are authorized.
    pub fn startup_message(&self) -> String {
        let mode = if self.read_only {
            "read-only: mutating actions are refused"
        } else {
            "read-write"
        };
        match (self.store.current(), self.store.path()) {
            (Some(policy), Some(path)) => format!(
                "authorization policy {} in force ({} callers); {mode}",
                path.display(),
                policy.callers()
            ),
            _ => format!(
                "no authorization policy configured: every caller may call every action; {mode}"
            ),
        }
    }

    /// Authorizes a decoded request: its caller (from the extensions the
    /// auth layer filled), action and repositories. Call it in each handler
    /// before anything is sent upstream.
    pub fn authorize_request<R: RepositoryScoped>(
        &self,
        request: &tonic::Request<R>,
    ) -> Result<(), Status> {
        let identity = Identity::of(request.extensions());
        self.authorize(identity, R::ACTION, request.get_ref().scope())
    }

    /// Whether `identity` may call `action` on `scope`: UNAUTHENTICATED
    /// without an identity while a policy is in force, PERMISSION_DENIED
    /// (with a `google.rpc.ErrorInfo`) when refused.
    pub fn authorize(
        &self,
        identity: Option<&Identity>,
        action: &str,
        scope: Scope<'_>,
    ) -> Result<(), Status> {
        if self.read_only && is_mutating(action) {
            return Err(denied(
                REASON_READ_ONLY,
                format!(
                    "the facade is read-only: {action}{} is refused",
                    target(scope)
                ),
                action,
                scope_label(scope),
                identity,
            ));
        }
        let Some(policy) = self.store.current() else {
            return Ok(());
        };
        let Some(identity) = identity else {
            return Err(unauthenticated(
                "no credentials: present a client certificate or a bearer token",
            ));
        };
        // The part of the scope the policy does not grant, if any.
        let refused = match scope {
            Scope::Registry => (!policy.allows_every_repository(identity, action)).then_some(scope),
            Scope::Repository(name) => {
                (!policy.allows(identity, action, Some(name))).then_some(scope)
            }
            Scope::Repositories([]) => {
                (!policy.allows_every_repository(identity, action)).then_some(scope)
            }
            Scope::Repositories(names) => names
                .iter()
                .find(|name| !policy.allows(identity, action, Some(name)))
                .map(|name| Scope::Repository(name)),
        };
        match refused {
            Some(refused) => Err(not_allowed(identity, action, refused)),
            None => Ok(()),
        }
    }
}

/// PERMISSION_DENIED: the policy does not grant `action` on `scope`.
fn not_allowed(identity: &Identity, action: &str, scope: Scope<'_>) -> Status {
    denied(
        REASON_NOT_ALLOWED,
        format!("caller {identity} may not call {action}{}", target(scope)),
        action,
        scope_label(scope),
        Some(identity),
    )
}

/// What a message says the call was on.
fn target(scope: Scope<'_>) -> String {
    match scope {
        Scope::Registry => " (a token valid on every repository)".to_owned(),
        Scope::Repository(name) => format!(" on repository {name:?}"),
        Scope::Repositories([]) => " on every repository".to_owned(),
        Scope::Repositories(names) => format!(" on repositories {names:?}"),
    }
}

/// The `repository` an ErrorInfo names (`*`: every repository).
fn scope_label(scope: Scope<'_>) -> String {
    match scope {
        Scope::Registry => String::new(),
        Scope::Repository(name) => name.to_owned(),
        Scope::Repositories([]) => "*".to_owned(),
        Scope::Repositories(names) => names.join(","),
    }
}

/// PERMISSION_DENIED with an `ErrorInfo` naming the action and repository.
fn denied(
    reason: &str,
    message: String,
    action: &str,
    repository: String,
    identity: Option<&Identity>,
) -> Status {
    let mut metadata = HashMap::from([("action".to_owned(), action.to_owned())]);
    if !repository.is_empty() {
        metadata.insert("repository".to_owned(), repository);
    }
    if let Some(identity) = identity {
        metadata.insert("caller".to_owned(), identity.to_string());
    }
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(reason, FACADE_DOMAIN, metadata),
    )
}

/// UNAUTHENTICATED with an `ErrorInfo` (reason `UNAUTHENTICATED`).
pub fn unauthenticated(message: &str) -> Status {
    Status::with_error_details(
        Code::Unauthenticated,
        message,
        ErrorDetails::with_error_info(REASON_UNAUTHENTICATED, FACADE_DOMAIN, []),
    )
}

#[cfg(test)]
mod tests;
