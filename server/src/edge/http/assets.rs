//! The compiled site under `/pkg/`: WASM chunks, scripts and the stylesheet. Files whose names
//! carry a content hash (cargo-leptos `hash-files`) may be kept by browsers and proxies for a year
//! without asking again; anything else is revalidated. Brotli and gzip copies made at build time
//! (`cargo leptos build --precompress`) are served as they are; without them the compression layer
//! compresses on the fly.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use leptos::config::LeptosOptions;
use std::path::PathBuf;
use tower_http::services::ServeDir;

/// For a year, never revalidated: the name changes whenever the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Kept, but checked with the server (ETag / Last-Modified) before each use.
const REVALIDATE: &str = "no-cache";

/// The `/pkg` route, serving `site_root/site_pkg_dir`.
pub fn pkg_router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let dir = PathBuf::from(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    Router::new()
        .nest_service(&format!("/{}", options.site_pkg_dir), files)
        .layer(middleware::from_fn(cache_control))
}

async fn cache_control(request: Request<Body>, next: Next) -> Response {
    let immutable = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == axum::http::StatusCode::NOT_MODIFIED {
        let value = if immutable { IMMUTABLE } else { REVALIDATE };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// True for names like `promio-connect.3q2-7wEjR8P9ZzYkS5aL0g.wasm`: one dot-separated part is a
/// 22-character base64url MD5, as cargo-leptos writes them.
pub fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let mut parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 3 {
        return false;
    }
    parts.pop(); // the extension
    parts.iter().skip(1).any(|part| {
        part.len() == 22
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && part.bytes().any(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::{IMMUTABLE, REVALIDATE, is_content_hashed, pkg_router};
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use leptos::config::LeptosOptions;
    use tower::ServiceExt;

    const HASHED: &str = "promio-connect.3q2-7wEjR8P9ZzYkS5aL0g.wasm";

    /// A site folder with one hashed WASM file (with a brotli copy) and one plain script.
    fn site() -> (std::path::PathBuf, LeptosOptions) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "promio-assets-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let pkg = root.join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join(HASHED), b"\0asm plain").unwrap();
        std::fs::write(pkg.join(format!("{HASHED}.br")), b"brotli bytes").unwrap();
        std::fs::write(pkg.join("plain.js"), b"export {}").unwrap();
        let options = LeptosOptions::builder()
            .output_name("promio-connect")
            .site_root(root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .build();
        (root, options)
    }

    async fn get(options: &LeptosOptions, path: &str, encoding: &str) -> axum::response::Response {
        let request = Request::get(path)
            .header(header::ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .unwrap();
        pkg_router::<()>(options).oneshot(request).await.unwrap()
    }

    fn header_of(response: &axum::response::Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn hashed_files_are_kept_a_year_and_sent_precompressed() {
        let (root, options) = site();

        let br = get(&options, &format!("/pkg/{HASHED}"), "br, gzip").await;
        assert_eq!(br.status(), StatusCode::OK);
        assert_eq!(header_of(&br, header::CONTENT_ENCODING), "br");
        assert_eq!(header_of(&br, header::CACHE_CONTROL), IMMUTABLE);
        assert_eq!(header_of(&br, header::CONTENT_TYPE), "application/wasm");
        let body = axum::body::to_bytes(br.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"brotli bytes");

        // A client without brotli gets the file itself.
        let plain = get(&options, &format!("/pkg/{HASHED}"), "identity").await;
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "");
        let body = axum::body::to_bytes(plain.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"\0asm plain");

        let unhashed = get(&options, "/pkg/plain.js", "br").await;
        assert_eq!(unhashed.status(), StatusCode::OK);
        assert_eq!(header_of(&unhashed, header::CACHE_CONTROL), REVALIDATE);

        let missing = get(
            &options,
            "/pkg/promio-connect.AAAAAAAAAAAAAAAAAAAAAA.js",
            "br",
        )
        .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(header_of(&missing, header::CACHE_CONTROL), "");

        let outside = get(&options, "/pkg/../pkg/plain.js", "br").await;
        assert_ne!(outside.status(), StatusCode::OK);

        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn no_path_leads_out_of_the_pkg_folder() {
        const SECRET: &[u8] = b"not for the web";
        let (root, options) = site();
        let name = root.file_name().unwrap().to_string_lossy().into_owned();
        // One file beside the site root, one in it beside `pkg`; taken literally, the paths below
        // lead to them.
        let outside = root.with_file_name(format!("{name}.secret"));
        std::fs::write(&outside, SECRET).unwrap();
        std::fs::write(root.join("secret.txt"), SECRET).unwrap();
        let pkg = root.join("pkg");
        assert_eq!(
            std::fs::read(pkg.join(format!("../../{name}.secret"))).unwrap(),
            SECRET
        );
        assert_eq!(std::fs::read(pkg.join("../secret.txt")).unwrap(), SECRET);

        let absolute = outside.to_string_lossy().replace('/', "%2F");
        for path in [
            "/pkg/../secret.txt".to_owned(),
            "/pkg/%2e%2e/secret.txt".to_owned(),
            "/pkg/plain.js/../../secret.txt".to_owned(),
            format!("/pkg/../../{name}.secret"),
            format!("/pkg/%2e%2e/%2e%2e/{name}.secret"),
            format!("/pkg/%2E%2E/%2E%2E/{name}.secret"),
            format!("/pkg/..%2f..%2f{name}.secret"),
            format!("/pkg/%2e%2e%2f%2e%2e%2f{name}.secret"),
            format!("/pkg/.%2e/.%2e/{name}.secret"),
            format!("/pkg/..%5c..%5c{name}.secret"),
            format!("/pkg/{absolute}"),
            format!("/pkg/{}", outside.display()),
        ] {
            let response = get(&options, &path, "identity").await;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            assert!(status.is_client_error(), "{path}: {status}");
            assert!(
                !body.windows(SECRET.len()).any(|w| w == SECRET),
                "{path} served the file"
            );
        }

        std::fs::remove_file(outside).unwrap();
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_names_with_a_content_hash_count_as_hashed() {
        assert!(is_content_hashed(
            "/pkg/promio-connect.3q2-7wEjR8P9ZzYkS5aL0g.wasm"
        ));
        assert!(is_content_hashed(
            "/pkg/__wasm_split.Zq2_7wEjR8P9ZzYkS5aL0g.js"
        ));
        assert!(is_content_hashed(
            "/pkg/split_Users_View.Zq2_7wEjR8P9ZzYkS5aL0g.wasm"
        ));
        assert!(!is_content_hashed("/pkg/promio-connect.wasm"));
        assert!(!is_content_hashed(
            "/pkg/__wasm_split.______________________.js"
        ));
        assert!(!is_content_hashed("/pkg/promio-connect.css"));
        assert!(!is_content_hashed("/pkg/abcdefghijklmnopqrstuv.css"));
        assert!(!is_content_hashed("/pkg/x.too-short.js"));
    }
}
