//! The mails' texts, in German and English, as plain text and HTML. A mail with a link states when
//! the link expires as an absolute date and time in the recipient's language, with the time zone.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use promio_api::i18n::Lang;

/// What a mail is about, with what it needs to say.
#[derive(Debug, Clone)]
pub enum MailContent {
    Registration {
        link: String,
        expires_at: i64,
    },
    PasswordReset {
        link: String,
        expires_at: i64,
    },
    /// An administrator turned the user's two-factor authentication off.
    TwoFactorReset {
        login_link: String,
    },
    /// Someone keeps failing to log in as the user.
    FailedLogins {
        login_link: String,
        attempts: i64,
    },
    /// After `attempts` failures in a row the password is no longer checked.
    AccountLocked {
        forgot_link: String,
        attempts: i64,
    },
    /// Someone who has the password keeps failing the second factor.
    FailedSecondFactor {
        login_link: String,
        attempts: i64,
    },
    /// After `attempts` failures in a row the second factor is no longer checked.
    SecondFactorLocked {
        login_link: String,
        attempts: i64,
    },
    /// Sent to the old address when an administrator changed the user's email address.
    EmailChanged {
        login_link: String,
        new_email: String,
    },
    /// The user changed their own password; their other sessions ended.
    PasswordChanged {
        login_link: String,
    },
    /// A passkey was added to the user's account.
    PasskeyAdded {
        login_link: String,
        name: String,
    },
    /// An administrator removed the user's passkeys.
    PasskeysRemoved {
        login_link: String,
    },
    /// To a client's administrators: deactivated users whose retention ends within a week.
    DeletionsComing {
        console_link: String,
        users: Vec<DeletionNotice>,
    },
    /// To a user without a login for `months`: the account is deactivated at `deactivate_at`
    /// unless they log in before.
    InactivityWarning {
        login_link: String,
        months: i64,
        deactivate_at: i64,
    },
}

/// A user in the administrators' notice of coming deletions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionNotice {
    pub name: String,
    pub username: String,
    pub at: i64,
}

/// Every kind of mail, as [`MailContent::kind`] names them (and the outbox stores them).
pub const MAIL_KINDS: [&str; 13] = [
    "registration",
    "password_reset",
    "two_factor_reset",
    "failed_logins",
    "account_locked",
    "email_changed",
    "deletions_coming",
    "inactivity_warning",
    "passkey_added",
    "passkeys_removed",
    "failed_second_factor",
    "second_factor_locked",
    "password_changed",
];

impl MailContent {
    pub fn kind(&self) -> &'static str {
        match self {
            MailContent::Registration { .. } => "registration",
            MailContent::PasswordReset { .. } => "password_reset",
            MailContent::TwoFactorReset { .. } => "two_factor_reset",
            MailContent::FailedLogins { .. } => "failed_logins",
            MailContent::AccountLocked { .. } => "account_locked",
            MailContent::FailedSecondFactor { .. } => "failed_second_factor",
            MailContent::SecondFactorLocked { .. } => "second_factor_locked",
            MailContent::EmailChanged { .. } => "email_changed",
            MailContent::PasswordChanged { .. } => "password_changed",
            MailContent::DeletionsComing { .. } => "deletions_coming",
            MailContent::InactivityWarning { .. } => "inactivity_warning",
            MailContent::PasskeyAdded { .. } => "passkey_added",
            MailContent::PasskeysRemoved { .. } => "passkeys_removed",
        }
    }
}

/// Who the mail is for, as the texts address them.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub display_name: &'a str,
    pub company_id: &'a str,
    pub username: &'a str,
    pub lang: Lang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Formats a moment for a person: "29 November 2026, 14:30 CET" / "29. November 2026, 14:30 Uhr (CET)".
