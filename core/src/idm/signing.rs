//! The keys that sign ID tokens and logout tokens: RS256 (RSA 2048, PKCS#1 v1.5 with SHA-256)
//! with OpenSSL, which signs several times faster than a pure-Rust RSA and in constant time.
//!
//! Every key is a row of `oauth_keys` (any instance signs with it): its private half PKCS#8 DER
//! sealed under a key derived from `SECRET_KEY`, its public half as the JWK that `/oauth/jwks`
//! publishes. The kid is base64url of the first 16 bytes of the SHA-256 of the public key's DER.
//!
//! Invariants:
//! - The key that signs at `now` is the newest (`signs_from`) of those with `signs_from <= now`
//!   not yet retired. Two instances starting on an empty table may each make one; both agree on
//!   the newest, and both keys are published, so either's tokens verify.
//! - `rotate` publishes the next key at once and lets it sign an hour later (relying parties
//!   refresh their JWKS cache by then); the keys it replaces retire at that moment and stay
//!   published for [`PUBLISHED_AFTER_RETIREMENT`] more (an ID token lives an hour), then leave
//!   the JWKS.
//! - The keys are cached in [`Op`] for [`CACHE_SECS`] of the injected clock; nothing
//!   lives only there.
//! - `verify` accepts only `alg` RS256 and a kid of a stored key; it checks the signature and
//!   nothing else (expiry, audience and issuer are the caller's, an `id_token_hint` may be
//!   expired).

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::clock::UnixTime;
use crate::idm::Core;
pub use crate::idm::keyring::{CACHE_SECS, Cache, Op, PUBLISHED_AFTER_RETIREMENT};
use crate::idm::keyring::{Key, Loaded};
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::oauth_keys::OAuthKeyRow;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use secrecy::{ExposeSecret, SecretBox};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The label of the key (derived from `SECRET_KEY`) that seals the private keys.
const SEAL_LABEL: &str = "oauth-signing-key";

/// How long before a new key signs (`keys rotate`): relying parties see it in the JWKS first.
pub const NEXT_KEY_AFTER_SECS: i64 = 3600;

const RSA_BITS: u32 = 2048;

fn seal_key(core: &Core) -> [u8; 32] {
    crate::infra::crypto::derive_key(core.settings.secret_key.expose_secret(), SEAL_LABEL)
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("{what}: {e}"))
}

async fn loaded(core: &Core) -> ServiceResult<Arc<Loaded>> {
    let now = core.clock.now();
    if let Some(loaded) = core.op.keys.fresh(now) {
        return Ok(loaded);
    }
    let rows = core
        .store
        .oauth_keys()
        .await
        .context("reading the signing keys")?;
    let seal = seal_key(core);
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let jwk: Value = serde_json::from_str(&row.public_jwk)
            .map_err(|e| internal("a stored signing key's JWK", e))?;
        let public = public_from_jwk(&jwk)
            .ok_or_else(|| internal("a stored signing key's JWK", "not an RSA key"))?;
        let private = if row.retired_at.is_none_or(|r| r > now) {
            let opened = open_private(&seal, &row.private_sealed);
            if opened.is_none() {
                tracing::error!(kid = %row.kid, "a signing key does not open (new SECRET_KEY?)");
            }
            opened.map(Arc::new)
        } else {
            None
        };
        keys.push(Key {
            kid: row.kid,
            public,
            jwk,
            signs_from: row.signs_from,
            retired_at: row.retired_at,
            private,
        });
    }
    let loaded = Arc::new(Loaded { at: now, keys });
    core.op.keys.put(Arc::clone(&loaded));
    Ok(loaded)
}

fn open_private(seal: &[u8; 32], sealed: &str) -> Option<PKey<Private>> {
    let der = wiped(crate::infra::crypto::open(seal, sealed)?);
    PKey::private_key_from_pkcs8(der.expose_secret()).ok()
}

/// Plain key bytes, wiped when dropped.
fn wiped(bytes: Vec<u8>) -> SecretBox<Vec<u8>> {
    SecretBox::new(Box::new(bytes))
}

