//! Limits and lifetimes that more than one layer reads (the store's SQL, the flows, the
//! housekeeping): one definition below all of them.

// Throttling (see `crate::idm::throttle`).
pub const ACCOUNT_RESET_AFTER: i64 = 24 * 3600;
/// An address's failed logins are counted in a window of this long from its first one.
pub const IP_WINDOW: i64 = 15 * 60;
/// Consecutive failures after which an account's password (or, on its own counter, the user's
/// second factor) is not checked again.
pub const LOCK_AFTER: i64 = 100;
/// Refusals while a key waits are counted on a row of their own; one audit event per key and
/// this window says so, instead of one per refusal.
pub const REFUSALS_WINDOW: i64 = 3600;
/// Failed logins from one address in its window before its logins wait (step by step, see
/// `crate::idm::throttle::ip_delay_secs`).
pub const IP_FAILURES: i64 = 100;
/// Failed logins from one address in its window after which its logins wait until the window
/// ends: the steps alone cannot stop requests sent all at once, which pass one wait together.
pub const IP_FAILURES_MAX: i64 = 150;
/// Consecutive failures after which the user gets a mail (at most one a day).
pub const NOTIFY_AFTER: i64 = 10;
pub const FORGOT_PER_IP_HOUR: i64 = 20;

// The second factor (see `crate::idm::two_factor`).
/// After this many wrong codes the pending state ends and the login starts over.
pub const MAX_FAILURES: i64 = 5;
/// A login younger than this confirms a sensitive action without the password.
pub const REAUTH_SECS: i64 = 5 * 60;

// The OpenID Provider (see `promio_server::edge::oauth`).
/// Life of an authorization code.
pub const CODE_SECS: i64 = 60;
/// Life of an access token.
pub const ACCESS_SECS: i64 = 600;
/// Life of a refresh token (each use gives a new one).
pub const REFRESH_SECS: i64 = 30 * 86_400;
/// Life of an ID token.
pub const ID_TOKEN_SECS: i64 = 3600;
/// How long an authorization request waits for the login.
pub const REQUEST_SECS: i64 = 600;
/// A token not delivered this long after it was queued is given up.
pub const GIVE_UP_AFTER_SECS: i64 = 2 * 86_400;
