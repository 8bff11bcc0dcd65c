//! Validated input. Every value that crosses the boundary becomes one of these types through its
//! `parse`, which is the only way to make one; past this point nothing checks it again.
//!
//! Identifiers are case-insensitive: each keeps the spelling it was given for display and a `key()`
//! (lower case) for lookups and uniqueness.

pub mod account;
pub mod audit;
pub mod clock;
pub mod cookies;
pub mod limits;

use promio_api::{Field, Problem};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

pub use account::{LinkKind, Role, UserStatus};

/// A field's value was refused, and why.
/// Declares a row key: a string the store makes (a UUID), typed so that a user's id cannot be
/// passed where a client's is expected. A raw id from a request becomes one only to be looked up.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(raw: impl Into<String>) -> Self {
                $name(raw.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

row_id!(
    /// A user's row key.
    UserId
);
row_id!(
    /// A client's row key.
    ClientId
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field:?}: {problem:?}")]
pub struct Invalid {
    pub field: Field,
    pub problem: Problem,
}

fn invalid(field: Field, problem: Problem) -> Invalid {
    Invalid { field, problem }
}

/// Trims, and refuses empty, over-long and control-character input: the checks every text field
/// shares. Length is counted in characters.
fn basic_text(field: Field, raw: &str, max: u32) -> Result<&str, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(invalid(field, Problem::Missing));
    }
    if s.chars().count() > max as usize {
        return Err(invalid(field, Problem::TooLong { max }));
    }
    check_chars(field, s)?;
    Ok(s)
}

/// Refuses control characters and U+FFFD, which stands where a request held bytes that were not
/// UTF-8: the value is not what the person typed, so it must not be used.
fn check_chars(field: Field, s: &str) -> Result<(), Invalid> {
    if s.contains(char::REPLACEMENT_CHARACTER) {
        return Err(invalid(field, Problem::Unreadable));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, Problem::ControlCharacters));
    }
    Ok(())
}

fn identifier(
    field: Field,
    raw: &str,
    min: u32,
    max: u32,
    extra: &[char],
) -> Result<String, Invalid> {
    let s = basic_text(field, raw, max)?;
    if s.chars().count() < min as usize {
        return Err(invalid(field, Problem::TooShort { min }));
    }
    if !s
        .chars()
        .all(|c| c.is_alphabetic() || c.is_ascii_digit() || extra.contains(&c))
    {
        return Err(invalid(field, Problem::InvalidCharacters));
    }
    Ok(s.to_owned())
}

/// A client's company ID: 2–32 letters, digits, `-` and `_`; case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyId(String);

impl CompanyId {
    pub const MAX: u32 = 32;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        identifier(Field::CompanyId, raw, 2, Self::MAX, &['-', '_']).map(CompanyId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user name, unique within its client: 1–64 letters, digits, `.`, `_`, `-`, `@`; case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub const MAX: u32 = 64;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        identifier(Field::UserName, raw, 1, Self::MAX, &['.', '_', '-', '@']).map(UserName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: one `@`, a local part, and a domain with a dot; at most 254 characters. The
/// domain is kept in lower case; `key()` is the whole address in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX: u32 = 254;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let field = Field::Email;
        let s = basic_text(field, raw, Self::MAX)?;
        let malformed = || invalid(field, Problem::Malformed);
        let (local, domain) = s.split_once('@').ok_or_else(malformed)?;
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '@' | '<' | '>' | '"' | ',' | ';'));
        if !domain_ok || !local_ok {
            return Err(malformed());
        }
        let address = format!("{local}@{}", domain.to_lowercase());
        // Accepted means sendable: the mailer hands this address to lettre, which is stricter
        // about the local part (no `..`, no leading or trailing dot, no parentheses …) and about
        // label lengths. Refusing here says so at the form, not when the mail fails.
        if address.parse::<lettre::Address>().is_err() {
            return Err(malformed());
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A first or last name: free text up to 100 characters, no control characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX: u32 = 100;

    pub fn parse(field: Field, raw: &str) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Ok(PersonName::default());
        }
        basic_text(field, raw, Self::MAX).map(|s| PersonName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's display name: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl ClientName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        basic_text(Field::Name, raw, 200).map(|s| ClientName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed at login. Only its presence and a sane upper bound are checked: the rules
/// for choosing a password apply when it is set, not when it is tried.
pub struct LoginPassword(SecretString);

impl LoginPassword {
    /// Generous, yet keeps a request from making the hasher read megabytes.
    pub const MAX: u32 = 1024;

    pub fn parse(raw: String) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(invalid(Field::Password, Problem::Missing));
        }
        if raw.chars().count() > Self::MAX as usize {
            return Err(invalid(
                Field::Password,
                Problem::TooLong { max: Self::MAX },
            ));
        }
        if raw.contains(char::REPLACEMENT_CHARACTER) {
            return Err(invalid(Field::Password, Problem::Unreadable));
        }
        Ok(LoginPassword(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for LoginPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginPassword(***)")
    }
}

/// What a new password is checked against besides its length: the account it is for.
pub struct PasswordContext<'a> {
    pub company_id: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    /// With a required second factor a shorter password suffices (NIST SP 800-63B-4).
    pub second_factor_required: bool,
}

/// A password being chosen: at least 15 characters (8 where a second factor is required), at most
/// 128, no composition rules, and not the user name, company ID or email address.
pub struct NewPassword(SecretString);

impl NewPassword {
    pub const MIN_SINGLE_FACTOR: u32 = 15;
    pub const MIN_WITH_SECOND_FACTOR: u32 = 8;
    pub const MAX: u32 = 128;

