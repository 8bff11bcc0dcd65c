//! The server's own words for an account: its role, where it stands, and the kinds of links a
//! mail carries. The store keeps them by these names (`as_str`) and reads them back with
//! `try_from`, so an unknown stored name is an error, never a default. The contract has its own
//! enums of the same names for the browser (`promio_api`); the conversions below are the one
//! mapping between the two.

/// What a user may do: use the product, administer their client's users, or run the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
    Operator,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// A role named in a form or on the command line (any case, spaces around); `None` for
    /// anything else.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A stored role: anything but a known name is an error, never a default.
impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Role, String> {
        match s.as_str() {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            _ => Err(format!("unknown role {s:?}")),
        }
    }
}

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// Created; the password has not been set yet.
    Invited,
    Active,
    Deactivated,
}

impl UserStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
        }
    }

    /// A status named in a filter (any case, spaces around); `None` for anything else.
    pub fn from_filter(s: &str) -> Option<UserStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "invited" => Some(UserStatus::Invited),
            "active" => Some(UserStatus::Active),
            "deactivated" => Some(UserStatus::Deactivated),
            _ => None,
        }
    }
}

/// A stored status: anything but a known name is an error, never a default.
impl TryFrom<String> for UserStatus {
    type Error = String;

    fn try_from(s: String) -> Result<UserStatus, String> {
        match s.as_str() {
            "invited" => Ok(UserStatus::Invited),
            "active" => Ok(UserStatus::Active),
            "deactivated" => Ok(UserStatus::Deactivated),
            _ => Err(format!("unknown user status {s:?}")),
        }
    }
}

/// What a link from a mail is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    Registration,
    PasswordReset,
}

impl LinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Registration => "registration",
            LinkKind::PasswordReset => "password_reset",
        }
    }
}

/// A stored kind: anything but a known name is an error, never a default.
impl TryFrom<String> for LinkKind {
    type Error = String;

    fn try_from(s: String) -> Result<LinkKind, String> {
        match s.as_str() {
            "registration" => Ok(LinkKind::Registration),
            "password_reset" => Ok(LinkKind::PasswordReset),
            _ => Err(format!("unknown link kind {s:?}")),
        }
    }
}

impl From<Role> for promio_api::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => promio_api::Role::User,
            Role::Admin => promio_api::Role::Admin,
            Role::Operator => promio_api::Role::Operator,
        }
    }
}

/// A role the contract names (the console's forms, the command line).
impl From<promio_api::Role> for Role {
    fn from(role: promio_api::Role) -> Self {
        match role {
            promio_api::Role::User => Role::User,
            promio_api::Role::Admin => Role::Admin,
            promio_api::Role::Operator => Role::Operator,
        }
    }
}

impl From<UserStatus> for promio_api::UserStatus {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Invited => promio_api::UserStatus::Invited,
            UserStatus::Active => promio_api::UserStatus::Active,
            UserStatus::Deactivated => promio_api::UserStatus::Deactivated,
        }
    }
}

impl From<LinkKind> for promio_api::LinkKind {
    fn from(kind: LinkKind) -> Self {
        match kind {
            LinkKind::Registration => promio_api::LinkKind::Registration,
            LinkKind::PasswordReset => promio_api::LinkKind::PasswordReset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_and_unknown_ones_are_errors() {
        for role in [Role::User, Role::Admin, Role::Operator] {
            assert_eq!(Role::try_from(role.as_str().to_owned()), Ok(role));
            assert_eq!(promio_api::Role::from(role).as_str(), role.as_str());
        }
        for status in [
            UserStatus::Invited,
            UserStatus::Active,
            UserStatus::Deactivated,
        ] {
            assert_eq!(UserStatus::try_from(status.as_str().to_owned()), Ok(status));
            assert_eq!(
                promio_api::UserStatus::from(status).as_str(),
                status.as_str()
            );
        }
        for kind in [LinkKind::Registration, LinkKind::PasswordReset] {
            assert_eq!(LinkKind::try_from(kind.as_str().to_owned()), Ok(kind));
        }
        assert!(Role::try_from("root".to_owned()).is_err());
        // A stored name is exact; only forms and the command line are read leniently.
        assert!(Role::try_from("Admin".to_owned()).is_err());
        assert!(UserStatus::try_from(String::new()).is_err());
        assert!(LinkKind::try_from("reset".to_owned()).is_err());
        assert_eq!(Role::parse(" ADMIN "), Some(Role::Admin));
        assert_eq!(UserStatus::from_filter("Active"), Some(UserStatus::Active));
    }
}
