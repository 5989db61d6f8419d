//! API Gateway's event made into the request the handlers take, without lambda_http's panics.
//!
//! lambda_http builds a request's URI from the event's `rawQueryString`, `host` header and
//! `x-forwarded-proto` header and `expect`s it to parse (`"failed to build request"`, and an
//! `unwrap` of `Url::parse`). A query holding a byte `http::Uri` refuses — a space, `"`, `<`, `>`,
//! a control character — makes it panic, and with `panic = "abort"` the process ends: the caller
//! gets a 502 and the next one a cold start. Clients do send such queries (curl and browsers'
//! `fetch` send `"` as it is), and whether API Gateway encodes them before it hands the event on
//! is not documented (lambda_http's issues 461 and 515 are panics on queries from AWS front
//! ends), so the functions do not count on it: [`run`] and [`request_from_str`] mend the event
//! first. The query's refused bytes are percent-encoded, which keeps what the query means (a
//! form decoder reads `%22` as `"`) for the handler's own validation to answer; a `host` or
//! `x-forwarded-proto` that cannot start a URL is dropped (the URI's host and scheme are not
//! used by any handler; API Gateway sets both itself), and so is a body said to be base64 that
//! is not (lambda_http `expect`s it to decode; API Gateway encodes it itself).

use std::fmt::Write as _;
use std::task::{Context, Poll};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, IntoResponse, LambdaEvent, Request, Service};

/// Runs `handler` under the Lambda runtime as `lambda_http::run` does, each event mended first.
///
/// # Errors
/// What `lambda_runtime::run` returns: the runtime could not start or lost its Runtime API.
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), lambda_http::Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: std::fmt::Debug + Into<lambda_http::lambda_runtime::Diagnostic>,
{
    lambda_http::lambda_runtime::run(Mended(Adapter::from(handler))).await
}

/// The request for the API Gateway event `text` (JSON), mended as [`run`] mends it.
///
/// # Errors
/// `text` is not an event lambda_http knows.
pub fn request_from_str(text: &str) -> Result<Request, serde_json::Error> {
    let mut event: LambdaRequest = serde_json::from_str(text)?;
    mend(&mut event);
    Ok(event.into())
}

/// lambda_http's adapter behind [`mend`].
struct Mended<S>(S);

impl<S> Service<LambdaEvent<LambdaRequest>> for Mended<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        mend(&mut event.payload);
        self.0.call(event)
    }
}

/// Makes the parts of an HTTP API event that lambda_http puts into the URI parse.
fn mend(event: &mut LambdaRequest) {
    if let LambdaRequest::ApiGatewayV2(event) = event {
        mend_http_api(event);
    }
}

fn mend_http_api(event: &mut ApiGatewayV2httpRequest) {
    if let Some(query) = &mut event.raw_query_string
        && query.bytes().any(refused_in_query)
    {
        *query = percent_encode_refused(query);
    }
    if let Some(path) = &mut event.raw_path
        && !path.starts_with('/')
    {
        path.insert(0, '/');
    }
    // API Gateway encodes a body it calls base64 itself; one that is not, lambda_http `expect`s.
    if event.is_base64_encoded
        && event
            .body
            .as_deref()
            .is_some_and(|body| BASE64.decode(body).is_err())
    {
        event.body = None;
        event.is_base64_encoded = false;
    }
    let headers = &mut event.headers;
    if headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| !matches!(proto.as_bytes(), b"https" | b"http"))
    {
        headers.remove("x-forwarded-proto");
    }
    if headers
        .get("host")
        .is_some_and(|host| !host.to_str().is_ok_and(starts_a_url))
    {
        headers.remove("host");
    }
    if event
        .request_context
        .domain_name
        .as_deref()
        .is_some_and(|host| !starts_a_url(host))
    {
        event.request_context.domain_name = None;
    }
}

/// Whether `https://{host}/` is a URL (what lambda_http unwraps) and, as the URL crate writes it,
/// a URI (what it `expect`s): a host of `{` is the first, not the second.
fn starts_a_url(host: &str) -> bool {
    url::Url::parse(&format!("https://{host}/"))
        .is_ok_and(|url| url.has_host() && http::Uri::try_from(url.as_str()).is_ok())
}

