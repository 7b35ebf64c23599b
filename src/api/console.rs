//! The web console: one HTML page and its files (`console/` at the repository root), built
//! into the binary, served at `[console] path` (`/`) and `<path>/assets/<name>`.
//!
//! The page is mounted in [`super::mount`] beside the API's routes, so it passes the same
//! layers: the Host and Origin checks, HTTP Basic (the browser's own login prompt), roles (a
//! GET: a viewer's) and the audit log. It reads and changes everything through the API,
//! whose prefix is written into the page (`<meta name="tickd-prefix">`), so it follows a
//! changed `[api] prefix`.
//!
//! Every answer forbids what a page needs no part of: scripts other than its own files
//! (`Content-Security-Policy: default-src 'self'`, no inline script), framing, MIME
//! sniffing, referrers. Files carry an `ETag` (a hash of their bytes) and are revalidated on
//! each use (`no-cache`), answered 304 when unchanged.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::ApiState;

/// The page, with `{{prefix}}` and `{{base}}` to fill.
const SHELL: &str = include_str!("../../console/index.html");

/// The files under `assets/`: name, type, bytes.
pub const ASSETS: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../console/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../console/icon.svg"),
    ),
];

/// The policy: this origin's files only, in no frame, no `<base>` or form posts elsewhere.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A file ready to answer.
#[derive(Debug)]
struct File {
    content_type: &'static str,
    body: String,
    etag: HeaderValue,
}

impl File {
    fn new(content_type: &'static str, body: String) -> File {
        let hash = Sha256::digest(body.as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        File {
            content_type,
            body,
            etag,
        }
    }

    /// The file, or 304 when the browser's copy (`If-None-Match`) is this one.
    fn answer(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(IF_NONE_MATCH)
            .is_some_and(|tags| tags.as_bytes() == self.etag.as_bytes());
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = self.body.clone().into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
            response
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, self.etag.clone());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        protect(headers);
        response
    }
}

/// The headers every console answer carries.
fn protect(headers: &mut HeaderMap) {
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// `text` escaped for an HTML attribute value in double quotes (and for text).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for the API at `prefix` and the console at `base` (both normalised: `""` is the
/// root).
pub(crate) fn shell(prefix: &str, base: &str) -> String {
    SHELL
        .replace("{{prefix}}", &escape_html(prefix))
        .replace("{{base}}", &escape_html(base))
}

/// The console's route templates on `base` (normalised): its page and its files.
pub fn templates(base: &str) -> [String; 2] {
    let page_path = if base.is_empty() { "/" } else { base };
    [page_path.to_owned(), format!("{base}/assets/{{name}}")]
}

/// The console's routes on `base` (normalised), for the API at `prefix`.
pub(crate) fn routes(prefix: &str, base: &str) -> Router<ApiState> {
    let page = Arc::new(File::new("text/html; charset=utf-8", shell(prefix, base)));
    let files: Arc<[(&'static str, File)]> = ASSETS
        .iter()
        .map(|(name, content_type, body)| (*name, File::new(content_type, (*body).to_owned())))
        .collect();
    let [page_path, assets_path] = templates(base);
    Router::new()
        .route(
            &page_path,
            get(move |headers: HeaderMap| async move { page.answer(&headers) }),
        )
        .route(
            &assets_path,
            get(
                move |name: Result<Path<String>, PathRejection>, headers: HeaderMap| async move {
                    asset(&files, name.ok(), &headers)
                },
            ),
        )
}

/// The file `name` under `assets/`; the JSON 404 for any other name.
fn asset(
    files: &[(&'static str, File)],
    name: Option<Path<String>>,
    headers: &HeaderMap,
) -> Response {
    let found = name.and_then(|Path(name)| files.iter().find(|(n, _)| *n == name));
    match found {
        Some((_, file)) => file.answer(headers),
        None => ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_escaped_into_the_page() {
        let page = shell("/a\"<b>&'", "/ui");
        assert!(
            page.contains("content=\"/a&quot;&lt;b&gt;&amp;&#39;\""),
            "{page}"
        );
        assert!(!page.contains("{{"));
        assert!(!page.contains("<script>"), "no inline script");
    }
}
