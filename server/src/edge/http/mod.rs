//! HTTP wiring: the axum router with the leptos pages and server functions, the plain routes
//! (logout, health), and the policies every request passes through (request id and tracing,
//! security headers, Origin check, body limit, compression).
//!
//! Every request gets an id (`x-request-id`: the one a trusted proxy in front sent, else a new
//! UUID), which the response carries too. Every log line of the request is in a span with that
//! id, its method and its path (never the query: it may hold a link's token), and an internal
//! error is reported to the person under the same id (see `crate::infra::error::REQUEST_ID`).

mod assets;
mod forms;
mod security;

use crate::edge::principal::Answer;
use crate::edge::principal::{Caller, CurrentUser};
pub use crate::edge::request::HttpState;
use crate::edge::request::{peer, request_ctx, with_service_headers};
use crate::idm::Core;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use promio_app::api::ApiError;
use promio_app::{App, shell};
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The longest a request may take (argon2 waits in a bounded queue, an identity provider has its
/// own shorter timeouts).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest request body accepted; the biggest form is far below this.
const BODY_LIMIT: usize = 64 * 1024;

/// The header that carries a request's id, in the request and in its response.
const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn router(core: Arc<Core>, leptos_options: LeptosOptions) -> Router {
    // The server functions reach the flows through `promio_app::edge::call`, which finds the
    // core in the context.
    let context_core = Arc::clone(&core);

    let context = move || {
        provide_context(Arc::clone(&context_core));
        // A fresh nonce per response for the page's inline scripts (see the page CSP in the shell).
        leptos::nonce::provide_nonce();
    };
    let policy = security::Policy::new(&core.settings);
    let state = HttpState {
        leptos_options: leptos_options.clone(),
        core,
    };

    crate::edge::oauth::add(forms::add(Router::new()))
        .route("/logout", post(logout))
        .route("/admin/audit.csv", get(audit_csv))
        .route("/sso/callback", get(sso_callback))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(assets::pkg_router(&leptos_options))
        .leptos_routes_with_context(&state, generate_route_list(App), context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            HttpState,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.core),
            logged_in_skip_login,
        ))
        .layer(middleware::from_fn(server_fn_statuses))
        .layer(middleware::from_fn_with_state(
            RouteMetrics {
                core: Arc::clone(&state.core),
                server_fns: Arc::new(
                    leptos::server_fn::axum::server_fn_paths()
                        .map(|(path, _)| path.to_owned())
                        .collect(),
                ),
            },
            record_request,
        ))
        .layer(middleware::from_fn_with_state(
            policy.clone(),
            security::check_origin,
        ))
        .layer(middleware::from_fn_with_state(
            policy.clone(),
            security::real_ip,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // A request that takes longer is answered 408 and its work dropped: a stuck database or
        // identity provider cannot hold connections open without end.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Outside the body limit and the timeout, so that their 413 and 408 carry the headers too.
        .layer(middleware::from_fn_with_state(
            policy.clone(),
            security::headers,
        ))
        .layer(CompressionLayer::new().br(true).gzip(true))
        // Outermost; the last one added runs first: the request gets its id, its span opens with
        // that id, its response will carry it, and the handler runs with it in `REQUEST_ID`.
        .layer(middleware::from_fn(scope_request_id))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                // The access log: one line per request (method, path and request id from the
                // span; status and time here).
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                )
                // A 503 "busy" is an answer, not a failure; internal errors are logged with their
                // cause where they are mapped (error.rs).
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // An id sent with the request is kept (so a proxy's logs and ours line up) only from a
        // trusted proxy, and only when it is a short token: it reaches every log line.
        .layer(middleware::from_fn_with_state(
            policy,
            drop_unusable_request_id,
        ))
        .with_state(state)
}

/// What the request metrics need: where to count, and the server functions' paths (a label
/// each; any other path under a wildcard route counts as `other`, so that unknown paths cannot
/// make labels without end).
#[derive(Clone)]
struct RouteMetrics {
    core: Arc<Core>,
    server_fns: Arc<std::collections::HashSet<String>>,
}

