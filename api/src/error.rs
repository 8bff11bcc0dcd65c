//! The one error type of the API contract. It is what the browser sees: user-safe, serializable and
//! translated on display. Causes stay on the server (see `promio_server::error`), which maps its own
//! error enum into this one exactly once.

use crate::i18n::Lang;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An input field named in a validation error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    CompanyId,
    UserName,
    Password,
    NewPassword,
    RepeatPassword,
    Email,
    FirstName,
    LastName,
    Name,
    Role,
    RegistrationLinkHours,
    ResetLinkHours,
    SsoIssuer,
    SsoClientId,
    SsoClientSecret,
    SsoDomains,
    SsoEmailClaim,
    DeletionMonths,
    InactivityMonths,
    RedirectUris,
    PostLogoutRedirectUris,
    BackchannelLogoutUri,
    PkceOptional,
}

impl Field {
    pub fn label(self, lang: Lang) -> &'static str {
        use Lang::*;
        match (self, lang) {
            (Field::CompanyId, En) => "Company ID",
            (Field::CompanyId, De) => "Firmen-ID",
            (Field::UserName, En) => "User name",
            (Field::UserName, De) => "Benutzername",
            (Field::Password, En) => "Password",
            (Field::Password, De) => "Passwort",
            (Field::NewPassword, En) => "New password",
            (Field::NewPassword, De) => "Neues Passwort",
            (Field::RepeatPassword, En) => "Repeat new password",
            (Field::RepeatPassword, De) => "Neues Passwort wiederholen",
            (Field::Email, En) => "Email address",
            (Field::Email, De) => "E-Mail-Adresse",
            (Field::FirstName, En) => "First name",
            (Field::FirstName, De) => "Vorname",
            (Field::LastName, En) => "Last name",
            (Field::LastName, De) => "Nachname",
            (Field::Name, En) => "Name",
            (Field::Name, De) => "Name",
            (Field::Role, En) => "Role",
            (Field::Role, De) => "Rolle",
            (Field::RegistrationLinkHours, En) => "Registration link validity (hours)",
            (Field::RegistrationLinkHours, De) => "Gültigkeit des Registrierungslinks (Stunden)",
            (Field::ResetLinkHours, En) => "Password reset link validity (hours)",
            (Field::ResetLinkHours, De) => "Gültigkeit des Links zum Zurücksetzen (Stunden)",
            (Field::SsoIssuer, En) => "Issuer URL",
            (Field::SsoIssuer, De) => "Issuer-URL",
            (Field::SsoClientId, En) => "Client ID",
            (Field::SsoClientId, De) => "Client-ID",
            (Field::SsoClientSecret, En) => "Client secret",
            (Field::SsoClientSecret, De) => "Client-Secret",
            (Field::SsoDomains, En) => "Email domains",
            (Field::SsoDomains, De) => "E-Mail-Domains",
            (Field::SsoEmailClaim, En) => "Email claim",
            (Field::SsoEmailClaim, De) => "E-Mail-Claim",
            (Field::DeletionMonths, En) => "Delete deactivated users after (months)",
            (Field::DeletionMonths, De) => "Deaktivierte Benutzer löschen nach (Monaten)",
            (Field::InactivityMonths, En) => "Deactivate inactive users after (months)",
            (Field::InactivityMonths, De) => "Inaktive Benutzer deaktivieren nach (Monaten)",
            (Field::RedirectUris, En) => "Redirect URIs",
            (Field::RedirectUris, De) => "Redirect-URIs",
            (Field::PostLogoutRedirectUris, En) => "Post-logout redirect URIs",
            (Field::PostLogoutRedirectUris, De) => "Redirect-URIs nach dem Abmelden",
            (Field::BackchannelLogoutUri, En) => "Back-channel logout URI",
            (Field::BackchannelLogoutUri, De) => "Back-Channel-Logout-URI",
            (Field::PkceOptional, En) => "Logins without PKCE",
            (Field::PkceOptional, De) => "Anmeldungen ohne PKCE",
        }
    }
}

/// What is wrong with a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    Missing,
    TooShort {
        min: u32,
    },
    TooLong {
        max: u32,
    },
    /// Characters outside the field's alphabet (the message names the alphabet per field).
    InvalidCharacters,
    ControlCharacters,
    /// Bytes that were not valid UTF-8 (they arrive as U+FFFD).
    Unreadable,
    Malformed,
    /// On the bundled list of common and breached passwords.
    TooCommon,
    /// Equal to the user name, company ID or email address.
    SameAsIdentity,
    /// The repetition differs from the first entry.
    Mismatch,
    /// A number outside its range.
    OutOfRange {
        min: u32,
        max: u32,
    },
    /// Already taken (a company ID, a user name).
    Taken,
    /// Names nothing that exists (an application's company ID that no client has).
    Unknown,
}

