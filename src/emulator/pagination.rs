//! `maxResults` / `nextToken` paging for DescribeRepositories, DescribeImages
//! and ListImages.
//!
//! Entries carry a sort key that orders them the way they are listed
//! (repository name; zero-padded push sequence). A token names the last key
//! served, so a page resumes right after it even when entries were added or
//! removed in between. Tokens are opaque to callers: base64url of
//! `{operation, scope, after}` plus an HMAC-SHA256 under a per-process key,
//! so a token from another operation, repository or process (or a tampered
//! one) is an `InvalidParameterException`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::ApiError;
use super::operation::Operation;

/// Issues and checks page tokens.
#[derive(Clone)]
pub struct Tokens {
    key: [u8; 32],
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "o")]
    operation: String,
    #[serde(rename = "s")]
    scope: String,
    #[serde(rename = "a")]
    after: String,
}

/// One page of entries.
#[derive(Debug, PartialEq)]
pub struct Page<T> {
    /// The entries of this page.
    pub items: Vec<T>,
    /// The key of the last entry served, when more entries follow.
    pub more_after: Option<String>,
}

impl Tokens {
    /// Tokens signed with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(payload.as_bytes());
        mac
    }

    /// A token resuming `op` in `scope` after the entry keyed `after`.
    pub fn issue(&self, op: Operation, scope: &str, after: &str) -> String {
        let claims = Claims {
            operation: op.name().to_owned(),
            scope: scope.to_owned(),
            after: after.to_owned(),
        };
        let json = serde_json::to_vec(&claims).expect("claims serialize");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The `after` key of a token issued by [`Tokens::issue`] for `op` in
    /// `scope`; anything else is an `InvalidParameterException`.
    pub fn redeem(&self, op: Operation, scope: &str, token: &str) -> Result<String, ApiError> {
        let invalid = || {
            ApiError::constraint(
                "nextToken",
                "must be a token returned by a previous call with the same parameters",
            )
        };
        let (payload, signature) = token.split_once('.').ok_or_else(invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| invalid())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if claims.operation != op.name() || claims.scope != scope {
            return Err(invalid());
        }
        Ok(claims.after)
    }
}

/// The page of at most `max` entries that follows the key `after` (from the
/// start when `None`). `entries` must be sorted by key.
pub fn page<T>(
    entries: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    max: usize,
) -> Page<T> {
    let mut rest = entries
        .into_iter()
        .skip_while(|(key, _)| after.is_some_and(|after| key.as_str() <= after))
        .peekable();
    let mut items = Vec::new();
    let mut last = None;
    while items.len() < max {
        match rest.next() {
            Some((key, item)) => {
                items.push(item);
                last = Some(key);
            }
            None => break,
        }
    }
    let more_after = if rest.peek().is_some() { last } else { None };
    Page { items, more_after }
}

/// A sort key for a sequence number that orders like the number.
pub fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<(String, u64)> {
        (0..n).map(|i| (seq_key(i), i)).collect()
    }

    #[test]
    fn pages_cover_everything_once() {
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = page(entries(7), after.as_deref(), 3);
            seen.extend(page.items);
            match page.more_after {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn an_exactly_full_last_page_has_no_token() {
        let first = page(entries(4), None, 2);
        assert_eq!(first.more_after.as_deref(), Some(seq_key(1).as_str()));
        let second = page(entries(4), first.more_after.as_deref(), 2);
        assert_eq!(second.items, [2, 3]);
        assert_eq!(second.more_after, None);
        assert_eq!(page(entries(0), None, 2).items, Vec::<u64>::new());
    }

    #[test]
    fn a_deleted_resume_point_still_resumes() {
        let without_two: Vec<_> = entries(5).into_iter().filter(|(_, i)| *i != 2).collect();
        let page = page(without_two, Some(&seq_key(2)), 10);
        assert_eq!(page.items, [3, 4]);
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_operation_and_scope() {
        let tokens = Tokens::new([7; 32]);
        let token = tokens.issue(Operation::ListImages, "123456789012/a", "k1");
        assert_eq!(
            tokens.redeem(Operation::ListImages, "123456789012/a", &token),
            Ok("k1".to_owned())
        );
        assert!(
            tokens
                .redeem(Operation::DescribeImages, "123456789012/a", &token)
                .is_err()
        );
        assert!(
            tokens
                .redeem(Operation::ListImages, "123456789012/b", &token)
                .is_err()
        );
        let other_process = Tokens::new([8; 32]);
        assert!(
            other_process
                .redeem(Operation::ListImages, "123456789012/a", &token)
                .is_err()
        );
    }

    #[test]
    fn forged_or_garbled_tokens_are_invalid_parameters() {
        let tokens = Tokens::new([7; 32]);
        let token = tokens.issue(Operation::ListImages, "s", "k1");
        let (payload, signature) = token.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"o":"ListImages","s":"s","a":"k9"}"#);
        for bad in [
            String::new(),
            "garbage".to_owned(),
            format!("{forged_payload}.{signature}"),
            format!("{payload}.AAAA"),
            format!("{payload}!.{signature}"),
        ] {
            let err = tokens.redeem(Operation::ListImages, "s", &bad).unwrap_err();
            assert_eq!(err.code(), "InvalidParameterException", "{bad}");
        }
    }
}
