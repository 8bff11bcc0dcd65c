//! The service traits of the API contract, implemented over [`Core`]. Each method resolves who is
//! asking once ([`crate::edge::principal`]) and makes one call into the module that owns the behaviour;
//! errors are mapped to the contract's type here, once.

use crate::domain::PendingKind;
use crate::domain::cookies;
use crate::edge::oauth::apps::{self, AppField, AppRefusal};
use crate::edge::principal;
use crate::edge::principal::Answer;
use crate::edge::principal::{Caller, CookieIntent, Flow};
use crate::idm::Core;
use crate::idm::login;
use crate::idm::{admin, links, operator, passkeys, sso, two_factor};
use crate::infra::error::{ServiceError, ServiceResult};
use async_trait::async_trait;
use promio_app::api::{
    ApiError, LinkKind, LinkState, LoginOutcome, TwoFactorEnrolment, TwoFactorStatus, UserForm,
    UserPage, UserQuery, UserSummary,
};
use promio_app::api::{ApplicationView, CreatedApplication, Field, NewApplication};
use promio_app::api::{
    AuditPage, AuditQuery, ClientForm, ClientPage, ClientSummary, SsoCheck, ThrottledAccount,
};
use promio_app::api::{LoginForm, Me};
use promio_app::api::{PasskeyInfo, PasskeyOptions, PasskeyStatus, SecondFactorMethods};
use promio_app::ssr::ApplicationService;
use promio_app::ssr::{
    AccountService, AdminService, AuthService, OperatorService, PasskeyService, RequestCtx,
    SsoService, TwoFactorService,
};
use secrecy::ExposeSecret;
use std::sync::Arc;

#[derive(Clone)]
pub struct Services(pub Arc<Core>);

impl Services {
    fn caller(&self, req: &RequestCtx) -> Caller {
        principal::caller(&self.0, req)
    }

    /// Writes a flow's cookies and returns its value. An expired pending second factor also
    /// loses its cookie, whichever flow found it expired.
    fn answer<T>(&self, req: &RequestCtx, result: ServiceResult<Flow<T>>) -> ServiceResult<T> {
        match result {
            Ok(flow) => Ok(flow.answer(&self.0, req)),
            Err(ServiceError::LoginExpired) => {
                principal::write_cookies(&self.0, req, &[CookieIntent::Clear(cookies::PENDING)]);
                Err(ServiceError::LoginExpired)
            }
            Err(e) => Err(e),
        }
    }

    /// Who may set up 2FA: the session's user, or one in the enrolment their client requires.
    async fn enroller(&self, req: &RequestCtx) -> ServiceResult<two_factor::Enroller> {
        if let Some(session) = principal::session_if_any(&self.0, req).await? {
            return Ok(two_factor::Enroller::Session(session));
        }
        match principal::pending(&self.0, req, PendingKind::Enrolment).await? {
            Some(pending) => Ok(two_factor::Enroller::Pending(pending)),
            None => Err(ServiceError::Unauthenticated),
        }
    }

    async fn session(&self, req: &RequestCtx) -> Result<principal::Session, ApiError> {
        Ok(principal::session(&self.0, req).await?)
    }

    async fn admin(&self, req: &RequestCtx) -> Result<principal::Admin, ApiError> {
        Ok(principal::admin(&self.0, req).await?)
    }

    async fn operator(&self, req: &RequestCtx) -> Result<principal::Operator, ApiError> {
        Ok(principal::operator(&self.0, req).await?)
    }
}

#[async_trait]
impl AdminService for Services {
    async fn list_users(&self, req: &RequestCtx, query: UserQuery) -> Result<UserPage, ApiError> {
        Ok(admin::list_users(&self.0, &self.admin(req).await?, query).await?)
    }

    async fn create_user(&self, req: &RequestCtx, form: UserForm) -> Result<UserSummary, ApiError> {
        Ok(admin::create_user(&self.0, &self.admin(req).await?, form).await?)
    }

    async fn update_user(
        &self,
        req: &RequestCtx,
        id: String,
        form: UserForm,
    ) -> Result<UserSummary, ApiError> {
        Ok(admin::update_user(&self.0, &self.admin(req).await?, id, form).await?)
    }

