//! The audit log's vocabulary and its one way in: every event names an [`AuditAction`] and an
//! [`Outcome`], is built with [`Event`], and is written by [`record`] (or, where it must share a
//! trip with other writes, by the store function that takes an [`Event`]). The rows are never
//! changed, except that a deleted person's identifying text becomes a pseudonym
//! (`crate::idm::lifecycle`), and housekeeping deletes them after `AUDIT_RETENTION_DAYS`; the log view
//! and the CSV export read them (`store::audit`).

use std::fmt;

/// What happened. The names are the actions stored in the log (and filtered by prefix in the
/// view, e.g. `login.`), so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    LoginPassword,
    LoginSecondFactor,
    LoginSso,
    /// A login with a passkey alone.
    LoginPasskey,
    LoginThrottleCleared,
    Logout,
    /// A sensitive change confirmed with the password again.
    Reauth,
    SessionExpired,
    SessionEnded,
    UserCreated,
    UserChanged,
    UserEmailChanged,
    UserDeactivated,
    UserReactivated,
    /// A user deleted (at once, or after the client's retention); the subject is a pseudonym.
    UserDeleted,
    UserRegistrationResent,
    UserResetSent,
    UserSessionsEnded,
    UserSsoBound,
    UserSsoReleased,
    PasswordResetRequested,
    /// The user changed their own password (the Security page).
    PasswordChanged,
    /// A registration link used or refused.
    LinkRegistration,
    /// A password-reset link used or refused.
    LinkPasswordReset,
    LinkSecondFactor,
    TwoFactorActivation,
    TwoFactorActivated,
    TwoFactorDeactivation,
    TwoFactorDeactivated,
    TwoFactorRecoveryCodesRenewed,
    TwoFactorReset,
    PasskeyAdded,
    PasskeyRemoved,
    ClientCreated,
    ClientSettingsChanged,
    ClientSsoChanged,
    ClientDeactivated,
    ClientReactivated,
    /// An application (OpenID Connect relying party) got a code.
    OAuthAuthorize,
    /// An application redeemed a code or a refresh token.
    OAuthToken,
    /// An application's request was refused (the detail says why; never a token).
    OAuthRefused,
    /// An application ended a session (RP-initiated logout).
    OAuthLogout,
    AppCreated,
    AppDeleted,
    AppSecretRotated,
    AppChanged,
    /// The next ID-token signing key was made.
    KeysRotated,
    /// A mail sent or failed; the mail's kind (`registration`, `password_reset`, …) follows.
    Mail(&'static str),
}

impl AuditAction {
    /// Every action with a fixed name (the mail actions take the mail's kind).
    pub const ALL: [AuditAction; 47] = [
        AuditAction::LoginPassword,
        AuditAction::LoginSecondFactor,
        AuditAction::LoginSso,
        AuditAction::LoginPasskey,
        AuditAction::LoginThrottleCleared,
        AuditAction::Logout,
        AuditAction::Reauth,
        AuditAction::SessionExpired,
        AuditAction::SessionEnded,
        AuditAction::UserCreated,
        AuditAction::UserChanged,
        AuditAction::UserEmailChanged,
        AuditAction::UserDeactivated,
        AuditAction::UserReactivated,
        AuditAction::UserDeleted,
        AuditAction::UserRegistrationResent,
        AuditAction::UserResetSent,
        AuditAction::UserSessionsEnded,
        AuditAction::UserSsoBound,
        AuditAction::UserSsoReleased,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordChanged,
        AuditAction::LinkRegistration,
        AuditAction::LinkPasswordReset,
        AuditAction::LinkSecondFactor,
        AuditAction::TwoFactorActivation,
        AuditAction::TwoFactorActivated,
        AuditAction::TwoFactorDeactivation,
        AuditAction::TwoFactorDeactivated,
        AuditAction::TwoFactorRecoveryCodesRenewed,
        AuditAction::TwoFactorReset,
        AuditAction::PasskeyAdded,
        AuditAction::PasskeyRemoved,
        AuditAction::ClientCreated,
        AuditAction::ClientSettingsChanged,
        AuditAction::ClientSsoChanged,
        AuditAction::ClientDeactivated,
        AuditAction::ClientReactivated,
        AuditAction::OAuthAuthorize,
        AuditAction::OAuthToken,
        AuditAction::OAuthRefused,
        AuditAction::OAuthLogout,
        AuditAction::AppCreated,
        AuditAction::AppDeleted,
        AuditAction::AppSecretRotated,
        AuditAction::AppChanged,
        AuditAction::KeysRotated,
    ];

