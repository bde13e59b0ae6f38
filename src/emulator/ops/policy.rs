//! The check SetRepositoryPolicy applies to `policyText`, as ECR (IAM's
//! policy grammar) applies it: a JSON object whose `Statement` is one
//! statement or a non-empty list of them; each statement an object with
//! `Effect` exactly `Allow` or `Deny`, one of `Principal` / `NotPrincipal`
//! (`"*"` or an object) and one of `Action` / `NotAction` (a string or a
//! non-empty list of strings); `Version`, when present, `2008-10-17` or
//! `2012-10-17`. Anything else is ECR's one answer, "Invalid repository
//! policy provided" — ECR does not say which rule failed, so neither does the
//! emulator. Resources, conditions and action names are not checked.

use serde_json::{Map, Value};

use crate::emulator::error::ApiError;

/// The policy versions IAM knows.
const VERSIONS: [&str; 2] = ["2008-10-17", "2012-10-17"];

/// Checks `text`; the error is ECR's InvalidParameterException.
pub fn check(text: &str) -> Result<(), ApiError> {
    if is_valid(text) {
        Ok(())
    } else {
        Err(ApiError::constraint(
            "PolicyText",
            "Invalid repository policy provided",
        ))
    }
}

fn is_valid(text: &str) -> bool {
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let version_ok = match doc.get("Version") {
        None => true,
        Some(Value::String(v)) => VERSIONS.contains(&v.as_str()),
        Some(_) => false,
    };
    let statements_ok = match doc.get("Statement") {
        Some(Value::Array(list)) => !list.is_empty() && list.iter().all(statement_ok),
        Some(single @ Value::Object(_)) => statement_ok(single),
        _ => false,
    };
    version_ok && statements_ok
}

fn statement_ok(statement: &Value) -> bool {
    let Value::Object(statement) = statement else {
        return false;
    };
    let effect_ok = matches!(
        statement.get("Effect").and_then(Value::as_str),
        Some("Allow" | "Deny")
    );
    effect_ok
        && exactly_one(statement, "Principal", "NotPrincipal", principal_ok)
        && exactly_one(statement, "Action", "NotAction", strings_ok)
}

/// `key` or `not_key` (never both, never neither), its value passing `ok`.
fn exactly_one(
    statement: &Map<String, Value>,
    key: &str,
    not_key: &str,
    ok: fn(&Value) -> bool,
) -> bool {
    match (statement.get(key), statement.get(not_key)) {
        (Some(value), None) | (None, Some(value)) => ok(value),
        _ => false,
    }
}

/// `"*"`, or a map such as `{"AWS": "arn:..."}` / `{"Service": [...]}`
/// whose values are strings or non-empty string lists.
fn principal_ok(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(map) => !map.is_empty() && map.values().all(strings_ok),
        _ => false,
    }
}

/// A non-empty string, or a non-empty list of them.
fn strings_ok(value: &Value) -> bool {
    match value {
        Value::String(s) => !s.is_empty(),
        Value::Array(list) => {
            !list.is_empty()
                && list
                    .iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#;

    #[test]
    fn policies_as_ecr_documents_them_pass() {
        for good in [
            PULL,
            r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:*"}}"#,
            r#"{"Version":"2008-10-17","Id":"x","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":["arn:aws:iam::1:root"]},"NotAction":"ecr:PutImage"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:SourceAccount":"1"}}}]}"#,
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn anything_else_is_an_invalid_policy() {
        for bad in [
            // The two of issue 10.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}]}"#,
            "",
            "not json",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            r#"{"Version":"2012-10-17","Statement":"Allow"}"#,
            r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}"#,
            r#"{"Version":2012,"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"allow","Principal":"*","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Principal":"*","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*","NotAction":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"someone","Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":{},"Action":"ecr:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":[]}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":[1]}}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},"x"]}"#,
        ] {
            let err = check(bad).expect_err(bad);
            assert_eq!(err.code(), "InvalidParameterException");
            assert_eq!(
                err.to_string(),
                "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'",
                "{bad}"
            );
        }
    }
}
