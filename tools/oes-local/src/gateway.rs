//! HTTP → API Gateway v2 event → Lambda handler → HTTP.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use admin_api::AdminApi;
use auth_api::AuthService;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use exam_api::ExamApi;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::{Body, RequestExt as _};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cors::Cors;
use crate::event::{HttpApiEvent, HttpDetails, RequestContext, request_time};
use crate::routes::RouteTable;
use crate::throttle::RouteThrottle;

/// The largest body accepted, as API Gateway's payload limit (10 MB) is far more than any oes
/// route takes; the handlers enforce their own, smaller limit.
const MAX_GATEWAY_BODY: usize = 1024 * 1024;

/// How long a connection may take to send a request's headers (hyper's timer-driven default is
/// 30 s, off without a timer): an idle or trickling connection does not hold a descriptor.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The API functions' Lambda `Timeout` (template.yaml): each request is handed over with an
/// invocation's deadline this far off, and answers by then as in AWS
/// (`oes_runtime::http::within_deadline`).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after a failed `accept` (descriptors run out) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The functions behind the gateway.
pub struct Functions {
    /// auth-api's service.
    pub auth: AuthService,
    /// exam-api.
    pub exams: ExamApi,
    /// admin-api.
    pub admin: AdminApi,
    /// The lanes' pollers and the attempt sweep.
    pub background: crate::background::Background,
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// What the gateway does besides routing, as the template configures the HTTP API.
#[derive(Debug)]
pub struct Settings {
    /// CORS (the template's `CorsConfiguration`).
    pub cors: Cors,
    /// The routes a request must match to reach a function.
    pub routes: RouteTable,
    /// Route throttling (the template's `DefaultRouteSettings`), if asked for.
    pub throttle: Option<RouteThrottle>,
    /// How long a request's body may take to arrive once its headers have: a stalled upload
    /// is answered 408 and its connection closed, instead of holding the connection and a
    /// request's task until the process stops.
    pub body_read_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cors: Cors::default(),
            routes: RouteTable::default(),
            throttle: None,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

/// How long a request's body may take to arrive, as long as its headers may.
pub const BODY_READ_TIMEOUT: Duration = HEADER_READ_TIMEOUT;

/// Serves `functions` on `listener`, with the template's CORS defaults and no throttling,
/// until the task is dropped.
pub async fn serve(listener: TcpListener, functions: Arc<Functions>) -> std::io::Result<()> {
    serve_until(
        listener,
        functions,
        Settings::default(),
        std::future::pending(),
        Duration::ZERO,
    )
    .await
    .map(|_| ())
}

/// How a graceful stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every request taken had run to its end.
    Finished,
    /// The drain time passed with requests still running; they are not waited for.
    TimedOut,
}

/// Serves `functions` on `listener` as `settings` say, until `shutdown` resolves,
/// then stops gracefully: no new connection is accepted, each open one finishes the request it
/// is handling (an idle keep-alive one is closed), every request taken runs to its end — those
/// whose clients have gone too — and this returns once they are all done or, when `drain` has
/// passed, once those still running have been cut (answered 500, as an invocation that timed
/// out).
pub async fn serve_until(
    listener: TcpListener,
    functions: Arc<Functions>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<Drained> {
    let settings = Arc::new(settings);
    let connections = GracefulShutdown::new();
    // Each request's task, whatever became of its connection.
    let requests = TaskTracker::new();
    // Cancelled when the drain time ends: a request still running then is cut, as Lambda ends
    // an invocation at its timeout, and its client gets API Gateway's answer to that (a
    // function that failed: 500).
    let cut = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The stop first: unbiased, a connection waiting in the backlog was still taken, on
        // each pass with even odds, after the signal.
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors, or a connection reset before it was taken: the server
            // goes on once they are back.
            Err(error) => {
                tracing::warn!(%error, "could not accept a connection; trying again shortly");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let functions = Arc::clone(&functions);
        let settings = Arc::clone(&settings);
        let requests = requests.clone();
        let cut = cut.clone();
        let service = service_fn(move |request| {
            let functions = Arc::clone(&functions);
            let settings = Arc::clone(&settings);
            let cut = cut.clone();
            // A task of its own: as in AWS, where an invocation runs to its end whatever its
            // client does, a request is not dropped halfway when its connection goes.
            let handled = requests.spawn(async move {
                tokio::select! {
                    biased;
                    () = cut.cancelled() => function_failed(),
                    answer = dispatch(&functions, &settings, request, peer) => answer,
                }
            });
            async move {
                Ok::<_, Infallible>(handled.await.unwrap_or_else(|error| {
                    tracing::error!(%error, "the request's task failed");
                    function_failed()
                }))
            }
        });
        let connection = connections.watch(
            http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service),
        );
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    requests.close();
    let drained = async {
        connections.shutdown().await;
        requests.wait().await;
    };
    if tokio::time::timeout(drain, drained).await.is_ok() {
        return Ok(Drained::Finished);
    }
    tracing::warn!(
        drain_seconds = drain.as_secs(),
        running = requests.len(),
        "requests still running when the drain time ended are cut"
    );
    // Each ends at its next await, answered as an invocation that timed out (500). Before, they
    // went on unseen while the pollers stopped, and were dropped wherever they were when the
    // process ended.
    cut.cancel();
    let _ = tokio::time::timeout(CUT_GRACE, requests.wait()).await;
    Ok(Drained::TimedOut)
}

/// How long the requests cut at the end of the drain have to end (each at its next await).
const CUT_GRACE: Duration = Duration::from_secs(1);

/// What API Gateway's HTTP API answers when its Lambda function fails instead of answering (an
/// error returned, a crash): 500 with the gateway's own body, not a function's `{"error": …}`.
/// A client meets this shape in AWS, so it meets it here.
fn function_failed() -> HttpResponse {
    gateway_answer(500, br#"{"message":"Internal Server Error"}"#)
}

/// An answer of API Gateway's own: its `{"message"}` body.
fn gateway_answer(status: u16, body: &'static [u8]) -> HttpResponse {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap_or_default()
}

fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// One request as the gateway handles it: a CORS preflight answered by the gateway itself,
/// `oes-local`'s own pages served, a request that matches no route answered 404 and one over
/// its route's throttle 429, by the gateway as API Gateway answers them, anything else handed
/// to its function; the CORS headers put on the answer.
async fn dispatch(
    functions: &Functions,
    settings: &Settings,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let cors = &settings.cors;
    if let Some(preflight) = cors.preflight(&parts) {
        return preflight;
    }
    let origin = parts.headers.get(hyper::header::ORIGIN).cloned();
    let mut response = if let Some(page) = own_page(functions, &parts).await {
        page
    } else {
        match settings
            .routes
            .find(parts.method.as_str(), parts.uri.path())
        {
            None => gateway_answer(404, br#"{"message":"Not Found"}"#),
            Some(route) if settings.throttle.as_ref().is_some_and(|t| !t.admit(route)) => {
                gateway_answer(429, br#"{"message":"Too Many Requests"}"#)
            }
            Some(route) => {
                let route = settings.routes.route(route);
                invoke(functions, settings, route, parts, body, peer).await
            }
        }
    };
    cors.answer(origin.as_ref(), &mut response);
    response
}

/// `oes-local`'s own pages, which the stack does not have: the health check and the OpenAPI
/// document.
async fn own_page(
    functions: &Functions,
    parts: &hyper::http::request::Parts,
) -> Option<HttpResponse> {
    if parts.method != hyper::Method::GET {
        return None;
    }
    let path = parts.uri.path();
    if path == crate::health::PATH {
        let health = crate::health::check(functions).await;
        let body = serde_json::to_string(&health).unwrap_or_default();
        return hyper::Response::builder()
            .status(health.status_code())
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
            .into();
    }
    (path == crate::openapi::PATH).then(|| {
        hyper::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(crate::openapi::json())))
            .unwrap_or_default()
    })
}

/// The request handed to the function the template's routes name, as the event Lambda gives
/// it.
async fn invoke(
    functions: &Functions,
    settings: &Settings,
    route: (&str, &str),
    parts: hyper::http::request::Parts,
    body: Incoming,
    peer: SocketAddr,
) -> HttpResponse {
    let read = Limited::new(body, MAX_GATEWAY_BODY).collect();
    let body = match tokio::time::timeout(settings.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<LengthLimitError>() => {
            return error_response(413, "payload_too_large", "the request body is too large");
        }
        Ok(Err(_)) => {
            return error_response(400, "bad_request", "the request body could not be read");
        }
        Err(_) => {
            let mut answer = error_response(
                408,
                "request_timeout",
                "the request body did not arrive in time",
            );
            // What is left of the body would be read as the next request.
            answer.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            return answer;
        }
    };
    let event = api_gateway_event(&parts, &body, peer, Some(route));
    if !translatable(&event) {
        return error_response(
            400,
            "bad_request",
            "the request's host or target is not part of a URL",
        );
    }
    let request = match serde_json::to_string(&event)
        .and_then(|text| oes_runtime::http::request_from_str(&text))
    {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "could not build the Lambda request");
            return error_response(400, "bad_request", "the request could not be translated");
        }
    };
    let request = request.with_lambda_context(invocation(SystemTime::now() + FUNCTION_TIMEOUT));
    // As the template's routes: `/auth/*` to auth-api, `/admin` and `/admin/*` to admin-api,
    // the rest to exam-api.
    let path = parts.uri.path();
    let result = if path.starts_with("/auth") {
        auth_api::handle(&functions.auth, request).await
    } else if admin_api::serves(path) {
        admin_api::handle(&functions.admin, request).await
    } else {
        exam_api::handle(&functions.exams, request).await
    };
    match result {
        Ok(response) => to_http(response),
        Err(error) => {
            tracing::error!(%error, "the function failed");
            function_failed()
        }
    }
}

/// The context Lambda gives an invocation that ends at `deadline`.
pub fn invocation(deadline: SystemTime) -> lambda_http::Context {
    let mut context = lambda_http::Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    context
}

/// Whether lambda_http can make the request's URI from `event`: it joins the scheme header, the
/// host and the path into a URL and unwraps its parse, then adds the query and expects the whole
/// to parse as an `http::Uri` too, so a host or target that is no part of either must not reach
/// it (a panic; with `panic = "abort"`, the end of the process). A host of `{` parses as a URL
/// but not as a URI. API Gateway never passes such a request on.
fn translatable(event: &HttpApiEvent) -> bool {
    let host = event
        .headers
        .get("host")
        .unwrap_or(&event.request_context.domain_name);
    let scheme = event
        .headers
        .get("x-forwarded-proto")
        .map_or("https", String::as_str);
    if !event.raw_path.starts_with('/') {
        return false;
    }
    let Ok(url) = url::Url::parse(&format!("{scheme}://{host}{}", event.raw_path)) else {
        return false;
    };
    let mut uri = url.to_string();
    if !event.raw_query_string.is_empty() {
        uri.push('?');
        uri.push_str(&event.raw_query_string);
    }
    lambda_http::http::Uri::try_from(uri).is_ok()
}

/// The payload-format-2.0 event API Gateway's HTTP API sends for this request through `route`
/// (its method and path template: `routeKey` and `pathParameters`), or through a catch-all
/// `$default` route if none (the handlers resolve the route themselves either way).
pub fn api_gateway_event(
    parts: &lambda_http::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    route: Option<(&str, &str)>,
) -> HttpApiEvent {
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        join_repeated(&mut headers, name.as_str(), &value);
    }
    // API Gateway says which protocol its client used, whatever the client sent; here it is
    // plain HTTP.
    headers.insert("x-forwarded-proto".into(), "http".into());
    let raw_query = parts.uri.query().unwrap_or("");
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let path = parts.uri.path();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let route_key = route.map_or_else(
        || "$default".to_owned(),
        |(method, template)| format!("{method} {template}"),
    );
    let path_parameters = route
        .and_then(|(_, template)| {
            crate::fixtures::path_parameters(template, path.trim_end_matches('/'))
        })
        .unwrap_or_default();
    HttpApiEvent {
        version: "2.0",
        route_key: route_key.clone(),
        raw_path: path.into(),
        raw_query_string: raw_query.into(),
        headers,
        query_string_parameters: query_parameters(raw_query),
        request_context: RequestContext {
            account_id: "000000000000".into(),
            api_id: "oes-local".into(),
            domain_name: host,
            domain_prefix: "oes-local".into(),
            http: HttpDetails {
                method: parts.method.as_str().into(),
                path: path.into(),
                protocol: format!("{:?}", parts.version),
                source_ip: peer.ip().to_string(),
                user_agent,
            },
            request_id: uuid::Uuid::new_v4().to_string(),
            route_key,
            stage: "$default".into(),
            time: request_time(now_ms),
            time_epoch: now_ms,
        },
        path_parameters,
        body: (!body.is_empty()).then_some(body),
        is_base64_encoded: is_base64,
    }
}

/// `queryStringParameters` for a raw query string, as API Gateway decodes it: repeated keys
/// have their values joined with commas.
pub fn query_parameters(raw_query: &str) -> BTreeMap<String, String> {
    let mut query = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        join_repeated(&mut query, &key, &value);
    }
    query
}

fn join_repeated(map: &mut BTreeMap<String, String>, key: &str, value: &str) {
    match map.get_mut(key) {
        Some(existing) => {
            existing.push(',');
            existing.push_str(value);
        }
        None => {
            map.insert(key.to_owned(), value.to_owned());
        }
    }
}

fn to_http(response: lambda_http::Response<Body>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// API Gateway's own answer to a failed Lambda integration (its HTTP API troubleshooting
    /// guide, "My API with a Lambda integration returns {"message":"Internal Server Error"}").
    #[tokio::test]
    async fn a_failed_function_is_answered_as_api_gateway_answers_it() {
        let answer = function_failed();
        assert_eq!(answer.status(), 500);
        assert_eq!(answer.headers()["content-type"], "application/json");
        let body = answer
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body, json!({"message": "Internal Server Error"}));
    }
}