/// The API's error. On the wire it is one flat JSON object (see [`Wire`]), e.g.
/// `{"error":"login_failed","retry_after_secs":30}` or
/// `{"error":"invalid","field":"company_id","problem":"too_short","min":3}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "Wire", try_from = "Wire")]
pub enum ApiError {
    #[error("invalid {field:?}: {problem:?}")]
    Invalid { field: Field, problem: Problem },
    /// The one answer for an unknown company, an unknown user and a wrong password.
    #[error("login failed")]
    LoginFailed { retry_after_secs: Option<u64> },
    /// The company logs in through its identity provider; its users have no password.
    #[error("the client uses single sign-on")]
    UseSso,
    #[error("not authenticated")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// Too many attempts in a row: the next one is possible after this wait.
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    /// The two-factor or recovery code was wrong or already used.
    #[error("second factor failed")]
    SecondFactorFailed,
    /// A passkey could not be used: refused, unknown, or its ceremony expired or was used.
    #[error("passkey failed")]
    PasskeyFailed,
    /// The user has as many passkeys as an account may have.
    #[error("too many passkeys")]
    PasskeyLimit { max: u32 },
    /// The state between password and second factor ended (expired, or too many wrong codes).
    #[error("login expired")]
    LoginExpired,
    /// After too many failed logins in a row the password is not checked until a new one is set
    /// (also for accounts that do not exist, so it tells nothing).
    #[error("account locked")]
    AccountLocked,
    /// After too many wrong second factors in a row the user's second factor is not checked until
    /// an administrator lifts the lock (or the user has a new second factor).
    #[error("second factor locked")]
    SecondFactorLocked,
    /// A password reset of a user whose only second factor is a passkey: it is confirmed with the
    /// passkey (**Use a passkey**), not with the form alone.
    #[error("passkey required")]
    PasskeyRequired,
    /// The action needs the password again: the login was more than a few minutes ago.
    #[error("password needed again")]
    ReauthRequired,
    /// The password given to confirm an action is wrong.
    #[error("wrong password")]
    WrongPassword,
    /// A link from a mail that is used, expired or replaced by a newer one.
    #[error("the link is no longer valid")]
    LinkUnusable,
    #[error("temporarily unavailable")]
    Unavailable,
    /// No client logs in with single sign-on for this email address's domain.
    #[error("no single sign-on for this email address")]
    SsoNotSetUp,
    /// An identity provider's settings could not be used; the detail says what failed (it is
    /// technical, for the operator who entered them).
    #[error("identity provider check failed: {detail}")]
    SsoProvider { detail: String },
    /// An error on the server whose cause went to the log under this id.
    #[error("internal error {id}")]
    Internal { id: String },
    /// The request itself could not be read or sent (bad encoding, network down).
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl ApiError {
    /// The error if it may be shown when it comes from outside the page (a cookie any sibling
    /// site could set, in [`super::FormFlash`]): only errors made of known parts, none with a text
    /// from elsewhere (a provider's detail, a decoding error), and an internal error only with an
    /// id that looks like one.
    pub fn shown_from_outside(self) -> Option<ApiError> {
        match &self {
            ApiError::SsoProvider { .. } | ApiError::BadRequest(_) => None,
            ApiError::Internal { id }
                if id.is_empty()
                    || id.len() > 64
                    || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                None
            }
            _ => Some(self),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid { .. } | ApiError::BadRequest(_) => 400,
            ApiError::LoginFailed {
                retry_after_secs: Some(_),
            }
            | ApiError::TooManyAttempts { .. }
            | ApiError::AccountLocked
            | ApiError::SecondFactorLocked => 429,
            ApiError::ReauthRequired | ApiError::WrongPassword => 401,
            ApiError::LoginFailed { .. }
            | ApiError::Unauthenticated
            | ApiError::SecondFactorFailed
            | ApiError::PasskeyFailed
            | ApiError::PasskeyRequired
            | ApiError::LoginExpired => 401,

            ApiError::UseSso | ApiError::Forbidden => 403,
            ApiError::PasskeyLimit { .. } => 409,
            ApiError::NotFound | ApiError::SsoNotSetUp => 404,
            ApiError::SsoProvider { .. } => 400,
            ApiError::LinkUnusable => 410,
            ApiError::Unavailable => 503,
            ApiError::Internal { .. } => 500,
        }
    }

