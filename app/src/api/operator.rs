//! The server functions of the clients console, the audit log and sessions.

use leptos::prelude::*;
use promio_api::{
    ApiError, AppLogin, AuditPage, ClientFormInput, ClientPage, ClientSummary, SessionInfo,
    SsoCheck,
};

#[server(prefix = "/api", endpoint = "clients/list")]
pub async fn list_clients(search: String, page: u32) -> Result<ClientPage, ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::operator;
    crate::edge::call(|core, who: Operator| async move {
        operator::list(&core, &who, search, page).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "clients/create")]
pub async fn create_client(
    #[server(flatten)] client: ClientFormInput,
) -> Result<ClientSummary, ApiError> {
    use crate::edge::principal::Operator;
    use promio_api::ClientForm;
    use promio_core::idm::operator;
    let form = ClientForm::from(client);
    crate::edge::call(
        |core, who: Operator| async move { operator::create(&core, &who, form).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "clients/update")]
pub async fn update_client(
    #[server(flatten)] client: ClientFormInput,
) -> Result<ClientSummary, ApiError> {
    use crate::edge::principal::Operator;
    use promio_api::ClientForm;
    use promio_core::idm::operator;
    let form = ClientForm::from(client);
    crate::edge::call(
        |core, who: Operator| async move { operator::update(&core, &who, form).await },
    )
    .await
}

/// Fetches and checks an issuer's discovery document, without saving anything.
#[server(prefix = "/api", endpoint = "clients/test-sso")]
pub async fn test_sso_connection(issuer: String) -> Result<SsoCheck, ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::operator;
    crate::edge::call(|core, who: Operator| async move {
        operator::test_sso_connection(&core, &who, issuer).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "clients/set-active")]
pub async fn set_client_active(company_id: String, active: bool) -> Result<(), ApiError> {
    use crate::edge::principal::Operator;
    use promio_core::idm::operator;
    crate::edge::call(|core, who: Operator| async move {
        operator::set_active(&core, &who, company_id, active).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "audit")]
pub async fn list_audit(
    user: String,
    action: String,
    from: String,
    to: String,
    page: u32,
) -> Result<AuditPage, ApiError> {
    use crate::edge::principal::Admin;
    use promio_api::AuditQuery;
    use promio_core::idm::admin;
    let query = AuditQuery {
        user,
        action,
        from,
        to,
        page,
    };
    crate::edge::call(|core, who: Admin| async move { admin::list_audit(&core, &who, query).await })
        .await
}

#[server(prefix = "/api", endpoint = "sessions/list")]
pub async fn my_sessions() -> Result<Vec<SessionInfo>, ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::admin;
    crate::edge::call(
        |core, session: Session| async move { admin::my_sessions(&core, &session).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "sessions/applications")]
pub async fn my_applications() -> Result<Vec<AppLogin>, ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::apps;
    crate::edge::call(|core, session: Session| async move {
        apps::my_applications(&core, &session).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "sessions/end")]
pub async fn end_my_session(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::admin;
    crate::edge::call(|core, session: Session| async move {
        admin::end_my_session(&core, &session, id).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "users/end-sessions")]
pub async fn end_user_sessions(id: String) -> Result<u32, ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(
        |core, who: Admin| async move { admin::end_user_sessions(&core, &who, id).await },
    )
    .await
}
