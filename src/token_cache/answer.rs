//! Reading ECR's GetAuthorizationToken answer: how long its tokens stay
//! valid and which registry each belongs to.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::Key;
use crate::pb::AuthorizationData;

/// The shortest validity left among `data` (zero when already expired or
/// when an expiry is missing).
pub(super) fn remaining_validity(data: &[AuthorizationData]) -> Duration {
    let now = SystemTime::now();
    data.iter()
        .map(|d| {
            d.expires_at
                .as_ref()
                .and_then(|t| {
                    let expiry = SystemTime::UNIX_EPOCH.checked_add(Duration::new(
                        u64::try_from(t.seconds).ok()?,
                        u32::try_from(t.nanos).ok()?,
                    ))?;
                    expiry.duration_since(now).ok()
                })
                .unwrap_or(Duration::ZERO)
        })
        .min()
        .unwrap_or(Duration::ZERO)
}

/// Splits an upstream answer by registry: by the registry id in each proxy
/// endpoint (`https://<id>.dkr.ecr.<region>.amazonaws.com`), else by position.
pub(super) fn assign(
    keys: &[Key],
    data: Vec<AuthorizationData>,
) -> HashMap<Key, Vec<AuthorizationData>> {
    if keys == [Key::Default] {
        return HashMap::from([(Key::Default, data)]);
    }
    let mut out: HashMap<Key, Vec<AuthorizationData>> = HashMap::new();
    let mut unmatched = Vec::new();
    for item in data {
        let id = item
            .proxy_endpoint
            .as_deref()
            .and_then(registry_of_endpoint);
        match id
            .map(|id| Key::Registry(id.to_owned()))
            .filter(|k| keys.contains(k))
        {
            Some(key) => out.entry(key).or_default().push(item),
            None => unmatched.push(item),
        }
    }
    let mut free_keys = keys
        .iter()
        .filter(|k| !out.contains_key(*k))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter();
    for item in unmatched {
        match free_keys.next() {
            Some(key) => out.entry(key).or_default().push(item),
            None => {
                tracing::warn!("upstream returned a token for a registry nobody asked for; dropped")
            }
        }
    }
    out
}

pub(super) fn registry_of_endpoint(endpoint: &str) -> Option<&str> {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let first = host.split(['.', '/', ':']).next()?;
    crate::model::REGISTRY_ID.is_match(first).then_some(first)
}
