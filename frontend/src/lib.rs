//! The browser entry point: hydrates the server-rendered page. All UI code lives in `promio-app`.
//! Pages other than the login page are lazy routes (WASM chunks loaded on demand), so hydration
//! waits for the chunk of the page the server rendered (`hydrate_lazy`).

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(promio_app::App);
}
