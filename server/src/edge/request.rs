//! What every plain route shares: the router's state, the request as the flows' adapters see it
//! ([`RequestCtx`]), and the headers they asked for on the way out.

use crate::idm::Core;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef};
use axum::http::Request;
use axum::response::Response;
use leptos::config::LeptosOptions;
use promio_app::ssr::RequestCtx;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct HttpState {
    pub leptos_options: LeptosOptions,
    pub core: Arc<Core>,
}

/// The TCP peer's address (after `security::real_ip` applied `TRUSTED_PROXIES`).
pub(crate) fn peer(request: &Request<Body>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

pub(crate) fn request_ctx(request: &Request<Body>) -> RequestCtx {
    RequestCtx::new(request.headers().clone(), peer(request))
}

/// Adds the headers a service asked for (cookies) to a plain route's response.
pub(crate) fn with_service_headers(mut response: Response, req: &RequestCtx) -> Response {
    let headers = response.headers_mut();
    for (name, value) in req.take_response_headers() {
        headers.append(name, value);
    }
    response
}