pub fn format_time(at: i64, lang: Lang, tz: &TimeZone) -> String {
    let Ok(ts) = Timestamp::from_second(at) else {
        return at.to_string();
    };
    let zoned = ts.to_zoned_datetime(tz.clone());
    let abbreviation = zoned.strftime("%Z").to_string();
    match lang {
        Lang::En => format!("{} {}", zoned.strftime("%-d %B %Y, %H:%M"), abbreviation),
        Lang::De => {
            const MONTHS: [&str; 12] = [
                "Januar",
                "Februar",
                "März",
                "April",
                "Mai",
                "Juni",
                "Juli",
                "August",
                "September",
                "Oktober",
                "November",
                "Dezember",
            ];
            let month = MONTHS[(zoned.month() as usize).saturating_sub(1) % 12];
            format!(
                "{}. {month} {}, {} Uhr ({abbreviation})",
                zoned.day(),
                zoned.year(),
                zoned.strftime("%H:%M")
            )
        }
    }
}

/// A day as people write it, in `tz`: "1 June 2027", "1. Juni 2027".
pub fn format_date(at: i64, lang: Lang, tz: &TimeZone) -> String {
    let Ok(ts) = Timestamp::from_second(at) else {
        return at.to_string();
    };
    let zoned = ts.to_zoned_datetime(tz.clone());
    match lang {
        Lang::En => zoned.strftime("%-d %B %Y").to_string(),
        Lang::De => format!(
            "{}. {} {}",
            zoned.day(),
            GERMAN_MONTHS[(zoned.month() as usize).saturating_sub(1) % 12],
            zoned.year()
        ),
    }
}

const GERMAN_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

