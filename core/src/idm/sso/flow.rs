//! The round trip: [`start`] sends the browser to its client's identity provider, [`callback`]
//! takes the flow back (once), verifies the provider's answer and starts the session or records
//! why not.

use super::outcome::{Finished, PersonClaims, SsoFailure, denied, refused};
use super::provider::describe;
use super::provision::{bind_or_refuse, match_user};
use super::settings::{DEFAULT_EMAIL_CLAIM, open_secret, provider_metadata, redirect_url};
use crate::domain::EmailAddress;
use crate::domain::audit::{AuditAction, Event, OUTSIDE_TEXT_MAX, Outcome, clean_text};
use crate::idm::Core;
use crate::idm::principal::{Caller, CookieIntent, Flow};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::token;
use crate::store::clients::ClientRow;
use crate::store::sso::{NewFlow, SsoBinding};
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreIdTokenVerifier, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, Scope,
    TokenResponse, UserInfoClaims,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// How long a browser may take at its identity provider.
pub const FLOW_TTL_SECS: i64 = 600;
/// SSO starts one client address may make per window; beyond, they are refused unaudited.
pub const STARTS_PER_IP: i64 = 30;
const STARTS_WINDOW_SECS: i64 = 600;
/// The longest `sub` OpenID Connect allows.
const MAX_SUBJECT_LEN: usize = 255;
/// The cookie that ties a browser to its flow row.
pub const FLOW_COOKIE: &str = "sso-flow";

/// The query of the identity provider's redirect back to `/sso/callback`.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer that answered (RFC 9207), when the provider sends it.
    pub iss: Option<String>,
}

impl CallbackParams {
    /// From a query string; the first of repeated names counts, unknown names are ignored.
    pub fn from_query(query: &str) -> CallbackParams {
        let mut params = CallbackParams::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                "iss" => &mut params.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        params
    }
}

/// Every claim besides the standard ones, so that any configured claim (e.g. ADFS's `upn`) can
/// be read from userinfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

/// The first step: the client whose SSO domain the email has, a new flow, and the provider's
/// authorization URL for the browser.
#[tracing::instrument(skip_all)]
pub async fn start(core: &Core, caller: &Caller, email: String) -> ServiceResult<Flow<String>> {
    // Counted before anything else: a refused start writes an audit row, and one address must
    // not be able to write them without bound.
    if let Some(bucket) = &caller.ip_bucket {
        let allowed = core
            .store
            .rate_limit(
                &format!("sso-ip:{bucket}"),
                core.clock.now(),
                STARTS_WINDOW_SECS,
                STARTS_PER_IP,
            )
            .await?;
        if !allowed {
            return Err(ServiceError::TooManyAttempts {
                retry_after_secs: STARTS_WINDOW_SECS as u64,
            });
        }
    }
    let email = EmailAddress::parse(&email)?;
    let client = core
        .store
        .client_by_sso_domain(email.domain())
        .await?
        .filter(|c| c.is_active() && c.uses_sso());
    let Some(client) = client else {
        core.record_login(
            AuditAction::LoginSso,
            Outcome::Refused,
            None,
            None,
            &format!("no active SSO client for the domain {}", email.domain()),
            caller.ip.as_deref(),
        )
        .await?;
        return Err(ServiceError::SsoNotSetUp);
    };
    let (Some(issuer), Some(client_id)) = (&client.sso_issuer, &client.sso_client_id) else {
        return Err(ServiceError::SsoNotSetUp);
    };
    let now = core.clock.now();
    let metadata = provider_metadata(core, issuer, false).await.map_err(|e| {
        tracing::warn!(%issuer, error = %e, "identity provider unreachable");
        ServiceError::Busy
    })?;
    let oidc = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(client_id.clone()),
        None,
    )
    .set_redirect_uri(redirect_url(core)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = oidc
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .set_login_hint(LoginHint::new(email.as_str().to_owned()))
        .url();
    let flow = token::issue();
    core.store
        .insert_sso_flow(
            NewFlow {
                id_hash: &flow.hash,
                client_id: &client.id,
                issuer,
                state: state.secret(),
                nonce: nonce.secret(),
                pkce_verifier: verifier.secret(),
                email: email.as_str(),
            },
            now,
            now - FLOW_TTL_SECS,
        )
        .await?;
    tracing::info!(client = %client.company_id, "SSO login started");
    let cookie = CookieIntent::ShortLived(FLOW_COOKIE, flow.secret, FLOW_TTL_SECS);
    Ok(Flow::value(url.to_string()).with(cookie))
}

