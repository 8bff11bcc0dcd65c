//! A client's SSO settings: parsed and checked as an operator enters them, the client secret
//! sealed, the issuer's discovery document fetched before anything is stored.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::{CompanyId, EmailAddress, Invalid};
use crate::idm::Core;
use crate::idm::provisioning::{self, Actor};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::store::clients::ClientRow;
use crate::store::sso::{SetSsoError, SsoSettingsRow};
use openidconnect::RedirectUrl;
use openidconnect::core::CoreProviderMetadata;
use promio_api::{Field, Problem, SsoCheck};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

pub(super) const DEFAULT_EMAIL_CLAIM: &str = "email";
const MAX_DOMAINS: usize = 50;

/// An issuer URL as operators type it: https (plain http only with `allow_http`, the setting
/// `SSO_ALLOW_HTTP_ISSUER`, and then only on this machine's loopback, for tests and local
/// identity providers), no user info, query or fragment.
pub fn parse_issuer(raw: &str, allow_http: bool) -> Result<String, Invalid> {
    let malformed = Invalid {
        field: Field::SsoIssuer,
        problem: Problem::Malformed,
    };
    let raw = raw.trim();
    if raw.len() > 512 {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::TooLong { max: 512 },
        });
    }
    let url = url::Url::parse(raw).map_err(|_| malformed)?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && allow_http && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(malformed);
    }
    Ok(raw.to_owned())
}

/// Email domains typed as a list (commas, spaces or new lines), lower-cased, without repeats.
pub fn parse_domains(raw: &str) -> Result<Vec<String>, Invalid> {
    let mut domains: Vec<String> = Vec::new();
    for part in raw.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
        let part = part.trim().trim_start_matches('@');
        if part.is_empty() {
            continue;
        }
        let parsed = EmailAddress::parse(&format!("x@{part}")).map_err(|_| Invalid {
            field: Field::SsoDomains,
            problem: Problem::Malformed,
        })?;
        let domain = parsed.domain().to_owned();
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.is_empty() {
        return Err(Invalid {
            field: Field::SsoDomains,
            problem: Problem::Missing,
        });
    }
    if domains.len() > MAX_DOMAINS {
        return Err(Invalid {
            field: Field::SsoDomains,
            problem: Problem::TooLong {
                max: MAX_DOMAINS as u32,
            },
        });
    }
    Ok(domains)
}

/// A claim name: letters, digits and `_ : . -`, at most 64 characters; empty means `email`.
pub fn parse_email_claim(raw: &str) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_EMAIL_CLAIM.to_owned());
    }
    let ok = raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
    if !ok {
        return Err(Invalid {
            field: Field::SsoEmailClaim,
            problem: Problem::InvalidCharacters,
        });
    }
    Ok(raw.to_owned())
}

fn text(field: Field, raw: &str, max: u32) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Invalid {
            field,
            problem: Problem::Missing,
        });
    }
    if raw.chars().count() > max as usize {
        return Err(Invalid {
            field,
            problem: Problem::TooLong { max },
        });
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid {
            field,
            problem: Problem::ControlCharacters,
        });
    }
    Ok(raw.to_owned())
}

/// The key that seals client secrets: derived from `SECRET_KEY`, apart from the TOTP key use.
fn sealing_key(core: &Core) -> [u8; 32] {
    crate::infra::crypto::derive_key(
        core.settings.secret_key.expose_secret(),
        "promio.connect sso client secret",
    )
}

pub(super) fn open_secret(core: &Core, client: &ClientRow) -> Option<SecretString> {
    let sealed = client.sso_client_secret.as_deref()?;
    let raw = crate::infra::crypto::open(&sealing_key(core), sealed)?;
    String::from_utf8(raw).ok().map(SecretString::from)
}

/// A client's SSO settings as an operator enters them.
#[derive(Debug, Clone, Default)]
pub struct SsoInput {
    /// Empty: single sign-on off (the other fields must then be empty too).
    pub issuer: String,
    pub client_id: String,
    /// Empty keeps the stored secret.
    pub client_secret: String,
    pub domains: String,
    pub email_claim: String,
    pub jit: bool,
}

impl SsoInput {
    fn is_blank(&self) -> bool {
        self.issuer.trim().is_empty()
            && self.client_id.trim().is_empty()
            && self.client_secret.trim().is_empty()
            && self.domains.trim().is_empty()
    }
}

/// Checked settings, ready to store once the provider has been asked.
struct CheckedSso {
    issuer: String,
    client_id: String,
    secret: Option<String>,
    domains: Vec<String>,
    email_claim: String,
    jit: bool,
}