    /// The message for a person, in their language.
    pub fn message(&self, lang: Lang) -> String {
        use Lang::*;
        match (self, lang) {
            (ApiError::Invalid { field, problem }, lang) => problem_message(*field, *problem, lang),
            (ApiError::LoginFailed { retry_after_secs }, En) => {
                let base = "The company ID, user name or password is not correct.";
                match retry_after_secs {
                    Some(1) => format!("{base} Please wait 1 second before the next attempt."),
                    Some(s) => format!("{base} Please wait {s} seconds before the next attempt."),
                    None => base.to_owned(),
                }
            }
            (ApiError::LoginFailed { retry_after_secs }, De) => {
                let base = "Firmen-ID, Benutzername oder Passwort ist nicht korrekt.";
                match retry_after_secs {
                    Some(1) => format!("{base} Bitte warten Sie 1 Sekunde bis zum nächsten Versuch."),
                    Some(s) => format!("{base} Bitte warten Sie {s} Sekunden bis zum nächsten Versuch."),

                    None => base.to_owned(),
                }
            }
            (ApiError::UseSso, En) => {
                "Your company logs in with single sign-on. Please use “Login with SSO”.".to_owned()
            }
            (ApiError::UseSso, De) => {
                "Ihre Firma meldet sich per Single Sign-on an. Bitte nutzen Sie „Mit SSO anmelden“."
                    .to_owned()
            }
            (ApiError::Unauthenticated, En) => "Please log in.".to_owned(),
            (ApiError::Unauthenticated, De) => "Bitte melden Sie sich an.".to_owned(),
            (ApiError::Forbidden, En) => "You are not allowed to do this.".to_owned(),
            (ApiError::Forbidden, De) => "Dazu sind Sie nicht berechtigt.".to_owned(),
            (ApiError::NotFound, En) => "This entry does not exist.".to_owned(),
            (ApiError::NotFound, De) => "Dieser Eintrag existiert nicht.".to_owned(),
            (ApiError::TooManyAttempts { retry_after_secs }, En) => {
                format!("Too many attempts. Please wait {retry_after_secs} seconds before the next one.")
            }
            (ApiError::TooManyAttempts { retry_after_secs }, De) => format!(
                "Zu viele Versuche. Bitte warten Sie {retry_after_secs} Sekunden bis zum nächsten."
            ),
            (ApiError::SecondFactorFailed, En) => {

                "The two-factor code is not correct or has already been used.".to_owned()
            }
            (ApiError::SecondFactorFailed, De) => {
                "Der Zwei-Faktor-Code ist nicht korrekt oder wurde bereits verwendet.".to_owned()
            }
            (ApiError::PasskeyFailed, En) => {
                "The passkey could not be used. Please try again, or log in with your password.".to_owned()
            }
            (ApiError::PasskeyFailed, De) => {
                "Der Passkey konnte nicht verwendet werden. Bitte versuchen Sie es erneut oder melden Sie sich mit Ihrem Passwort an.".to_owned()
            }
            (ApiError::PasskeyLimit { max }, En) => format!(
                "You have {max} passkeys, the most an account can have. Please remove one first."
            ),
            (ApiError::PasskeyLimit { max }, De) => format!(
                "Sie haben {max} Passkeys, die Höchstzahl für einen Zugang. Bitte entfernen Sie zuerst einen."
            ),
            (ApiError::LoginExpired, En) => "Your login has expired. Please log in again.".to_owned(),
            (ApiError::LoginExpired, De) => {
                "Ihre Anmeldung ist abgelaufen. Bitte melden Sie sich erneut an.".to_owned()
            }
            (ApiError::AccountLocked, En) => {
                "The company ID, user name or password is not correct. After too many failed attempts, \
                 the password of this account is no longer checked: set a new one with “Forgot your password?” \
                 or ask your user administrator."
                    .to_owned()
            }
            (ApiError::AccountLocked, De) => {
                "Firmen-ID, Benutzername oder Passwort ist nicht korrekt. Nach zu vielen Fehlversuchen wird \
                 das Passwort dieses Zugangs nicht mehr geprüft: Legen Sie über „Passwort vergessen?“ ein \
                 neues fest oder wenden Sie sich an Ihre Benutzerverwaltung."
                    .to_owned()
            }
            (ApiError::SecondFactorLocked, En) => {
                "After too many failed attempts in a row, the second factor of this account is no longer \
                 checked. Please ask your company's user administrator to unlock it."
                    .to_owned()
            }
            (ApiError::SecondFactorLocked, De) => {
                "Nach zu vielen Fehlversuchen in Folge wird der zweite Faktor dieses Zugangs nicht mehr \
                 geprüft. Bitte wenden Sie sich an die Benutzerverwaltung Ihrer Firma, damit sie ihn entsperrt."
                    .to_owned()
            }
            (ApiError::PasskeyRequired, En) => {
                "Please confirm the new password with your passkey: use “Use a passkey” (your browser needs \
                 JavaScript for it). Without your passkey, please ask your company's user administrator."
                    .to_owned()
            }
            (ApiError::PasskeyRequired, De) => {
                "Bitte bestätigen Sie das neue Passwort mit Ihrem Passkey: Nutzen Sie „Passkey verwenden“ \
                 (Ihr Browser braucht dafür JavaScript). Ohne Ihren Passkey wenden Sie sich bitte an die \
                 Benutzerverwaltung Ihrer Firma."
                    .to_owned()
            }
            (ApiError::ReauthRequired, En) => {
                "Please confirm with your password: your login was more than 5 minutes ago.".to_owned()
            }
            (ApiError::ReauthRequired, De) => {
                "Bitte bestätigen Sie mit Ihrem Passwort: Ihre Anmeldung liegt mehr als 5 Minuten zurück."
                    .to_owned()
            }
            (ApiError::WrongPassword, En) => "The password is not correct.".to_owned(),
            (ApiError::WrongPassword, De) => "Das Passwort ist nicht korrekt.".to_owned(),
            (ApiError::LinkUnusable, En) => {
                "This link can no longer be used. Please ask for a new one.".to_owned()
            }
            (ApiError::LinkUnusable, De) => {
                "Dieser Link kann nicht mehr verwendet werden. Bitte fordern Sie einen neuen an.".to_owned()
            }
            (ApiError::Unavailable, En) => {
                "The service is temporarily unavailable. Please try again in a moment.".to_owned()
            }
            (ApiError::Unavailable, De) => {
                "Der Dienst ist vorübergehend nicht erreichbar. Bitte versuchen Sie es gleich noch einmal."
                    .to_owned()
            }
            (ApiError::SsoNotSetUp, En) => {
                "Single sign-on is not set up for this email address. Please check the address, or log in with your company ID, user name and password.".to_owned()
            }
            (ApiError::SsoNotSetUp, De) => {
                "Für diese E-Mail-Adresse ist kein Single Sign-on eingerichtet. Bitte prüfen Sie die Adresse oder melden Sie sich mit Firmen-ID, Benutzername und Passwort an.".to_owned()
            }
            (ApiError::SsoProvider { detail }, En) => {
                format!("The identity provider could not be used: {detail}")
            }
            (ApiError::SsoProvider { detail }, De) => {
                format!("Der Identity Provider kann nicht verwendet werden: {detail}")
            }
            (ApiError::Internal { id }, En) => {
                format!("Something went wrong on our side. Please try again later (error ID {id}).")
            }
            (ApiError::Internal { id }, De) => format!(
                "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es später erneut (Fehler-ID {id})."
            ),
            (ApiError::BadRequest(_), En) => {
                "The request could not be processed. Please check your input and try again.".to_owned()
            }
            (ApiError::BadRequest(_), De) => {
                "Die Anfrage konnte nicht verarbeitet werden. Bitte prüfen Sie Ihre Eingaben.".to_owned()
            }
        }
    }
}

