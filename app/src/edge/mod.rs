//! The one way in from a front door to the flows. A server function is two pieces: its signature
//! in `crate::api` and a flow in `promio_core::idm`; between them stands one call,
//!
//! ```ignore
//! #[server(prefix = "/api", endpoint = "users/list")]
//! pub async fn list_users(search: String, status: String, page: u32) -> Result<UserPage, ApiError> {
//!     use crate::edge::principal::Admin;
//!     use promio_api::UserQuery;
//!     use promio_core::idm::admin;
//!     let query = UserQuery { search, status, page };
//!     crate::edge::call(|core, who: Admin| async move { admin::list_users(&core, &who, query).await })
//!         .await
//! }
//! ```
//!
//! [`call`] resolves the principal the closure asks for ([`principal::Principal`]: `Caller`,
//! `Session`, `Admin`, `Operator`, `Enroller`, `PendingCode`, …), runs the flow, writes the cookies
//! its answer carries ([`Flow`]), and maps its error to the contract once, with the error's HTTP
//! status. The plain routes and forms of the server crate take the same way with [`run`].
//! Only compiled on the server (feature `ssr`).

pub mod cookies;
pub mod principal;

use crate::ssr::RequestCtx;
use principal::{CookieIntent, Flow, Principal, write_cookies};
use promio_api::ApiError;
use promio_core::domain::cookies::PENDING;
use promio_core::idm::Core;
use promio_core::infra::error::{ServiceError, ServiceResult};
use std::future::Future;
use std::sync::Arc;

/// Runs a server function's flow: resolves who is asking as the closure's second argument,
/// runs the closure, writes the answer's cookies and sets the error's status on the response.
pub async fn call<P, F, Fut, R, T>(f: F) -> Result<T, ApiError>
where
    P: Principal,
    F: FnOnce(Arc<Core>, P) -> Fut,
    Fut: Future<Output = ServiceResult<R>>,
    R: Into<Flow<T>>,
{
    use leptos::prelude::use_context;
    let Some(core) = use_context::<Arc<Core>>() else {
        tracing::error!("server function called without the Core context");
        return Err(ApiError::Internal {
            id: "no-core".to_owned(),
        });
    };
    let req = RequestCtx::from_parts(use_context::<http::request::Parts>());
    let result = run(core, &req, f).await;
    req.send_response_headers();
    if let (Err(err), Some(response)) = (&result, use_context::<leptos_axum::ResponseOptions>()) {
        response.set_status(
            http::StatusCode::from_u16(err.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    result
}

/// [`call`] for a request the caller holds (the plain routes and forms): the cookies go into
/// `req`'s response headers, and the error is the contract's, for the caller to render.
pub async fn run<P, F, Fut, R, T>(core: Arc<Core>, req: &RequestCtx, f: F) -> Result<T, ApiError>
where
    P: Principal,
    F: FnOnce(Arc<Core>, P) -> Fut,
    Fut: Future<Output = ServiceResult<R>>,
    R: Into<Flow<T>>,
{
    let outcome = match P::resolve(&core, req).await {
        Ok(principal) => f(Arc::clone(&core), principal).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(answer) => {
            let flow = answer.into();
            write_cookies(&core, req, &flow.cookies);
            Ok(flow.value)
        }
        // An expired pending second factor also loses its cookie, whichever flow found it.
        Err(ServiceError::LoginExpired) => {
            write_cookies(&core, req, &[CookieIntent::Clear(PENDING)]);
            Err(ApiError::LoginExpired)
        }
        Err(e) => Err(e.into()),
    }
}
