//! CORS as the HTTP API's `CorsConfiguration` (template.yaml) answers it, so that a browser app
//! on another origin — a front end on its own dev server — works against `oes-local` as it will
//! against the stack. As API Gateway does when an API has a CORS configuration:
//! - a preflight (an `OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by
//!   the gateway itself, 204, whatever the path: no function sees it;
//! - any other request with an `Origin` reaches its function, and the gateway puts the
//!   configured CORS headers on the answer in place of any the function set;
//! - an origin the configuration does not allow gets no CORS headers, and its browser refuses.
//!
//! Allowed origins are written as the template's `CorsAllowOrigins`: comma-separated, each an
//! origin, `*` (any), or `https://*` / `http://*` (any with that scheme).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};

/// The template's `AllowMethods`.
pub const ALLOW_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// The template's `AllowHeaders`.
pub const ALLOW_HEADERS: &[&str] = &["authorization", "content-type"];
/// The template's `ExposeHeaders`: `Retry-After` on each 429 and 503 busy, and where a read was
/// served from.
pub const EXPOSE_HEADERS: &[&str] = &["retry-after", "x-cache"];
/// The template's `MaxAge` (seconds a browser may keep a preflight's answer).
pub const MAX_AGE_SECONDS: u32 = 600;
/// The template's default `CorsAllowOrigins`.
pub const ANY_ORIGIN: &str = "*";

/// The gateway's CORS configuration.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
}

impl Default for Cors {
    /// The template's defaults: any origin.
    fn default() -> Self {
        Self::allowing(ANY_ORIGIN)
    }
}

impl Cors {
    /// The template's configuration with `origins` (as `CorsAllowOrigins`, comma-separated).
    pub fn allowing(origins: &str) -> Self {
        Self {
            origins: origins
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The gateway's own answer if `request` is a preflight.
    pub fn preflight(&self, request: &Parts) -> Option<Response<Full<Bytes>>> {
        let headers = &request.headers;
        if request.method != Method::OPTIONS
            || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        let mut response = Response::new(Full::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(allowed) = self.allow_origin(origin) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, listed(ALLOW_METHODS));
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, listed(ALLOW_HEADERS));
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECONDS),
            );
            vary_on_origin(out);
        }
        Some(response)
    }

    /// Puts the configured CORS headers on a function's answer to a request from `origin`, in
    /// place of any the function set.
    pub fn answer(&self, origin: Option<&HeaderValue>, response: &mut Response<Full<Bytes>>) {
        let out = response.headers_mut();
        let set_by_function: Vec<_> = out
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in set_by_function {
            out.remove(name);
        }
        if let Some(allowed) = origin.and_then(|origin| self.allow_origin(origin)) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
            out.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                listed(EXPOSE_HEADERS),
            );
            vary_on_origin(out);
        }
    }

    /// What `Access-Control-Allow-Origin` says to `origin`: `*` when any origin is allowed, the
    /// origin itself when it is allowed by name or by its scheme, nothing otherwise.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let text = origin.to_str().ok()?;
        if self.origins.iter().any(|allowed| allowed == ANY_ORIGIN) {
            return Some(HeaderValue::from_static(ANY_ORIGIN));
        }
        self.origins
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(scheme @ ("https://" | "http://")) => text.starts_with(scheme),
                _ => allowed == text,
            })
            .then(|| origin.clone())
    }
}

fn listed(values: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&values.join(",")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// An answer that names one origin differs by origin: a cache must not hand it to another.
fn vary_on_origin(headers: &mut HeaderMap) {
    if headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN) != Some(&HeaderValue::from_static("*")) {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method(method).uri("/exams");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a request").into_parts().0
    }

    fn allowed(cors: &Cors, origin: &str) -> Option<String> {
        cors.allow_origin(&HeaderValue::from_str(origin).expect("a header"))
            .map(|v| v.to_str().expect("text").to_owned())
    }

    #[test]
    fn origins_match_by_name_by_scheme_or_any() {
        let named = Cors::allowing("https://app.example.com, http://localhost:5173");
        assert_eq!(
            allowed(&named, "https://app.example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(allowed(&named, "https://evil.example.com"), None);
        assert_eq!(allowed(&named, "http://app.example.com"), None);
        let by_scheme = Cors::allowing("https://*");
        assert_eq!(
            allowed(&by_scheme, "https://any.example").as_deref(),
            Some("https://any.example")
        );
        assert_eq!(allowed(&by_scheme, "http://any.example"), None);
        assert_eq!(
            allowed(&Cors::default(), "http://x.test").as_deref(),
            Some("*")
        );
    }

    #[test]
    fn only_an_options_with_an_origin_and_a_requested_method_is_a_preflight() {
        let cors = Cors::default();
        let asks = [
            ("origin", "http://x.test"),
            ("access-control-request-method", "POST"),
        ];
        let answer = cors
            .preflight(&parts(Method::OPTIONS, &asks))
            .expect("a preflight");
        assert_eq!(answer.status(), 204);
        let h = answer.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(
            h["access-control-allow-methods"],
            "GET,POST,PUT,PATCH,DELETE,OPTIONS"
        );
        assert_eq!(
            h["access-control-allow-headers"],
            "authorization,content-type"
        );
        assert_eq!(h["access-control-max-age"], "600");
        assert!(
            cors.preflight(&parts(Method::OPTIONS, &asks[..1]))
                .is_none()
        );
        assert!(
            cors.preflight(&parts(Method::OPTIONS, &asks[1..]))
                .is_none()
        );
        assert!(cors.preflight(&parts(Method::POST, &asks)).is_none());
    }

    #[test]
    fn a_preflight_from_an_origin_not_allowed_gets_no_cors_headers() {
        let cors = Cors::allowing("https://app.example.com");
        let answer = cors
            .preflight(&parts(
                Method::OPTIONS,
                &[
                    ("origin", "https://evil.example.com"),
                    ("access-control-request-method", "DELETE"),
                ],
            ))
            .expect("answered by the gateway all the same");
        assert_eq!(answer.status(), 204);
        assert!(answer.headers().is_empty(), "{:?}", answer.headers());
    }

    #[test]
    fn an_answer_gets_the_configured_headers_in_place_of_the_functions() {
        let cors = Cors::allowing("https://app.example.com");
        let from_function = || {
            let mut response = Response::new(Full::default());
            let h = response.headers_mut();
            h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
            h.insert("x-cache", HeaderValue::from_static("hit"));
            response
        };
        let mut answer = from_function();
        let origin = HeaderValue::from_static("https://app.example.com");
        cors.answer(Some(&origin), &mut answer);
        let h = answer.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-expose-headers"], "retry-after,x-cache");
        assert_eq!(h["vary"], "origin");
        assert_eq!(h["x-cache"], "hit");
        for origin in [
            None,
            Some(HeaderValue::from_static("https://evil.example.com")),
        ] {
            let mut answer = from_function();
            cors.answer(origin.as_ref(), &mut answer);
            let names: Vec<_> = answer.headers().keys().map(|n| n.as_str()).collect();
            assert_eq!(names, ["x-cache"], "{origin:?}");
        }
    }
}
