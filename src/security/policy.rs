//! The authorization policy: which caller may call which actions on which
//! repositories, parsed from TOML (format in the [module docs](super)).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::Error;
use super::identity::{Identity, token_digest};
use super::scope::ACTIONS;

/// A parsed, validated policy. Its `Debug` shows counts only: token digests
/// stay out of logs.
#[derive(Default)]
pub struct Policy {
    grants: HashMap<Identity, Vec<Grant>>,
    /// SHA-256 of each bearer token → the caller's name.
    tokens: HashMap<[u8; 32], String>,
}

/// One `[[caller]]` entry: these actions on these repository patterns.
#[derive(Debug)]
struct Grant {
    /// `None` means every action (`"*"`).
    actions: Option<Vec<&'static str>>,
    repositories: Vec<String>,
}

/// Why a policy text was refused (no secret is ever quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
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
}

impl Policy {
    /// Reads and parses the policy file at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            what: "policy file",
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|err| Error::Invalid {
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
        for (index, entry) in file.caller.into_iter().enumerate() {
            let at = |reason: String| PolicyError(format!("caller[{index}]: {reason}"));
            let identity = policy.identity_of(&entry).map_err(at)?;
            let grant = Grant::from_entry(entry).map_err(at)?;
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

    /// Whether `identity` may call `action`: on `repository` when given, on
    /// at least one repository pattern otherwise.
    pub fn allows(&self, identity: &Identity, action: &str, repository: Option<&str>) -> bool {
        self.grants_for(identity, action)
            .any(|grant| match repository {
                Some(name) => grant.repositories.iter().any(|p| glob_match(p, name)),
                None => true,
            })
    }

    /// Whether `identity` may call `action` on every repository (a pattern
    /// that is exactly `*`).
    pub fn allows_every_repository(&self, identity: &Identity, action: &str) -> bool {
        self.grants_for(identity, action)
            .any(|grant| grant.repositories.iter().any(|p| p == "*"))
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

impl Grant {
    fn from_entry(entry: CallerEntry) -> Result<Self, String> {
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
                ACTIONS
                    .iter()
                    .copied()
                    .find(|known| known == action)
                    .ok_or_else(|| {
                        format!("unknown action {action:?} (expected an rpc name or \"*\")")
                    })
            });
            Some(known.collect::<Result<Vec<_>, _>>()?)
        };
        Ok(Grant {
            actions,
            repositories: entry.repositories,
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