    /// [`NewPassword::parse`], and the same password typed again (`repeat`).
    pub fn parse_repeated(
        raw: String,
        repeat: &str,
        ctx: &PasswordContext<'_>,
    ) -> Result<Self, Invalid> {
        let password = Self::parse(raw, ctx)?;
        if password.expose() != repeat {
            return Err(invalid(Field::RepeatPassword, Problem::Mismatch));
        }
        Ok(password)
    }

    pub fn parse(raw: String, ctx: &PasswordContext<'_>) -> Result<Self, Invalid> {
        let field = Field::NewPassword;
        let len = raw.chars().count();
        if raw.is_empty() {
            return Err(invalid(field, Problem::Missing));
        }
        let min = if ctx.second_factor_required {
            Self::MIN_WITH_SECOND_FACTOR
        } else {
            Self::MIN_SINGLE_FACTOR
        };
        if len < min as usize {
            return Err(invalid(field, Problem::TooShort { min }));
        }
        if len > Self::MAX as usize {
            return Err(invalid(field, Problem::TooLong { max: Self::MAX }));
        }
        check_chars(field, &raw)?;
        let folded = raw.trim().to_lowercase();
        let identity = [ctx.company_id, ctx.username, ctx.email];
        if identity
            .iter()
            .any(|id| !id.is_empty() && folded == id.to_lowercase())
        {
            return Err(invalid(field, Problem::SameAsIdentity));
        }
        if is_common(&raw, &identity) {
            return Err(invalid(field, Problem::TooCommon));
        }
        Ok(NewPassword(SecretString::from(raw)))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// True when the password is on zxcvbn's bundled list of common and breached passwords (as a
/// whole, also reversed or in l33t spelling), or so predictable that it falls within a million
/// guesses (repeats, keyboard walks, sequences, the account's own names).
fn is_common(password: &str, identity: &[&str]) -> bool {
    let estimate = zxcvbn::zxcvbn(password, identity);
    let listed = match estimate.sequence() {
        [only] => match &only.pattern {
            // The dictionary type is not exported by name; its Debug form is stable.
            zxcvbn::matching::patterns::MatchPattern::Dictionary(p) => {
                format!("{:?}", p.dictionary_name) == "Passwords"
            }
            _ => false,
        },
        _ => false,
    };
    listed || estimate.score() <= zxcvbn::Score::One
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// The kind of a pending second factor: a code is due, or the enrolment the client requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Code,
    Enrolment,
}

/// A stored kind: anything but a known name is an error, never a default.
impl TryFrom<String> for PendingKind {
    type Error = String;

    fn try_from(s: String) -> Result<PendingKind, String> {
        match s.as_str() {
            "totp" => Ok(PendingKind::Code),
            "enrol" => Ok(PendingKind::Enrolment),
            _ => Err(format!("unknown pending second factor kind {s:?}")),
        }
    }
}

impl PendingKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Code => "totp",
            PendingKind::Enrolment => "enrol",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem<T: fmt::Debug>(r: Result<T, Invalid>) -> Problem {
        r.expect_err("should be refused").problem
    }

    #[test]
    fn company_ids_are_trimmed_and_compared_without_case() {
        let id = CompanyId::parse("  ACME-01_x ").unwrap();
        assert_eq!(id.as_str(), "ACME-01_x");
        assert_eq!(id.key(), "acme-01_x");
    }

    #[test]
    fn company_ids_outside_the_format_are_refused() {
        assert_eq!(problem(CompanyId::parse("")), Problem::Missing);
        assert_eq!(problem(CompanyId::parse("   ")), Problem::Missing);
        assert_eq!(problem(CompanyId::parse("A")), Problem::TooShort { min: 2 });
        assert_eq!(
            problem(CompanyId::parse(&"a".repeat(33))),
            Problem::TooLong { max: 32 }
        );
        assert_eq!(
            problem(CompanyId::parse(&"a".repeat(10_000))),
            Problem::TooLong { max: 32 }
        );
        assert_eq!(
            problem(CompanyId::parse("ac me")),
            Problem::InvalidCharacters
        );
        assert_eq!(
            problem(CompanyId::parse("acme.de")),
            Problem::InvalidCharacters
        );
        assert_eq!(
            problem(CompanyId::parse("ac\u{7}me")),
            Problem::ControlCharacters
        );
        assert_eq!(
            problem(CompanyId::parse("ac\u{fffd}me")),
            Problem::Unreadable
        );
        assert!(CompanyId::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn user_names_allow_dots_at_signs_and_dashes() {
        let name = UserName::parse("Alice.Smith@HQ_1-x").unwrap();
        assert_eq!(name.key(), "alice.smith@hq_1-x");
        assert!(UserName::parse("a").is_ok());
        assert!(UserName::parse(&"b".repeat(64)).is_ok());
        assert_eq!(
            problem(UserName::parse(&"b".repeat(65))),
            Problem::TooLong { max: 64 }
        );
        assert_eq!(
            problem(UserName::parse("alice smith")),
            Problem::InvalidCharacters
        );
        assert_eq!(
            problem(UserName::parse("alice/")),
            Problem::InvalidCharacters
        );
        assert_eq!(problem(UserName::parse("\t\n")), Problem::Missing);
        assert_eq!(
            problem(UserName::parse("al\u{0}ice")),
            Problem::ControlCharacters
        );
    }

    #[test]
    fn email_addresses_keep_the_local_part_and_lower_the_domain() {
        let e = EmailAddress::parse(" Alice.Smith@ACME.Example ").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith@acme.example");
        assert_eq!(e.key(), "alice.smith@acme.example");
        assert_eq!(e.domain(), "acme.example");
    }

    #[test]
    fn malformed_email_addresses_are_refused() {
        for bad in [
            "alice",
            "alice@",
            "@acme.example",
            "alice@acme",
            "a b@acme.example",
            "alice@acme..example",
            "alice@-acme.example",
            "a@b@acme.example",
        ] {
            assert_eq!(
                problem(EmailAddress::parse(bad)),
                Problem::Malformed,
                "{bad}"
            );
        }
        assert_eq!(problem(EmailAddress::parse("")), Problem::Missing);
        let long = format!("{}@acme.example", "a".repeat(250));
        assert_eq!(
            problem(EmailAddress::parse(&long)),
            Problem::TooLong { max: 254 }
        );
    }

    #[test]
    fn email_addresses_are_accepted_only_when_lettre_can_send_to_them() {
        // Each passes the shape check above (one `@`, no spaces or brackets, a dotted domain of
        // letters, digits and dashes), but is not an address lettre accepts, so no mail could go
        // to it.
        let long_label = format!("alice@{}.example", "a".repeat(64));
        for unsendable in [
            "alice..smith@acme.example",
            ".alice@acme.example",
            "alice.@acme.example",
            "ali(ce)@acme.example",
            "alice[1]@acme.example",
            long_label.as_str(),
        ] {
            assert!(
                unsendable.parse::<lettre::Address>().is_err(),
                "lettre refuses {unsendable}"
            );
            assert_eq!(
                problem(EmailAddress::parse(unsendable)),
                Problem::Malformed,
                "{unsendable}"
            );
        }

        for sendable in [
            "alice.smith+news@acme.example",
            "o'brien@mail.acme-corp.example",
        ] {
            assert!(sendable.parse::<lettre::Address>().is_ok(), "{sendable}");
            assert_eq!(EmailAddress::parse(sendable).unwrap().as_str(), sendable);
        }
        let mixed = EmailAddress::parse("Alice.Smith@ACME.Example").unwrap();
        assert!(mixed.as_str().parse::<lettre::Address>().is_ok());
    }

    #[test]
    fn person_names_may_be_empty_but_not_hold_control_characters() {
        assert_eq!(
            PersonName::parse(Field::FirstName, "  ").unwrap().as_str(),
            ""
        );
        assert_eq!(
            PersonName::parse(Field::FirstName, " Jürgen ")
                .unwrap()
                .as_str(),
            "Jürgen"
        );
        assert_eq!(
            problem(PersonName::parse(Field::LastName, "a\u{1b}[31m")),
            Problem::ControlCharacters
        );
    }

    #[test]
    fn login_passwords_are_kept_verbatim_and_never_printed() {
        let p = LoginPassword::parse("  spaced secret ".to_owned()).unwrap();
        assert_eq!(p.expose(), "  spaced secret ");
        assert_eq!(format!("{p:?}"), "LoginPassword(***)");
        assert_eq!(
            problem(LoginPassword::parse(String::new())),
            Problem::Missing
        );
        assert_eq!(
            problem(LoginPassword::parse("x".repeat(1025))),
            Problem::TooLong { max: 1024 }
        );
        assert_eq!(
            problem(LoginPassword::parse("pass\u{fffd}word".into())),
            Problem::Unreadable
        );
    }

    fn ctx(second_factor_required: bool) -> PasswordContext<'static> {
        PasswordContext {
            company_id: "ACME",
            username: "alice.smith",
            email: "alice@acme.example",
            second_factor_required,
        }
    }

    #[test]
    fn new_passwords_need_15_characters_or_8_with_a_required_second_factor() {
        assert_eq!(
            problem(NewPassword::parse("zq8-Lantern-4x".into(), &ctx(false))),
            Problem::TooShort { min: 15 }
        );
        assert!(NewPassword::parse("zq8-Lantern-4xY".into(), &ctx(false)).is_ok());
        assert_eq!(
            problem(NewPassword::parse("Zq7!mot".into(), &ctx(true))),
            Problem::TooShort { min: 8 }
        );
        assert!(NewPassword::parse("Zq7!mote".into(), &ctx(true)).is_ok());
        let long = "Zebra Lantern 47 quiet orbit canvas thunder violet maple river 9";
        assert_eq!(long.chars().count(), 64);
        assert!(
            NewPassword::parse(long.into(), &ctx(false)).is_ok(),
            "64 characters are allowed"
        );
        let too_long = format!("{long}{}", "x9".repeat(33));
        assert_eq!(
            problem(NewPassword::parse(too_long, &ctx(false))),
            Problem::TooLong { max: 128 }
        );
        assert_eq!(
            problem(NewPassword::parse(String::new(), &ctx(false))),
            Problem::Missing
        );
    }

    #[test]
    fn common_and_predictable_passwords_are_refused() {
        let c = ctx(true);
        for common in [
            "password",
            "Password1",
            "qwertyuiop",
            "iloveyou",
            "aaaaaaaaaaaaaaaa",
            "passwordpassword",
            "1234567890123456",
            "alice.smith2024",
        ] {
            assert_eq!(
                problem(NewPassword::parse(common.into(), &c)),
                Problem::TooCommon,
                "{common}"
            );
        }
        for fine in [
            "correct horse battery staple",
            "Zebra-Lantern-47-Quiet",
            "tR7#kq9!Lm2@",
        ] {
            assert!(NewPassword::parse(fine.into(), &c).is_ok(), "{fine}");
        }
    }

    #[test]
    fn new_passwords_may_not_be_the_accounts_own_names() {
        let c = ctx(true);
        assert_eq!(
            problem(NewPassword::parse("ALICE.SMITH".into(), &c)),
            Problem::SameAsIdentity
        );
        assert_eq!(
            problem(NewPassword::parse("alice@acme.example".into(), &c)),
            Problem::SameAsIdentity
        );
        let long = PasswordContext {
            company_id: "acme-industries-01",
            ..ctx(false)
        };
        assert_eq!(
            problem(NewPassword::parse("ACME-INDUSTRIES-01".into(), &long)),
            Problem::SameAsIdentity
        );
        assert_eq!(
            format!(
                "{:?}",
                NewPassword::parse("zq8-Lantern-4xY".into(), &c).unwrap()
            ),
            "NewPassword(***)"
        );
    }
}