/// A freshly generated key as its row (private half sealed). Generating takes up to a good part
/// of a second of CPU: on the blocking pool.
async fn generate(core: &Core, now: UnixTime, signs_from: UnixTime) -> anyhow::Result<OAuthKeyRow> {
    let seal = seal_key(core);
    tokio::task::spawn_blocking(move || -> anyhow::Result<OAuthKeyRow> {
        let private = PKey::from_rsa(Rsa::generate(RSA_BITS)?)?;
        row_for(&seal, &private, now, signs_from)
    })
    .await?
}

fn row_for(
    seal: &[u8; 32],
    private: &PKey<Private>,
    now: UnixTime,
    signs_from: UnixTime,
) -> anyhow::Result<OAuthKeyRow> {
    let der = wiped(private.private_key_to_pkcs8()?);
    let private_sealed = crate::infra::crypto::seal(seal, der.expose_secret())
        .ok_or_else(|| anyhow::anyhow!("sealing the signing key"))?;
    let (kid, jwk) = public_jwk(private)?;
    Ok(OAuthKeyRow {
        kid,
        private_sealed,
        public_jwk: jwk.to_string(),
        created_at: now,
        signs_from,
        retired_at: None,
    })
}

/// The key's ID and its public JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`; base64url without
/// padding, big-endian without leading zeros as RFC 7518 6.3.1 says).
fn public_jwk(key: &PKey<Private>) -> anyhow::Result<(String, Value)> {
    let spki = key.public_key_to_der()?;
    let kid = B64.encode(&Sha256::digest(&spki)[..16]);
    let rsa = key.rsa()?;
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": B64.encode(rsa.n().to_vec()),
        "e": B64.encode(rsa.e().to_vec()),
    });
    Ok((kid, jwk))
}

/// The RSA public key a JWK describes (`None` for anything else).
fn public_from_jwk(jwk: &Value) -> Option<PKey<Public>> {
    if jwk.get("kty")?.as_str()? != "RSA" {
        return None;
    }
    let part = |name: &str| {
        let bytes = B64.decode(jwk.get(name)?.as_str()?).ok()?;
        BigNum::from_slice(&bytes).ok()
    };
    let rsa = Rsa::from_public_components(part("n")?, part("e")?).ok()?;
    PKey::from_rsa(rsa).ok()
}

/// Makes the first key when there is none (at start, before serving).
pub async fn ensure_key(core: &Core) -> anyhow::Result<()> {
    if core.store.count_oauth_keys().await? > 0 {
        return Ok(());
    }
    let now = core.clock.now();
    let row = generate(core, now, now).await?;
    core.store.insert_oauth_key(&row, false).await?;
    core.op.keys.clear();
    tracing::info!(kid = %row.kid, "made the first ID-token signing key");
    Ok(())
}

/// Makes the next key: published at once, signing from an hour on; the keys signing until then
/// retire at that moment. Returns its kid and when it signs from.
pub async fn rotate(core: &Core) -> ServiceResult<(String, UnixTime)> {
    let now = core.clock.now();
    let signs_from = now + NEXT_KEY_AFTER_SECS;
    let row = generate(core, now, signs_from).await?;
    core.store
        .insert_oauth_key(&row, true)
        .await
        .context("storing the next signing key")?;
    core.op.keys.clear();
    let detail = format!("kid {}, signs from {signs_from}", row.kid);
    crate::infra::audit::record(
        &core.store,
        Event::new(AuditAction::KeysRotated, Outcome::Success).detail(&detail),
        now,
    )
    .await?;
    Ok((row.kid, signs_from))
}

/// The key that signs now and its `kid` (the key `make bench` measures raw signing with).
pub async fn signing_key(core: &Core) -> ServiceResult<(String, Arc<PKey<Private>>)> {
    let now = core.clock.now();
    let loaded = loaded(core).await?;
    let key = loaded
        .keys
        .iter()
        .find(|k| k.signs_at(now) && k.private.is_some())
        .or_else(|| {
            // No key is unretired and due (a clock moved back): the newest due key signs.
            loaded
                .keys
                .iter()
                .find(|k| k.signs_from <= now && k.private.is_some())
        })
        .ok_or_else(|| internal("signing", "no signing key can be used"))?;
    match key.private.clone() {
        Some(private) => Ok((key.kid.clone(), private)),
        None => Err(internal("signing", "no signing key can be used")),
    }
}

