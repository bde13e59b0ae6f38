//! GetAuthorizationToken: one `docker login` credential per registry.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::emulator::clock::now_secs;
use crate::emulator::error::ApiError;
use crate::emulator::secret::random_bytes;
use crate::emulator::validate;
use crate::model::{REGISTRY_IDS_MAX, REGISTRY_IDS_MIN};

/// Doc: an authorization token lasts 12 hours.
pub const TOKEN_LIFETIME_SECS: f64 = 12.0 * 3600.0;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInput {
    registry_ids: Option<Vec<String>>,
}

pub fn get_token(ctx: &Ctx<'_>, input: TokenInput) -> Result<Value, ApiError> {
    if let Some(ids) = &input.registry_ids {
        validate::items("registryIds", ids, REGISTRY_IDS_MIN, REGISTRY_IDS_MAX)?;
        for (i, id) in ids.iter().enumerate() {
            validate::registry_id(&format!("registryIds[{i}]"), &Some(id.clone()))?;
        }
    }
    let default = [ctx.shared.config.account_id.clone()];
    let registries = input.registry_ids.as_deref().unwrap_or(&default);
    let expires_at = now_secs() + TOKEN_LIFETIME_SECS;
    let data: Vec<Value> = registries
        .iter()
        .map(|registry| {
            // The password is random and never checked: the emulator serves
            // no registry (docker) API that would take it.
            let password = STANDARD.encode(random_bytes::<48>());
            json!({
                "authorizationToken": STANDARD.encode(format!("AWS:{password}")),
                "expiresAt": expires_at,
                "proxyEndpoint": format!("https://{registry}.dkr.ecr.{}.amazonaws.com", ctx.region()),
            })
        })
        .collect();
    Ok(json!({ "authorizationData": data }))
}
