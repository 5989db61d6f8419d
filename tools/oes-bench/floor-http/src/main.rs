//! The floor of the hot-read-path benchmark (`scripts/bench-http.sh`): the least any server can
//! do for a cached read on this machine. hyper serves `GET /reads/{n}` (n from 1 to 3) with one
//! round trip to Redis carrying `n` GETs of the same entry (the baseline reads one key; oes's
//! paper read asks for the caller, the attempt and the questions at once), and answers the bytes
//! as they were cached (`x-cache: hit`; a missing entry is a 404): no authentication, no parsing,
//! no log line, no gateway. What oes costs
//! above this row is its own work; what this row costs is the machine's (loopback TCP, the
//! wake-ups between the cores).
//!
//!   REDIS_URL=redis://127.0.0.1:6379 PORT=3902 QUESTIONS=questions.json floor-http

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use redis::aio::MultiplexedConnection;

/// oes's allocator (`oes_runtime::alloc`), so the two differ only in the work they do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "floor:questions";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let questions = std::fs::read(std::env::var("QUESTIONS")?)?;
    let client = redis::Client::open(std::env::var("REDIS_URL")?)?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    redis::cmd("SET")
        .arg(KEY)
        .arg(questions)
        .exec_async(&mut redis)
        .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("floor-http: listening on {port}");
    loop {
        let (stream, _) = listener.accept().await?;
        let redis = redis.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| read(redis.clone(), request));
            // A connection wrk closes mid-request is no concern of a benchmark's floor.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn read(
    mut redis: MultiplexedConnection,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reads = request
        .uri()
        .path()
        .strip_prefix("/reads/")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=3).contains(n));
    let Some(reads) = reads else {
        return Ok(answer(StatusCode::NOT_FOUND, Bytes::new()));
    };
    let mut pipeline = redis::pipe();
    for _ in 0..reads {
        pipeline.get(KEY);
    }
    let answer = match pipeline
        .query_async::<Vec<Option<Vec<u8>>>>(&mut redis)
        .await
    {
        Ok(mut values) => match values.pop().flatten() {
            Some(value) => answer(StatusCode::OK, Bytes::from(value)),
            None => answer(StatusCode::NOT_FOUND, Bytes::new()),
        },
        Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, Bytes::new()),
    };
    Ok(answer)
}

fn answer(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::OK {
        headers.insert("x-cache", HeaderValue::from_static("hit"));
    }
    response
}