/// The JWT of `claims`, signed RS256 with the key that signs now; `typ` is `JWT` for ID tokens
/// and `logout+jwt` for logout tokens.
pub async fn sign(core: &Core, claims: &Value, typ: &str) -> ServiceResult<String> {
    let (kid, private) = signing_key(core).await?;
    let header = json!({"alg": "RS256", "typ": typ, "kid": kid});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    // Signed in place: an RSA-2048 signature is about a quarter of a millisecond of CPU here, and
    // handing it to the blocking pool and back cost two thread wake-ups that left the cores idle
    // for about as long (`make bench`: 0.53 of the raw signing rate that way, two at a time).
    let signature = rs256(&private, input.as_bytes()).map_err(|e| internal("signing", e))?;
    Ok(format!("{input}.{}", B64.encode(signature)))
}

fn rs256(key: &PKey<Private>, input: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut signer = Signer::new(MessageDigest::sha256(), key)?;
    signer.update(input)?;
    signer.sign_to_vec()
}

/// The claims of a JWT that a stored key signed with RS256 (a retired one too, as long as it is
/// stored); `None` for anything else. Expiry is not checked.
pub async fn verify(core: &Core, jwt: &str) -> Option<Value> {
    let loaded = match loaded(core).await {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "reading the signing keys");
            return None;
        }
    };
    verify_with(&loaded.keys, jwt)
}

fn verify_with(keys: &[Key], jwt: &str) -> Option<Value> {
    let mut parts = jwt.split('.');
    let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(header_b64).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "RS256" {
        return None;
    }
    let kid = header.get("kid")?.as_str()?;
    let key = keys.iter().find(|k| k.kid == kid)?;
    let signature = B64.decode(signature_b64).ok()?;
    let signed_part = &jwt[..header_b64.len() + 1 + claims_b64.len()];
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key.public).ok()?;
    verifier.update(signed_part.as_bytes()).ok()?;
    if !verifier.verify(&signature).ok()? {
        return None;
    }
    let claims: Value = serde_json::from_slice(&B64.decode(claims_b64).ok()?).ok()?;
    claims.is_object().then_some(claims)
}

