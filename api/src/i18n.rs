//! The UI's two languages. Every text a person reads comes from [`t`] (or from
//! [`crate::ApiError::message`]), so adding a text means adding one arm per language here and
//! the compiler points at any language that lacks it.
//!
//! The language is chosen on the server (cookie `lang`, else `Accept-Language`, else English), written
//! into `<html lang>` and read back from there when the page hydrates, so both sides agree.

use serde::{Deserialize, Serialize};

/// Name of the cookie that remembers the language chosen with the switch.
pub const LANG_COOKIE: &str = "lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::De, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language's own name, as shown in the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// Picks the best supported language from an `Accept-Language` header value, honouring q-values.
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.split(',') {
            let mut parts = item.split(';');
            let Some(tag) = parts.next() else { continue };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_code(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// Resolves the language of a request from its `lang` cookie and `Accept-Language` header.
    pub fn for_request(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        cookie
            .and_then(Lang::from_code)
            .or_else(|| accept_language.and_then(Lang::negotiate))
            .unwrap_or_default()
    }
}

/// Every fixed text of the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    AppName,
    LoginTitle,
    CompanyId,
    UserName,
    Password,
    Ok,
    LoginWithSso,
    ForgotPassword,
    LogOut,
    LoggedOut,
    LoggedInAs,
    Company,
    Role,
    RoleUser,
    RoleAdmin,
    RoleOperator,
    Language,
    Working,
    NotFoundTitle,
    NotFoundText,
    BackToLogin,
    Home,
    SessionEnded,
    IdleWarning,
    StayLoggedIn,
    SetPasswordTitle,
    ResetPasswordTitle,
    NewPassword,
    RepeatNewPassword,
    // The Security page's password change.
    PasswordTitle,
    CurrentPassword,
    ChangePassword,
    PasswordChanged,
    PasswordRules,
    PasswordRules2fa,
    LinkValidUntil,
    PasswordSet,
    LinkExpiredRegistration,
    LinkExpiredReset,
    LinkUsed,
    LinkSuperseded,
    LinkUnknown,
    RequestNewReset,
    ForgotTitle,
    ForgotIntro,
    ForgotSent,
    UserAdministration,
    NewUser,
    FirstName,
    LastName,
    EmailAddress,
    Save,
    Cancel,
    Edit,
    Search,
    StatusFilter,
    AllStatuses,
    StatusInvited,
    StatusActive,
    StatusDeactivated,
    InvitationPending,
    InvitationExpired,
    InvitationAccepted,
    ResendRegistration,
    SendPasswordReset,
    Deactivate,
    Reactivate,
    Previous,
    Next,
    NoUsers,
    MailQueued,
    UserCreated,
    UserSaved,
    UserDeactivated,
    UserReactivated,
    Delete,
    DeleteUserConfirm,
    LoginWithPasskey,
    UsePasskey,
    ResetWithPasskey,
    ResetOrPasskey,
    AddPasskey,
    PasskeyName,
    Remove,
    Passkeys,
    PasskeysIntro,
    NoPasskeys,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyNameSaved,
    Added,
    LastUsed,
    NeverUsed,
    PasskeyNotUsed,
    PasskeyAlreadyOnDevice,
    PasskeyUnsupported,
    OrAddPasskey,
    RemovePasskeys,
    PasskeysRemoved,
    AllowPasskeys,
    UserDeleted,
    DeletionOn,
    DeletionMonths,
    InactivityMonths,
    InactivityMonthsHint,
    Status,
    Actions,
    Invitation,
    TwoFactorCode,
    TwoFactorCodeHint,
    TwoFactorTitle,
    TwoFactorIntro,
    ActivateTwoFactor,
    PasswordAgainHint,
    Activate,
    SecretKey,
    QrCode,
    ScanIntro,
    RecoveryCodes,
    RecoveryCodesIntro,
    DeactivateTwoFactor,
    TwoFactorOn,
    TwoFactorOff,
    TwoFactorSetupRequired,
    Continue,
    Security,
    NewRecoveryCodes,
    TwoFactorNotForSso,
    RecoveryLeft,
    ResetTwoFactor,
    TwoFactorResetDone,
    ReleaseSsoBinding,
    SsoBindingReleased,
    TwoFactorDeactivated,
    TwoFactorRequiredByCompany,
    ThrottledAccounts,
    ThrottledSecondFactor,
    FailedAttempts,
    AllowLoginAgain,
    ThrottleCleared,
    Clients,
    NewClient,
    Name,
    RegistrationLinkHours,
    ResetLinkHours,
    Require2fa,
    Sso,
    Yes,
    No,
    ClientSaved,
    ClientCreated,
    ClientDeactivated,
    ClientReactivated,
    AuditLog,
    Action,
    From,
    To,
    Time,
    Actor,
    Subject,
    Outcome,
    Detail,
    Ip,
    ExportCsv,
    Filter,
    ActiveSessions,
    Started,
    LastSeen,
    Device,
    ThisSession,
    // The applications (OpenID Connect relying parties) on the Security page, and the logout
    // pages of `/oauth/logout`.
    AppLogins,
    NoAppLogins,
    LoggedInSince,
    LogoutConfirmTitle,
    LogoutConfirmText,
    YouAreLoggedOut,
    LogoutRefusedTitle,
    LogoutInvalidRequest,
    EndSession,
    EndAllSessions,
    SessionsEnded,
    SsoTitle,
    SsoIntro,
    SsoExpired,
    SsoCancelled,
    SsoNotRegistered,
    SsoFailed,
    SsoRedirecting,
    /// The title of the page an application's faulty login request ends on.
    AuthorizeRefusedTitle,
    AuthorizeUnknownClient,
    AuthorizeUnknownRedirect,
    /// The page after a login that goes on to the application that asked for it.
    AuthorizeContinuing,
    SsoSettings,
    SsoHint,
    IssuerUrl,
    SsoClientId,
    ClientSecret,
    ClientSecretKept,
    EmailDomains,
    EmailClaim,
    SsoCreateUsers,
    TestConnection,
    SsoRedirectUri,
    ConnectionOk,
    // The operators' Applications page.
    OperatorApplications,
    NewApplication,
    RedirectUris,
    PostLogoutRedirectUris,
    BackchannelLogoutUri,
    PublicClient,
    PkceOptional,
    AppPkceOptional,
    OneUriPerLine,
    AppCompanyHint,
    AnyCompany,
    AppType,
    AppPublic,
    AppConfidential,
    RotateSecret,
    ApplicationCreated,
    SecretRotated,
    SecretShownOnce,
    ApplicationDeleted,
    DeleteApplicationConfirm,
    NoApplications,
}

