//! The service traits of the API contract, implemented over [`Core`]. Each method is one call into
//! the module that owns the behaviour; errors are mapped to the contract's type here, once.

use crate::Core;
use crate::{admin, links, operator, sso, two_factor};
use async_trait::async_trait;
use promio_app::api::{
    ApiError, LinkKind, LinkState, LoginOutcome, TwoFactorEnrolment, TwoFactorStatus, UserForm,
    UserPage, UserQuery, UserSummary,
};
use promio_app::api::{
    AuditPage, AuditQuery, ClientForm, ClientPage, ClientSummary, SsoCheck, ThrottledAccount,
};
use promio_app::ssr::{
    AccountService, AdminService, OperatorService, RequestCtx, SsoService, TwoFactorService,
};
use std::sync::Arc;

#[derive(Clone)]
pub struct Services(pub Arc<Core>);

#[async_trait]
impl AdminService for Services {
    async fn list_users(&self, req: &RequestCtx, query: UserQuery) -> Result<UserPage, ApiError> {
        Ok(admin::list_users(&self.0, req, query).await?)
    }

    async fn create_user(&self, req: &RequestCtx, form: UserForm) -> Result<UserSummary, ApiError> {
        Ok(admin::create_user(&self.0, req, form).await?)
    }

    async fn update_user(
        &self,
        req: &RequestCtx,
        id: String,
        form: UserForm,
    ) -> Result<UserSummary, ApiError> {
        Ok(admin::update_user(&self.0, req, id, form).await?)
    }

    async fn resend_registration(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::send_link(&self.0, req, id, LinkKind::Registration).await?)
    }

    async fn send_password_reset(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::send_link(&self.0, req, id, LinkKind::PasswordReset).await?)
    }

    async fn set_user_active(
        &self,
        req: &RequestCtx,
        id: String,
        active: bool,
    ) -> Result<(), ApiError> {
        Ok(admin::set_active(&self.0, req, id, active).await?)
    }

    async fn reset_two_factor(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::reset_two_factor(&self.0, req, id).await?)
    }

    async fn release_sso_binding(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(sso::release_binding(&self.0, req, id).await?)
    }

    async fn list_throttled(&self, req: &RequestCtx) -> Result<Vec<ThrottledAccount>, ApiError> {
        Ok(admin::list_throttled(&self.0, req).await?)
    }

    async fn clear_throttle(&self, req: &RequestCtx, username: String) -> Result<(), ApiError> {
        Ok(admin::clear_throttle(&self.0, req, username).await?)
    }

    async fn list_audit(&self, req: &RequestCtx, query: AuditQuery) -> Result<AuditPage, ApiError> {
        Ok(admin::list_audit(&self.0, req, query).await?)
    }
}

#[async_trait]
impl TwoFactorService for Services {
    async fn login(&self, req: &RequestCtx, code: String) -> Result<LoginOutcome, ApiError> {
        Ok(two_factor::login(&self.0, req, code).await?)
    }

    async fn status(&self, req: &RequestCtx) -> Result<TwoFactorStatus, ApiError> {
        Ok(two_factor::status(&self.0, req).await?)
    }

    async fn start(&self, req: &RequestCtx) -> Result<TwoFactorEnrolment, ApiError> {
        Ok(two_factor::start(&self.0, req).await?)
    }

    async fn activate(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError> {
        Ok(two_factor::activate(&self.0, req, code, password).await?)
    }

    async fn deactivate(
        &self,
        req: &RequestCtx,
        password: String,
        code: String,
    ) -> Result<(), ApiError> {
        Ok(two_factor::deactivate(&self.0, req, password, code).await?)
    }

    async fn new_recovery_codes(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError> {
        Ok(two_factor::new_recovery_codes(&self.0, req, code, password).await?)
    }
}

#[async_trait]
impl AccountService for Services {
    async fn link_info(&self, req: &RequestCtx, token: String) -> Result<LinkState, ApiError> {
        Ok(links::link_info(&self.0, req, token).await?)
    }

    async fn set_password(
        &self,
        req: &RequestCtx,
        token: String,
        new_password: String,
        repeat_password: String,
        code: Option<String>,
    ) -> Result<(), ApiError> {
        Ok(links::set_password(&self.0, req, token, new_password, repeat_password, code).await?)
    }

    async fn request_password_reset(
        &self,
        req: &RequestCtx,
        company_id: String,
        username: String,
    ) -> Result<(), ApiError> {
        Ok(links::request_reset(&self.0, req, company_id, username).await?)
    }
}

#[async_trait]
impl OperatorService for Services {
    async fn list_clients(
        &self,
        req: &RequestCtx,
        search: String,
        page: u32,
    ) -> Result<ClientPage, ApiError> {
        Ok(operator::list(&self.0, req, search, page).await?)
    }

    async fn create_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError> {
        Ok(operator::create(&self.0, req, form).await?)
    }

    async fn update_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError> {
        Ok(operator::update(&self.0, req, form).await?)
    }

    async fn set_client_active(
        &self,
        req: &RequestCtx,
        company_id: String,
        active: bool,
    ) -> Result<(), ApiError> {
        Ok(operator::set_active(&self.0, req, company_id, active).await?)
    }

    async fn test_sso_connection(
        &self,
        req: &RequestCtx,
        issuer: String,
    ) -> Result<SsoCheck, ApiError> {
        Ok(operator::test_sso_connection(&self.0, req, issuer).await?)
    }
}

#[async_trait]
impl promio_app::ssr::SessionService for Services {
    async fn list(&self, req: &RequestCtx) -> Result<Vec<promio_app::api::SessionInfo>, ApiError> {
        Ok(admin::my_sessions(&self.0, req).await?)
    }

    async fn end(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::end_my_session(&self.0, req, id).await?)
    }

    async fn end_all_of_user(&self, req: &RequestCtx, user_id: String) -> Result<u32, ApiError> {
        Ok(admin::end_user_sessions(&self.0, req, user_id).await?)
    }
}

#[async_trait]
impl SsoService for Services {
    async fn start(&self, req: &RequestCtx, email: String) -> Result<String, ApiError> {
        Ok(sso::start(&self.0, req, email).await?)
    }
}
