//! The identity management flows: plain async Rust over [`Core`] and a principal, tested
//! without HTTP. They take principals (`principal`) and answer with values and cookie intents;
//! they never see a request.

pub mod admin;
pub mod apps;
pub mod directory;
pub mod housekeeping;
pub mod keyring;
pub mod lease;
pub mod lifecycle;
pub mod links;
pub mod login;
pub mod operator;
pub mod own_password;
pub mod passkeys;
pub mod principal;
pub mod provisioning;
pub mod sessions;
pub mod signing;
pub mod sso;
pub mod throttle;
pub mod two_factor;

use crate::domain::clock::Clock;
use crate::idm::keyring::Op;
use crate::idm::sso::provider::Sso;
use crate::infra::config::Settings;
use crate::infra::mail::Mailer;
use crate::infra::password::Hasher;
use crate::infra::webauthn::Passkeys;
use crate::store::Store;
use std::sync::Arc;

/// The running application's parts, shared by HTTP handlers, the CLI and tests.
pub struct Core {
    pub settings: Settings,
    pub store: Store,
    /// Password hashing on its own threads (see `crate::infra::password`).
    pub hasher: Hasher,
    pub sessions: SessionPolicy,
    pub metrics: Arc<crate::infra::metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub time_zone: jiff::tz::TimeZone,
    /// Identity providers: the HTTP client and the discovery cache.
    pub sso: Sso,
    /// Work that requests start and do not wait for.
    pub background: crate::infra::background::Background,
    /// The WebAuthn relying party (none when `PUBLIC_URL` has no domain name).
    pub passkeys: Passkeys,
    /// The OpenID Provider's caches (its signing keys).
    pub op: Op,
}

/// A use of a session is written at most this often (see [`SessionPolicy::touch_after_secs`]).
pub(crate) const TOUCH_AFTER_SECS: i64 = 60;

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

impl SessionPolicy {
    /// How long a use may go unwritten: [`TOUCH_AFTER_SECS`], or a quarter of a shorter idle
    /// timeout, so that a use (**Stay logged in** in the idle warning among them) always counts
    /// well before the session would end.
    pub fn touch_after_secs(&self) -> i64 {
        TOUCH_AFTER_SECS.min(self.idle_secs / 4).max(1)
    }
}
