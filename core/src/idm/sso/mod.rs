//! Single sign-on per client over OpenID Connect (authorization code flow with PKCE).
//!
//! The round trip is a small state machine whose state lives in the database, so that any
//! instance can finish what another started:
//!
//! ```text
//! email --start (counted per IP)--> client by the email's domain --> flow row + flow cookie -->
//!   IdP (state, nonce, PKCE S256, login_hint) --callback--> flow taken (single use) --> state
//!   equal? --> code exchanged with that client's credentials --> ID token verified (signature,
//!   iss, aud, exp, nonce) --> email claim (token, else userinfo), not marked unverified -->
//!   inside the client's SSO domains? --> the active user with that email in that client (or one
//!   made just in time) --> bound to this issuer + subject (bound now on the first login)? -->
//!   session
//! ```
//!
//! Every failure ends without a session, with an audit event naming the reason; the browser only
//! learns one of four outcomes ([`SsoFailure`]). Text from the provider's redirect (`error`,
//! `error_description`) reaches the audit log and the log only cleaned and cut. Starts are counted
//! per client address ([`STARTS_PER_IP`]), so that refused ones cannot fill the audit log; so are
//! callbacks without a flow of ours (anyone can send one), of which one per address and hour is
//! audited.
//!
//! An account is bound to the identity (issuer and `sub`) of its first SSO login; an
//! administrator of its client, or an operator, can release the binding ([`release_binding`]).
//!
//! The parts: `provider` holds the HTTP client and the cache of discovery documents ([`Sso`]);
//! `settings` checks a client's SSO settings as operators enter them and seals the client secret;
//! `flow` is the round trip ([`start`], [`callback`]) up to the verified claims; `provision` finds
//! (or makes just in time) the account the claims name and binds it to the identity.

mod flow;
mod outcome;
pub mod provider;
mod provision;
mod settings;
mod target;

pub use flow::{CallbackParams, FLOW_COOKIE, FLOW_TTL_SECS, STARTS_PER_IP, callback, start};
pub use outcome::SsoFailure;
pub use provider::Sso;
pub use provision::release_binding;
pub use settings::{
    PreparedSso, SsoInput, check_provider, configure, parse_domains, parse_email_claim,
    parse_issuer, prepare, store_prepared,
};