/// The bytes `http::Uri` refuses in a query, and `#`, which would end the query there.
fn refused_in_query(byte: u8) -> bool {
    matches!(byte, 0..=0x20 | b'"' | b'#' | b'<' | b'>' | 0x7f)
}

fn percent_encode_refused(query: &str) -> String {
    let mut mended = String::with_capacity(query.len() + 16);
    for c in query.chars() {
        match u8::try_from(c) {
            Ok(byte) if refused_in_query(byte) => {
                let _ = write!(mended, "%{byte:02X}");
            }
            _ => mended.push(c),
        }
    }
    mended
}

#[cfg(test)]
mod tests {
    use lambda_http::RequestExt;
    use serde_json::json;

    use super::*;

    fn event(query: &str, host: &str, proto: &str, path: &str) -> String {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": { "host": host, "x-forwarded-proto": proto },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": host,
                "http": {
                    "method": "GET",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.25",
                    "userAgent": "curl"
                },
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "22/Nov/2026:01:10:10 +0000",
                "timeEpoch": 1795309810000_u64
            },
            "isBase64Encoded": false
        })
        .to_string()
    }

    const HOST: &str = "api.example.com";

    #[test]
    fn a_query_with_bytes_a_uri_refuses_keeps_its_meaning() {
        let text = event(
            "cursor=\"a b\"&limit=<2>&x=caf\u{e9}#1\t",
            HOST,
            "https",
            "/exams",
        );
        let request = request_from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let query = request.query_string_parameters();
        assert_eq!(query.first("cursor"), Some("\"a b\""));
        assert_eq!(query.first("limit"), Some("<2>"));
        assert_eq!(query.first("x"), Some("caf\u{e9}#1\t"));
        assert_eq!(request.uri().path(), "/exams");
    }

    #[test]
    fn a_query_a_uri_takes_is_left_as_it_came() {
        let text = event("a=%22x%22&b=1+2&c=%E2%9C%93", HOST, "https", "/exams");
        let request = request_from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.uri().query(), Some("a=%22x%22&b=1+2&c=%E2%9C%93"));
        assert_eq!(request.uri().host(), Some(HOST));
    }

    #[test]
    fn no_host_scheme_or_path_makes_the_request_panic() {
        for (host, proto, path) in [
            ("bad host", "https", "/exams"),
            ("{", "https", "/exams"),
            ("a:b:c", "https", "/exams"),
            ("[::1", "https", "/exams"),
            (HOST, "not a scheme", "/exams"),
            (HOST, "https://", "/exams"),
            (HOST, "https", ":99999"),
            (HOST, "https", "exams"),
        ] {
            let text = event("limit=2", host, proto, path);
            let request = request_from_str(&text)
                .unwrap_or_else(|e| panic!("{host:?} {proto:?} {path:?}: {e}"));
            assert!(
                request.uri().path().starts_with('/'),
                "{host:?} {proto:?} {path:?}: {}",
                request.uri()
            );
        }
    }

    #[test]
    fn a_body_said_to_be_base64_that_is_not_is_left_out() {
        let mut event: serde_json::Value =
            serde_json::from_str(&event("", HOST, "https", "/exams")).unwrap_or_default();
        event["isBase64Encoded"] = true.into();
        event["body"] = "!!".into();
        let request = request_from_str(&event.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(request.body().is_empty());
        event["body"] = "e30=".into();
        let request = request_from_str(&event.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.body().as_ref(), b"{}");
    }

    #[test]
    fn no_byte_in_a_query_makes_the_request_panic() {
        for byte in 0..=0x7f_u8 {
            let value = format!("a{}b", char::from(byte));
            let text = event(&format!("q={value}"), HOST, "https", "/exams");
            let request = request_from_str(&text).unwrap_or_else(|e| panic!("{byte}: {e}"));
            if refused_in_query(byte) {
                let query = request.query_string_parameters();
                assert_eq!(query.first("q"), Some(value.as_str()), "{byte}");
            }
        }
    }
}
