//! A second baseline of the cold-start benchmark: `hello-lambda` on tokio's current-thread
//! runtime, as the functions run (one event at a time, no worker thread to start), so the
//! functions' own init can be set against a start that differs from theirs only by what they do.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