    async fn resend_registration(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::send_link(&self.0, &self.admin(req).await?, id, LinkKind::Registration).await?)
    }

    async fn send_password_reset(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::send_link(
            &self.0,
            &self.admin(req).await?,
            id,
            LinkKind::PasswordReset,
        )
        .await?)
    }

    async fn set_user_active(
        &self,
        req: &RequestCtx,
        id: String,
        active: bool,
    ) -> Result<(), ApiError> {
        Ok(admin::set_active(&self.0, &self.admin(req).await?, id, active).await?)
    }

    async fn reset_two_factor(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::reset_two_factor(&self.0, &self.admin(req).await?, id).await?)
    }

    async fn remove_passkeys(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::remove_passkeys(&self.0, &self.admin(req).await?, id).await?)
    }

    async fn delete_user(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::delete_user(&self.0, &self.admin(req).await?, id).await?)
    }

    async fn release_sso_binding(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(sso::release_binding(&self.0, &self.admin(req).await?, id).await?)
    }

    async fn list_throttled(&self, req: &RequestCtx) -> Result<Vec<ThrottledAccount>, ApiError> {
        Ok(admin::list_throttled(&self.0, &self.admin(req).await?).await?)
    }

    async fn clear_throttle(&self, req: &RequestCtx, username: String) -> Result<(), ApiError> {
        Ok(admin::clear_throttle(&self.0, &self.admin(req).await?, username).await?)
    }

    async fn list_audit(&self, req: &RequestCtx, query: AuditQuery) -> Result<AuditPage, ApiError> {
        Ok(admin::list_audit(&self.0, &self.admin(req).await?, query).await?)
    }
}

#[async_trait]
impl AuthService for Services {
    async fn login(&self, req: &RequestCtx, form: LoginForm) -> Result<LoginOutcome, ApiError> {
        let company = crate::domain::cookies::RememberedCompany::parse(&form.company_id);
        let result = login::password_step(&self.0, &self.caller(req), form).await;
        // The password was right (whatever comes next): the browser fills this company ID in
        // next time.
        let result = result.map(|flow| match company {
            Some(id) => flow.with(CookieIntent::RememberCompany(id)),
            None => flow,
        });
        Ok(self.answer(req, result)?)
    }

    async fn current_user(&self, req: &RequestCtx) -> Result<Option<Me>, ApiError> {
        let current = principal::current_session(&self.0, req).await?;
        Ok(self.0.me(current).await?)
    }

    async fn session_time_left(&self, req: &RequestCtx) -> Result<Option<u64>, ApiError> {
        let current = principal::idle_check(&self.0, req).await?;
        Ok(current.map(|c| u64::try_from(c.ends_in_secs).unwrap_or(0)))
    }

    async fn logout(&self, req: &RequestCtx) -> Result<(), ApiError> {
        Ok(logout(&self.0, req).await?)
    }
}

/// Logout, for the server function and the plain form post alike.
pub async fn logout(core: &Core, req: &RequestCtx) -> ServiceResult<()> {
    let current = principal::current_session(core, req).await?;
    let cookie = core
        .end_session(current, &principal::caller(core, req))
        .await?;
    principal::write_cookies(core, req, &[cookie]);
    Ok(())
}

#[async_trait]
impl TwoFactorService for Services {
    async fn login(&self, req: &RequestCtx, code: String) -> Result<LoginOutcome, ApiError> {
        let caller = self.caller(req);
        let result = match principal::pending(&self.0, req, PendingKind::Code).await? {
            Some(pending) => two_factor::login(&self.0, pending, &caller, code).await,
            None => Err(ServiceError::LoginExpired),
        };
        Ok(self.answer(req, result)?)
    }

    async fn status(&self, req: &RequestCtx) -> Result<TwoFactorStatus, ApiError> {
        Ok(two_factor::status(&self.0, &self.enroller(req).await?).await?)
    }

    async fn start(&self, req: &RequestCtx) -> Result<TwoFactorEnrolment, ApiError> {
        Ok(two_factor::start(&self.0, &self.enroller(req).await?).await?)
    }

