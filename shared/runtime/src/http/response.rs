//! JSON responses, bearer tokens, and the one log line per request.

use std::time::Instant;

use http::StatusCode;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::ApiError;
use super::openapi::StatusBody;
use oes_domain::cache::CacheStatus;

/// A JSON response with `status`. API answers are per-user: never cached by intermediaries.
/// They carry text others wrote (names, addresses, an email's last error): a browser must read
/// them as JSON, never sniff them as a page (`nosniff`).
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(
        X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Marks where a read was served from (`x-cache: hit | miss | bypass`); no header for a read
/// that never goes through the cache (`None`).
pub fn with_cache_status(
    mut response: Response<Body>,
    status: impl Into<Option<CacheStatus>>,
) -> Response<Body> {
    if let Some(status) = status.into() {
        response
            .headers_mut()
            .insert("x-cache", http::HeaderValue::from_static(status.as_str()));
    }
    response
}

/// A JSON response carrying only `{"status": status_text}` ([`StatusBody`]).
pub fn no_content_json(status: StatusCode, status_text: &'static str) -> Response<Body> {
    json(
        status,
        &StatusBody {
            status: status_text,
        },
    )
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(request: &Request) -> Result<&str, ApiError> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is malformed"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is malformed"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must use the Bearer scheme",
        ));
    }
    Ok(token.trim())
}

/// The caller's IP address as API Gateway saw it (`requestContext.http.sourceIp`), or `""`
/// outside API Gateway. Clients cannot forge it with a header.
pub fn client_ip(request: &Request) -> &str {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.as_deref().unwrap_or_default()
        }
        _ => "",
    }
}

/// The request's path as the routes match it: as API Gateway sent it (`rawPath`), a trailing
/// `/` dropped (`/exams/` is `/exams`), `/` kept. Not the URI's path: lambda_http builds the URI
/// with the `url` crate, which removes dot segments (`%2e%2e` too), so
/// `DELETE /exams/{id}/questions/..`, which the gateway routes as a question's delete, read as
/// `DELETE /exams/{id}` — the exam's.
pub fn route_path(request: &Request) -> &str {
    let path = sent_path(request);
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

/// The request's path as API Gateway sent it (the URI's, for a request built without its
/// event).
fn sent_path(request: &Request) -> &str {
    match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    }
}

/// The span a request is handled in: API Gateway's request id and route, and `user_id`, which
/// the session records once the caller is authenticated. Its fields go with every log line of
/// the request (see [`crate::telemetry`]).
pub fn request_span(request: &Request) -> tracing::Span {
    let (request_id, route) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => (
            context.request_id.as_deref().unwrap_or_default(),
            context.route_key.as_deref().unwrap_or_default(),
        ),
        _ => ("", ""),
    };
    tracing::info_span!(
        "request",
        request_id,
        route,
        user_id = tracing::field::Empty
    )
}

/// Turns a handler's result into the response (an error becomes its JSON answer) and logs one
/// structured line for the request: method, path, status, latency. Never the body, query string
/// or headers (they may hold tokens or passwords).
pub fn finish(
    request: &Request,
    started: Instant,
    result: Result<Response<Body>, ApiError>,
) -> Response<Body> {
    let response = result.unwrap_or_else(ApiError::into_response);
    log_request(
        request.method(),
        sent_path(request),
        response.status(),
        started,
    );
    response
}

fn log_request(method: &http::Method, path: &str, status: StatusCode, started: Instant) {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::error!(%method, path, status = status.as_u16(), latency_ms, "request");
    } else {
        tracing::info!(%method, path, status = status.as_u16(), latency_ms, "request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_answer_is_neither_stored_nor_sniffed() {
        let answer = json(StatusCode::OK, &serde_json::json!({"name": "<script>"}));
        let header = |name| answer.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header(CONTENT_TYPE), Some("application/json"));
        assert_eq!(header(CACHE_CONTROL), Some("no-store"));
        assert_eq!(header(X_CONTENT_TYPE_OPTIONS), Some("nosniff"));
    }
}
