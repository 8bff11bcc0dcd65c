//! What an application learns about a person: the ID token's claims and userinfo's.
//!
//! `sub` is the user's row id (a UUID): stable across logins and renames, and never the user name.
//! `company_id` and `company_name` are always given (the product's applications need the tenant);
//! `profile` adds the names, `email` the address (verified: the registration mail proved it).
//! Only an active user of an active client gets claims.

use crate::idm::Core;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::clients::ClientRow;
use crate::store::users::{NamesUser, UserRow, UserStatus};
use serde_json::{Map, Value, json};

/// Whether a space-separated scope holds `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split_whitespace().any(|s| s == name)
}

/// The user and their client, when both are active (the only holders whose tokens work).
pub async fn active_holder(
    core: &Core,
    holder: &impl NamesUser,
) -> ServiceResult<Option<(UserRow, ClientRow)>> {
    let Some(user) = core
        .store
        .user_of(holder)
        .await
        .context("reading a token's user")?
    else {
        return Ok(None);
    };
    if user.status() != UserStatus::Active {
        return Ok(None);
    }
    let Some(client) = core
        .store
        .client_by_id(&user.client_id)
        .await
        .context("reading a token's client")?
    else {
        return Ok(None);
    };
    Ok(client.is_active().then_some((user, client)))
}

/// The claims about the person that `scope` allows, with `sub`.
fn person_claims(user: &UserRow, client: &ClientRow, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id.as_str()));
    claims.insert("company_id".into(), json!(client.company_id));
    claims.insert("company_name".into(), json!(client.name));
    if has_scope(scope, "profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        let name = format!("{} {}", user.first_name.trim(), user.last_name.trim());
        let name = name.trim();
        if !name.is_empty() {
            claims.insert("name".into(), json!(name));
        }
        if !user.first_name.trim().is_empty() {
            claims.insert("given_name".into(), json!(user.first_name.trim()));
        }
        if !user.last_name.trim().is_empty() {
            claims.insert("family_name".into(), json!(user.last_name.trim()));
        }
    }
    if has_scope(scope, "email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified()));
    }
    claims
}

/// A signed ID token for `client_id` about `user_id`. The caller has checked that the user may
/// have one; a user who is gone or inactive by now gets none (`NotFound`).
#[allow(clippy::too_many_arguments)]
pub async fn id_token(
    core: &Core,
    holder: &impl NamesUser,
    client_id: &str,
    scope: &str,
    nonce: Option<&str>,
    auth_time: i64,
    amr: &[String],
    sid: Option<&str>,
) -> ServiceResult<String> {
    let (user, client) = active_holder(core, holder)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let now = core.clock.now();
    let mut claims = person_claims(&user, &client, scope);
    claims.insert("iss".into(), json!(super::issuer(core)));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("azp".into(), json!(client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + super::ID_TOKEN_SECS));
    claims.insert("auth_time".into(), json!(auth_time));
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if !amr.is_empty() {
        claims.insert("amr".into(), json!(amr));
    }
    if let Some(sid) = sid {
        claims.insert("sid".into(), json!(sid));
    }
    crate::idm::signing::sign(core, &Value::Object(claims), "JWT").await
}

/// Userinfo's claims for a token of `scope`; `None` when the user is gone or not active (or
/// their client is not).
pub async fn userinfo(
    core: &Core,
    holder: &impl NamesUser,
    scope: &str,
) -> ServiceResult<Option<Map<String, Value>>> {
    Ok(active_holder(core, holder)
        .await?
        .map(|(user, client)| person_claims(&user, &client, scope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_matched_by_whole_words() {
        assert!(has_scope("openid profile email", "email"));
        assert!(!has_scope("openid profile", "email"));
        assert!(!has_scope("openid emails", "email"));
        assert!(has_scope("  openid\temail ", "email"));
    }
}
