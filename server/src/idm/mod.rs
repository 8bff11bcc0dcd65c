//! The identity management flows: plain async Rust over [`Core`] and a principal, tested
//! without HTTP. They take principals (`principal`) and answer with values and cookie intents;
//! they never see a request.

pub mod admin;
pub mod directory;
pub mod housekeeping;
pub mod lifecycle;
pub mod links;
pub mod login;
pub mod operator;
pub mod passkeys;
pub mod principal;
pub mod provisioning;
pub mod sessions;
pub mod signing;
pub mod sso;
pub mod throttle;
pub mod two_factor;

use crate::domain::clock::Clock;
use crate::infra::config::Settings;
use crate::infra::mail::Mailer;
use crate::infra::password::Hasher;
use crate::store::Store;
use sessions::SessionPolicy;
use std::sync::Arc;

/// The running application's parts, shared by HTTP handlers, the CLI and tests.
pub struct Core {
    pub settings: Settings,
    pub store: Store,
    /// Password hashing on its own threads (see `auth::password`).
    pub hasher: Hasher,
    pub sessions: SessionPolicy,
    pub metrics: Arc<crate::infra::metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub time_zone: jiff::tz::TimeZone,
    /// Identity providers: the HTTP client and the discovery cache.
    pub sso: sso::Sso,
    /// Work that requests start and do not wait for.
    pub background: crate::infra::background::Background,
    /// The WebAuthn relying party (none when `PUBLIC_URL` has no domain name).
    pub passkeys: passkeys::Passkeys,
    /// The OpenID Provider's caches (its signing keys).
    pub op: signing::Op,
}