pub fn render(content: &MailContent, to: &Recipient<'_>, tz: &TimeZone) -> Rendered {
    let lang = to.lang;

    let (subject, intro, action, link, expires_at, after) = match (content, lang) {
        (MailContent::TwoFactorReset { login_link }, _) => {
            return render_notice(login_link, to, Notice::TwoFactorReset);
        }
        (
            MailContent::FailedLogins {
                login_link,
                attempts,
            },
            _,
        ) => {
            return render_notice(login_link, to, Notice::FailedLogins(*attempts));
        }
        (
            MailContent::AccountLocked {
                forgot_link,
                attempts,
            },
            _,
        ) => {
            return render_notice(forgot_link, to, Notice::Locked(*attempts));
        }
        (
            MailContent::FailedSecondFactor {
                login_link,
                attempts,
            },
            _,
        ) => {
            return render_notice(login_link, to, Notice::FailedSecondFactor(*attempts));
        }
        (
            MailContent::SecondFactorLocked {
                login_link,
                attempts,
            },
            _,
        ) => {
            return render_notice(login_link, to, Notice::SecondFactorLocked(*attempts));
        }
        (
            MailContent::EmailChanged {
                login_link,
                new_email,
            },
            _,
        ) => {
            return render_notice(login_link, to, Notice::EmailChanged(new_email));
        }
        (MailContent::PasswordChanged { login_link }, _) => {
            return render_notice(login_link, to, Notice::PasswordChanged);
        }
        (MailContent::PasskeyAdded { login_link, name }, _) => {
            return render_notice(login_link, to, Notice::PasskeyAdded(name));
        }
        (MailContent::PasskeysRemoved { login_link }, _) => {
            return render_notice(login_link, to, Notice::PasskeysRemoved);
        }
        (
            MailContent::DeletionsComing {
                console_link,
                users,
            },
            _,
        ) => {
            return render_deletions(console_link, users, to, tz);
        }
        (
            MailContent::InactivityWarning {
                login_link,
                months,
                deactivate_at,
            },
            _,
        ) => {
            let date = format_date(*deactivate_at, lang, tz);
            return render_notice(login_link, to, Notice::Inactive(*months, &date));
        }
        (MailContent::Registration { link, expires_at }, Lang::En) => (
            "Your promio.connect account",
            "an account has been created for you at promio.connect.",
            "Set your password with this link:",
            link,
            *expires_at,
            "If the link has expired, ask your company's user administrator to send a new one.",
        ),
        (MailContent::Registration { link, expires_at }, Lang::De) => (
            "Ihr Zugang zu promio.connect",
            "für Sie wurde ein Zugang zu promio.connect angelegt.",
            "Legen Sie Ihr Passwort über diesen Link fest:",
            link,
            *expires_at,
            "Ist der Link abgelaufen, bitten Sie die Benutzerverwaltung Ihrer Firma um einen neuen.",
        ),
        (MailContent::PasswordReset { link, expires_at }, Lang::En) => (
            "Reset your promio.connect password",
            "someone (hopefully you) asked to reset your password at promio.connect.",
            "Choose a new password with this link:",
            link,
            *expires_at,
            "If you did not ask for this, ignore this mail: your password stays as it is.",
        ),
        (MailContent::PasswordReset { link, expires_at }, Lang::De) => (
            "Passwort für promio.connect zurücksetzen",
            "jemand (hoffentlich Sie) hat angefordert, Ihr Passwort bei promio.connect zurückzusetzen.",
            "Wählen Sie über diesen Link ein neues Passwort:",
            link,
            *expires_at,
            "Haben Sie das nicht angefordert, ignorieren Sie diese E-Mail: Ihr Passwort bleibt unverändert.",
        ),
    };
    let expiry = format_time(expires_at, lang, tz);
    let (greeting, company_label, user_label, valid, sign) = match lang {
        Lang::En => (
            format!("Hello {},", to.display_name),
            "Company ID",
            "User name",
            format!("The link is valid until {expiry} and can be used once."),
            "promio.connect",
        ),
        Lang::De => (
            format!("Hallo {},", to.display_name),
            "Firmen-ID",
            "Benutzername",
            format!("Der Link ist gültig bis {expiry} und kann einmal verwendet werden."),
            "promio.connect",
        ),
    };
    let text = format!(
        "{greeting}\n\n{intro}\n\n{company_label}: {}\n{user_label}: {}\n\n{action}\n{link}\n\n{valid}\n{after}\n\n-- \n{sign}\n",
        to.company_id, to.username
    );
    let e = escape;
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang_code}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"font-family: sans-serif; line-height: 1.5\">\
         <p>{greeting}</p><p>{intro}</p>\
         <p>{company_label}: <strong>{company}</strong><br>{user_label}: <strong>{user}</strong></p>\
         <p>{action}<br><a href=\"{href}\">{href}</a></p>\
         <p>{valid}<br>{after}</p><p>{sign}</p></body></html>",
        lang_code = lang.code(),
        subject = e(subject),
        greeting = e(&greeting),
        intro = e(intro),
        company_label = e(company_label),
        company = e(to.company_id),
        user_label = e(user_label),
        user = e(to.username),
        action = e(action),
        href = e(link),
        valid = e(&valid),
        after = e(after),
        sign = e(sign),
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// Text for HTML (content and quoted attribute values): the five characters that matter, escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A mail that tells the user about something that happened to their account.
enum Notice<'a> {
    /// Months without a login, and the day of the deactivation.
    Inactive(i64, &'a str),
    PasskeyAdded(&'a str),
    PasskeysRemoved,
    TwoFactorReset,
    FailedLogins(i64),
    Locked(i64),
    FailedSecondFactor(i64),
    SecondFactorLocked(i64),
    EmailChanged(&'a str),
    PasswordChanged,
}

fn render_notice(link: &str, to: &Recipient<'_>, notice: Notice<'_>) -> Rendered {
    let (company, user) = (to.company_id, to.username);
    let (subject, body, action): (&str, String, &str) = match (notice, to.lang) {
        (Notice::FailedLogins(attempts), Lang::En) => (
            "Failed logins to your promio.connect account",
            format!(
                "someone has tried to log in as you (company ID {company}, user name {user}) {attempts} times in a row \
                 with a wrong password. Further attempts are slowed down. If this was not you, nothing is \
                 lost, but consider choosing a new password and turning on two-factor authentication."
            ),
            "Log in:",
        ),
        (Notice::FailedLogins(attempts), Lang::De) => (
            "Fehlgeschlagene Anmeldungen bei promio.connect",
            format!(
                "jemand hat {attempts}-mal hintereinander versucht, sich mit falschem Passwort als Sie anzumelden \
                 (Firmen-ID {company}, Benutzername {user}). Weitere Versuche werden verlangsamt. Waren Sie das nicht, \
                 wählen Sie am besten ein neues Passwort und aktivieren Sie die Zwei-Faktor-Authentifizierung."
            ),
            "Anmelden:",
        ),
        (Notice::Locked(attempts), Lang::En) => (
            "Your promio.connect password has been locked",
            format!(
                "there have been {attempts} failed logins in a row to your account (company ID {company}, user name \
                 {user}). To protect it, your password is no longer accepted. Set a new password with \
                 “Forgot your password?” (the link below), or ask your company's user administrator to unlock it."
            ),
            "Set a new password:",
        ),
        (Notice::Locked(attempts), Lang::De) => (
            "Ihr Passwort für promio.connect wurde gesperrt",
            format!(
                "es gab {attempts} fehlgeschlagene Anmeldungen hintereinander bei Ihrem Zugang (Firmen-ID {company}, \
                 Benutzername {user}). Zu seinem Schutz wird Ihr Passwort nicht mehr angenommen. Legen Sie über \
                 „Passwort vergessen?“ (Link unten) ein neues fest, oder bitten Sie die Benutzerverwaltung Ihrer \
                 Firma, es zu entsperren."
            ),
            "Neues Passwort festlegen:",
        ),
        (Notice::FailedSecondFactor(attempts), Lang::En) => (
            "Failed second-factor attempts at your promio.connect account",
            format!(
                "the second factor of your account (company ID {company}, user name {user}) has been \
                 failed {attempts} times in a row: a wrong code or passkey after the correct password, or \
                 with a link to reset it. Further attempts are slowed down, and after 100 the second factor \
                 is locked. If this was not you, set a new password at once and tell your user administrator."
            ),
            "Log in:",
        ),
        (Notice::FailedSecondFactor(attempts), Lang::De) => (
            "Fehlgeschlagene Versuche mit dem zweiten Faktor bei promio.connect",
            format!(
                "beim zweiten Faktor Ihres Zugangs (Firmen-ID {company}, Benutzername {user}) gab es \
                 {attempts} Fehlversuche hintereinander: ein falscher Code oder Passkey nach dem richtigen \
                 Passwort oder mit einem Link zum Zurücksetzen. Weitere Versuche werden verlangsamt, nach 100 \
                 wird der zweite Faktor gesperrt. Waren Sie das nicht, legen Sie sofort ein neues Passwort \
                 fest und informieren Sie Ihre Benutzerverwaltung."
            ),
            "Anmelden:",
        ),
        (Notice::SecondFactorLocked(attempts), Lang::En) => (
            "The second factor of your promio.connect account has been locked",
            format!(
                "there have been {attempts} failed attempts in a row at the second factor of your account \
                 (company ID {company}, user name {user}). To protect the account, its second factor is no \
                 longer checked: nobody can log in with your password until your company's user \
                 administrator unlocks it. Please ask them to, and then set a new password."
            ),
            "Log in:",
        ),
        (Notice::SecondFactorLocked(attempts), Lang::De) => (
            "Der zweite Faktor Ihres Zugangs zu promio.connect wurde gesperrt",
            format!(
                "beim zweiten Faktor Ihres Zugangs (Firmen-ID {company}, Benutzername {user}) gab es \
                 {attempts} Fehlversuche hintereinander. Zum Schutz des Zugangs wird der zweite Faktor nicht \
                 mehr geprüft: Mit Ihrem Passwort kann sich niemand anmelden, bis die Benutzerverwaltung \
                 Ihrer Firma ihn entsperrt. Bitte wenden Sie sich an sie und legen Sie danach ein neues \
                 Passwort fest."
            ),
            "Anmelden:",
        ),
        (Notice::EmailChanged(new_email), Lang::En) => (
            "The email address of your promio.connect account was changed",
            format!(
                "your company's user administrator has changed the email address of your account (company ID \
                 {company}, user name {user}) to {new_email}. Mails about your account now go there. If you did not \
                 expect this, please contact your user administrator."
            ),
            "Log in:",
        ),
        (Notice::EmailChanged(new_email), Lang::De) => (
            "Die E-Mail-Adresse Ihres Zugangs zu promio.connect wurde geändert",
            format!(
                "die Benutzerverwaltung Ihrer Firma hat die E-Mail-Adresse Ihres Zugangs (Firmen-ID {company}, \
                 Benutzername {user}) in {new_email} geändert. E-Mails zu Ihrem Zugang gehen nun dorthin. Haben Sie \
                 das nicht erwartet, wenden Sie sich bitte an Ihre Benutzerverwaltung."
            ),
            "Anmelden:",
        ),
        (Notice::PasswordChanged, Lang::En) => (
            "The password of your promio.connect account was changed",
            format!(
                "the password of your account (company ID {company}, user name {user}) was changed on its \
                 Security page, and your other sessions have ended. If this was not you, set a new password \
                 with “Forgot your password?” on the login page at once and tell your user \
                 administrator."
            ),
            "Log in:",
        ),
        (Notice::PasswordChanged, Lang::De) => (
            "Das Passwort Ihres Zugangs zu promio.connect wurde geändert",
            format!(
                "das Passwort Ihres Zugangs (Firmen-ID {company}, Benutzername {user}) wurde auf dessen \
                 Sicherheitsseite geändert, und Ihre anderen Sitzungen wurden beendet. Waren Sie das nicht, \
                 legen Sie sofort mit „Passwort vergessen?“ auf der Anmeldeseite ein neues \
                 Passwort fest und informieren Sie Ihre Benutzerverwaltung."
            ),
            "Anmelden:",
        ),
        (Notice::PasskeyAdded(name), Lang::En) => (
            "A passkey was added to your promio.connect account",
            format!(
                "a passkey named “{name}” was added to your account (company ID {company}, user name {user}). \
                 It can now log you in. If this was not you, log in, remove it on your Security page, \
                 set a new password and tell your user administrator."
            ),
            "Log in:",
        ),
        (Notice::PasskeyAdded(name), Lang::De) => (
            "Ihrem Zugang zu promio.connect wurde ein Passkey hinzugefügt",
            format!(
                "Ihrem Zugang (Firmen-ID {company}, Benutzername {user}) wurde ein Passkey namens „{name}“ \
                 hinzugefügt. Er kann Sie nun anmelden. Waren Sie das nicht, melden Sie sich an, entfernen Sie \
                 ihn auf Ihrer Sicherheitsseite, legen Sie ein neues Passwort fest und informieren Sie Ihre \
                 Benutzerverwaltung."
            ),
            "Anmelden:",
        ),
        (Notice::PasskeysRemoved, Lang::En) => (
            "The passkeys of your promio.connect account were removed",
            format!(
                "your company's user administrator has removed the passkeys of your account (company ID \
                 {company}, user name {user}). Log in with your password; you can add a passkey again on \
                 your Security page. If you did not ask for this, please contact your user administrator."
            ),
            "Log in:",
        ),
        (Notice::PasskeysRemoved, Lang::De) => (
            "Die Passkeys Ihres Zugangs zu promio.connect wurden entfernt",
            format!(
                "die Benutzerverwaltung Ihrer Firma hat die Passkeys Ihres Zugangs (Firmen-ID {company}, \
                 Benutzername {user}) entfernt. Melden Sie sich mit Ihrem Passwort an; auf Ihrer \
                 Sicherheitsseite können Sie wieder einen Passkey hinzufügen. Haben Sie das nicht veranlasst, \
                 wenden Sie sich bitte an Ihre Benutzerverwaltung."
            ),
            "Anmelden:",
        ),
        (Notice::Inactive(months, date), Lang::En) => (
            "Your promio.connect account will be deactivated",
            format!(
                "nobody has logged in to your account (company ID {company}, user name {user}) for almost \
                 {months} months. Your company deactivates unused accounts: yours will be deactivated on {date}. \
                 To keep it, log in once before then; nothing else is needed."
            ),
            "Log in:",
        ),
        (Notice::Inactive(months, date), Lang::De) => (
            "Ihr Zugang zu promio.connect wird deaktiviert",
            format!(
                "bei Ihrem Zugang (Firmen-ID {company}, Benutzername {user}) hat sich seit fast {months} Monaten \
                 niemand angemeldet. Ihre Firma deaktiviert ungenutzte Zugänge: Ihrer wird am {date} deaktiviert. \
                 Um ihn zu behalten, melden Sie sich vorher einmal an; mehr ist nicht nötig."
            ),
            "Anmelden:",
        ),
        (Notice::TwoFactorReset, Lang::En) => (
            "Your two-factor authentication was reset",
            "your company's user administrator has turned off the two-factor authentication of your \
             promio.connect account. If your company requires it, you will set it up again at your next login. \
             If you did not ask for this, please contact your user administrator."
                .to_owned(),
            "Log in:",
        ),
        (Notice::TwoFactorReset, Lang::De) => (
            "Ihre Zwei-Faktor-Authentifizierung wurde zurückgesetzt",
            "die Benutzerverwaltung Ihrer Firma hat die Zwei-Faktor-Authentifizierung Ihres Zugangs zu \
             promio.connect ausgeschaltet. Verlangt Ihre Firma sie, richten Sie sie bei der nächsten Anmeldung neu ein. \
             Haben Sie das nicht veranlasst, wenden Sie sich bitte an Ihre Benutzerverwaltung."
                .to_owned(),
            "Anmelden:",
        ),
    };
    let greeting = match to.lang {
        Lang::En => format!("Hello {},", to.display_name),
        Lang::De => format!("Hallo {},", to.display_name),
    };
    notice_mail(subject, &greeting, &body, action, link, to.lang)
}

/// The administrators' notice of coming deletions: who, and when.
fn render_deletions(
    console_link: &str,
    users: &[DeletionNotice],
    to: &Recipient<'_>,
    tz: &TimeZone,
) -> Rendered {
    let company = to.company_id;
    let lines: Vec<String> = users
        .iter()
        .map(|u| {
            let date = format_date(u.at, to.lang, tz);
            match to.lang {
                Lang::En => format!("- {} ({}): {date}", u.name, u.username),
                Lang::De => format!("- {} ({}): {date}", u.name, u.username),
            }
        })
        .collect();
    let count = users.len();
    let (subject, intro, after, action, greeting) = match to.lang {
        Lang::En => (
            if count == 1 {
                "A deactivated user will be deleted".to_owned()
            } else {
                format!("{count} deactivated users will be deleted")
            },
            format!(
                "these deactivated users of {company} reach the end of their retention and will be deleted \
                 with all their data on the day shown:"
            ),
            "To keep a user, reactivate them in User administration before then.",
            "User administration:",
            format!("Hello {},", to.display_name),
        ),
        Lang::De => (
            if count == 1 {
                "Ein deaktivierter Benutzer wird gelöscht".to_owned()
            } else {
                format!("{count} deaktivierte Benutzer werden gelöscht")
            },
            format!(
                "diese deaktivierten Benutzer von {company} erreichen das Ende ihrer Aufbewahrungsfrist und \
                 werden am genannten Tag mit allen ihren Daten gelöscht:"
            ),
            "Um einen Benutzer zu behalten, reaktivieren Sie ihn vorher in der Benutzerverwaltung.",
            "Benutzerverwaltung:",
            format!("Hallo {},", to.display_name),
        ),
    };
    let list = lines.join("\n");
    let body = format!("{intro}\n\n{list}\n\n{after}");
    let text = format!("{greeting}\n\n{body}\n\n{action}\n{console_link}\n\n-- \npromio.connect\n");
    let e = escape;
    let items: String = lines
        .iter()
        .map(|l| format!("<li>{}</li>", e(l.trim_start_matches("- "))))
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family: sans-serif; line-height: 1.5\"><p>{}</p><p>{}</p><ul>{items}</ul>\
         <p>{}</p><p>{}<br><a href=\"{href}\">{href}</a></p><p>promio.connect</p></body></html>",
        to.lang.code(),
        e(&subject),
        e(&greeting),
        e(&intro),
        e(after),
        e(action),
        href = e(console_link),
    );
    Rendered {
        subject,
        text,
        html,
    }
}

fn notice_mail(
    subject: &str,
    greeting: &str,
    body: &str,
    action: &str,
    login_link: &str,
    lang: Lang,
) -> Rendered {
    let text = format!("{greeting}\n\n{body}\n\n{action}\n{login_link}\n\n-- \npromio.connect\n");
    let e = escape;
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family: sans-serif; line-height: 1.5\"><p>{}</p><p>{}</p>\
         <p>{}<br><a href=\"{href}\">{href}</a></p><p>promio.connect</p></body></html>",
        lang.code(),
        e(subject),
        e(greeting),
        e(body),
        e(action),
        href = e(login_link),
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn times_are_absolute_with_the_zone_in_the_readers_language() {
        // 2027-01-15T08:00:00Z is 09:00 in Berlin (winter time).
        assert_eq!(
            format_time(1_800_000_000, Lang::En, &berlin()),
            "15 January 2027, 09:00 CET"
        );
        assert_eq!(
            format_time(1_800_000_000, Lang::De, &berlin()),
            "15. Januar 2027, 09:00 Uhr (CET)"
        );
        // Summer time is named as such.
        assert!(format_time(1_785_000_000, Lang::En, &berlin()).ends_with("CEST"));
    }

    #[test]
    fn a_registration_mail_holds_one_link_and_its_expiry() {
        let to = Recipient {
            display_name: "Erika Mustermann",
            company_id: "ACME",
            username: "erika",
            lang: Lang::En,
        };
        let link = "https://login.example/set-password?token=abc".to_owned();
        let mail = render(
            &MailContent::Registration {
                link: link.clone(),
                expires_at: 1_800_000_000,
            },
            &to,
            &berlin(),
        );
        assert_eq!(mail.subject, "Your promio.connect account");
        assert_eq!(mail.text.matches("https://").count(), 1);
        assert!(mail.text.contains(&link));
        assert!(mail.text.contains("valid until 15 January 2027, 09:00 CET"));
        assert!(mail.text.contains("Company ID: ACME") && mail.text.contains("User name: erika"));
        assert!(
            mail.html
                .contains("href=\"https://login.example/set-password?token=abc\"")
        );
    }

    #[test]
    fn german_mails_are_german_and_html_is_escaped() {
        let to = Recipient {
            display_name: "<b>Jörg</b>",
            company_id: "ACME",
            username: "joerg",
            lang: Lang::De,
        };
        let mail = render(
            &MailContent::PasswordReset {
                link: "https://x.example/set-password?token=a&b".into(),
                expires_at: 1_800_000_000,
            },
            &to,
            &berlin(),
        );
        assert_eq!(mail.subject, "Passwort für promio.connect zurücksetzen");
        assert!(
            mail.text
                .contains("gültig bis 15. Januar 2027, 09:00 Uhr (CET)")
        );
        assert!(mail.html.contains("&lt;b&gt;Jörg&lt;/b&gt;") && !mail.html.contains("<b>Jörg"));
        assert!(mail.html.contains("token=a&amp;b"));
    }

    #[test]
    fn the_deletion_notice_lists_who_and_when_in_the_readers_language() {
        let to = Recipient {
            display_name: "Chef",
            company_id: "ACME",
            username: "chef",
            lang: Lang::De,
        };
        let users = vec![
            DeletionNotice {
                name: "Erika Mustermann".into(),
                username: "erika".into(),
                at: 1_800_000_000,
            },
            DeletionNotice {
                name: "<Max>".into(),
                username: "max".into(),
                at: 1_800_086_400,
            },
        ];
        let content = MailContent::DeletionsComing {
            console_link: "https://login.example/users".into(),
            users,
        };
        let mail = render(&content, &to, &berlin());
        assert_eq!(mail.subject, "2 deaktivierte Benutzer werden gelöscht");
        assert!(
            mail.text
                .contains("- Erika Mustermann (erika): 15. Januar 2027")
        );
        assert!(mail.text.contains("- <Max> (max): 16. Januar 2027"));
        assert!(mail.html.contains("&lt;Max&gt;") && !mail.html.contains("<Max>"));
        assert_eq!(mail.text.matches("https://").count(), 1);
        assert_eq!(content.kind(), "deletions_coming");
    }

    #[test]
    fn the_inactivity_warning_says_when_and_how_to_keep_the_account() {
        let to = Recipient {
            display_name: "Erika",
            company_id: "ACME",
            username: "erika",
            lang: Lang::En,
        };
        let content = MailContent::InactivityWarning {
            login_link: "https://login.example/".into(),
            months: 12,
            deactivate_at: 1_800_000_000,
        };
        let mail = render(&content, &to, &berlin());
        assert_eq!(
            mail.subject,
            "Your promio.connect account will be deactivated"
        );
        assert!(mail.text.contains("almost 12 months"));
        assert!(mail.text.contains("deactivated on 15 January 2027"));
        assert!(mail.text.contains("log in once before then"));
        assert_eq!(
            format_date(1_800_000_000, Lang::De, &berlin()),
            "15. Januar 2027"
        );
    }
}
