//! The operator console: one page at `/admin/` with its script and style sheet, built into the
//! binary (no CDN, nothing to deploy beside the function). The files are public — they hold no
//! data — so they need no token; every call the page makes goes to the admin API, which does.
//!
//! Each answer carries a strict Content-Security-Policy (no inline script or style, no other
//! origin), `nosniff` and `no-referrer`. The page is never cached; the assets are revalidated by
//! their `ETag` (a hash of their text, computed at compile time).

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use oes_runtime::http::ApiError;

/// The console's routes, as `(method, path template)`: API Gateway routes `/admin/` as `/admin`.
pub const ROUTES: &[(&str, &str)] = &[("GET", "/admin"), ("GET", "/admin/console/{file}")];

/// Where the assets are served from (the page names them with absolute paths).
const ASSET_PREFIX: &str = "/admin/console/";

/// What the browser may do with the page: load script, style and data only from this origin,
/// no inline code, no frames, no forms posted anywhere.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// A file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    text: &'static str,
    etag: &'static str,
}

/// FNV-1a (64 bits) of `text`: the assets' `ETag`, computed at compile time.
const fn fnv1a(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"<16 hex digits>"`, the quoted `ETag` of a hash.
const fn etag(hash: u64) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {{
        const TEXT: &str = include_str!(concat!("../assets/", $name));
        const TAG: [u8; 18] = etag(fnv1a(TEXT));
        Asset {
            name: $name,
            content_type: $content_type,
            text: TEXT,
            etag: match std::str::from_utf8(&TAG) {
                Ok(tag) => tag,
                Err(_) => panic!("an ETag is ASCII"),
            },
        }
    }};
}

const PAGE: &str = include_str!("../assets/console.html");

const ASSETS: &[Asset] = &[
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
];

/// The console's answer to `request` at `path` (trailing `/` trimmed), or `None` when the path
/// is not the console's (the admin API's, say).
pub fn route(request: &Request, path: &str) -> Option<Result<Response<Body>, ApiError>> {
    let file = if path == "/admin" {
        None
    } else {
        Some(path.strip_prefix(ASSET_PREFIX)?)
    };
    if request.method() != Method::GET {
        return Some(Err(ApiError::method_not_allowed()));
    }
    Some(match file {
        None => Ok(
            respond(StatusCode::OK, "text/html; charset=utf-8", "no-store", PAGE)
                .unwrap_or_else(|| ApiError::internal().into_response()),
        ),
        Some(name) => asset(request, name),
    })
}

fn asset(request: &Request, name: &str) -> Result<Response<Body>, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or_else(ApiError::not_found)?;
    let fresh = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|tag| tag.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let (status, text) = if fresh {
        (StatusCode::NOT_MODIFIED, "")
    } else {
        (StatusCode::OK, asset.text)
    };
    let mut response =
        respond(status, asset.content_type, "no-cache", text).ok_or_else(ApiError::internal)?;
    if let Ok(tag) = asset.etag.parse() {
        response.headers_mut().insert(ETAG, tag);
    }
    Ok(response)
}

fn respond(
    status: StatusCode,
    content_type: &str,
    cache: &str,
    text: &'static str,
) -> Option<Response<Body>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CACHE_CONTROL, cache)
        .header(CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE)
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(REFERRER_POLICY, "no-referrer")
        .header(X_FRAME_OPTIONS, "DENY")
        // A page that opened the console keeps no handle on it (it could send it elsewhere).
        .header("cross-origin-opener-policy", "same-origin")
        .body(if text.is_empty() {
            Body::Empty
        } else {
            Body::Text(text.to_owned())
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, etag: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("GET")
            .uri(path);
        if let Some(tag) = etag {
            builder = builder.header(IF_NONE_MATCH, tag);
        }
        builder.body(Body::Empty).expect("a request")
    }

    fn answer(path: &str) -> Response<Body> {
        route(&get(path, None), path)
            .expect("the console's path")
            .unwrap_or_else(ApiError::into_response)
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn text(response: &Response<Body>) -> &str {
        match response.body() {
            Body::Text(text) => text,
            _ => "",
        }
    }

    #[test]
    fn the_page_and_its_assets_are_served_with_their_types_and_security_headers() {
        for (path, content_type, cache) in [
            ("/admin", "text/html; charset=utf-8", "no-store"),
            (
                "/admin/console/console.js",
                "text/javascript; charset=utf-8",
                "no-cache",
            ),
            (
                "/admin/console/console.css",
                "text/css; charset=utf-8",
                "no-cache",
            ),
        ] {
            let response = answer(path);
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), content_type, "{path}");
            assert_eq!(header(&response, "cache-control"), cache, "{path}");
            let csp = header(&response, "content-security-policy");
            for directive in [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "connect-src 'self'",
                "frame-ancestors 'none'",
                "form-action 'none'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(directive), "{path}: {csp}");
            }
            assert!(!csp.contains("unsafe"), "{path}: {csp}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert_eq!(header(&response, "referrer-policy"), "no-referrer");
            // A page that opened the console keeps no handle on it (reverse tabnabbing).
            assert_eq!(
                header(&response, "cross-origin-opener-policy"),
                "same-origin"
            );
            assert!(!text(&response).is_empty(), "{path}");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_its_assets() {
        let page = text(&answer("/admin")).to_owned();
        assert!(page.contains(r#"<script src="/admin/console/console.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/admin/console/console.css">"#));
        assert_eq!(
            page.matches("<script").count(),
            1,
            "one script, from a file"
        );
        assert!(!page.contains("<style") && !page.contains("style="));
        for handler in ["onclick=", "onsubmit=", "onload=", "javascript:"] {
            assert!(!page.contains(handler), "no inline handlers: {handler}");
        }
        let script = text(&answer("/admin/console/console.js")).to_owned();
        assert!(
            !script.contains("innerHTML"),
            "data goes in with textContent"
        );
        assert!(!script.contains("eval("));
    }

    #[test]
    fn an_unchanged_asset_answers_304_by_its_etag() {
        let path = "/admin/console/console.js";
        let first = answer(path);
        let tag = header(&first, "etag").to_owned();
        assert!(tag.starts_with('"') && tag.len() == 18, "{tag}");
        let again = route(&get(path, Some(&tag)), path)
            .expect("console")
            .expect("answer");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), tag);
        let other = route(&get(path, Some("\"0000000000000000\"")), path)
            .expect("console")
            .expect("answer");
        assert_eq!(other.status(), StatusCode::OK);
        assert_ne!(
            header(&answer("/admin/console/console.css"), "etag"),
            tag,
            "each file has its own tag"
        );
    }

    #[test]
    fn unknown_files_are_404_other_methods_405_and_the_api_is_not_the_console() {
        for path in [
            "/admin/console/nope.js",
            "/admin/console/../admin.rs",
            "/admin/console/",
        ] {
            let response = answer(path);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header(&response, "content-type"), "application/json");
        }
        let post = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/admin")
            .body(Body::Empty)
            .expect("a request");
        let status = route(&post, "/admin")
            .expect("console")
            .err()
            .map(|e| e.status);
        assert_eq!(status, Some(StatusCode::METHOD_NOT_ALLOWED));
        for path in ["/admin/queues", "/admin/dlq", "/admin/consoles", "/exams"] {
            assert!(route(&get(path, None), path).is_none(), "{path}");
        }
    }
}