/// The published keys: `{"keys": [JWK, …]}`, newest first, each until its tokens expired.
pub async fn jwks(core: &Core) -> ServiceResult<Value> {
    let now = core.clock.now();
    let loaded = loaded(core).await?;
    let keys: Vec<Value> = loaded
        .keys
        .iter()
        .filter(|k| k.published_at(now))
        .map(|k| k.jwk.clone())
        .collect();
    Ok(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEAL: [u8; 32] = [9u8; 32];

    fn test_key(signs_from: UnixTime) -> (PKey<Private>, Key) {
        let private = PKey::from_rsa(Rsa::generate(RSA_BITS).unwrap()).unwrap();
        let row = row_for(&SEAL, &private, 0, signs_from).unwrap();
        let jwk: Value = serde_json::from_str(&row.public_jwk).unwrap();
        let key = Key {
            kid: row.kid,
            public: public_from_jwk(&jwk).unwrap(),
            jwk,
            signs_from,
            retired_at: None,
            private: open_private(&SEAL, &row.private_sealed).map(Arc::new),
        };
        (private, key)
    }

    fn jwt(key: &Key, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let private = key.private.as_ref().unwrap();
        let signature = rs256(private, input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(signature))
    }

    fn header(kid: &str) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": kid})
    }

    #[test]
    fn a_signed_token_verifies_and_gives_its_claims() {
        let (_, key) = test_key(0);
        let claims = json!({"sub": "u-1", "aud": "app_x", "nonce": "n"});
        let token = jwt(&key, &header(&key.kid), &claims);
        let keys = vec![key];
        assert_eq!(verify_with(&keys, &token), Some(claims));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let (_, key) = test_key(0);
        let token = jwt(&key, &header(&key.kid), &json!({"sub": "u-1"}));
        let keys = vec![key];
        let parts: Vec<&str> = token.split('.').collect();
        let other_claims = B64.encode(json!({"sub": "u-2"}).to_string());
        let swapped = format!("{}.{other_claims}.{}", parts[0], parts[2]);
        assert_eq!(verify_with(&keys, &swapped), None, "claims changed");
        let mut signature = B64.decode(parts[2]).unwrap();
        signature[10] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], B64.encode(signature));
        assert_eq!(verify_with(&keys, &flipped), None, "signature changed");
        assert_eq!(
            verify_with(&keys, &format!("{token}.x")),
            None,
            "a fourth part"
        );
        assert_eq!(verify_with(&keys, "not a jwt"), None);
        // Signed by a key that is not stored, under a stored key's kid.
        let (_, stranger) = test_key(0);
        let forged = jwt(&stranger, &header(&keys[0].kid), &json!({"sub": "u-1"}));
        assert_eq!(verify_with(&keys, &forged), None, "another key");
    }

    #[test]
    fn alg_none_and_hs256_are_refused() {
        let (_, key) = test_key(0);
        let kid = key.kid.clone();
        let claims = B64.encode(json!({"sub": "u-1"}).to_string());
        let keys = vec![key];
        let none = B64.encode(json!({"alg": "none", "kid": kid}).to_string());
        assert_eq!(verify_with(&keys, &format!("{none}.{claims}.")), None);
        // HS256 keyed with the public key's bytes: the classic confusion.
        use hmac::Mac;
        let hs = B64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
        let spki = keys[0].public.public_key_to_der().unwrap();
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&spki).unwrap();
        mac.update(format!("{hs}.{claims}").as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        assert_eq!(verify_with(&keys, &format!("{hs}.{claims}.{tag}")), None);
        // The same RS256 signature under a header that says HS256 is refused too.
        let good = jwt(&keys[0], &header(&kid), &json!({"sub": "u-1"}));
        let signature = good.rsplit('.').next().unwrap();
        assert_eq!(
            verify_with(&keys, &format!("{hs}.{claims}.{signature}")),
            None
        );
        let no_kid = jwt(&keys[0], &json!({"alg": "RS256"}), &json!({"sub": "u-1"}));
        assert_eq!(verify_with(&keys, &no_kid), None, "no kid");
    }

    #[test]
    fn the_jwk_n_and_e_are_the_keys_own() {
        let (private, key) = test_key(0);
        let rsa = private.rsa().unwrap();
        let n = B64.decode(key.jwk["n"].as_str().unwrap()).unwrap();
        let e = B64.decode(key.jwk["e"].as_str().unwrap()).unwrap();
        assert_eq!(n, rsa.n().to_vec());
        assert_eq!(n.len(), 256, "2048 bits, no leading zero byte");
        assert_eq!(e, vec![1, 0, 1], "65537");
        assert_eq!(key.jwk["kty"], "RSA");
        assert_eq!(key.jwk["use"], "sig");
        assert_eq!(key.jwk["alg"], "RS256");
        assert_eq!(key.jwk["kid"], key.kid.as_str());
        let spki = private.public_key_to_der().unwrap();
        assert_eq!(key.kid, B64.encode(&Sha256::digest(&spki)[..16]));
        assert!(
            key.public.public_eq(&private),
            "the key rebuilt from n and e is the private key's public half"
        );
    }

    #[test]
    fn the_sealed_private_key_opens_only_with_its_key() {
        let private = PKey::from_rsa(Rsa::generate(RSA_BITS).unwrap()).unwrap();
        let row = row_for(&SEAL, &private, 0, 0).unwrap();
        let opened = open_private(&SEAL, &row.private_sealed).unwrap();
        assert!(opened.public_eq(&private));
        assert!(open_private(&[1u8; 32], &row.private_sealed).is_none());
    }

    #[test]
    fn the_newest_due_unretired_key_signs_and_retired_ones_stay_published_an_hour() {
        let (_, mut old) = test_key(0);
        let (_, next) = test_key(3600);
        old.retired_at = Some(3600);
        let keys = [next, old];
        let signer = |now| keys.iter().find(|k| k.signs_at(now)).map(|k| k.kid.clone());
        assert_eq!(signer(10), Some(keys[1].kid.clone()));
        assert_eq!(signer(3599), Some(keys[1].kid.clone()));
        assert_eq!(signer(3600), Some(keys[0].kid.clone()));
        assert!(keys[1].published_at(3600 + PUBLISHED_AFTER_RETIREMENT - 1));
        assert!(!keys[1].published_at(3600 + PUBLISHED_AFTER_RETIREMENT));
        assert!(keys[0].published_at(0), "published before it signs");
    }
}
