//! The authorization policy: which caller may call which actions on which
//! repositories of which registries, parsed from TOML (format in the
//! [module docs](super)).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::SetupError;
use super::identity::{Identity, token_digest};
use crate::model::Action;

/// A parsed, validated policy. Its `Debug` shows counts only: token digests
/// stay out of logs.
#[derive(Default)]
pub struct Policy {
    grants: HashMap<Identity, Vec<Grant>>,
    /// `own_registry_id`: the facade's own account, which a request may also
    /// name explicitly and still address the own registry.
    own_registry: Option<String>,
    /// SHA-256 of each bearer token → the caller's name.
    tokens: HashMap<[u8; 32], String>,
}

/// One `[[caller]]` entry: these actions on these repository patterns in
/// these registries.
#[derive(Debug)]
struct Grant {
    /// `None` means every action (`"*"`).
    actions: Option<Vec<&'static str>>,
    repositories: Vec<String>,
    registries: RegistryGrant,
}

/// The registries one entry covers (`registries = [...]`).
#[derive(Debug, Default)]
struct RegistryGrant {
    /// `"*"`: every registry.
    any: bool,
    /// `"own"`, the own account's id, or `registries` absent: requests
    /// without `registry_id` (and naming `own_registry_id`).
    own: bool,
    /// Other 12-digit account ids.
    accounts: Vec<String>,
}

/// How a policy names the facade's own registry in `registries`.
pub const OWN_REGISTRY: &str = "own";

/// Why a policy text was refused (no secret is ever quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    own_registry_id: Option<String>,
    #[serde(default)]
    caller: Vec<CallerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerEntry {
    certificate: Option<String>,
    name: Option<String>,
    token_sha256: Option<String>,
    actions: Vec<String>,
    repositories: Vec<String>,
    registries: Option<Vec<String>>,
}