    async fn activate(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError> {
        let who = self.enroller(req).await?;
        let result = two_factor::activate(&self.0, who, &self.caller(req), code, password).await;
        Ok(self.answer(req, result)?)
    }

    async fn deactivate(
        &self,
        req: &RequestCtx,
        password: String,
        code: String,
    ) -> Result<(), ApiError> {
        let session = self.session(req).await?;
        Ok(two_factor::deactivate(&self.0, &session, password, code).await?)
    }

    async fn new_recovery_codes(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError> {
        let session = self.session(req).await?;
        Ok(two_factor::new_recovery_codes(&self.0, &session, code, password).await?)
    }
}

#[async_trait]
impl PasskeyService for Services {
    async fn status(&self, req: &RequestCtx) -> Result<PasskeyStatus, ApiError> {
        Ok(passkeys::status(&self.0, &self.session(req).await?).await?)
    }

    async fn register_start(
        &self,
        req: &RequestCtx,
        password: String,
    ) -> Result<PasskeyOptions, ApiError> {
        let who = self.enroller(req).await?;
        let result = passkeys::register_start(&self.0, &who, password).await;
        Ok(self.answer(req, result)?)
    }

    async fn register_finish(
        &self,
        req: &RequestCtx,
        credential: String,
        name: String,
    ) -> Result<PasskeyInfo, ApiError> {
        let who = self.enroller(req).await?;
        let caller = self.caller(req);
        let result = passkeys::register_finish(&self.0, who, &caller, credential, name).await;
        Ok(self.answer(req, result)?)
    }

    async fn rename(
        &self,
        req: &RequestCtx,
        id: String,
        name: String,
    ) -> Result<PasskeyInfo, ApiError> {
        Ok(passkeys::rename(&self.0, &self.session(req).await?, id, name).await?)
    }

    async fn remove(&self, req: &RequestCtx, id: String, password: String) -> Result<(), ApiError> {
        let session = self.session(req).await?;
        let caller = self.caller(req);
        Ok(passkeys::remove(&self.0, &session, &caller, id, password).await?)
    }

    async fn login_start(&self, req: &RequestCtx) -> Result<PasskeyOptions, ApiError> {
        let result = passkeys::login_start(&self.0, &self.caller(req)).await;
        Ok(self.answer(req, result)?)
    }

    async fn login_finish(
        &self,
        req: &RequestCtx,
        credential: String,
    ) -> Result<LoginOutcome, ApiError> {
        let result = passkeys::login_finish(&self.0, &self.caller(req), credential).await;
        Ok(self.answer(req, result)?)
    }

    async fn second_factor_methods(
        &self,
        req: &RequestCtx,
    ) -> Result<SecondFactorMethods, ApiError> {
        match principal::pending(&self.0, req, PendingKind::Code).await? {
            Some(pending) => Ok(passkeys::second_factor_methods(&self.0, &pending).await?),
            None => Ok(self.answer::<SecondFactorMethods>(req, Err(ServiceError::LoginExpired))?),
        }
    }

    async fn second_factor_start(&self, req: &RequestCtx) -> Result<PasskeyOptions, ApiError> {
        let result = match principal::pending(&self.0, req, PendingKind::Code).await? {
            Some(pending) => passkeys::second_factor_start(&self.0, &pending).await,
            None => Err(ServiceError::LoginExpired),
        };
        Ok(self.answer(req, result)?)
    }

    async fn second_factor_finish(
        &self,
        req: &RequestCtx,
        credential: String,
    ) -> Result<LoginOutcome, ApiError> {
        let caller = self.caller(req);
        let result = match principal::pending(&self.0, req, PendingKind::Code).await? {
            Some(pending) => {
                passkeys::second_factor_finish(&self.0, pending, &caller, credential).await
            }
            None => Err(ServiceError::LoginExpired),
        };
        Ok(self.answer(req, result)?)
    }

    async fn reset_start(
        &self,
        req: &RequestCtx,
        token: String,
    ) -> Result<PasskeyOptions, ApiError> {
        let result = links::passkey_reset_start(&self.0, token).await;
        Ok(self.answer(req, result)?)
    }

    async fn reset_finish(
        &self,
        req: &RequestCtx,
        token: String,
        new_password: String,
        repeat_password: String,
        credential: String,
    ) -> Result<(), ApiError> {
        let caller = self.caller(req);
        let result = links::passkey_reset_finish(
            &self.0,
            &caller,
            token,
            new_password,
            repeat_password,
            credential,
        )
        .await;
        Ok(self.answer(req, result)?)
    }
}

#[async_trait]
impl AccountService for Services {
    async fn link_info(&self, req: &RequestCtx, token: String) -> Result<LinkState, ApiError> {
        Ok(links::link_info(&self.0, &self.caller(req), token).await?)
    }

    async fn set_password(
        &self,
        req: &RequestCtx,
        token: String,
        new_password: String,
        repeat_password: String,
        code: Option<String>,
    ) -> Result<(), ApiError> {
        let caller = self.caller(req);
        Ok(
            links::set_password(&self.0, &caller, token, new_password, repeat_password, code)
                .await?,
        )
    }

    async fn request_password_reset(
        &self,
        req: &RequestCtx,
        company_id: String,
        username: String,
    ) -> Result<(), ApiError> {
        Ok(links::request_reset(&self.0, &self.caller(req), company_id, username).await?)
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
        Ok(operator::list(&self.0, &self.operator(req).await?, search, page).await?)
    }

    async fn create_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError> {
        Ok(operator::create(&self.0, &self.operator(req).await?, form).await?)
    }

    async fn update_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError> {
        Ok(operator::update(&self.0, &self.operator(req).await?, form).await?)
    }

    async fn set_client_active(
        &self,
        req: &RequestCtx,
        company_id: String,
        active: bool,
    ) -> Result<(), ApiError> {
        Ok(operator::set_active(&self.0, &self.operator(req).await?, company_id, active).await?)
    }

    async fn test_sso_connection(
        &self,
        req: &RequestCtx,
        issuer: String,
    ) -> Result<SsoCheck, ApiError> {
        Ok(operator::test_sso_connection(&self.0, &self.operator(req).await?, issuer).await?)
    }
}

#[async_trait]
impl promio_app::ssr::SessionService for Services {
    async fn list(&self, req: &RequestCtx) -> Result<Vec<promio_app::api::SessionInfo>, ApiError> {
        Ok(admin::my_sessions(&self.0, &self.session(req).await?).await?)
    }

    async fn end(&self, req: &RequestCtx, id: String) -> Result<(), ApiError> {
        Ok(admin::end_my_session(&self.0, &self.session(req).await?, id).await?)
    }

    async fn end_all_of_user(&self, req: &RequestCtx, user_id: String) -> Result<u32, ApiError> {
        Ok(admin::end_user_sessions(&self.0, &self.admin(req).await?, user_id).await?)
    }

    async fn applications(
        &self,
        req: &RequestCtx,
    ) -> Result<Vec<promio_app::api::AppLogin>, ApiError> {
        let session = self.session(req).await?;
        Ok(crate::edge::oauth::logout::my_applications(&self.0, &session).await?)
    }
}

#[async_trait]
impl SsoService for Services {
    async fn start(&self, req: &RequestCtx, email: String) -> Result<String, ApiError> {
        let result = sso::start(&self.0, &self.caller(req), email).await;
        Ok(self.answer(req, result)?)
    }
}

#[async_trait]
impl ApplicationService for Services {
    async fn list(&self, req: &RequestCtx) -> Result<Vec<ApplicationView>, ApiError> {
        self.operator(req).await?;
        let list = apps::list(&self.0).await?;
        Ok(list.into_iter().map(application_view).collect())
    }

    async fn create(
        &self,
        req: &RequestCtx,
        form: NewApplication,
    ) -> Result<CreatedApplication, ApiError> {
        let operator = self.operator(req).await?;
        match apps::create(&self.0, operator.user_id.as_str(), new_app(&form)).await {
            Ok(created) => Ok(CreatedApplication {
                client_id: created.client_id,
                client_secret: created.client_secret.map(|s| s.expose_secret().to_owned()),
            }),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn delete(&self, req: &RequestCtx, client_id: String) -> Result<(), ApiError> {
        let operator = self.operator(req).await?;
        if apps::delete(&self.0, operator.user_id.as_str(), &client_id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    async fn rotate_secret(
        &self,
        req: &RequestCtx,
        client_id: String,
    ) -> Result<CreatedApplication, ApiError> {
        let operator = self.operator(req).await?;
        match apps::rotate_secret(&self.0, operator.user_id.as_str(), &client_id).await? {
            Some(secret) => Ok(CreatedApplication {
                client_id,
                client_secret: Some(secret.expose_secret().to_owned()),
            }),
            None => Err(ApiError::NotFound),
        }
    }
}

fn application_view(app: apps::App) -> ApplicationView {
    ApplicationView {
        client_id: app.client_id,
        name: app.name,
        public: app.public,
        company_id: app.company_id,
        redirect_uris: app.redirect_uris,
        post_logout_redirect_uris: app.post_logout_redirect_uris,
        backchannel_logout_uri: app.backchannel_logout_uri,
    }
}

/// The console's form as registration takes it: one URI per line of a text area (registration
/// trims the entries and leaves out empty ones and empty fields).
fn new_app(form: &NewApplication) -> apps::NewApp {
    let lines = |text: &str| text.lines().map(str::to_owned).collect();
    apps::NewApp {
        name: form.name.clone(),
        redirect_uris: lines(&form.redirect_uris),
        post_logout_redirect_uris: lines(&form.post_logout_redirect_uris),
        backchannel_logout_uri: Some(form.backchannel_logout_uri.clone()),
        company_id: Some(form.company_id.clone()),
        public: form.public.is_some(),
    }
}

/// A refused registration as the contract's field error. The refusal's English text (which names
/// the offending URI) goes to the log; the page shows a translated message naming the field.
fn refused(refusal: AppRefusal) -> ApiError {
    let Some(field) = refusal.field else {
        // Registration logged the cause under this request's id already.
        return ServiceError::Internal(anyhow::anyhow!(refusal.problem)).into();
    };
    tracing::info!(?field, problem = %refusal.problem, "application registration refused");
    let problem = refusal.kind;
    let field = match field {
        AppField::Name => Field::Name,
        AppField::RedirectUris => Field::RedirectUris,
        AppField::PostLogoutRedirectUris => Field::PostLogoutRedirectUris,
        AppField::BackchannelLogoutUri => Field::BackchannelLogoutUri,
        AppField::CompanyId => Field::CompanyId,
    };
    ApiError::Invalid { field, problem }
}