/// The way back from the identity provider. On success the browser has a session.
/// The flow cookie is spent whatever happens: the answer always clears it.
#[tracing::instrument(skip_all)]
pub async fn callback(
    core: &Core,
    caller: &Caller,
    params: CallbackParams,
) -> Flow<Result<(), SsoFailure>> {
    let spent = CookieIntent::Clear(FLOW_COOKIE);
    match finish(core, caller, params).await {
        Ok(Finished::LoggedIn(session)) => Flow::value(Ok(())).with(spent).with(session),
        Ok(Finished::WithoutFlow(reason)) => {
            tracing::info!(reason, "SSO callback without a flow");
            if let Err(e) = record_without_flow(core, caller, reason).await {
                tracing::error!(error = ?e, "cannot record the refused SSO login");
            }
            Flow::value(Err(SsoFailure::Expired)).with(spent)
        }
        Ok(Finished::Refused {
            failure,
            client_id,
            user_id,
            reason,
            outcome,
        }) => {
            tracing::info!(reason = %reason, "SSO login refused");
            let audit = core
                .record_login(
                    AuditAction::LoginSso,
                    outcome,
                    client_id.as_ref().map(|c| c.as_str()),
                    user_id.as_ref().map(|u| u.as_str()),
                    &reason,
                    caller.ip.as_deref(),
                )
                .await;
            if let Err(e) = audit {
                tracing::error!(error = ?e, "cannot record the refused SSO login");
            }
            Flow::value(Err(failure)).with(spent)
        }
        Err(e) => {
            // Logged with an id by the mapping.
            let _ = promio_api::ApiError::from(e);
            Flow::value(Err(SsoFailure::Failed)).with(spent)
        }
    }
}

/// Audits a callback without a flow of ours: the first one from its address in
/// [`crate::idm::throttle::REFUSALS_WINDOW`]; the others are only counted (on the address's counter
/// row and in the metrics), so that anonymous requests cannot make the log grow without bound.
async fn record_without_flow(core: &Core, caller: &Caller, reason: &str) -> ServiceResult<()> {
    core.metrics.login("sso", Outcome::Failure.as_str());
    let now = core.clock.now();
    let bucket = caller.ip_bucket.as_deref();
    if crate::idm::throttle::count_anonymous_refusal(&core.store, "sso-callback", bucket, now)
        .await?
    {
        let detail =
            format!("{reason} (further ones from this address this hour are only counted)");
        let event = Event::login(AuditAction::LoginSso, Outcome::Failure, None, None)
            .detail(&detail)
            .ip(caller.ip.as_deref());
        crate::infra::audit::record(&core.store, event, now).await?;
    }
    Ok(())
}

