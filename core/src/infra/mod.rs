//! What the flows stand on besides the store: configuration, errors, the hashing pool, mail,
//! sealing and tokens, TOTP, metrics, work in the background, and the audit log's writer.

pub mod api_error;
pub mod audit;
pub mod background;
pub mod config;
pub mod crypto;
pub mod error;
pub mod mail;
pub mod metrics;
pub mod password;
pub mod token;
pub mod totp;
pub mod webauthn;
