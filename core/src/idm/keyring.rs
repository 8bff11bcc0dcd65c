//! The OpenID Provider's signing keys as this process last read them (`crate::idm::signing` reads,
//! signs and rotates): a cache of what the database holds, and nothing else.

use crate::domain::clock::UnixTime;
use crate::domain::limits::ID_TOKEN_SECS;
use openssl::pkey::{PKey, Private, Public};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// How long the keys read from the database are used before they are read again.
pub const CACHE_SECS: i64 = 10;

/// How long a retired key stays in the JWKS: its last ID token's life and five minutes of clock
/// skew.
pub const PUBLISHED_AFTER_RETIREMENT: i64 = ID_TOKEN_SECS + 300;

/// One stored key, ready to use.
pub(crate) struct Key {
    pub(crate) kid: String,
    pub(crate) public: PKey<Public>,
    pub(crate) jwk: Value,
    pub(crate) signs_from: UnixTime,
    pub(crate) retired_at: Option<UnixTime>,
    /// Opened only for keys that sign now or later (`None`: retired, or it would not open).
    pub(crate) private: Option<Arc<PKey<Private>>>,
}

impl Key {
    pub(crate) fn signs_at(&self, now: UnixTime) -> bool {
        self.signs_from <= now && self.retired_at.is_none_or(|r| r > now)
    }

    pub(crate) fn published_at(&self, now: UnixTime) -> bool {
        self.retired_at
            .is_none_or(|r| now < r + PUBLISHED_AFTER_RETIREMENT)
    }
}

pub(crate) struct Loaded {
    pub(crate) at: UnixTime,
    /// Newest first (by `signs_from`).
    pub(crate) keys: Vec<Key>,
}

/// The keys as last read (held by [`Op`]).
#[derive(Default)]
pub struct Cache {
    loaded: Mutex<Option<Arc<Loaded>>>,
}

impl Cache {
    pub(crate) fn fresh(&self, now: UnixTime) -> Option<Arc<Loaded>> {
        let guard = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|l| l.at <= now && now < l.at + CACHE_SECS)
            .cloned()
    }

    pub(crate) fn put(&self, loaded: Arc<Loaded>) {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
    }

    /// Forgets the keys, so that the next use reads them (after this instance changed them).
    pub fn clear(&self) {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The provider's state in this process: only caches of what the database holds.
#[derive(Default)]
pub struct Op {
    /// The signing keys as last read (see `keys`).
    pub(crate) keys: Cache,
    /// Wakes this instance's back-channel logout sweeper (see `logout`).
    pub logout_wake: tokio::sync::Notify,
}

impl Op {
    pub fn new() -> Op {
        Op::default()
    }
}
