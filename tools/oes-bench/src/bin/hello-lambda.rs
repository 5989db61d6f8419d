//! The baseline of the cold-start benchmark (`oes-bench cold-start`): the smallest
//! `lambda_http` function, answering every request with `hello`.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