async fn finish(core: &Core, caller: &Caller, params: CallbackParams) -> ServiceResult<Finished> {
    let Some(flow_hash) = &caller.sso_flow_token else {
        return Ok(Finished::WithoutFlow(
            "callback without the flow cookie (expired, or another browser)",
        ));
    };
    let Some(flow) = core.store.take_sso_flow(flow_hash).await? else {
        return Ok(Finished::WithoutFlow(
            "callback for an unknown or already finished flow",
        ));
    };
    let client = core.store.client_by_id(&flow.client_id).await?;
    let Some(client) = client else {
        return Ok(refused(
            SsoFailure::Failed,
            None,
            "the flow's client is gone",
        ));
    };
    let now = core.clock.now();
    if now - flow.created_at > FLOW_TTL_SECS {
        return Ok(refused(
            SsoFailure::Expired,
            Some(&client),
            "the flow expired",
        ));
    }
    let state_ok = params
        .state
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
    if !state_ok {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the state does not match the flow",
        ));
    }
    if params.iss.as_deref().is_some_and(|iss| iss != flow.issuer) {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the answer came from another issuer than the flow's",
        ));
    }
    if let Some(error) = params.error.as_deref() {
        let failure = if error == "access_denied" {
            SsoFailure::Cancelled
        } else {
            SsoFailure::Failed
        };
        // Whatever the browser brought (any length, CR/LF, escapes) is cleaned and cut before it
        // reaches the audit log or a log line.
        let error = clean_text(error, OUTSIDE_TEXT_MAX);
        let description = clean_text(
            params.error_description.as_deref().unwrap_or_default(),
            OUTSIDE_TEXT_MAX,
        );
        return Ok(refused(
            failure,
            Some(&client),
            format!("the identity provider answered {error}: {description}"),
        ));
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "no code in the callback",
        ));
    };
    let settings_now = client.is_active()
        && client.sso_issuer.as_deref() == Some(flow.issuer.as_str())
        && client.sso_client_id.is_some();
    if !settings_now {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the client's SSO was turned off or changed during the login",
        ));
    }
    let claims = match verified_claims(core, &client, &flow, code).await {
        Ok(claims) => claims,
        Err(reason) => return Ok(refused(SsoFailure::Failed, Some(&client), reason)),
    };
    if claims.email_unverified {
        return Ok(denied(
            SsoFailure::Failed,
            &client,
            None,
            "the identity provider says the email address is not verified (email_verified false)",
        ));
    }
    let Some(email) = claims
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    else {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the identity provider sent no usable email claim",
        ));
    };
    // The provider speaks for the client's own domains only: an address elsewhere matches no
    // account (and makes none), whatever accounts have it.
    let domains = core.store.sso_domains(&client.id).await?;
    if !domains.iter().any(|d| d == email.domain()) {
        return Ok(denied(
            SsoFailure::NotRegistered,
            &client,
            None,
            format!("the email {email} is outside the client's SSO domains"),
        ));
    }
    let user = match match_user(core, caller, &client, &email, &claims).await? {
        Ok(user) => user,
        Err(refusal) => return Ok(refusal),
    };
    let identity = SsoBinding {
        issuer: flow.issuer.clone(),
        subject: claims.subject.clone(),
    };
    if let Some(reason) = bind_or_refuse(core, caller, &client, &user, &identity).await? {
        return Ok(denied(
            SsoFailure::NotRegistered,
            &client,
            Some(&user),
            reason,
        ));
    }
    // The company's identity provider answered for this address (`match_user` found the user
    // by it, and an address it calls unverified never gets this far).
    core.store
        .email_verified_by_provider(&user.id, &email.key(), core.clock.now())
        .await?;
    let session = core
        .start_session(caller, &user, crate::idm::sessions::LoginMethod::Sso)
        .await?;
    core.record_login(
        AuditAction::LoginSso,
        Outcome::Success,
        Some(client.id.as_str()),
        Some(user.id.as_str()),
        "sso",
        caller.ip.as_deref(),
    )
    .await?;
    tracing::info!(user_id = %user.id, "SSO login succeeded");
    Ok(Finished::LoggedIn(session))
}

