//! The page a verification or email-change link opens (`GET /auth/verify-email?token=…`).
//! Opening it changes nothing: mail scanners and link previews fetch the links in a message, and
//! a GET that used its token verified an address, or moved an account to it, with no one there
//! (and left the person who then clicked a link already used). Its button POSTs the token to
//! `POST /auth/verify-email`, which does the work.
//!
//! Its one script is inline, allowed by its hash in the page's Content-Security-Policy: nothing
//! else runs and nothing is loaded. No referrer leaves it, so the token in its address stays.

use lambda_http::http::StatusCode;
use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use lambda_http::{Body, Response};

/// The page.
const PAGE: &str = include_str!("../assets/confirm-email.html");

/// What the page may do: run its own script (by its hash), call this origin, nothing else.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; \
     script-src 'sha256-ktl6FoVtFhJTdptP3IBHttwIXgqFEpP7/5/madN0Wz8='; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The page, whatever the token: it is not looked at until the button is pressed.
pub fn page() -> Response<Body> {
    let mut response = Response::new(Body::from(PAGE));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, "text/html; charset=utf-8"),
        (CACHE_CONTROL, "no-store"),
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (REFERRER_POLICY, "no-referrer"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, lambda_http::http::HeaderValue::from_static(value));
    }
    // A page that opened the link keeps no handle on it (it could send it elsewhere).
    headers.insert(
        "cross-origin-opener-policy",
        lambda_http::http::HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use sha2::Digest as _;

    #[test]
    fn the_page_keeps_its_opener_out() {
        let response = page();
        let policy = response.headers().get("cross-origin-opener-policy");
        assert_eq!(policy.and_then(|v| v.to_str().ok()), Some("same-origin"));
    }

    #[test]
    fn the_policy_lets_the_pages_one_script_run_and_nothing_else() {
        let scripts: Vec<&str> = PAGE.split("<script>").skip(1).collect();
        assert_eq!(scripts.len(), 1, "one script");
        let script = scripts[0].split("</script>").next().expect("its end");
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        assert!(
            CONTENT_SECURITY_POLICY_VALUE.contains(&format!("script-src 'sha256-{hash}';")),
            "the policy's hash is not the script's: sha256-{hash}"
        );
        let handlers = PAGE.split(" on").skip(1).filter(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "no inline event handler");
        assert!(
            !PAGE.contains("style"),
            "no style, which the policy would refuse"
        );
    }
}