impl Policy {
    /// Reads and parses the policy file at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Self, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|source| SetupError::Read {
            what: "policy file",
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|err| SetupError::Invalid {
            what: "policy file",
            path: path.to_owned(),
            reason: err.to_string(),
        })
    }

    /// Parses and validates a policy text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| {
                text[..span.start.min(text.len())].matches('\n').count() + 1
            });
            PolicyError(format!("line {line}: {}", e.message()))
        })?;
        let mut policy = Policy::default();
        if let Some(own) = file.own_registry_id {
            if !is_account_id(&own) {
                return Err(PolicyError(
                    "own_registry_id must be a 12-digit aws account id".to_owned(),
                ));
            }
            policy.own_registry = Some(own);
        }
        for (index, entry) in file.caller.into_iter().enumerate() {
            let at = |reason: String| PolicyError(format!("caller[{index}]: {reason}"));
            let identity = policy.identity_of(&entry).map_err(at)?;
            let grant = Grant::from_entry(entry, policy.own_registry.as_deref()).map_err(at)?;
            policy.grants.entry(identity).or_default().push(grant);
        }
        Ok(policy)
    }

    /// Registers the token of `entry` (if any) and returns whose grant it is.
    fn identity_of(&mut self, entry: &CallerEntry) -> Result<Identity, String> {
        match (&entry.certificate, &entry.name, &entry.token_sha256) {
            (Some(san), None, None) if !san.is_empty() => Ok(Identity::Certificate(san.clone())),
            (None, Some(name), Some(digest_hex)) if !name.is_empty() => {
                let digest = parse_digest(digest_hex)?;
                match self.tokens.get(&digest) {
                    Some(other) if other != name => Err(format!(
                        "token_sha256 is already the token of caller {other:?}"
                    )),
                    _ => {
                        self.tokens.insert(digest, name.clone());
                        Ok(Identity::Token(name.clone()))
                    }
                }
            }
            _ => Err(
                "set either `certificate` (a client certificate's uri or dns san) \
                 or both `name` and `token_sha256`"
                    .to_owned(),
            ),
        }
    }

    /// The caller whose bearer token is `token`, if the policy knows it.
    pub fn token_identity(&self, token: &str) -> Option<Identity> {
        self.tokens
            .get(&token_digest(token))
            .map(|name| Identity::Token(name.clone()))
    }

    /// Whether `identity` may call `action` in the own registry: on
    /// `repository` when given, on at least one repository pattern otherwise.
    pub fn allows(&self, identity: &Identity, action: &str, repository: Option<&str>) -> bool {
        self.allows_in(identity, action, None, repository)
    }

    /// [`allows`](Self::allows) in `registry` (`None`: the own registry).
    pub fn allows_in(
        &self,
        identity: &Identity,
        action: &str,
        registry: Option<&str>,
        repository: Option<&str>,
    ) -> bool {
        self.grants_in(identity, action, registry)
            .any(|grant| match repository {
                Some(name) => grant.repositories.iter().any(|p| glob_match(p, name)),
                None => true,
            })
    }

    /// Whether `identity` may call `action` on every repository (a pattern
    /// that is exactly `*`) of the own registry.
    pub fn allows_every_repository(&self, identity: &Identity, action: &str) -> bool {
        self.allows_every_repository_in(identity, action, None)
    }

    /// [`allows_every_repository`](Self::allows_every_repository) in
    /// `registry` (`None`: the own registry).
    pub fn allows_every_repository_in(
        &self,
        identity: &Identity,
        action: &str,
        registry: Option<&str>,
    ) -> bool {
        self.grants_in(identity, action, registry)
            .any(|grant| grant.repositories.iter().any(|p| p == "*"))
    }

    /// Whether `registry` (a request's `registry_id`) is the own registry:
    /// absent, or the policy's `own_registry_id`.
    pub fn is_own_registry(&self, registry: Option<&str>) -> bool {
        registry.is_none_or(|id| self.own_registry.as_deref() == Some(id))
    }

    /// The grants of `identity` for `action` that cover `registry`.
    fn grants_in<'a>(
        &'a self,
        identity: &Identity,
        action: &'a str,
        registry: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        let own = self.is_own_registry(registry);
        self.grants_for(identity, action).filter(move |grant| {
            let covered = &grant.registries;
            covered.any
                || (own && covered.own)
                || registry.is_some_and(|id| covered.accounts.iter().any(|a| a == id))
        })
    }

    /// Number of distinct callers the policy names.
    pub fn callers(&self) -> usize {
        self.grants.len()
    }

    fn grants_for<'a>(
        &'a self,
        identity: &Identity,
        action: &'a str,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants
            .get(identity)
            .into_iter()
            .flatten()
            .filter(move |grant| {
                grant
                    .actions
                    .as_ref()
                    .is_none_or(|actions| actions.contains(&action))
            })
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("callers", &self.grants.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl RegistryGrant {
    /// Parses `registries` (absent: the own registry only).
    fn from_entry(registries: Option<Vec<String>>, own: Option<&str>) -> Result<Self, String> {
        let Some(registries) = registries else {
            return Ok(Self {
                own: true,
                ..Self::default()
            });
        };
        if registries.is_empty() {
            return Err("registries must not be empty (omit it for the own registry)".to_owned());
        }
        let mut grant = Self::default();
        for (index, registry) in registries.into_iter().enumerate() {
            match registry.as_str() {
                "*" => grant.any = true,
                OWN_REGISTRY => grant.own = true,
                id if Some(id) == own => grant.own = true,
                id if is_account_id(id) => grant.accounts.push(registry),
                _ => {
                    return Err(format!(
                        "registries[{index}] must be a 12-digit aws account id, \"{OWN_REGISTRY}\" or \"*\""
                    ));
                }
            }
        }
        Ok(grant)
    }
}

/// Whether `id` looks like an AWS account id (ECR's registry id): 12 digits.
fn is_account_id(id: &str) -> bool {
    crate::model::REGISTRY_ID.is_match(id)
}

impl Grant {
    fn from_entry(entry: CallerEntry, own_registry: Option<&str>) -> Result<Self, String> {
        if entry.actions.is_empty() {
            return Err("actions must not be empty".to_owned());
        }
        if entry.repositories.is_empty() {
            return Err("repositories must not be empty".to_owned());
        }
        if let Some(empty) = entry.repositories.iter().position(String::is_empty) {
            return Err(format!("repositories[{empty}] must not be empty"));
        }
        let actions = if entry.actions.iter().any(|a| a == "*") {
            None
        } else {
            let known = entry.actions.iter().map(|action| {
                Action::from_name(action).map(Action::name).ok_or_else(|| {
                    format!("unknown action {action:?} (expected an rpc name or \"*\")")
                })
            });
            Some(known.collect::<Result<Vec<_>, _>>()?)
        };
        Ok(Grant {
            actions,
            repositories: entry.repositories,
            registries: RegistryGrant::from_entry(entry.registries, own_registry)?,
        })
    }
}

/// A SHA-256 digest written as 64 hex digits (the value is never quoted back).
fn parse_digest(text: &str) -> Result<[u8; 32], String> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest)
        .map_err(|_| "token_sha256 must be 64 hex digits (a sha-256 digest)".to_owned())?;
    Ok(digest)
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters
/// (`/` included, as in IAM resource patterns) and everything else is literal.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was and which name position it currently absorbs up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star, absorbed)) = backtrack {
            p = star + 1;
            n = absorbed + 1;
            backtrack = Some((star, n));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests;