/// Exchanges the code with the flow's client's credentials and verifies the ID token. `Err` is
/// the reason for the audit log.
async fn verified_claims(
    core: &Core,
    client: &ClientRow,
    flow: &crate::store::sso::SsoFlowRow,
    code: String,
) -> Result<PersonClaims, String> {
    let secret = open_secret(core, client).ok_or("the client secret cannot be read")?;
    let client_id = client.sso_client_id.clone().unwrap_or_default();
    let metadata = provider_metadata(core, &flow.issuer, false)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    let build = |metadata: &CoreProviderMetadata| -> Result<_, String> {
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.clone()),
            Some(ClientSecret::new(secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect_url(core).map_err(|e| format!("{e:?}"))?))
    };
    let oidc = build(&metadata)?;
    let response = oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| describe(&e))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
        .request_async(&core.sso.http)
        .await
        .map_err(|e| format!("the token request failed: {}", describe(&e)))?;
    let id_token = response
        .id_token()
        .ok_or("the token response has no ID token")?;
    let nonce = Nonce::new(flow.nonce.clone());
    let clock = Arc::clone(&core.clock);
    let time =
        move || chrono::DateTime::<chrono::Utc>::from_timestamp(clock.now(), 0).unwrap_or_default();
    let verify = |oidc: &CoreClient<_, _, _, _, _, _>| {
        let verifier: CoreIdTokenVerifier = oidc.id_token_verifier().set_time_fn(time.clone());
        id_token.claims(&verifier, &nonce).cloned()
    };
    let claims = match verify(&oidc) {
        Ok(claims) => claims,
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            // The provider may have rotated its keys since the document was cached.
            let fresh = provider_metadata(core, &flow.issuer, true)
                .await
                .map_err(|e| format!("discovery failed: {e}"))?;
            verify(&build(&fresh)?)
                .map_err(|e| format!("the ID token was refused: {}", describe(&e)))?
        }
        Err(e) => return Err(format!("the ID token was refused: {}", describe(&e))),
    };
    let subject = claims.subject().as_str().to_owned();
    if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(format!(
            "the ID token's subject is empty or longer than {MAX_SUBJECT_LEN} characters"
        ));
    }
    // Only an explicit false refuses: many providers (e.g. Microsoft Entra ID) omit the claim and
    // vouch for the addresses in their own directory.
    let mut email_unverified = claims.email_verified() == Some(false);
    let claim = client
        .sso_email_claim
        .clone()
        .unwrap_or_else(|| DEFAULT_EMAIL_CLAIM.to_owned());
    let given_name = claims
        .given_name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string());
    let family_name = claims
        .family_name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string());
    let mut email = if claim == DEFAULT_EMAIL_CLAIM {
        claims.email().map(|e| e.to_string())
    } else {
        payload_claim(&id_token.to_string(), &claim)
    };
    let (mut given_name, mut family_name) = (given_name, family_name);
    if email.is_none() {
        // Many providers put the email only into userinfo.
        let request = oidc
            .user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(
                |_| "the ID token has no email claim and the provider has no userinfo endpoint",
            )?;
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(&core.sso.http)
            .await
            .map_err(|e| format!("the userinfo request failed: {}", describe(&e)))?;
        email_unverified |= info.email_verified() == Some(false);
        email = if claim == DEFAULT_EMAIL_CLAIM {
            info.email().map(|e| e.to_string())
        } else {
            info.additional_claims()
                .rest
                .get(&claim)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        given_name = given_name.or_else(|| {
            info.given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
        });
        family_name = family_name.or_else(|| {
            info.family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
        });
    }
    Ok(PersonClaims {
        subject,
        email,
        email_unverified,
        given_name,
        family_name,
    })
}

/// A string claim of a JWT's payload (the token was verified before this is called).
fn payload_claim(jwt: &str, claim: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_read_from_the_payload() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"upn":"jane@acme.example","n":1}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(
            payload_claim(&jwt, "upn").as_deref(),
            Some("jane@acme.example")
        );
        assert_eq!(payload_claim(&jwt, "n"), None);
        assert_eq!(payload_claim("garbage", "upn"), None);
    }
}
