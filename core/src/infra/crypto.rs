//! Secrets at rest: sealing with AES-256-GCM, and one key per use derived from `SECRET_KEY`.
//!
//! A sealed value is base64 of a nonce (96 bits, fresh from the OS's CSPRNG every time) followed by
//! the ciphertext and its tag, so a wrong key or a changed byte makes [`open`] fail; it never yields
//! other plain text. Each use seals with its own key, [`derive_key`] (HMAC-SHA256 of a label under
//! `SECRET_KEY`), so that what one use sealed never opens under another's key: SSO client secrets,
//! mail bodies in the outbox. TOTP secrets, the first use, are sealed with `SECRET_KEY` itself.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Hmac;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// The key for one use of `SECRET_KEY`: HMAC-SHA256(`secret_key`, `label`).
pub fn derive_key(secret_key: &[u8; 32], label: &str) -> [u8; 32] {
    use hmac::Mac;
    // HMAC pads a key shorter than the hash's block (64 bytes for SHA-256) with zeros; padding it
    // here gives the same MAC through the constructor that cannot fail.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(secret_key);
    let key = hmac::digest::generic_array::GenericArray::from(block);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key);
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Encrypts `plain` for storage: base64 of nonce ‖ ciphertext. `None` only if AES-GCM refuses
/// the input (longer than it can take).
pub fn seal(key: &[u8; 32], plain: &[u8]) -> Option<String> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher.encrypt(Nonce::from_slice(&nonce), plain).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(BASE64.encode(out))
}

/// The plain text of what [`seal`] made with the same key; `None` for another key, a changed
/// value or anything that is not a sealed value.
pub fn open(key: &[u8; 32], stored: &str) -> Option<Vec<u8>> {
    let raw = BASE64.decode(stored).ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    Aes256Gcm::new_from_slice(key)
        .ok()?
        .decrypt(Nonce::from_slice(nonce), sealed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sealed_opens_with_its_key_only() {
        let key = derive_key(&[7u8; 32], "test");
        let plain = b"Set your password: https://login.example/set-password?token=abc";
        let sealed = seal(&key, plain).unwrap();
        assert!(!sealed.contains("token"));
        assert_eq!(open(&key, &sealed).unwrap(), plain);
        assert_ne!(
            seal(&key, plain).unwrap(),
            sealed,
            "a fresh nonce every time"
        );
        assert_eq!(
            open(&[8u8; 32], &sealed),
            None,
            "another key cannot open it"
        );
        assert_eq!(
            open(&derive_key(&[7u8; 32], "other"), &sealed),
            None,
            "nor the key of another use"
        );
        let mut raw = BASE64.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            open(&key, &BASE64.encode(raw)),
            None,
            "a changed byte fails"
        );
        assert_eq!(open(&key, "not sealed"), None);
        assert_eq!(open(&key, ""), None);
    }

    #[test]
    fn derived_keys_are_the_hmac_of_the_label_and_differ_per_label() {
        use hmac::Mac;
        let secret = [3u8; 32];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(b"promio.connect sso client secret");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(
            derive_key(&secret, "promio.connect sso client secret"),
            expected,
            "the SSO key that sealed stored client secrets stays the same"
        );
        assert_ne!(derive_key(&secret, "a"), derive_key(&secret, "b"));
        assert_ne!(derive_key(&secret, "a"), derive_key(&[4u8; 32], "a"));
    }
}