/// Checks the fields (nothing is fetched or written). `None`: SSO off.
fn check_input(
    input: &SsoInput,
    has_secret: bool,
    allow_http: bool,
) -> Result<Option<CheckedSso>, Invalid> {
    if input.is_blank() {
        return Ok(None);
    }
    let issuer = if input.issuer.trim().is_empty() {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::Missing,
        });
    } else {
        parse_issuer(&input.issuer, allow_http)?
    };
    let client_id = text(Field::SsoClientId, &input.client_id, 255)?;
    let secret = if input.client_secret.trim().is_empty() {
        if !has_secret {
            return Err(Invalid {
                field: Field::SsoClientSecret,
                problem: Problem::Missing,
            });
        }
        None
    } else {
        Some(text(Field::SsoClientSecret, &input.client_secret, 1024)?)
    };
    Ok(Some(CheckedSso {
        issuer,
        client_id,
        secret,
        domains: parse_domains(&input.domains)?,
        email_claim: parse_email_claim(&input.email_claim)?,
        jit: input.jit,
    }))
}

/// Fetches and checks an issuer's discovery document for "Test connection" (and the save).
pub async fn check_provider(core: &Core, issuer: &str) -> ServiceResult<SsoCheck> {
    let issuer = parse_issuer(issuer, core.settings.sso_allow_http_issuer)?;
    let metadata = core
        .sso
        .metadata(&issuer, core.clock.now(), true)
        .await
        .map_err(ServiceError::SsoProvider)?;
    Ok(SsoCheck {
        issuer: metadata.issuer().to_string(),
        authorization_endpoint: metadata.authorization_endpoint().to_string(),
        token_endpoint: metadata
            .token_endpoint()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        signing_keys: metadata.jwks().keys().len() as u32,
        redirect_uri: redirect_url(core)?.to_string(),
    })
}

/// SSO settings that passed every check (fields, and the provider's discovery document), ready
/// to be stored; `None` inside: SSO off.
pub struct PreparedSso(Option<CheckedSso>);

impl PreparedSso {
    /// Whether storing these settings changes what the client has.
    pub async fn changes(&self, core: &Core, client: &ClientRow) -> ServiceResult<bool> {
        let Some(c) = &self.0 else {
            return Ok(client.uses_sso());
        };
        let domains = core.store.sso_domains(&client.id).await?;
        let mut wanted = c.domains.clone();
        wanted.sort();
        Ok(c.secret.is_some()
            || client.sso_issuer.as_deref() != Some(c.issuer.as_str())
            || client.sso_client_id.as_deref() != Some(c.client_id.as_str())
            || client.sso_email_claim.as_deref() != Some(c.email_claim.as_str())
            || client.sso_creates_users() != c.jit
            || domains != wanted)
    }
}

/// Checks SSO settings before anything is written: the fields, that no domain belongs to another
/// client, then the issuer's discovery document. `client`: the client being edited (`None` for a
/// new one); its stored secret is kept when the field is empty.
pub async fn prepare(
    core: &Core,
    input: &SsoInput,
    client: Option<&ClientRow>,
) -> ServiceResult<PreparedSso> {
    let has_secret = client.is_some_and(|c| c.sso_client_secret.is_some());
    let checked = check_input(input, has_secret, core.settings.sso_allow_http_issuer)?;
    if let Some(c) = &checked {
        for domain in &c.domains {
            let owner = core.store.client_by_sso_domain(domain).await?;
            if owner.is_some_and(|o| client.is_none_or(|c| c.id != o.id)) {
                return Err(ServiceError::Invalid(Invalid {
                    field: Field::SsoDomains,
                    problem: Problem::Taken,
                }));
            }
        }
        check_provider(core, &c.issuer).await?;
    }
    Ok(PreparedSso(checked))
}

/// Sets or turns off a client's single sign-on (checked first, see [`prepare`]). A domain of
/// another client is refused and nothing is stored.
pub async fn configure(
    core: &Core,
    actor: Actor<'_>,
    company_id: &str,
    input: SsoInput,
) -> ServiceResult<ClientRow> {
    let client = provisioning::client(core, company_id).await?;
    let prepared = prepare(core, &input, Some(&client)).await?;
    store_prepared(core, actor, &client, prepared).await
}

