//! A request's time: what is left of its Lambda invocation, less a margin to answer in. Each
//! AWS call is bounded on its own (`AwsTimeouts`), but a request makes several one after
//! another, and together they can outlast the function's `Timeout`; Lambda would then end the
//! invocation, API Gateway answer a bare 500, and the environment start cold again. A request
//! that runs out of time gives up where it is instead, as Lambda's end would have left it, and
//! answers 503.

use std::time::{Duration, SystemTime};

use lambda_http::{Body, Request, RequestExt as _, Response};

use super::ApiError;

/// Kept back from the invocation's deadline to log the answer and hand it to the Runtime API.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// The time left to handle `request` at `now`: its invocation's deadline less
/// [`ANSWER_MARGIN`] (zero within the margin); `None` for a request without a deadline (a test
/// calling a handler directly) or with one already past, which Lambda never hands over but
/// emulators do (`cargo lambda watch` gives every invocation a deadline in 1970).
pub fn time_left(request: &Request, now: SystemTime) -> Option<Duration> {
    let context = request.lambda_context_ref()?;
    if context.deadline == 0 {
        return None;
    }
    let left = context.deadline().duration_since(now).ok()?;
    Some(left.saturating_sub(ANSWER_MARGIN))
}

/// `handling` of `request`, given the time it has left ([`time_left`]); when that runs out,
/// `handling` is dropped where it waits and the answer is 503 `service_unavailable`.
pub async fn within_deadline(
    request: &Request,
    handling: impl Future<Output = Result<Response<Body>, ApiError>>,
) -> Result<Response<Body>, ApiError> {
    let Some(left) = time_left(request, SystemTime::now()) else {
        return handling.await;
    };
    match tokio::time::timeout(left, handling).await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::error!(
                time_ms = left.as_millis(),
                "the request ran out of its invocation's time; answering 503"
            );
            Err(ApiError::unavailable(
                "the service took too long to answer; try again shortly",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Context;

    fn ending_at(deadline: SystemTime) -> Request {
        let mut context = Context::default();
        context.deadline = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Request::default().with_lambda_context(context)
    }

    #[test]
    fn a_request_has_its_invocations_time_less_the_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let left = |request: &Request| time_left(request, now);
        assert_eq!(left(&Request::default()), None, "no context");
        assert_eq!(
            left(&Request::default().with_lambda_context(Context::default())),
            None,
            "a context without a deadline"
        );
        assert_eq!(
            left(&ending_at(now + Duration::from_secs(10))),
            Some(Duration::from_millis(9_500))
        );
        assert_eq!(
            left(&ending_at(now + Duration::from_millis(200))),
            Some(Duration::ZERO)
        );
        assert_eq!(
            left(&ending_at(now - Duration::from_secs(1))),
            None,
            "a deadline already past is an emulator's, not Lambda's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_out_of_time_answers_503() {
        let request = ending_at(SystemTime::now() + Duration::from_secs(2));
        let answer = within_deadline(&request, std::future::pending()).await;
        let error = answer.expect_err("no answer in time");
        assert_eq!(
            (error.status.as_u16(), error.code),
            (503, "service_unavailable")
        );

        let quick =
            within_deadline(&request, async { Ok(Response::new(Body::from("done"))) }).await;
        assert!(quick.is_ok());
    }
}
