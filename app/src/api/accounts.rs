//! The server functions of user administration, links from mails and the password reset.

use leptos::prelude::*;
use promio_api::{ApiError, LinkState, ThrottledAccount, UserPage, UserSummary};

#[server(prefix = "/api", endpoint = "users/list")]
pub async fn list_users(search: String, status: String, page: u32) -> Result<UserPage, ApiError> {
    use crate::edge::principal::Admin;
    use promio_api::UserQuery;
    use promio_core::idm::admin;
    let query = UserQuery {
        search,
        status,
        page,
    };
    crate::edge::call(|core, who: Admin| async move { admin::list_users(&core, &who, query).await })
        .await
}

#[server(prefix = "/api", endpoint = "users/create")]
pub async fn create_user(
    first_name: String,
    last_name: String,
    email: String,
    username: String,
    role: String,
) -> Result<UserSummary, ApiError> {
    use crate::edge::principal::Admin;
    use promio_api::UserForm;
    use promio_core::idm::admin;
    let form = UserForm {
        first_name,
        last_name,
        email,
        username,
        role,
    };
    crate::edge::call(|core, who: Admin| async move { admin::create_user(&core, &who, form).await })
        .await
}

#[server(prefix = "/api", endpoint = "users/update")]
pub async fn update_user(
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    role: String,
) -> Result<UserSummary, ApiError> {
    use crate::edge::principal::Admin;
    use promio_api::UserForm;
    use promio_core::idm::admin;
    let form = UserForm {
        first_name,
        last_name,
        email,
        username: String::new(),
        role,
    };
    crate::edge::call(
        |core, who: Admin| async move { admin::update_user(&core, &who, id, form).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "users/resend-registration")]
pub async fn resend_registration(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::domain::LinkKind;
    use promio_core::idm::admin;
    crate::edge::call(|core, who: Admin| async move {
        admin::send_link(&core, &who, id, LinkKind::Registration).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "users/send-reset")]
pub async fn send_password_reset(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::domain::LinkKind;
    use promio_core::idm::admin;
    crate::edge::call(|core, who: Admin| async move {
        admin::send_link(&core, &who, id, LinkKind::PasswordReset).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "users/set-active")]
pub async fn set_user_active(id: String, active: bool) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(
        |core, who: Admin| async move { admin::set_active(&core, &who, id, active).await },
    )
    .await
}

/// Deletes a user at once: their account, second factors, sessions, links and mails; the audit
/// log keeps its rows under a pseudonym. Their user name is free again.
#[server(prefix = "/api", endpoint = "users/delete")]
pub async fn delete_user(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(|core, who: Admin| async move { admin::delete_user(&core, &who, id).await })
        .await
}

/// Releases the user's binding to an identity at the client's identity provider: their next SSO
/// login binds the account again.
#[server(prefix = "/api", endpoint = "users/release-sso")]
pub async fn release_sso_binding(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::sso;
    crate::edge::call(|core, who: Admin| async move { sso::release_binding(&core, &who, id).await })
        .await
}

#[server(prefix = "/api", endpoint = "link")]
pub async fn link_info(token: String) -> Result<LinkState, ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::links;
    crate::edge::call(|core, caller: Caller| async move {
        links::link_info(&core, &caller, token).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "set-password")]
pub async fn set_password(
    token: String,
    new_password: String,
    repeat_password: String,
    code: Option<String>,
) -> Result<(), ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::links;
    crate::edge::call(|core, caller: Caller| async move {
        links::set_password(&core, &caller, token, new_password, repeat_password, code).await
    })
    .await
}

/// The logged-in user's own new password (the Security page): the current one first.
#[server(prefix = "/api", endpoint = "password/change")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    repeat_password: String,
) -> Result<(), ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::own_password;
    crate::edge::call(|core, session: Session| async move {
        own_password::change(
            &core,
            &session,
            current_password,
            new_password,
            repeat_password,
        )
        .await
    })
    .await
}

#[server(prefix = "/api", endpoint = "forgot-password")]
pub async fn request_password_reset(company_id: String, username: String) -> Result<(), ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::links;
    crate::edge::call(|core, caller: Caller| async move {
        links::request_reset(&core, &caller, company_id, username).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "users/throttled")]
pub async fn list_throttled() -> Result<Vec<ThrottledAccount>, ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(|core, who: Admin| async move { admin::list_throttled(&core, &who).await })
        .await
}

/// Lets an account try again at once: its password's and its second factor's counters are
/// cleared (a lock of either among them).
#[server(prefix = "/api", endpoint = "users/clear-throttle")]
pub async fn clear_throttle(username: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(|core, who: Admin| async move {
        admin::clear_throttle(&core, &who, username).await
    })
    .await
}