pub async fn store_prepared(
    core: &Core,
    actor: Actor<'_>,
    client: &ClientRow,
    prepared: PreparedSso,
) -> ServiceResult<ClientRow> {
    let company_id = CompanyId::parse(&client.company_id)?;
    if client.is_platform(&core.settings.platform_company_id) && prepared.0.is_some() {
        // Operators must always be able to log in with their password.
        return Err(ServiceError::Forbidden);
    }
    let now = core.clock.now();
    // Turned on, it ends the users' sessions and pending logins (see `Store::set_client_sso`).
    let turned_on = !client.uses_sso() && prepared.0.is_some();
    let (row, domains, detail) = match prepared.0 {
        None => (None, Vec::new(), "single sign-on off".to_owned()),
        Some(c) => {
            let sealed_secret = match &c.secret {
                Some(secret) => crate::infra::crypto::seal(&sealing_key(core), secret.as_bytes())
                    .ok_or_else(|| anyhow::anyhow!("cannot seal the client secret"))?,
                None => client.sso_client_secret.clone().unwrap_or_default(),
            };
            let detail = format!(
                "issuer {}, client ID {}, domains {}, email claim {}, users made on first login: {}{}",
                c.issuer,
                c.client_id,
                c.domains.join(" "),
                c.email_claim,
                c.jit,
                if c.secret.is_some() {
                    ", new client secret"
                } else {
                    ""
                }
            );
            let row = SsoSettingsRow {
                issuer: c.issuer,
                client_id: c.client_id,
                sealed_secret,
                email_claim: c.email_claim,
                jit: c.jit,
            };
            (Some(row), c.domains, detail)
        }
    };
    let updated = core
        .store
        .set_client_sso(&company_id, row.as_ref(), &domains, now)
        .await
        .map_err(|e| match e {
            SetSsoError::NoSuchClient => ServiceError::NotFound,
            SetSsoError::DomainTaken(domain) => {
                tracing::info!(%domain, "SSO domain belongs to another client");
                ServiceError::Invalid(Invalid {
                    field: Field::SsoDomains,
                    problem: Problem::Taken,
                })
            }
            SetSsoError::Database(e) => ServiceError::Database(e),
        })?;
    let detail = if turned_on {
        format!("{detail}; the users' sessions and pending logins ended")
    } else {
        detail
    };
    let event = Event::new(AuditAction::ClientSsoChanged, Outcome::Success)
        .client(Some(&updated.id))
        .actor(actor.user_id)
        .detail(&detail)
        .ip(actor.ip);
    crate::infra::audit::record(&core.store, event, now).await?;
    Ok(updated)
}

/// An issuer's discovery document through the cache, refused when the issuer's scheme is not
/// allowed (settings stored while `SSO_ALLOW_HTTP_ISSUER` was on, and it is off now).
pub(super) async fn provider_metadata(
    core: &Core,
    issuer: &str,
    refresh: bool,
) -> Result<Arc<CoreProviderMetadata>, String> {
    parse_issuer(issuer, core.settings.sso_allow_http_issuer).map_err(|_| {
        "the issuer URL is not allowed (plain http needs SSO_ALLOW_HTTP_ISSUER=true)".to_owned()
    })?;
    core.sso.metadata(issuer, core.clock.now(), refresh).await
}

pub(super) fn redirect_url(core: &Core) -> ServiceResult<RedirectUrl> {
    let url = core
        .settings
        .public_url
        .join("sso/callback")
        .map_err(|e| anyhow::anyhow!("PUBLIC_URL cannot take /sso/callback: {e}"))?;
    Ok(RedirectUrl::from_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_and_http_only_on_loopback_when_allowed() {
        for allow_http in [false, true] {
            assert!(parse_issuer("https://login.example.com/tenant/v2.0", allow_http).is_ok());
            assert!(parse_issuer("https://127.0.0.1:4000", allow_http).is_ok());
        }
        for local in ["http://127.0.0.1:4000", "http://localhost:8080/realms/acme"] {
            assert!(parse_issuer(local, true).is_ok(), "{local}");
            assert_eq!(
                parse_issuer(local, false).unwrap_err(),
                Invalid {
                    field: Field::SsoIssuer,
                    problem: Problem::Malformed
                },
                "{local} without SSO_ALLOW_HTTP_ISSUER"
            );
        }
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#frag",
            "not a url",
        ] {
            for allow_http in [false, true] {
                assert_eq!(
                    parse_issuer(bad, allow_http).unwrap_err().problem,
                    Problem::Malformed,
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn domains_are_lowercased_deduplicated_and_checked() {
        assert_eq!(
            parse_domains("ACME.example, @acme.example\nsub.acme.example").unwrap(),
            vec!["acme.example".to_owned(), "sub.acme.example".to_owned()]
        );
        assert_eq!(parse_domains(" , ").unwrap_err().problem, Problem::Missing);
        assert_eq!(
            parse_domains("acme").unwrap_err().problem,
            Problem::Malformed
        );
        assert_eq!(
            parse_domains("bad_domain!.example").unwrap_err().problem,
            Problem::Malformed
        );
    }

    #[test]
    fn the_email_claim_defaults_to_email() {
        assert_eq!(parse_email_claim("").unwrap(), "email");
        assert_eq!(parse_email_claim(" upn ").unwrap(), "upn");
        assert!(parse_email_claim("a b").is_err());
    }

    #[test]
    fn blank_settings_turn_sso_off_and_partial_ones_name_what_is_missing() {
        assert!(
            check_input(&SsoInput::default(), false, false)
                .unwrap()
                .is_none()
        );
        let partial = SsoInput {
            client_id: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&partial, false, false)
                .map(|_| ())
                .unwrap_err()
                .field,
            Field::SsoIssuer
        );
        let no_secret = SsoInput {
            issuer: "https://idp.example".into(),
            client_id: "x".into(),
            domains: "acme.example".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&no_secret, false, false)
                .map(|_| ())
                .unwrap_err()
                .field,
            Field::SsoClientSecret
        );
        // Editing keeps the stored secret.
        assert!(check_input(&no_secret, true, false).unwrap().is_some());
    }
}