/// Counts the request and its latency under its route's pattern.
async fn record_request(
    State(metrics): State<RouteMetrics>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let matched = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let response = next.run(request).await;
    let route = if metrics.server_fns.contains(&path) {
        path.as_str()
    } else {
        match matched.as_deref() {
            Some(pattern) if !pattern.contains('{') && !pattern.contains('*') => pattern,
            _ if path.starts_with("/pkg/") => "/pkg",
            _ => "other",
        }
    };
    metrics.core.metrics.request(
        route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Removes a request id that did not come from a trusted proxy (`TRUSTED_PROXIES`), or that is
/// not a short token of letters, digits, `-`, `_` and `.`, so that `SetRequestIdLayer` makes one.
/// A client could otherwise choose the id its requests are logged and reported under. This runs
/// before `security::real_ip`, so the peer here is the TCP connection's.
async fn drop_unusable_request_id(
    State(policy): State<security::Policy>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let from_proxy = peer(&request).is_some_and(|ip| policy.is_trusted_proxy(ip));
    let usable = from_proxy && request_id(&request).is_some_and(is_short_token);
    if !usable {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

fn is_short_token(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The request's id, as `SetRequestIdLayer` left it in the header.
fn request_id(request: &Request<Body>) -> Option<&str> {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// The span of one request: its id, method and path. Not the query, which may hold a token.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let id = request_id(request).unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// Handles the request with its id in [`crate::infra::error::REQUEST_ID`], where an internal error finds
/// it (a task-local: the handler runs in this task; the span is not readable from there).
async fn scope_request_id(request: Request<Body>, next: Next) -> Response {
    let id = request_id(&request).map(str::to_owned);
    match id {
        Some(id) => {
            crate::infra::error::REQUEST_ID
                .scope(id, next.run(request))
                .await
        }
        None => next.run(request).await,
    }
}

/// A logged-in user asking for the login form is sent on to the home page (decided here, before
/// the page is rendered). Where every login ends (`/home`) and on the login form, an
/// application's authorization request that waited for the login is finished first
/// (`oauth::authorize::resume`): on to the application, or the login form again when the request
/// asked for a new login.
async fn logged_in_skip_login(
    State(core): State<Arc<Core>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    use crate::edge::oauth::authorize::{Page, Resumed, resume};
    let get = request.method() == http::Method::GET;
    let login_form = get && matches!(request.uri().path(), "/" | "/login");
    let home = get && request.uri().path() == "/home";
    if !login_form && !home {
        return next.run(request).await;
    }
    let req = request_ctx(&request);
    let page = if home { Page::Home } else { Page::LoginForm };
    let show_login_form = match resume(&core, &req, page).await {
        Resumed::Answer(response) => return with_service_headers(response, &req),
        Resumed::ShowLoginForm => true,
        Resumed::Nothing => false,
    };
    if login_form
        && !show_login_form
        && let Ok(Some(_)) = crate::edge::principal::current_session(&core, &req).await
    {
        let found = (StatusCode::FOUND, [(header::LOCATION, "/home")]).into_response();
        return with_service_headers(found, &req);
    }
    let response = next.run(request).await;
    with_service_headers(response, &req)
}

/// The answer of a plain (non-leptos) route that failed: the contract's error as JSON, with its status.
pub struct HttpError(pub ApiError);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

/// Ends the session and lands on the login form. A plain form post, so that the browser does a
/// full page load; `Clear-Site-Data` keeps Back from showing the logged-in page from its cache.
async fn logout(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let req = request_ctx(&request);
    let core = Arc::clone(&state.core);
    let result = promio_app::edge::run(
        core,
        &req,
        |core, (current, caller): (CurrentUser, Caller)| async move {
            crate::idm::sessions::logout(&core, current.0, &caller).await
        },
    )
    .await;
    // The applications that took part in the session hear of its end at once.
    crate::edge::oauth::logout::wake(&state.core);
    let response = match result {
        Ok(()) => Redirect::to("/login?notice=logged_out").into_response(),
        Err(e) => HttpError(e).into_response(),
    };
    let mut response = with_service_headers(response, &req);
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    response
}

/// The audit log as CSV (same filters as the page: user, action, from, to).
async fn audit_csv(
    State(state): State<HttpState>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
    request: Request<Body>,
) -> Response {
    let req = request_ctx(&request);
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let query = promio_app::api::AuditQuery {
        user: get("user"),
        action: get("action"),
        from: get("from"),
        to: get("to"),
        page: 1,
    };
    let csv = match crate::edge::principal::admin(&state.core, &req).await {
        Ok(admin) => crate::idm::admin::audit_csv(&state.core, &admin, query).await,
        Err(e) => Err(e),
    };
    match csv {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit-log.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => HttpError(e.into()).into_response(),
    }
}

/// The identity provider sends the browser back here. Success lands on the home page with a
/// session; any failure on the SSO page with a reason (no session).
async fn sso_callback(State(state): State<HttpState>, request: Request<Body>) -> Response {
    // Read leniently: whatever the query holds, the answer is the SSO page, never a bare 400.
    let params =
        crate::idm::sso::CallbackParams::from_query(request.uri().query().unwrap_or_default());
    let req = request_ctx(&request);
    let caller = crate::edge::principal::caller(&state.core, &req);
    let finished = crate::idm::sso::callback(&state.core, &caller, params).await;
    let target = match finished.answer(&state.core, &req) {
        Ok(()) => "/home".to_owned(),
        Err(failure) => format!("/sso?error={}", failure.code()),
    };
    let mut response = with_service_headers(Redirect::to(&target).into_response(), &req);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The request names a client it was forwarded for (any of the headers proxies add).
fn forwarded(request: &Request<Body>) -> bool {
    [
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-host",
    ]
    .iter()
    .any(|h| request.headers().contains_key(*h))
}

/// Prometheus metrics: with `METRICS_TOKEN` set, for its bearer; otherwise for loopback peers only,
/// and only when the request did not come through a proxy: behind a reverse proxy on the same host
/// every request's peer is loopback, but the proxy says whom it forwards for.
async fn metrics(State(state): State<HttpState>, request: Request<Body>) -> Response {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    let peer = peer(&request);
    let allowed = match &state.core.settings.metrics_token {
        Some(token) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                let want = token.expose_secret().as_bytes();
                bool::from(given.as_bytes().ct_eq(want))
            }),
        None => peer.is_some_and(|ip| ip.is_loopback()) && !forwarded(&request),
    };
    if !allowed {
        return (StatusCode::FORBIDDEN, "forbidden").into_response();
    }
    match crate::edge::metrics::render(&state.core).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn ready(State(state): State<HttpState>) -> Response {
    match state.core.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// server_fn answers every error with 500, including requests it could not decode (bad encoding,
/// invalid UTF-8, missing fields). Those are the client's fault: answer them with 400.
/// (Errors of a server function already carry their status, set in `promio_app::edge::call`.)
async fn server_fn_statuses(request: Request<Body>, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !is_api || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    if let Ok(ApiError::BadRequest(reason)) = serde_json::from_slice::<ApiError>(&bytes) {
        tracing::info!(%reason, "refused an undecodable request");
        parts.status = StatusCode::BAD_REQUEST;
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    Response::from_parts(parts, Body::from(bytes))
}