fn problem_message(field: Field, problem: Problem, lang: Lang) -> String {
    let name = field.label(lang);
    match (problem, lang) {
        (Problem::Missing, Lang::En) => format!("Please enter your {}.", name.to_lowercase_first()),
        (Problem::Missing, Lang::De) => {
            format!("Bitte geben Sie {} ein.", german_accusative(field))
        }
        (Problem::TooShort { min }, Lang::En) => {
            format!("{name} must be at least {min} characters long.")
        }
        (Problem::TooShort { min }, Lang::De) => format!("{name}: mindestens {min} Zeichen."),
        (Problem::TooLong { max }, Lang::En) => {
            format!("{name} may be at most {max} characters long.")
        }
        (Problem::TooLong { max }, Lang::De) => format!("{name}: höchstens {max} Zeichen."),
        (Problem::InvalidCharacters, Lang::En) => match field {
            Field::CompanyId => format!("{name} may only contain letters, digits, - and _."),
            Field::UserName => format!("{name} may only contain letters, digits and . _ - @."),
            _ => format!("{name} contains characters that are not allowed."),
        },
        (Problem::InvalidCharacters, Lang::De) => match field {
            Field::CompanyId => format!("{name} darf nur Buchstaben, Ziffern, - und _ enthalten."),
            Field::UserName => {
                format!("{name} darf nur Buchstaben, Ziffern und . _ - @ enthalten.")
            }
            _ => format!("{name} enthält unzulässige Zeichen."),
        },
        (Problem::ControlCharacters, Lang::En) => {
            format!("{name} contains invisible control characters.")
        }
        (Problem::ControlCharacters, Lang::De) => {
            format!("{name} enthält unsichtbare Steuerzeichen.")
        }
        (Problem::Unreadable, Lang::En) => {
            format!("{name} contains characters that could not be read. Please type it again.")
        }
        (Problem::Unreadable, Lang::De) => format!(
            "{name} enthält Zeichen, die nicht gelesen werden konnten. Bitte geben Sie es erneut ein."
        ),
        (Problem::Malformed, Lang::En) if field == Field::SsoIssuer => format!(
            "{name} must be an https:// address without user name, query or fragment (plain http \
             only where the server allows it, for a test provider on the same machine)."
        ),
        (Problem::Malformed, Lang::De) if field == Field::SsoIssuer => format!(
            "{name} muss eine https://-Adresse ohne Benutzername, Query und Fragment sein (http \
             nur, wo der Server es erlaubt, für einen Test-Provider auf demselben Rechner)."
        ),
        (Problem::Malformed, Lang::En) if field == Field::PkceOptional => {
            "A public client always uses PKCE: logins without it can only be allowed for a \
             confidential client."
                .to_owned()
        }
        (Problem::Malformed, Lang::De) if field == Field::PkceOptional => {
            "Ein öffentlicher Client nutzt immer PKCE: Anmeldungen ohne PKCE lassen sich nur für \
             einen vertraulichen Client erlauben."
                .to_owned()
        }
        (Problem::Malformed, Lang::En) if is_uri_field(field) => format!(
            "{name}: only absolute https:// addresses (http:// only for localhost, 127.0.0.1 \
             or [::1]) without user name or fragment, each at most 2000 characters, at most 10 \
             per application."
        ),
        (Problem::Malformed, Lang::De) if is_uri_field(field) => format!(
            "{name}: nur absolute https://-Adressen (http:// nur für localhost, 127.0.0.1 oder \
             [::1]) ohne Benutzername und Fragment, je höchstens 2000 Zeichen, höchstens 10 je \
             Anwendung."
        ),
        (Problem::Malformed, Lang::En) => format!("{name} is not valid."),
        (Problem::Malformed, Lang::De) => format!("{name} ist ungültig."),
        (Problem::TooCommon, Lang::En) => {
            format!(
                "{name} is too common or too easy to guess (for example, it is on lists of breached passwords). Please choose another."
            )
        }
        (Problem::TooCommon, Lang::De) => format!(
            "{name} ist zu verbreitet oder zu leicht zu erraten (es steht z. B. in Listen gestohlener Passwörter). Bitte wählen Sie ein anderes."
        ),
        (Problem::SameAsIdentity, Lang::En) => {
            format!("{name} must not be your user name, company ID or email address.")
        }
        (Problem::SameAsIdentity, Lang::De) => {
            format!("{name} darf nicht Ihr Benutzername, Ihre Firmen-ID oder E-Mail-Adresse sein.")
        }
        (Problem::Mismatch, Lang::En) => "The two passwords are not the same.".to_owned(),
        (Problem::Mismatch, Lang::De) => "Die beiden Passwörter stimmen nicht überein.".to_owned(),
        (Problem::OutOfRange { min, max }, Lang::En) => {
            format!("{name} must be a whole number from {min} to {max}.")
        }
        (Problem::OutOfRange { min, max }, Lang::De) => {
            format!("{name} muss eine ganze Zahl von {min} bis {max} sein.")
        }
        (Problem::Taken, Lang::En) => format!("{name} is already taken."),
        (Problem::Taken, Lang::De) => format!("{name} ist bereits vergeben."),
        (Problem::Unknown, Lang::En) if field == Field::CompanyId => {
            "No client has this company ID.".to_owned()
        }
        (Problem::Unknown, Lang::De) if field == Field::CompanyId => {
            "Kein Mandant hat diese Firmen-ID.".to_owned()
        }
        (Problem::Unknown, Lang::En) => format!("{name}: nothing is registered under this."),
        (Problem::Unknown, Lang::De) => format!("{name}: Darunter ist nichts eingetragen."),
    }
}

