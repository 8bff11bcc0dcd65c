//! The server side of the pages: the request as the edge reads it ([`RequestCtx`]), the form
//! flash of a post without script, and the site's hashed file names. Only compiled with the `ssr`
//! feature.

use http::HeaderMap;
use http::header::{COOKIE, HeaderName, HeaderValue};
use leptos::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// What a service needs to know about the request, and the headers it wants on the response.
#[derive(Debug, Default)]
pub struct RequestCtx {
    pub headers: HeaderMap,
    /// The peer address of the TCP connection.
    pub client_ip: Option<IpAddr>,
    response_headers: Mutex<Vec<(HeaderName, HeaderValue)>>,
}

impl RequestCtx {
    pub fn new(headers: HeaderMap, client_ip: Option<IpAddr>) -> Self {
        RequestCtx {
            headers,
            client_ip,
            response_headers: Mutex::default(),
        }
    }

    pub(crate) fn from_parts(parts: Option<http::request::Parts>) -> Self {
        match parts {
            Some(parts) => {
                let ip = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                RequestCtx::new(parts.headers, ip)
            }
            None => RequestCtx::default(),
        }
    }

    /// The value of the named request cookie, if sent.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The language of the request (its `lang` cookie, else `Accept-Language`).
    pub fn lang(&self) -> crate::i18n::Lang {
        crate::i18n::Lang::for_request(
            self.cookie(crate::i18n::LANG_COOKIE).as_deref(),
            self.header(http::header::ACCEPT_LANGUAGE.as_str()),
        )
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Adds a header to the response (appended, so several `Set-Cookie` lines can coexist).
    pub fn add_response_header(&self, name: HeaderName, value: HeaderValue) {
        if let Ok(mut headers) = self.response_headers.lock() {
            headers.push((name, value));
        }
    }

    /// Moves the headers the flows asked for onto the server function's or page's response.
    pub(crate) fn send_response_headers(&self) {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            for (name, value) in self.take_response_headers() {
                response.append_header(name, value);
            }
        }
    }

    pub fn take_response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.response_headers
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

/// The [`crate::api::FormFlash`] a form posted without script came back to `page` with, taken
/// from its cookie while the page renders (the response clears the cookie: a reload starts
/// afresh). Only the name the server sets it with is read (`__Host-` prefixed over https): over
/// https a plain-named cookie may have been planted by a sibling subdomain.
pub fn take_form_flash(page: &str) -> Option<crate::api::FormFlash> {
    use crate::api::{FORM_FLASH_COOKIE, FormFlash};
    use crate::edge::cookies::CookiePolicy;
    use crate::edge::principal::{CookieIntent, write_cookies};
    let core = use_context::<std::sync::Arc<promio_core::Core>>()?;
    let req = RequestCtx::from_parts(use_context::<http::request::Parts>());
    let raw = req.cookie(&CookiePolicy::of(&core).name(FORM_FLASH_COOKIE))?;
    write_cookies(&core, &req, &[CookieIntent::Clear(FORM_FLASH_COOKIE)]);
    req.send_response_headers();
    FormFlash::decode(&raw, page)
}

/// The content hashes cargo-leptos put into the compiled site's file names (`hash-files`), read
/// from the hash file it writes next to the server binary; `None` when the site's names are plain.
/// Read once per process.
pub fn site_hashes() -> Option<&'static [(String, String)]> {
    static HASHES: std::sync::OnceLock<Option<Vec<(String, String)>>> = std::sync::OnceLock::new();
    HASHES
        .get_or_init(|| {
            let file = hash_file_path()?;
            let text = std::fs::read_to_string(file).ok()?;
            Some(parse_hashes(&text))
        })
        .as_deref()
}

/// Where cargo-leptos writes the hash file: beside the executable, named by `LEPTOS_HASH_FILE_NAME`
/// (default `hash.txt`).
fn hash_file_path() -> Option<std::path::PathBuf> {
    let name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".to_owned());
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name))
}

/// The `kind: hash` lines of a hash file (`js`, `wasm`, `css`, `manifest`, `split`).
fn parse_hashes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, hash)| (kind.trim().to_owned(), hash.trim().to_owned()))
        .filter(|(kind, hash)| !kind.is_empty() && !hash.is_empty())
        .collect()
}

/// The address of the site's stylesheet, with its content hash when the site has them.
pub fn stylesheet_href(options: &LeptosOptions) -> String {
    stylesheet_href_with(options, options.hash_files.then(site_hashes).flatten())
}

fn stylesheet_href_with(options: &LeptosOptions, hashes: Option<&[(String, String)]>) -> String {
    let hash = hashes
        .and_then(|hashes| hashes.iter().find(|(kind, _)| kind == "css"))
        .map(|(_, hash)| format!(".{hash}"))
        .unwrap_or_default();
    format!(
        "/{}/{}{hash}.css",
        options.site_pkg_dir, options.output_name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_file_lines_are_read_and_blank_ones_skipped() {
        let text = "js: AbC-_1\nwasm: xyz\n\ncss: Q9\nmanifest: m1\nsplit: s2\n";
        let hashes = parse_hashes(text);
        assert_eq!(hashes.len(), 5);
        assert_eq!(hashes[2], ("css".to_owned(), "Q9".to_owned()));
    }

    #[test]
    fn the_stylesheet_is_plain_without_hashed_files() {
        let options = LeptosOptions::builder()
            .output_name("promio-connect")
            .site_pkg_dir("pkg")
            .build();
        assert_eq!(stylesheet_href(&options), "/pkg/promio-connect.css");
    }

    #[test]
    fn the_stylesheet_carries_its_hash_from_the_hash_file() {
        let options = LeptosOptions::builder()
            .output_name("promio-connect")
            .site_pkg_dir("pkg")
            .build();
        let hashes = parse_hashes("js: J1\nwasm: W2\ncss: Cs-3_\n");
        assert_eq!(
            stylesheet_href_with(&options, Some(&hashes)),
            "/pkg/promio-connect.Cs-3_.css"
        );
        assert_eq!(
            stylesheet_href_with(&options, Some(&parse_hashes("js: J1\n"))),
            "/pkg/promio-connect.css"
        );
    }
}
