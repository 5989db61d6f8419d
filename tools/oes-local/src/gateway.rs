//! HTTP → API Gateway v2 event → Lambda handler → HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_api::AuthService;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use exam_api::ExamApi;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// The largest body accepted, as API Gateway's payload limit (10 MB) is far more than any oes
/// route takes; the handlers enforce their own, smaller limit.
const MAX_GATEWAY_BODY: usize = 1024 * 1024;

/// The functions behind the gateway.
pub struct Functions {
    /// auth-api's service.
    pub auth: AuthService,
    /// exam-api (with the admin API).
    pub exams: ExamApi,
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// Serves `functions` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, functions: Arc<Functions>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let functions = Arc::clone(&functions);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let functions = Arc::clone(&functions);
                async move { Ok::<_, Infallible>(dispatch(&functions, request, peer).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
}

fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

async fn dispatch(
    functions: &Functions,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_GATEWAY_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error_response(413, "payload_too_large", "the request body is too large"),
    };
    let event = api_gateway_event(&parts, &body, peer);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "could not build the Lambda request");
            return error_response(400, "bad_request", "the request could not be translated");
        }
    };
    let result = if parts.uri.path().starts_with("/auth") {
        auth_api::handle(&functions.auth, request).await
    } else {
        exam_api::handle(&functions.exams, request).await
    };
    match result {
        Ok(response) => to_http(response),
        Err(error) => {
            tracing::error!(%error, "the function failed");
            error_response(502, "bad_gateway", "the function failed")
        }
    }
}

/// The payload-format-2.0 event API Gateway's HTTP API sends for this request.
pub fn api_gateway_event(
    parts: &lambda_http::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = Map::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(key.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let user_agent = headers
        .get("user-agent")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or(Value::String("localhost".into()));
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "oes-local",
            "domainName": host,
            "domainPrefix": "oes-local",
            "http": {
                "method": method,
                "path": path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
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
