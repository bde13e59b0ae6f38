//! The authorization decision: `--read-only`, then the policy in force, for
//! every registry and repository a request addresses.

use std::sync::Arc;

use tonic::Status;

use super::identity::Identity;
use super::scope::{Registries, RepositoryScoped, Scope};
use super::store::PolicyStore;
use crate::error::{Error, REASON_NOT_ALLOWED, REASON_READ_ONLY};
use crate::model::Action;

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
    /// auth layer filled), action, registries and repositories. Call it in
    /// each handler before anything is sent upstream.
    pub fn authorize_request<R: RepositoryScoped>(
        &self,
        request: &tonic::Request<R>,
    ) -> Result<(), Status> {
        self.authorize_message(request.extensions(), request.get_ref())
    }

    /// Authorizes `message` of the caller whose connection facts are in
    /// `extensions`: for a message that is not the request itself (a stream's
    /// header), with its action, registries and repositories.
    pub fn authorize_message<R: RepositoryScoped>(
        &self,
        extensions: &http::Extensions,
        message: &R,
    ) -> Result<(), Status> {
        let identity = Identity::of(extensions);
        self.authorize_in(
            identity,
            R::ACTION.name(),
            message.registries(),
            message.scope(),
        )
    }

    /// [`authorize_in`](Self::authorize_in) the facade's own registry.
    pub fn authorize(
        &self,
        identity: Option<&Identity>,
        action: &str,
        scope: Scope<'_>,
    ) -> Result<(), Status> {
        self.authorize_in(identity, action, Registries::One(None), scope)
    }

    /// Whether `identity` may call `action` on `scope` in each of
    /// `registries`: UNAUTHENTICATED without an identity while a policy is
    /// in force, PERMISSION_DENIED (with a `google.rpc.ErrorInfo`) when
    /// refused.
    pub fn authorize_in(
        &self,
        identity: Option<&Identity>,
        action: &str,
        registries: Registries<'_>,
        scope: Scope<'_>,
    ) -> Result<(), Status> {
        if self.read_only && Action::from_name(action).is_some_and(Action::is_mutating) {
            return Err(denied(
                REASON_READ_ONLY,
                format!(
                    "the facade is read-only: {action}{} is refused",
                    target(scope)
                ),
                action,
                (scope_label(scope), None),
                identity,
            ));
        }
        let Some(policy) = self.store.current() else {
            return Ok(());
        };
        let Some(identity) = identity else {
            return Err(Error::unauthenticated(
                "no credentials: present a client certificate or a bearer token",
            )
            .to_status());
        };
        for registry in registries.iter() {
            // The part of the scope the policy does not grant, if any.
            let every = || policy.allows_every_repository_in(identity, action, registry);
            let one = |name: &str| policy.allows_in(identity, action, registry, Some(name));
            let refused = match scope {
                Scope::Registry | Scope::Repositories([]) => (!every()).then_some(scope),
                Scope::Repository(name) => (!one(name)).then_some(scope),
                Scope::Repositories(names) => names
                    .iter()
                    .find(|name| !one(name))
                    .map(|name| Scope::Repository(name)),
            };
            if let Some(refused) = refused {
                return Err(not_allowed(identity, action, registry, refused));
            }
        }
        Ok(())
    }
}

/// PERMISSION_DENIED: the policy does not grant `action` on `scope` in
/// `registry` (`None`: the own registry).
fn not_allowed(
    identity: &Identity,
    action: &str,
    registry: Option<&str>,
    scope: Scope<'_>,
) -> Status {
    let within = registry.map_or_else(String::new, |id| format!(" in registry {id:?}"));
    denied(
        REASON_NOT_ALLOWED,
        format!(
            "caller {identity} may not call {action}{}{within}",
            target(scope)
        ),
        action,
        (scope_label(scope), registry),
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

/// PERMISSION_DENIED with an `ErrorInfo` naming the action, repository and
/// (when the request named one) registry.
fn denied(
    reason: &'static str,
    message: String,
    action: &str,
    (repository, registry): (String, Option<&str>),
    identity: Option<&Identity>,
) -> Status {
    let mut metadata = vec![("action", action.to_owned())];
    if !repository.is_empty() {
        metadata.push(("repository", repository));
    }
    if let Some(registry) = registry {
        metadata.push(("registry", registry.to_owned()));
    }
    if let Some(identity) = identity {
        metadata.push(("caller", identity.to_string()));
    }
    Error::permission_denied(reason, message, metadata).to_status()
}

#[cfg(test)]
mod tests;
