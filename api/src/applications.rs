//! The contract of the operators' Applications page: the relying parties that log people in
//! through promio.connect as their OpenID Provider. A client secret travels once, in the answer
//! of create or rotate-secret; nothing lists it again (only its hash is stored).

use serde::{Deserialize, Serialize};

/// A registered application, as the list shows it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationView {
    pub client_id: String,
    pub name: String,
    /// A public client (a browser or mobile app) has no secret and always uses PKCE.
    pub public: bool,
    /// Whether its logins must use PKCE (false only for a confidential client registered so).
    pub pkce_required: bool,
    /// The company ID of the client whose users alone may use it; `None`: any client's users.
    pub company_id: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
}

/// The New application form as posted. The text areas hold one URI per line; the checkbox is
/// present only when ticked.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewApplication {
    pub name: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    /// Empty: the users of any client.
    pub company_id: String,
    pub public: Option<String>,
    /// Present when ticked: logins without PKCE are allowed (a confidential client only).
    pub pkce_optional: Option<String>,
}

/// What saving a new application (or rotating its secret) answers: shown once, never again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApplication {
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<String>,
}

/// Without the secret: a debug print must not carry it into a log.
impl std::fmt::Debug for CreatedApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApplication")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_applications_debug_print_hides_the_secret() {
        let created = CreatedApplication {
            client_id: "app_x".into(),
            client_secret: Some("s3cr3t-value".into()),
        };
        let printed = format!("{created:?}");
        assert!(printed.contains("app_x"));
        assert!(!printed.contains("s3cr3t-value"));
    }
}