/// "1 user", "2 users" (German: "1 Benutzer", "2 Benutzer").
pub fn user_count(lang: Lang, n: u64) -> String {
    match (lang, n) {
        (Lang::En, 1) => "1 user".to_owned(),
        (Lang::En, n) => format!("{n} users"),
        (Lang::De, n) => format!("{n} Benutzer"),
    }
}

/// "1 client", "2 clients" ("1 Mandant", "2 Mandanten").
pub fn client_count(lang: Lang, n: u64) -> String {
    match (lang, n) {
        (Lang::En, 1) => "1 client".to_owned(),
        (Lang::En, n) => format!("{n} clients"),
        (Lang::De, 1) => "1 Mandant".to_owned(),
        (Lang::De, n) => format!("{n} Mandanten"),
    }
}

/// "1 passkey", "2 passkeys".
pub fn passkey_count(lang: Lang, n: u32) -> String {
    match (lang, n) {
        (Lang::En, 1) => "1 passkey".to_owned(),
        (Lang::En, n) => format!("{n} passkeys"),
        (Lang::De, n) => format!("{n} Passkey{}", if n == 1 { "" } else { "s" }),
    }
}

/// The question before an application is deleted, naming it.
pub fn delete_application_title(lang: Lang, name: &str) -> String {
    match lang {
        Lang::En => format!("Delete the application {name}?"),
        Lang::De => format!("Die Anwendung {name} löschen?"),
    }
}

/// The question before a user is deleted, naming them.
pub fn delete_user_title(lang: Lang, who: &str) -> String {
    match lang {
        Lang::En => format!("Delete {who}?"),
        Lang::De => format!("{who} löschen?"),
    }
}

