//! The browser entry point: hydrates the server-rendered page. All UI code lives in `promio-app`.
//! Pages other than the login page are lazy routes (WASM chunks loaded on demand), so hydration
//! waits for the chunk of the page the server rendered (`hydrate_lazy`).

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    promio_app::hydrate();
}

/// Room for the WASM splitter in the linked module's read-only data. `cargo leptos --split` gives
/// each chunk the data only it uses and lays each module's share out afresh; when that layout
/// comes out a few alignment bytes longer than the linker's, it keeps the whole segment in the
/// main module instead, which put every page's texts into the login page's download (37 KB more,
/// about 10 KB compressed, after unrelated changes). Nothing uses these bytes, so the splitter
/// leaves them out of every module: they only make the segment long enough.
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
#[used]
static SPLIT_ROOM_RODATA: [u8; 4096] = [0x5a; 4096];

/// The same room in the writable data segment.
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
#[used]
static SPLIT_ROOM_DATA: [std::sync::atomic::AtomicU8; 4096] =
    [const { std::sync::atomic::AtomicU8::new(0x5a) }; 4096];
