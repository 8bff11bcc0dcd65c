//! The browser entry point: hydrates the server-rendered page. All UI code lives in `promio-app`.

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(promio_app::App);
}