/// The fields of an application's addresses (redirect and logout URIs).
fn is_uri_field(field: Field) -> bool {
    matches!(
        field,
        Field::RedirectUris | Field::PostLogoutRedirectUris | Field::BackchannelLogoutUri
    )
}

fn german_accusative(field: Field) -> &'static str {
    match field {
        Field::CompanyId => "Ihre Firmen-ID",
        Field::UserName => "Ihren Benutzernamen",
        Field::Password => "Ihr Passwort",
        Field::NewPassword => "ein neues Passwort",
        Field::RepeatPassword => "das neue Passwort noch einmal",
        Field::Email => "eine E-Mail-Adresse",
        Field::FirstName => "einen Vornamen",
        Field::LastName => "einen Nachnamen",
        Field::Name => "einen Namen",
        Field::Role => "eine Rolle",
        Field::RegistrationLinkHours | Field::ResetLinkHours => "eine Anzahl Stunden",
        Field::SsoIssuer => "die Issuer-URL",
        Field::SsoClientId => "die Client-ID",
        Field::SsoClientSecret => "das Client-Secret",
        Field::SsoDomains => "mindestens eine E-Mail-Domain",
        Field::SsoEmailClaim => "den E-Mail-Claim",
        Field::DeletionMonths | Field::InactivityMonths => "eine Anzahl Monate",
        Field::RedirectUris => "die Redirect-URIs",
        Field::PostLogoutRedirectUris => "die Redirect-URIs nach dem Abmelden",
        Field::BackchannelLogoutUri => "die Back-Channel-Logout-URI",
        Field::PkceOptional => "eine Angabe zu PKCE",
    }
}

