//! The front doors beside the server functions: plain HTTP routes and forms (`http`), the OpenID
//! Provider (`oauth`) and the command line (`cli`). Who is asking and the cookies are resolved and
//! written the way the server functions do it (`promio_app::edge`, re-exported here as
//! `principal` and `cookies`).

pub mod cli;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod request;

pub use promio_app::edge::{cookies, principal};

use crate::idm::Core;
use crate::infra::config::Settings;
use leptos::config::LeptosOptions;
use promio_app::ssr::site_hashes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// The leptos settings: where the compiled site (WASM, JS, CSS) is served from. cargo-leptos
/// passes them as `LEPTOS_*` variables; without them the defaults of this workspace apply. The
/// site's file names carry content hashes when cargo-leptos left its hash file beside this binary
/// (unless `LEPTOS_HASH_FILES` is `false`).
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let hash_files = settings.hash_files && site_hashes().is_some();
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "promio-connect"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(settings.site_addr)
        .hash_files(hash_files)
        .build()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    core: Arc<Core>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = leptos_options(&core.settings);
    let app = http::router(core, options);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