    /// The stored name.
    pub fn name(self) -> String {
        match self {
            AuditAction::Mail(kind) => format!("mail.{kind}"),
            other => other.fixed_name().to_owned(),
        }
    }

    fn fixed_name(self) -> &'static str {
        match self {
            AuditAction::LoginPassword => "login.password",
            AuditAction::LoginSecondFactor => "login.second_factor",
            AuditAction::LoginSso => "login.sso",
            AuditAction::LoginPasskey => "login.passkey",
            AuditAction::LoginThrottleCleared => "login.throttle_cleared",
            AuditAction::Logout => "logout",
            AuditAction::Reauth => "reauth",
            AuditAction::SessionExpired => "session.expired",
            AuditAction::SessionEnded => "session.ended",
            AuditAction::UserCreated => "user.created",
            AuditAction::UserChanged => "user.changed",
            AuditAction::UserEmailChanged => "user.email_changed",
            AuditAction::UserDeactivated => "user.deactivated",
            AuditAction::UserReactivated => "user.reactivated",
            AuditAction::UserDeleted => "user.deleted",
            AuditAction::UserRegistrationResent => "user.registration_resent",
            AuditAction::UserResetSent => "user.reset_sent",
            AuditAction::UserSessionsEnded => "user.sessions_ended",
            AuditAction::UserSsoBound => "user.sso_bound",
            AuditAction::UserSsoReleased => "user.sso_released",
            AuditAction::PasswordResetRequested => "password.reset_requested",
            AuditAction::PasswordChanged => "password.changed",
            AuditAction::LinkRegistration => "link.registration",
            AuditAction::LinkPasswordReset => "link.password_reset",
            AuditAction::LinkSecondFactor => "link.second_factor",
            AuditAction::TwoFactorActivation => "2fa.activation",
            AuditAction::TwoFactorActivated => "2fa.activated",
            AuditAction::TwoFactorDeactivation => "2fa.deactivation",
            AuditAction::TwoFactorDeactivated => "2fa.deactivated",
            AuditAction::TwoFactorRecoveryCodesRenewed => "2fa.recovery_codes_renewed",
            AuditAction::TwoFactorReset => "2fa.reset",
            AuditAction::PasskeyAdded => "passkey.added",
            AuditAction::PasskeyRemoved => "passkey.removed",
            AuditAction::ClientCreated => "client.created",
            AuditAction::ClientSettingsChanged => "client.settings_changed",
            AuditAction::ClientSsoChanged => "client.sso_changed",
            AuditAction::ClientDeactivated => "client.deactivated",
            AuditAction::ClientReactivated => "client.reactivated",
            AuditAction::OAuthAuthorize => "oauth.authorize",
            AuditAction::OAuthToken => "oauth.token",
            AuditAction::OAuthRefused => "oauth.refused",
            AuditAction::OAuthLogout => "oauth.logout",
            AuditAction::AppCreated => "app.created",
            AuditAction::AppDeleted => "app.deleted",
            AuditAction::AppSecretRotated => "app.secret_rotated",
            AuditAction::AppChanged => "app.changed",
            AuditAction::KeysRotated => "keys.rotated",
            AuditAction::Mail(_) => "mail",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq<AuditAction> for String {
    fn eq(&self, action: &AuditAction) -> bool {
        *self == action.name()
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A rule said no (as opposed to a failed check).
    Refused,
    /// Refused while a counter waits.
    Throttled,
    /// Half-way: the password is right and the second factor is due.
    Pending,
    /// A session that ended by itself.
    Ended,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
            Outcome::Throttled => "throttled",
            Outcome::Pending => "pending",
            Outcome::Ended => "ended",
        }
    }
}

impl PartialEq<Outcome> for String {
    fn eq(&self, outcome: &Outcome) -> bool {
        self == outcome.as_str()
    }
}

/// The most characters of a text from outside (an IdP's error, a user agent) that reach the audit
/// log or the log.
pub const OUTSIDE_TEXT_MAX: usize = 200;

/// A text that may come from outside, made fit for the audit log and the log: control characters
/// (CR, LF, ANSI escapes …) become spaces and it is cut to `max` characters (with `…` when cut).
pub fn clean_text(raw: &str, max: usize) -> String {
    let mut out: String = raw
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if raw.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// An account an event can be about: its id and its client's (the store's user row is one).
pub trait Account {
    fn account_ids(&self) -> (&crate::domain::UserId, &crate::domain::ClientId);
}

/// One event: what, how it ended, in which client, by and about whom, why, from where.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub action: AuditAction,
    pub outcome: Outcome,
    pub client_id: Option<&'a str>,
    pub actor_user_id: Option<&'a str>,
    pub subject_user_id: Option<&'a str>,
    /// A reason for the record, never shown to the user it concerns and never a secret.
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(action: AuditAction, outcome: Outcome) -> Self {
        Event {
            action,
            outcome,
            client_id: None,
            actor_user_id: None,
            subject_user_id: None,
            detail: "",
            ip: None,
        }
    }

    /// What a user did to their own account (client, actor and subject are the user).
    pub fn own(user: &'a impl Account, action: AuditAction, outcome: Outcome) -> Self {
        let (id, client_id) = user.account_ids();
        Event::new(action, outcome)
            .client(Some(client_id))
            .actor(Some(id))
            .subject(Some(id))
    }

    /// A login attempt: in the client, by and about the user (either unknown for an attempt that
    /// names none).
    pub fn login(
        action: AuditAction,
        outcome: Outcome,
        client_id: Option<&'a str>,
        user_id: Option<&'a str>,
    ) -> Self {
        Event::new(action, outcome)
            .client(client_id)
            .actor(user_id)
            .subject(user_id)
    }

    pub fn client<S: AsRef<str> + ?Sized>(mut self, client_id: Option<&'a S>) -> Self {
        self.client_id = client_id.map(AsRef::as_ref);
        self
    }

    pub fn actor<S: AsRef<str> + ?Sized>(mut self, user_id: Option<&'a S>) -> Self {
        self.actor_user_id = user_id.map(AsRef::as_ref);
        self
    }

    pub fn subject<S: AsRef<str> + ?Sized>(mut self, user_id: Option<&'a S>) -> Self {
        self.subject_user_id = user_id.map(AsRef::as_ref);
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }

    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }
}

/// Who made a change, for the audit log (`None`: the command line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor<'a> {
    pub user_id: Option<&'a str>,
    pub ip: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn outside_text_loses_its_control_characters_and_its_excess() {
        assert_eq!(clean_text("a\r\nb\u{1b}[31mc", 50), "a  b [31mc");
        assert_eq!(clean_text("abcdef", 3), "abc…");
        assert_eq!(clean_text("abc", 3), "abc");
        assert_eq!(clean_text(&"é".repeat(10), 4), "éééé…");
    }

    #[test]
    fn every_action_has_its_own_name() {
        let names: HashSet<String> = AuditAction::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        assert!(!names.contains("mail"));
        assert_eq!(
            AuditAction::Mail("registration").name(),
            "mail.registration"
        );
        assert_eq!(AuditAction::LoginPassword.name(), "login.password");
    }
}
