//! The WebAuthn relying party of this deployment (the passkey flows are `crate::idm::passkeys`).

use crate::store::clients::ClientRow;
use url::Url;
use webauthn_rs::prelude::{Webauthn, WebauthnBuilder};

/// The relying party, when `PUBLIC_URL` names a domain.
pub struct Passkeys {
    webauthn: Option<Webauthn>,
}

impl Passkeys {
    /// The relying party for `public_url`: its host as the RP ID (a domain name; `localhost` in
    /// tests), its origin as the one allowed origin. `None` for an IP address.
    pub fn new(public_url: &Url) -> Passkeys {
        let webauthn = public_url.domain().and_then(|rp_id| {
            WebauthnBuilder::new(rp_id, public_url)
                .and_then(|b| b.rp_name("promio.connect").build())
                .map_err(|e| tracing::warn!(error = %e, "passkeys are off: PUBLIC_URL cannot be their relying party"))
                .ok()
        });
        Passkeys { webauthn }
    }

    /// The relying party, if passkeys work in this deployment at all.
    pub fn relying_party(&self) -> Option<&Webauthn> {
        self.webauthn.as_ref()
    }

    /// The relying party for a client's users, when they may use passkeys.
    pub fn for_client(&self, client: &ClientRow) -> Option<&Webauthn> {
        if client.uses_sso() || !client.allows_passkeys() {
            return None;
        }
        self.relying_party()
    }
}