pub fn t(lang: Lang, key: T) -> &'static str {
    use Lang::*;
    match (key, lang) {
        (T::AppName, _) => "promio.connect",
        (T::LoginTitle, En) => "Log in",
        (T::LoginTitle, De) => "Anmelden",
        (T::CompanyId, En) => "Company ID",
        (T::CompanyId, De) => "Firmen-ID",
        (T::UserName, En) => "User name",
        (T::UserName, De) => "Benutzername",
        (T::Password, En) => "Password",
        (T::Password, De) => "Passwort",
        (T::Ok, _) => "OK",
        (T::LoginWithSso, En) => "Login with SSO",
        (T::LoginWithSso, De) => "Mit SSO anmelden",
        (T::ForgotPassword, En) => "Forgot your password?",
        (T::ForgotPassword, De) => "Passwort vergessen?",
        (T::LogOut, En) => "Log out",
        (T::LogOut, De) => "Abmelden",
        (T::LoggedOut, En) => "You have been logged out.",
        (T::LoggedOut, De) => "Sie wurden abgemeldet.",
        (T::LoggedInAs, En) => "Logged in as",
        (T::LoggedInAs, De) => "Angemeldet als",
        (T::Company, En) => "Company",
        (T::Company, De) => "Firma",
        (T::Role, En) => "Role",
        (T::Role, De) => "Rolle",
        (T::RoleUser, En) => "User",
        (T::RoleUser, De) => "Benutzer",
        (T::RoleAdmin, En) => "User administrator",
        (T::RoleAdmin, De) => "Benutzeradministrator",
        (T::RoleOperator, En) => "Operator",
        (T::RoleOperator, De) => "Operator",
        (T::Language, En) => "Language",
        (T::Language, De) => "Sprache",
        (T::Working, En) => "Please wait…",
        (T::Working, De) => "Bitte warten…",
        (T::NotFoundTitle, En) => "Page not found",
        (T::NotFoundTitle, De) => "Seite nicht gefunden",
        (T::NotFoundText, En) => "There is no page at this address.",
        (T::NotFoundText, De) => "Unter dieser Adresse gibt es keine Seite.",
        (T::BackToLogin, En) => "To the login page",
        (T::BackToLogin, De) => "Zur Anmeldeseite",
        (T::Home, En) => "Start",
        (T::Home, De) => "Start",
        (T::SessionEnded, En) => "Your session has ended. Please log in again.",
        (T::SessionEnded, De) => "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.",
        (T::IdleWarning, En) => {
            "You have been inactive for a while: your session will end soon. Do you want to stay logged in?"
        }
        (T::IdleWarning, De) => {
            "Sie waren eine Weile inaktiv: Ihre Sitzung endet bald. Möchten Sie angemeldet bleiben?"
        }
        (T::StayLoggedIn, En) => "Stay logged in",
        (T::StayLoggedIn, De) => "Angemeldet bleiben",
        (T::SetPasswordTitle, En) => "Set your password",
        (T::SetPasswordTitle, De) => "Passwort festlegen",
        (T::ResetPasswordTitle, En) => "Choose a new password",
        (T::ResetPasswordTitle, De) => "Neues Passwort wählen",
        (T::NewPassword, En) => "New password",
        (T::NewPassword, De) => "Neues Passwort",
        (T::RepeatNewPassword, En) => "Repeat new password",
        (T::RepeatNewPassword, De) => "Neues Passwort wiederholen",
        (T::PasswordTitle, En) => "Password",
        (T::PasswordTitle, De) => "Passwort",
        (T::CurrentPassword, En) => "Current password",
        (T::CurrentPassword, De) => "Aktuelles Passwort",
        (T::ChangePassword, En) => "Change password",
        (T::ChangePassword, De) => "Passwort ändern",
        (T::PasswordChanged, En) => {
            "Your password was changed. Your other sessions have ended; a mail tells you of the change."
        }
        (T::PasswordChanged, De) => {
            "Ihr Passwort wurde geändert. Ihre anderen Sitzungen wurden beendet; eine E-Mail bestätigt die Änderung."
        }
        (T::PasswordRules, En) => {
            "At least 15 characters. A few random words make a good password."
        }
        (T::PasswordRules, De) => {
            "Mindestens 15 Zeichen. Einige zufällige Wörter ergeben ein gutes Passwort."
        }
        (T::PasswordRules2fa, En) => {
            "At least 8 characters. A few random words make a good password."
        }
        (T::PasswordRules2fa, De) => {
            "Mindestens 8 Zeichen. Einige zufällige Wörter ergeben ein gutes Passwort."
        }
        (T::LinkValidUntil, En) => "This link is valid until",
        (T::LinkValidUntil, De) => "Dieser Link ist gültig bis",
        (T::PasswordSet, En) => "Your password has been set. You can log in now.",
        (T::PasswordSet, De) => "Ihr Passwort wurde festgelegt. Sie können sich jetzt anmelden.",
        (T::LinkExpiredRegistration, En) => {
            "This link has expired. Please ask your company's user administrator to send you a new registration mail."
        }
        (T::LinkExpiredRegistration, De) => {
            "Dieser Link ist abgelaufen. Bitte bitten Sie die Benutzerverwaltung Ihrer Firma um eine neue Registrierungs-E-Mail."
        }
        (T::LinkExpiredReset, En) => "This link has expired. You can request a new one.",
        (T::LinkExpiredReset, De) => {
            "Dieser Link ist abgelaufen. Sie können einen neuen anfordern."
        }
        (T::LinkUsed, En) => "This link has already been used. You can log in with your password.",
        (T::LinkUsed, De) => {
            "Dieser Link wurde bereits verwendet. Sie können sich mit Ihrem Passwort anmelden."
        }
        (T::LinkSuperseded, En) => {
            "A newer mail has been sent, so this link is no longer valid. Please use the link in the most recent mail."
        }
        (T::LinkSuperseded, De) => {
            "Es wurde eine neuere E-Mail gesendet, daher gilt dieser Link nicht mehr. Bitte nutzen Sie den Link aus der neuesten E-Mail."
        }
        (T::LinkUnknown, En) => {
            "This link is not valid. Please check that you copied it completely."
        }
        (T::LinkUnknown, De) => {
            "Dieser Link ist ungültig. Bitte prüfen Sie, ob Sie ihn vollständig kopiert haben."
        }
        (T::RequestNewReset, En) => "Request a new link",
        (T::RequestNewReset, De) => "Neuen Link anfordern",
        (T::ForgotTitle, En) => "Forgot your password?",
        (T::ForgotTitle, De) => "Passwort vergessen?",
        (T::ForgotIntro, En) => {
            "Enter your company ID and user name. We will send you a mail with a link to choose a new password."
        }
        (T::ForgotIntro, De) => {
            "Geben Sie Ihre Firmen-ID und Ihren Benutzernamen ein. Wir senden Ihnen eine E-Mail mit einem Link, über den Sie ein neues Passwort wählen."
        }
        (T::ForgotSent, En) => {
            "If the account exists, a mail with a link to choose a new password is on its way. Please check your inbox."
        }
        (T::ForgotSent, De) => {
            "Falls der Zugang existiert, ist eine E-Mail mit einem Link zum Wählen eines neuen Passworts unterwegs. Bitte prüfen Sie Ihr Postfach."
        }
        (T::UserAdministration, En) => "User administration",
        (T::UserAdministration, De) => "Benutzerverwaltung",
        (T::NewUser, En) => "New user",
        (T::NewUser, De) => "Neuer Benutzer",
        (T::FirstName, En) => "First name",
        (T::FirstName, De) => "Vorname",
        (T::LastName, En) => "Last name",
        (T::LastName, De) => "Nachname",
        (T::EmailAddress, En) => "Email address",
        (T::EmailAddress, De) => "E-Mail-Adresse",
        (T::Save, En) => "Save",
        (T::Save, De) => "Speichern",
        (T::Cancel, En) => "Cancel",
        (T::Cancel, De) => "Abbrechen",
        (T::Edit, En) => "Edit",
        (T::Edit, De) => "Bearbeiten",
        (T::Search, En) => "Search",
        (T::Search, De) => "Suchen",
        (T::StatusFilter, En) => "Status filter",
        (T::StatusFilter, De) => "Statusfilter",
        (T::AllStatuses, En) => "All",
        (T::AllStatuses, De) => "Alle",
        (T::StatusInvited, En) => "Invited",
        (T::StatusInvited, De) => "Eingeladen",
        (T::StatusActive, En) => "Active",
        (T::StatusActive, De) => "Aktiv",
        (T::StatusDeactivated, En) => "Deactivated",
        (T::StatusDeactivated, De) => "Deaktiviert",
        (T::InvitationPending, En) => "Registration link valid until",
        (T::InvitationPending, De) => "Registrierungslink gültig bis",
        (T::InvitationExpired, En) => "Registration link expired",
        (T::InvitationExpired, De) => "Registrierungslink abgelaufen",
        (T::InvitationAccepted, En) => "Registered",
        (T::InvitationAccepted, De) => "Registriert",
        (T::ResendRegistration, En) => "Resend registration mail",
        (T::ResendRegistration, De) => "Registrierungs-E-Mail erneut senden",
        (T::SendPasswordReset, En) => "Send password reset mail",
        (T::SendPasswordReset, De) => "E-Mail zum Zurücksetzen des Passworts senden",
        (T::Deactivate, En) => "Deactivate",
        (T::Deactivate, De) => "Deaktivieren",
        (T::Reactivate, En) => "Reactivate",
        (T::Reactivate, De) => "Reaktivieren",
        (T::Previous, En) => "Previous",
        (T::Previous, De) => "Zurück",
        (T::Next, En) => "Next",
        (T::Next, De) => "Weiter",
        (T::NoUsers, En) => "No users match.",
        (T::NoUsers, De) => "Keine passenden Benutzer.",
        (T::MailQueued, En) => "The mail has been sent.",
        (T::MailQueued, De) => "Die E-Mail wurde gesendet.",
        (T::UserCreated, En) => {
            "The user has been created and the registration mail has been sent."
        }
        (T::UserCreated, De) => {
            "Der Benutzer wurde angelegt und die Registrierungs-E-Mail gesendet."
        }
        (T::UserSaved, En) => "The changes have been saved.",
        (T::UserSaved, De) => "Die Änderungen wurden gespeichert.",
        (T::UserDeactivated, En) => "The user has been deactivated and logged out everywhere.",
        (T::UserDeactivated, De) => "Der Benutzer wurde deaktiviert und überall abgemeldet.",
        (T::UserReactivated, En) => "The user has been reactivated.",
        (T::UserReactivated, De) => "Der Benutzer wurde reaktiviert.",
        (T::Delete, En) => "Delete",
        (T::Delete, De) => "Löschen",
        (T::DeleteUserConfirm, En) => {
            "The account and all its data are deleted now and cannot be restored. The audit log keeps its entries under a pseudonym, and the user name is free again."
        }
        (T::DeleteUserConfirm, De) => {
            "Der Zugang und alle seine Daten werden jetzt gelöscht und lassen sich nicht wiederherstellen. Das Protokoll behält seine Einträge unter einem Pseudonym, und der Benutzername ist wieder frei."
        }
        (T::LoginWithPasskey, En) => "Log in with a passkey",
        (T::LoginWithPasskey, De) => "Mit Passkey anmelden",
        (T::UsePasskey, En) => "Use a passkey",
        (T::UsePasskey, De) => "Passkey verwenden",
        (T::ResetWithPasskey, En) => {
            "Your account is protected by a passkey: enter the new password twice, then confirm it with “Use a passkey”."
        }
        (T::ResetWithPasskey, De) => {
            "Ihr Zugang ist mit einem Passkey geschützt: Geben Sie das neue Passwort zweimal ein und bestätigen Sie es dann mit „Passkey verwenden“."
        }
        (T::ResetOrPasskey, En) => "Or confirm with your passkey instead of a code:",
        (T::ResetOrPasskey, De) => "Oder bestätigen Sie mit Ihrem Passkey statt mit einem Code:",
        (T::AddPasskey, En) => "Add a passkey",
        (T::AddPasskey, De) => "Passkey hinzufügen",
        (T::PasskeyName, En) => "Passkey name",
        (T::PasskeyName, De) => "Name des Passkeys",
        (T::Remove, En) => "Remove",
        (T::Remove, De) => "Entfernen",
        (T::Passkeys, En) => "Passkeys",
        (T::Passkeys, De) => "Passkeys",
        (T::PasskeysIntro, En) => {
            "A passkey logs you in with your device's screen lock or a security key, without a password or code, and cannot be phished. It also serves as your second factor."
        }
        (T::PasskeysIntro, De) => {
            "Ein Passkey meldet Sie mit der Bildschirmsperre Ihres Geräts oder einem Sicherheitsschlüssel an, ohne Passwort oder Code, und kann nicht abgefischt werden. Er dient auch als Ihr zweiter Faktor."
        }
        (T::NoPasskeys, En) => "You have no passkeys yet.",
        (T::NoPasskeys, De) => "Sie haben noch keine Passkeys.",
        (T::PasskeyAdded, En) => "The passkey has been added. You can give it a name.",
        (T::PasskeyAdded, De) => "Der Passkey wurde hinzugefügt. Sie können ihm einen Namen geben.",
        (T::PasskeyRemoved, En) => "The passkey has been removed.",
        (T::PasskeyRemoved, De) => "Der Passkey wurde entfernt.",
        (T::PasskeyNameSaved, En) => "The name has been saved.",
        (T::PasskeyNameSaved, De) => "Der Name wurde gespeichert.",
        (T::Added, En) => "Added",
        (T::Added, De) => "Hinzugefügt",
        (T::LastUsed, En) => "Last used",
        (T::LastUsed, De) => "Zuletzt verwendet",
        (T::NeverUsed, En) => "not yet",
        (T::NeverUsed, De) => "noch nicht",
        (T::PasskeyNotUsed, En) => {
            "No passkey was used (cancelled, timed out, or none on this device). Please try again or choose another way."
        }
        (T::PasskeyNotUsed, De) => {
            "Es wurde kein Passkey verwendet (abgebrochen, Zeit abgelaufen oder keiner auf diesem Gerät). Bitte versuchen Sie es erneut oder wählen Sie einen anderen Weg."
        }
        (T::PasskeyAlreadyOnDevice, En) => "This device already holds a passkey for your account.",
        (T::PasskeyAlreadyOnDevice, De) => {
            "Dieses Gerät enthält bereits einen Passkey für Ihren Zugang."
        }
        (T::PasskeyUnsupported, En) => "This browser cannot use passkeys.",
        (T::PasskeyUnsupported, De) => "Dieser Browser kann keine Passkeys verwenden.",
        (T::OrAddPasskey, En) => "Or use a passkey as your second factor:",
        (T::OrAddPasskey, De) => "Oder verwenden Sie einen Passkey als zweiten Faktor:",
        (T::RemovePasskeys, En) => "Remove passkeys",
        (T::RemovePasskeys, De) => "Passkeys entfernen",
        (T::PasskeysRemoved, En) => {
            "The user's passkeys have been removed; the user has been told by mail."
        }
        (T::PasskeysRemoved, De) => {
            "Die Passkeys des Benutzers wurden entfernt; er wurde per E-Mail informiert."
        }
        (T::AllowPasskeys, En) => "Allow passkeys",
        (T::AllowPasskeys, De) => "Passkeys erlauben",
        (T::UserDeleted, En) => "The user has been deleted.",
        (T::UserDeleted, De) => "Der Benutzer wurde gelöscht.",
        (T::DeletionOn, En) => "Will be deleted on",
        (T::DeletionOn, De) => "Wird gelöscht am",
        (T::DeletionMonths, En) => "Delete deactivated users after (months)",
        (T::DeletionMonths, De) => "Deaktivierte Benutzer löschen nach (Monaten)",
        (T::InactivityMonths, En) => "Deactivate inactive users after (months)",
        (T::InactivityMonths, De) => "Inaktive Benutzer deaktivieren nach (Monaten)",
        (T::InactivityMonthsHint, En) => {
            "3 to 36 months without a login; users are warned by mail 14 days before. Empty: never."
        }
        (T::InactivityMonthsHint, De) => {
            "3 bis 36 Monate ohne Anmeldung; die Benutzer werden 14 Tage vorher per E-Mail gewarnt. Leer: nie."
        }
        (T::Status, En) => "Status",
        (T::Status, De) => "Status",
        (T::Actions, En) => "Actions",
        (T::Actions, De) => "Aktionen",
        (T::Invitation, En) => "Registration",
        (T::Invitation, De) => "Registrierung",
        (T::TwoFactorCode, En) => "Two-factor code",
        (T::TwoFactorCode, De) => "Zwei-Faktor-Code",
        (T::TwoFactorCodeHint, En) => {
            "The 6-digit code of your authenticator app, or one of your recovery codes."
        }
        (T::TwoFactorCodeHint, De) => {
            "Der 6-stellige Code Ihrer Authenticator-App oder einer Ihrer Wiederherstellungscodes."
        }
        (T::TwoFactorTitle, En) => "Two-factor authentication",
        (T::TwoFactorTitle, De) => "Zwei-Faktor-Authentifizierung",
        (T::TwoFactorIntro, En) => {
            "Open your authenticator app (e.g. andOTP, 2FAS Auth) and enter the code shown for the record “promio.net GmbH”."
        }
        (T::TwoFactorIntro, De) => {
            "Öffnen Sie Ihre Authenticator-App (z. B. andOTP, 2FAS Auth) und geben Sie den Code ein, der beim Eintrag „promio.net GmbH“ angezeigt wird."
        }
        (T::PasswordAgainHint, En) => {
            "Your login was more than 5 minutes ago: please confirm with your password."
        }
        (T::PasswordAgainHint, De) => {
            "Ihre Anmeldung liegt mehr als 5 Minuten zurück: Bitte bestätigen Sie mit Ihrem Passwort."
        }
        (T::ActivateTwoFactor, En) => "Activate two-factor authentication",
        (T::ActivateTwoFactor, De) => "Zwei-Faktor-Authentifizierung aktivieren",
        (T::Activate, En) => "Activate",
        (T::Activate, De) => "Aktivieren",
        (T::SecretKey, En) => "Secret key",
        (T::SecretKey, De) => "Geheimer Schlüssel",
        (T::QrCode, En) => "QR code",
        (T::QrCode, De) => "QR-Code",
        (T::ScanIntro, En) => {
            "Scan the QR code with your authenticator app, or type the secret key into it. Then enter the code the app shows."
        }
        (T::ScanIntro, De) => {
            "Scannen Sie den QR-Code mit Ihrer Authenticator-App oder geben Sie den geheimen Schlüssel dort ein. Geben Sie dann den angezeigten Code ein."
        }
        (T::RecoveryCodes, En) => "Recovery codes",
        (T::RecoveryCodes, De) => "Wiederherstellungscodes",
        (T::RecoveryCodesIntro, En) => {
            "Two-factor authentication is on. Keep these recovery codes in a safe place: each works once instead of a code from the app. They are shown only now."
        }
        (T::RecoveryCodesIntro, De) => {
            "Die Zwei-Faktor-Authentifizierung ist aktiv. Bewahren Sie diese Wiederherstellungscodes sicher auf: Jeder ersetzt einmal einen Code der App. Sie werden nur jetzt angezeigt."
        }
        (T::DeactivateTwoFactor, En) => "Deactivate two-factor authentication",
        (T::DeactivateTwoFactor, De) => "Zwei-Faktor-Authentifizierung deaktivieren",
        (T::TwoFactorOn, En) => "Two-factor authentication is on.",
        (T::TwoFactorOn, De) => "Die Zwei-Faktor-Authentifizierung ist aktiv.",
        (T::TwoFactorOff, En) => "Two-factor authentication is off.",
        (T::TwoFactorOff, De) => "Die Zwei-Faktor-Authentifizierung ist nicht aktiv.",
        (T::TwoFactorSetupRequired, En) => {
            "Your company requires two-factor authentication. Please set it up to continue."
        }
        (T::TwoFactorSetupRequired, De) => {
            "Ihre Firma verlangt die Zwei-Faktor-Authentifizierung. Bitte richten Sie sie ein, um fortzufahren."
        }
        (T::Continue, En) => "Continue",
        (T::Continue, De) => "Weiter",
        (T::Security, En) => "Security",
        (T::Security, De) => "Sicherheit",
        (T::NewRecoveryCodes, En) => "Make new recovery codes",
        (T::NewRecoveryCodes, De) => "Neue Wiederherstellungscodes erzeugen",
        (T::TwoFactorNotForSso, En) => {
            "Your company logs in with single sign-on; its identity provider handles two-factor authentication."
        }
        (T::TwoFactorNotForSso, De) => {
            "Ihre Firma meldet sich per Single Sign-on an; deren Identitätsanbieter übernimmt die Zwei-Faktor-Authentifizierung."
        }
        (T::RecoveryLeft, En) => "Unused recovery codes:",
        (T::RecoveryLeft, De) => "Unbenutzte Wiederherstellungscodes:",
        (T::ResetTwoFactor, En) => "Reset two-factor authentication",
        (T::ResetTwoFactor, De) => "Zwei-Faktor-Authentifizierung zurücksetzen",
        (T::TwoFactorResetDone, En) => {
            "Two-factor authentication has been reset; the user has been told by mail."
        }
        (T::TwoFactorResetDone, De) => {
            "Die Zwei-Faktor-Authentifizierung wurde zurückgesetzt; der Benutzer wurde per E-Mail informiert."
        }
        (T::ReleaseSsoBinding, En) => "Release SSO binding",
        (T::ReleaseSsoBinding, De) => "SSO-Bindung lösen",
        (T::SsoBindingReleased, En) => {
            "The SSO binding has been released; the next SSO login binds the account again."
        }
        (T::SsoBindingReleased, De) => {
            "Die SSO-Bindung wurde gelöst; die nächste SSO-Anmeldung bindet den Zugang neu."
        }
        (T::TwoFactorDeactivated, En) => "Two-factor authentication has been deactivated.",
        (T::TwoFactorDeactivated, De) => "Die Zwei-Faktor-Authentifizierung wurde deaktiviert.",
        (T::ThrottledAccounts, En) => "Accounts with failed logins",
        (T::ThrottledAccounts, De) => "Zugänge mit fehlgeschlagenen Anmeldungen",
        (T::ThrottledSecondFactor, En) => "(second factor)",
        (T::ThrottledSecondFactor, De) => "(zweiter Faktor)",
        (T::FailedAttempts, En) => "failed attempts in a row; next attempt possible in (seconds):",
        (T::FailedAttempts, De) => "Fehlversuche in Folge; nächster Versuch möglich in (Sekunden):",
        (T::AllowLoginAgain, En) => "Allow login again",
        (T::AllowLoginAgain, De) => "Anmeldung wieder erlauben",
        (T::ThrottleCleared, En) => "The account can log in again at once.",
        (T::ThrottleCleared, De) => "Der Zugang kann sich sofort wieder anmelden.",
        (T::Clients, En) => "Clients",
        (T::Clients, De) => "Mandanten",
        (T::NewClient, En) => "New client",
        (T::NewClient, De) => "Neuer Mandant",
        (T::Name, En) => "Name",
        (T::Name, De) => "Name",
        (T::RegistrationLinkHours, En) => "Registration link validity (hours)",
        (T::RegistrationLinkHours, De) => "Gültigkeit des Registrierungslinks (Stunden)",
        (T::ResetLinkHours, En) => "Password reset link validity (hours)",
        (T::ResetLinkHours, De) => "Gültigkeit des Links zum Zurücksetzen (Stunden)",
        (T::Require2fa, En) => "Require two-factor authentication",
        (T::Require2fa, De) => "Zwei-Faktor-Authentifizierung verlangen",
        (T::Sso, En) => "SSO",
        (T::Sso, De) => "SSO",
        (T::Yes, En) => "yes",
        (T::Yes, De) => "ja",
        (T::No, En) => "no",
        (T::No, De) => "nein",
        (T::ClientSaved, En) => "The client's settings have been saved.",
        (T::ClientSaved, De) => "Die Einstellungen des Mandanten wurden gespeichert.",
        (T::ClientCreated, En) => "The client has been created.",
        (T::ClientCreated, De) => "Der Mandant wurde angelegt.",
        (T::ClientDeactivated, En) => {
            "The client has been deactivated; its users can no longer log in."
        }
        (T::ClientDeactivated, De) => {
            "Der Mandant wurde deaktiviert; seine Benutzer können sich nicht mehr anmelden."
        }
        (T::ClientReactivated, En) => "The client has been reactivated.",
        (T::ClientReactivated, De) => "Der Mandant wurde reaktiviert.",
        (T::AuditLog, En) => "Audit log",
        (T::AuditLog, De) => "Protokoll",
        (T::Action, En) => "Action",
        (T::Action, De) => "Aktion",
        (T::From, En) => "From (date)",
        (T::From, De) => "Von (Datum)",
        (T::To, En) => "To (date)",
        (T::To, De) => "Bis (Datum)",
        (T::Time, En) => "Time",
        (T::Time, De) => "Zeit",
        (T::Actor, En) => "By",
        (T::Actor, De) => "Durch",
        (T::Subject, En) => "Concerning",
        (T::Subject, De) => "Betrifft",
        (T::Outcome, En) => "Outcome",
        (T::Outcome, De) => "Ergebnis",
        (T::Detail, En) => "Detail",
        (T::Detail, De) => "Detail",
        (T::Ip, En) => "IP address",
        (T::Ip, De) => "IP-Adresse",
        (T::ExportCsv, En) => "Export as CSV",
        (T::ExportCsv, De) => "Als CSV exportieren",
        (T::Filter, En) => "Filter",
        (T::Filter, De) => "Filtern",
        (T::ActiveSessions, En) => "Active sessions",
        (T::ActiveSessions, De) => "Aktive Sitzungen",
        (T::Started, En) => "Started",
        (T::Started, De) => "Begonnen",
        (T::LastSeen, En) => "Last used",
        (T::LastSeen, De) => "Zuletzt genutzt",
        (T::Device, En) => "Device",
        (T::Device, De) => "Gerät",
        (T::ThisSession, En) => "(this browser)",
        (T::ThisSession, De) => "(dieser Browser)",
        (T::AppLogins, En) => "Applications",
        (T::AppLogins, De) => "Anwendungen",
        (T::NoAppLogins, En) => "You are not logged in to any application.",
        (T::NoAppLogins, De) => "Sie sind bei keiner Anwendung angemeldet.",
        (T::LoggedInSince, En) => "Logged in since",
        (T::LoggedInSince, De) => "Angemeldet seit",
        (T::LogoutConfirmTitle, En) => "Log out of promio.connect?",
        (T::LogoutConfirmTitle, De) => "Von promio.connect abmelden?",
        (T::LogoutConfirmText, En) => {
            "An application asks to log you out. Logging out ends your login here and in every \
             application you are logged in to through promio.connect."
        }
        (T::LogoutConfirmText, De) => {
            "Eine Anwendung möchte Sie abmelden. Die Abmeldung beendet Ihre Anmeldung hier und in \
             allen Anwendungen, bei denen Sie über promio.connect angemeldet sind."
        }
        (T::YouAreLoggedOut, En) => "You are logged out",
        (T::YouAreLoggedOut, De) => "Sie sind abgemeldet",
        (T::LogoutRefusedTitle, En) => "Logout request not valid",
        (T::LogoutRefusedTitle, De) => "Abmeldeanfrage ungültig",
        (T::LogoutInvalidRequest, En) => {
            "The application that sent you here named another application than its ID token."
        }
        (T::LogoutInvalidRequest, De) => {
            "Die Anwendung, die Sie hierher geschickt hat, nennt eine andere Anwendung als ihr ID-Token."
        }
        (T::EndSession, En) => "End session",
        (T::EndSession, De) => "Sitzung beenden",
        (T::EndAllSessions, En) => "End all sessions",
        (T::EndAllSessions, De) => "Alle Sitzungen beenden",
        (T::SessionsEnded, En) => "The sessions have been ended.",
        (T::SessionsEnded, De) => "Die Sitzungen wurden beendet.",
        (T::SsoTitle, En) => "Login with SSO",
        (T::SsoTitle, De) => "Mit SSO anmelden",
        (T::SsoIntro, En) => {
            "Enter the email address that your company uses for single sign-on. You will be sent to your company's login; if you are logged in there already, you are logged in here at once."
        }
        (T::SsoIntro, De) => {
            "Geben Sie die E-Mail-Adresse ein, die Ihre Firma für Single Sign-on verwendet. Sie werden zur Anmeldung Ihrer Firma weitergeleitet; sind Sie dort schon angemeldet, sind Sie hier sofort angemeldet."
        }
        (T::SsoExpired, En) => {
            "The login through your company took too long or was started in another browser. Please start again."
        }
        (T::SsoExpired, De) => {
            "Die Anmeldung über Ihre Firma hat zu lange gedauert oder wurde in einem anderen Browser begonnen. Bitte beginnen Sie erneut."
        }
        (T::SsoCancelled, En) => "The login at your company's identity provider was cancelled.",
        (T::SsoCancelled, De) => {
            "Die Anmeldung beim Identity Provider Ihrer Firma wurde abgebrochen."
        }
        (T::SsoNotRegistered, En) => {
            "Your company confirmed who you are, but there is no active promio.connect account for your email address. Please ask your user administrator."
        }
        (T::SsoNotRegistered, De) => {
            "Ihre Firma hat Sie bestätigt, aber für Ihre E-Mail-Adresse gibt es kein aktives promio.connect-Konto. Bitte wenden Sie sich an Ihre Benutzerverwaltung."
        }
        (T::SsoFailed, En) => {
            "The login through your company's identity provider could not be completed. Please try again."
        }
        (T::SsoFailed, De) => {
            "Die Anmeldung über den Identity Provider Ihrer Firma konnte nicht abgeschlossen werden. Bitte versuchen Sie es erneut."
        }
        (T::SsoRedirecting, En) => "Taking you to your company's login…",
        (T::SsoRedirecting, De) => "Sie werden zur Anmeldung Ihrer Firma weitergeleitet …",
        (T::AuthorizeRefusedTitle, En) => "Login not possible",
        (T::AuthorizeRefusedTitle, De) => "Anmeldung nicht möglich",
        (T::AuthorizeUnknownClient, En) => {
            "The application that sent you here is not registered with promio.connect."
        }
        (T::AuthorizeUnknownClient, De) => {
            "Die Anwendung, die Sie hierher geschickt hat, ist bei promio.connect nicht registriert."
        }
        (T::AuthorizeUnknownRedirect, En) => {
            "The application that sent you here asked to return to an address that is not registered for it."
        }
        (T::AuthorizeUnknownRedirect, De) => {
            "Die Anwendung, die Sie hierher geschickt hat, möchte zu einer Adresse zurück, die für sie nicht registriert ist."
        }
        (T::AuthorizeContinuing, En) => "Continuing to the application…",
        (T::AuthorizeContinuing, De) => "Weiter zur Anwendung …",
        (T::SsoSettings, En) => "Single sign-on (OpenID Connect)",
        (T::SsoSettings, De) => "Single Sign-on (OpenID Connect)",
        (T::SsoHint, En) => {
            "Leave the Issuer URL empty to turn single sign-on off. With it on, all users of the client log in through their identity provider."
        }
        (T::SsoHint, De) => {
            "Ohne Issuer-URL ist Single Sign-on aus. Ist es an, melden sich alle Benutzer des Clients über ihren Identity Provider an."
        }
        (T::IssuerUrl, En) => "Issuer URL",
        (T::IssuerUrl, De) => "Issuer-URL",
        (T::SsoClientId, En) => "Client ID",
        (T::SsoClientId, De) => "Client-ID",
        (T::ClientSecret, En) => "Client secret",
        (T::ClientSecret, De) => "Client-Secret",
        (T::ClientSecretKept, En) => "A secret is stored; leave the field empty to keep it.",
        (T::ClientSecretKept, De) => {
            "Ein Secret ist gespeichert; lassen Sie das Feld leer, um es zu behalten."
        }
        (T::EmailDomains, En) => "Email domains",
        (T::EmailDomains, De) => "E-Mail-Domains",
        (T::EmailClaim, En) => "Email claim",
        (T::EmailClaim, De) => "E-Mail-Claim",
        (T::SsoCreateUsers, En) => "Create users on their first SSO login",
        (T::SsoCreateUsers, De) => "Benutzer bei der ersten SSO-Anmeldung anlegen",
        (T::TestConnection, En) => "Test connection",
        (T::TestConnection, De) => "Verbindung testen",
        (T::SsoRedirectUri, En) => "Redirect URI to register at the identity provider:",
        (T::SsoRedirectUri, De) => "Beim Identity Provider einzutragende Redirect-URI:",
        (T::ConnectionOk, En) => "Connection OK: the discovery document was read and checked.",
        (T::ConnectionOk, De) => {
            "Verbindung in Ordnung: Das Discovery-Dokument wurde gelesen und geprüft."
        }
        (T::OperatorApplications, En) => "Applications",
        (T::OperatorApplications, De) => "Anwendungen",
        (T::NewApplication, En) => "New application",
        (T::NewApplication, De) => "Neue Anwendung",
        (T::RedirectUris, En) => "Redirect URIs",
        (T::RedirectUris, De) => "Redirect-URIs",
        (T::PostLogoutRedirectUris, En) => "Post-logout redirect URIs",
        (T::PostLogoutRedirectUris, De) => "Redirect-URIs nach dem Abmelden",
        (T::BackchannelLogoutUri, En) => "Back-channel logout URI",
        (T::BackchannelLogoutUri, De) => "Back-Channel-Logout-URI",
        (T::PublicClient, En) => "Public client",
        (T::PublicClient, De) => "Öffentlicher Client",
        (T::PkceOptional, En) => {
            "Allow logins without PKCE (a confidential client only, for an application that cannot send it)"
        }
        (T::PkceOptional, De) => {
            "Anmeldungen ohne PKCE erlauben (nur ein vertraulicher Client, für eine Anwendung, die es nicht senden kann)"
        }
        (T::AppPkceOptional, En) => "PKCE optional",
        (T::AppPkceOptional, De) => "PKCE optional",
        (T::OneUriPerLine, En) => "One URI per line.",
        (T::OneUriPerLine, De) => "Eine URI pro Zeile.",
        (T::AppCompanyHint, En) => "Empty: the users of any client may log in.",
        (T::AppCompanyHint, De) => "Leer: Die Benutzer aller Mandanten können sich anmelden.",
        (T::AnyCompany, En) => "any company",
        (T::AnyCompany, De) => "jede Firma",
        (T::AppType, En) => "Type",
        (T::AppType, De) => "Art",
        (T::AppPublic, En) => "public",
        (T::AppPublic, De) => "öffentlich",
        (T::AppConfidential, En) => "confidential",
        (T::AppConfidential, De) => "vertraulich",
        (T::RotateSecret, En) => "Rotate secret",
        (T::RotateSecret, De) => "Secret erneuern",
        (T::ApplicationCreated, En) => "The application has been registered.",
        (T::ApplicationCreated, De) => "Die Anwendung wurde registriert.",
        (T::SecretRotated, En) => {
            "The application has a new client secret; the old one no longer works."
        }
        (T::SecretRotated, De) => {
            "Die Anwendung hat ein neues Client-Secret; das alte gilt nicht mehr."
        }
        (T::SecretShownOnce, En) => "Copy the client secret now: it will not be shown again.",
        (T::SecretShownOnce, De) => {
            "Kopieren Sie das Client-Secret jetzt: Es wird nicht noch einmal angezeigt."
        }
        (T::ApplicationDeleted, En) => "The application has been deleted.",
        (T::ApplicationDeleted, De) => "Die Anwendung wurde gelöscht.",
        (T::DeleteApplicationConfirm, En) => {
            "It can no longer log anyone in, and everything issued to it ends (tokens, logins in \
             progress). This cannot be undone."
        }
        (T::DeleteApplicationConfirm, De) => {
            "Sie kann niemanden mehr anmelden, und alles, was ihr ausgestellt wurde, endet \
             (Tokens, laufende Anmeldungen). Das kann nicht rückgängig gemacht werden."
        }
        (T::NoApplications, En) => "No applications are registered yet.",
        (T::NoApplications, De) => "Es sind noch keine Anwendungen registriert.",
        (T::TwoFactorRequiredByCompany, En) => {
            "Your company requires two-factor authentication, so it cannot be turned off."
        }
        (T::TwoFactorRequiredByCompany, De) => {
            "Ihre Firma verlangt die Zwei-Faktor-Authentifizierung, daher kann sie nicht ausgeschaltet werden."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_use_the_right_plural_in_both_languages() {
        assert_eq!(user_count(Lang::En, 1), "1 user");
        assert_eq!(user_count(Lang::En, 0), "0 users");
        assert_eq!(user_count(Lang::De, 1), "1 Benutzer");
        assert_eq!(client_count(Lang::En, 1), "1 client");
        assert_eq!(client_count(Lang::De, 1), "1 Mandant");
        assert_eq!(client_count(Lang::De, 3), "3 Mandanten");
        assert_eq!(passkey_count(Lang::En, 1), "1 passkey");
        assert_eq!(passkey_count(Lang::De, 2), "2 Passkeys");
    }

    #[test]
    fn negotiation_honours_quality_values() {
        assert_eq!(Lang::negotiate("de-DE,de;q=0.9,en;q=0.8"), Some(Lang::De));
        assert_eq!(Lang::negotiate("fr-FR, en;q=0.5, de;q=0.7"), Some(Lang::De));
        assert_eq!(Lang::negotiate("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(Lang::negotiate("fr, it"), None);
        assert_eq!(Lang::negotiate("de;q=0"), None);
        assert_eq!(Lang::negotiate(""), None);
    }

    #[test]
    fn the_cookie_wins_over_the_header() {
        assert_eq!(Lang::for_request(Some("de"), Some("en")), Lang::De);
        assert_eq!(Lang::for_request(Some("xx"), Some("de")), Lang::De);
        assert_eq!(Lang::for_request(None, None), Lang::En);
    }
}