trait LowercaseFirst {
    fn to_lowercase_first(&self) -> String;
}

impl LowercaseFirst for str {
    /// "Company ID" -> "company ID": lowers the first letter only, so acronyms stay intact.
    fn to_lowercase_first(&self) -> String {
        let mut chars = self.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

/// [`ApiError`] as it travels: one flat object, the kind in `error` and only the parts that kind
/// has. Flat on purpose: the browser's code that reads it is a fraction of what reading nested
/// enums costs, and the login page's WASM has a size budget.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Wire {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    /// The text of `sso_provider` and `bad_request`, the id of `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// The wire names of the fields, problems and error kinds (one table each, read both ways).
const FIELDS: [(Field, &str); 23] = [
    (Field::CompanyId, "company_id"),
    (Field::UserName, "user_name"),
    (Field::Password, "password"),
    (Field::NewPassword, "new_password"),
    (Field::RepeatPassword, "repeat_password"),
    (Field::Email, "email"),
    (Field::FirstName, "first_name"),
    (Field::LastName, "last_name"),
    (Field::Name, "name"),
    (Field::Role, "role"),
    (Field::RegistrationLinkHours, "registration_link_hours"),
    (Field::ResetLinkHours, "reset_link_hours"),
    (Field::SsoIssuer, "sso_issuer"),
    (Field::SsoClientId, "sso_client_id"),
    (Field::SsoClientSecret, "sso_client_secret"),
    (Field::SsoDomains, "sso_domains"),
    (Field::SsoEmailClaim, "sso_email_claim"),
    (Field::DeletionMonths, "deletion_months"),
    (Field::InactivityMonths, "inactivity_months"),
    (Field::RedirectUris, "redirect_uris"),
    (Field::PostLogoutRedirectUris, "post_logout_redirect_uris"),
    (Field::BackchannelLogoutUri, "backchannel_logout_uri"),
    (Field::PkceOptional, "pkce_optional"),
];

/// The problems without a number; `too_short`, `too_long` and `out_of_range` carry theirs.
const PROBLEMS: [(Problem, &str); 10] = [
    (Problem::Missing, "missing"),
    (Problem::InvalidCharacters, "invalid_characters"),
    (Problem::ControlCharacters, "control_characters"),
    (Problem::Unreadable, "unreadable"),
    (Problem::Malformed, "malformed"),
    (Problem::TooCommon, "too_common"),
    (Problem::SameAsIdentity, "same_as_identity"),
    (Problem::Mismatch, "mismatch"),
    (Problem::Taken, "taken"),
    (Problem::Unknown, "unknown"),
];

/// The kinds that carry nothing but their name.
const PLAIN: [(ApiError, &str); 15] = [
    (ApiError::UseSso, "use_sso"),
    (ApiError::Unauthenticated, "unauthenticated"),
    (ApiError::Forbidden, "forbidden"),
    (ApiError::NotFound, "not_found"),
    (ApiError::SecondFactorFailed, "second_factor_failed"),
    (ApiError::PasskeyFailed, "passkey_failed"),
    (ApiError::LoginExpired, "login_expired"),
    (ApiError::AccountLocked, "account_locked"),
    (ApiError::SecondFactorLocked, "second_factor_locked"),
    (ApiError::PasskeyRequired, "passkey_required"),
    (ApiError::ReauthRequired, "reauth_required"),
    (ApiError::WrongPassword, "wrong_password"),
    (ApiError::LinkUnusable, "link_unusable"),
    (ApiError::Unavailable, "unavailable"),
    (ApiError::SsoNotSetUp, "sso_not_set_up"),
];

fn name_of<K: PartialEq, const N: usize>(table: &[(K, &'static str); N], key: &K) -> &'static str {
    table
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, name)| name)
}

fn named<K: Clone, const N: usize>(table: &[(K, &'static str); N], name: &str) -> Option<K> {
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(k, _)| k.clone())
}

impl From<ApiError> for Wire {
    fn from(error: ApiError) -> Wire {
        let kind = |name: &str| Wire {
            error: name.to_owned(),
            ..Wire::default()
        };
        match error {
            ApiError::Invalid { field, problem } => {
                let (problem, min, max) = match problem {
                    Problem::TooShort { min } => ("too_short", Some(min), None),
                    Problem::TooLong { max } => ("too_long", None, Some(max)),
                    Problem::OutOfRange { min, max } => ("out_of_range", Some(min), Some(max)),
                    other => (name_of(&PROBLEMS, &other), None, None),
                };
                Wire {
                    field: Some(name_of(&FIELDS, &field).to_owned()),
                    problem: Some(problem.to_owned()),
                    min,
                    max,
                    ..kind("invalid")
                }
            }
            ApiError::LoginFailed { retry_after_secs } => Wire {
                retry_after_secs,
                ..kind("login_failed")
            },
            ApiError::TooManyAttempts { retry_after_secs } => Wire {
                retry_after_secs: Some(retry_after_secs),
                ..kind("too_many_attempts")
            },
            ApiError::PasskeyLimit { max } => Wire {
                max: Some(max),
                ..kind("passkey_limit")
            },
            ApiError::SsoProvider { detail } => Wire {
                detail: Some(detail),
                ..kind("sso_provider")
            },
            ApiError::Internal { id } => Wire {
                detail: Some(id),
                ..kind("internal")
            },
            ApiError::BadRequest(detail) => Wire {
                detail: Some(detail),
                ..kind("bad_request")
            },
            plain => kind(name_of(&PLAIN, &plain)),
        }
    }
}

impl TryFrom<Wire> for ApiError {
    type Error = &'static str;

    fn try_from(wire: Wire) -> Result<ApiError, &'static str> {
        const MISSING: &str = "an error without a part its kind needs";
        let detail = || wire.detail.clone().ok_or(MISSING);
        Ok(match wire.error.as_str() {
            "invalid" => {
                let field = wire.field.as_deref().and_then(|f| named(&FIELDS, f));
                let problem = match (wire.problem.as_deref(), wire.min, wire.max) {
                    (Some("too_short"), Some(min), _) => Some(Problem::TooShort { min }),
                    (Some("too_long"), _, Some(max)) => Some(Problem::TooLong { max }),
                    (Some("out_of_range"), Some(min), Some(max)) => {
                        Some(Problem::OutOfRange { min, max })
                    }
                    (Some(other), _, _) => named(&PROBLEMS, other),
                    (None, _, _) => None,
                };
                ApiError::Invalid {
                    field: field.ok_or(MISSING)?,
                    problem: problem.ok_or(MISSING)?,
                }
            }
            "login_failed" => ApiError::LoginFailed {
                retry_after_secs: wire.retry_after_secs,
            },
            "too_many_attempts" => ApiError::TooManyAttempts {
                retry_after_secs: wire.retry_after_secs.ok_or(MISSING)?,
            },
            "passkey_limit" => ApiError::PasskeyLimit {
                max: wire.max.ok_or(MISSING)?,
            },
            "sso_provider" => ApiError::SsoProvider { detail: detail()? },
            "internal" => ApiError::Internal { id: detail()? },
            "bad_request" => ApiError::BadRequest(detail()?),
            other => named(&PLAIN, other).ok_or("an unknown kind of error")?,
        })
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(_) => ApiError::Unavailable,
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_in_the_readers_language() {
        let e = ApiError::Invalid {
            field: Field::CompanyId,
            problem: Problem::Missing,
        };
        assert_eq!(e.message(Lang::En), "Please enter your company ID.");
        assert_eq!(e.message(Lang::De), "Bitte geben Sie Ihre Firmen-ID ein.");
        let e = ApiError::Invalid {
            field: Field::UserName,
            problem: Problem::TooLong { max: 64 },
        };
        assert_eq!(
            e.message(Lang::En),
            "User name may be at most 64 characters long."
        );
    }

    #[test]
    fn errors_from_outside_are_shown_only_without_outside_texts() {
        for e in [
            ApiError::LoginFailed {
                retry_after_secs: Some(30),
            },
            ApiError::Invalid {
                field: Field::NewPassword,
                problem: Problem::TooShort { min: 10 },
            },
            ApiError::Internal {
                id: "0b7c3f4e-1d2a-4c5b-9e8f-7a6b5c4d3e2f".into(),
            },
        ] {
            assert_eq!(e.clone().shown_from_outside(), Some(e));
        }
        for e in [
            ApiError::SsoProvider {
                detail: "Call +1 555 0100 to unlock".into(),
            },
            ApiError::BadRequest("Your account is closed".into()),
            ApiError::Internal {
                id: "call us at evil.example".into(),
            },
        ] {
            assert_eq!(e.clone().shown_from_outside(), None, "{e:?}");
        }
    }

    #[test]
    fn the_login_failure_mentions_the_wait_only_when_there_is_one() {
        let plain = ApiError::LoginFailed {
            retry_after_secs: None,
        };
        let waiting = ApiError::LoginFailed {
            retry_after_secs: Some(5),
        };
        assert!(!plain.message(Lang::En).contains("wait"));
        assert!(waiting.message(Lang::En).contains("wait 5 seconds"));
        assert!(waiting.message(Lang::De).contains("5 Sekunden"));
        assert_eq!(plain.status(), 401);
        assert_eq!(waiting.status(), 429);
    }

    #[test]
    fn every_error_travels_as_one_flat_object_and_comes_back_the_same() {
        let mut errors: Vec<ApiError> = PLAIN.iter().map(|(e, _)| e.clone()).collect();
        errors.extend([
            ApiError::LoginFailed {
                retry_after_secs: None,
            },
            ApiError::LoginFailed {
                retry_after_secs: Some(3),
            },
            ApiError::TooManyAttempts {
                retry_after_secs: 60,
            },
            ApiError::PasskeyLimit { max: 20 },
            ApiError::SsoProvider {
                detail: "discovery failed".into(),
            },
            ApiError::Internal { id: "abc-1".into() },
            ApiError::BadRequest("bad form".into()),
        ]);
        for (field, _) in FIELDS {
            let mut problems: Vec<Problem> = PROBLEMS.iter().map(|(p, _)| *p).collect();
            problems.extend([
                Problem::TooShort { min: 3 },
                Problem::TooLong { max: 64 },
                Problem::OutOfRange { min: 1, max: 720 },
            ]);
            errors.extend(
                problems
                    .into_iter()
                    .map(|problem| ApiError::Invalid { field, problem }),
            );
        }
        for error in errors {
            let json = serde_json::to_string(&error).unwrap();
            assert!(json.starts_with("{\"error\":\""), "{json}");
            assert!(!json.contains(":{"), "nested: {json}");
            assert_eq!(
                serde_json::from_str::<ApiError>(&json).unwrap(),
                error,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&ApiError::Invalid {
                field: Field::CompanyId,
                problem: Problem::TooShort { min: 3 },
            })
            .unwrap(),
            r#"{"error":"invalid","field":"company_id","problem":"too_short","min":3}"#
        );
        assert_eq!(
            serde_json::to_string(&ApiError::LoginFailed {
                retry_after_secs: Some(30)
            })
            .unwrap(),
            r#"{"error":"login_failed","retry_after_secs":30}"#
        );
    }

    #[test]
    fn an_error_missing_a_part_of_its_kind_is_not_read() {
        for json in [
            r#"{"error":"no_such_kind"}"#,
            r#"{"error":"invalid","field":"company_id"}"#,
            r#"{"error":"invalid","field":"shoe_size","problem":"missing"}"#,
            r#"{"error":"invalid","field":"password","problem":"too_short"}"#,
            r#"{"error":"too_many_attempts"}"#,
            r#"{"error":"internal"}"#,
            r#"{"field":"password"}"#,
            r#""Forbidden""#,
        ] {
            assert!(serde_json::from_str::<ApiError>(json).is_err(), "{json}");
        }
    }
}
