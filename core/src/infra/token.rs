//! Opaque tokens for sessions, pending second factors and mail links: 256 random bits, given to the
//! browser (or the mail) base64url-encoded; only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A freshly made token: the secret for the client and the hash for the database.
pub struct IssuedToken {
    pub secret: SecretString,
    pub hash: String,
}

pub fn issue() -> IssuedToken {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&secret);
    IssuedToken {
        secret: SecretString::from(secret),
        hash,
    }
}

/// The stored form of a token as presented. Anything that is not a well-formed token hashes to a
/// value no issued token has, so lookups simply find nothing.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token as presented by a client: only well-formed ones (43 base64url characters) are looked up.
pub fn parse_presented(raw: &str) -> Option<SecretString> {
    let ok = raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| SecretString::from(raw.to_owned()))
}

pub fn hash_secret(token: &SecretString) -> String {
    hash(token.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_stored_only_as_their_hash() {
        let t = issue();
        let secret = t.secret.expose_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        assert_eq!(t.hash.len(), 64);
        assert_ne!(t.hash, secret);
        assert_eq!(hash(secret), t.hash);
        assert_ne!(issue().hash, t.hash);
    }

    #[test]
    fn only_well_formed_tokens_are_accepted_from_clients() {
        let t = issue();
        assert!(parse_presented(t.secret.expose_secret()).is_some());
        assert!(parse_presented("short").is_none());
        assert!(parse_presented(&"a".repeat(44)).is_none());
        assert!(parse_presented(&format!("{}=", &"a".repeat(42))).is_none());
    }
}
