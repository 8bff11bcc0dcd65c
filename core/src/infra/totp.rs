//! Two-factor authentication with TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, what andOTP and
//! 2FAS expect) and recovery codes.
//!
//! - The secret has 160 bits from the OS's CSPRNG and is stored encrypted (AES-256-GCM with the
//!   deployment's `SECRET_KEY`); it is shown only while it is being activated.
//! - A code is accepted for the current step and the one before, and each step only once: the
//!   step is recorded with one conditional UPDATE whose `rows_affected()` decides, so of two
//!   concurrent submissions of one code exactly one succeeds.
//! - Recovery codes: ten of the form `xxxx-xxxx`, shown once, stored as an HMAC with the secret key,
//!   each usable once (again one conditional UPDATE).

use crate::domain::clock::UnixTime;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const STEP_SECS: i64 = 30;
pub const RECOVERY_CODES: usize = 10;

/// A fresh 160-bit secret.
pub fn generate_secret() -> [u8; 20] {
    let mut secret = [0u8; 20];
    OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret as authenticator apps take it for manual entry (base32, no padding).
pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(STEP_SECS as u64)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .ok()
}

/// The `otpauth://` URI for the QR code: issuer and account name as the app will show them.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    totp(secret, issuer, account)?.to_url().ok()
}

/// The step whose code `code` is, if it is the current or the previous step at `now`.
pub fn matching_step(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "x", "x")?;
    [now, now - STEP_SECS]
        .into_iter()
        .filter(|t| *t >= 0)
        .find_map(|t| totp.check(&code, t as u64).map(|step| step as i64))
}

/// The code of the step at `at` (tests, and the QR code check).
pub fn code_at(secret: &[u8], at: UnixTime) -> Option<String> {
    Some(
        totp(secret, "x", "x")?
            .generate(at.max(0) as u64)
            .to_string(),
    )
}

/// TOTP secrets are sealed with `SECRET_KEY` itself (see [`crate::infra::crypto`]).
pub use crate::infra::crypto::{open, seal};

/// Ten new recovery codes, `xxxx-xxxx` from an alphabet without look-alikes (about 40 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 8];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..4], &chars[4..])
        })
        .collect()
}

/// Whether input looks like a recovery code rather than a TOTP code.
pub fn is_recovery_code(input: &str) -> bool {
    let normalized = normalize_recovery(input);
    normalized.len() == 8 && normalized.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn normalize_recovery(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The stored form of a recovery code.
pub fn recovery_hash(key: &[u8; 32], code: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(normalize_recovery(code).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8; 20] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // RFC 6238, appendix B (SHA-1), truncated to 6 digits.
        assert_eq!(code_at(SECRET, 59).unwrap(), "287082");
        assert_eq!(code_at(SECRET, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(SECRET, 2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn the_window_is_the_current_step_and_the_one_before() {
        let now = 1_800_000_015; // in the middle of a step
        let step = now / STEP_SECS;
        let code = |s: i64| code_at(SECRET, s * STEP_SECS).unwrap();
        assert_eq!(matching_step(SECRET, &code(step), now), Some(step));
        assert_eq!(matching_step(SECRET, &code(step - 1), now), Some(step - 1));
        assert_eq!(
            matching_step(SECRET, &code(step - 2), now),
            None,
            "two steps back is too old"
        );
        assert_eq!(
            matching_step(SECRET, &code(step + 1), now),
            None,
            "the next step is not accepted"
        );
    }

    #[test]
    fn malformed_codes_never_match() {
        let now = 1_800_000_000;
        for bad in ["", "12345", "1234567", "abcdef", "12 345", "１２３４５６"] {
            assert_eq!(matching_step(SECRET, bad, now), None, "{bad}");
        }
        let code = code_at(SECRET, now).unwrap();
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(
            matching_step(SECRET, &spaced, now).is_some(),
            "spaces as apps show them are fine"
        );
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_the_account() {
        let uri = otpauth_uri(SECRET, "promio.net GmbH", "ACME/erika").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/promio.net%20GmbH:ACME%2Ferika?"),
            "{uri}"
        );
        assert!(uri.contains("issuer=promio.net%20GmbH"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", secret_base32(SECRET))),
            "{uri}"
        );
        assert!(!uri.contains("algorithm=SHA256"), "{uri}");
    }

    #[test]
    fn secrets_are_160_bits_and_sealed_with_the_key() {
        let key = [9u8; 32];
        let secret = generate_secret();
        assert_ne!(secret, generate_secret());
        let sealed = seal(&key, &secret).unwrap();
        assert!(!sealed.contains(&secret_base32(&secret)));
        assert_eq!(open(&key, &sealed).unwrap(), secret);
        assert_eq!(
            open(&[8u8; 32], &sealed),
            None,
            "another key cannot open it"
        );
        assert_ne!(
            seal(&key, &secret).unwrap(),
            sealed,
            "a fresh nonce every time"
        );
    }

    #[test]
    fn recovery_codes_have_the_documented_form() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(is_recovery_code(code));
        }
        let key = [1u8; 32];
        assert_eq!(
            recovery_hash(&key, &codes[0]),
            recovery_hash(&key, &codes[0].to_uppercase().replace('-', " "))
        );
        assert!(!is_recovery_code("123456"));
    }
}
