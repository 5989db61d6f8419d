//! API Gateway's route throttling (the HTTP API's `DefaultRouteSettings`, template.yaml's
//! `ApiRouteRateLimit` and `ApiRouteBurstLimit`), for `--route-throttle RATE,BURST`: each route
//! — a method and a path template of the template's routes, `GET /exams/{exam_id}` — has a
//! token bucket of `BURST` tokens, full at the start and refilled at `RATE` a second; a request
//! takes one, and one that finds none is answered by the gateway, 429 `{"message":"Too Many
//! Requests"}`, without reaching its function. So a load test against `oes-local` shows what a
//! class would meet with the stack's settings.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::routes::RouteId;

/// A route's steady rate and its burst, as the template's parameters set them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteLimits {
    /// Requests a second the bucket refills by (`ThrottlingRateLimit`).
    pub rate: f64,
    /// The bucket's size: requests let through at once (`ThrottlingBurstLimit`).
    pub burst: u32,
}

impl FromStr for RouteLimits {
    type Err = String;

    /// `RATE,BURST`, as `200,1000` (the template's defaults).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (rate, burst) = text
            .split_once(',')
            .ok_or_else(|| format!("{text:?}: expected RATE,BURST, such as 200,1000"))?;
        let rate: f64 = rate
            .trim()
            .parse()
            .map_err(|e| format!("rate {rate:?}: {e}"))?;
        let burst: u32 = burst
            .trim()
            .parse()
            .map_err(|e| format!("burst {burst:?}: {e}"))?;
        if !(rate.is_finite() && rate > 0.0) || burst == 0 {
            return Err(format!(
                "{text:?}: the rate and the burst must be above zero"
            ));
        }
        Ok(Self { rate, burst })
    }
}

/// The routes' buckets.
#[derive(Debug)]
pub struct RouteThrottle {
    limits: RouteLimits,
    /// Each route's tokens and when they were counted.
    buckets: Mutex<HashMap<RouteId, (f64, Instant)>>,
}

impl RouteThrottle {
    /// Every route with `limits`.
    pub fn new(limits: RouteLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request for `route` may go on (taking a token of its bucket), or must be
    /// answered 429.
    pub fn admit(&self, route: RouteId) -> bool {
        let now = Instant::now();
        let burst = f64::from(self.limits.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = buckets.entry(route).or_insert((burst, now));
        let refilled = now.duration_since(*at).as_secs_f64() * self.limits.rate;
        *tokens = (*tokens + refilled).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteTable;
    use std::time::Duration;

    fn limits(rate: f64, burst: u32) -> RouteLimits {
        RouteLimits { rate, burst }
    }

    fn route(method: &str, path: &str) -> RouteId {
        RouteTable::default()
            .find(method, path)
            .unwrap_or_else(|| panic!("{method} {path}: no route"))
    }

    #[test]
    fn limits_read_as_the_template_writes_them() {
        assert_eq!("200,1000".parse(), Ok(limits(200.0, 1000)));
        assert_eq!(" 0.5 , 3 ".parse(), Ok(limits(0.5, 3)));
        for bad in ["200", "0,10", "10,0", "-1,5", "x,5", "5,1.5", "NaN,5"] {
            assert!(bad.parse::<RouteLimits>().is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_lets_its_burst_through_then_its_rate() {
        let throttle = RouteThrottle::new(limits(2.0, 3));
        let login = route("POST", "/auth/login");
        let admitted = (0..10).filter(|_| throttle.admit(login)).count();
        assert_eq!(admitted, 3, "the burst, at once");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(throttle.admit(login), "one token in half a second");
        assert!(!throttle.admit(login));
        tokio::time::advance(Duration::from_secs(60)).await;
        let admitted = (0..10).filter(|_| throttle.admit(login)).count();
        assert_eq!(admitted, 3, "refilled to the burst, not beyond");
    }

    #[tokio::test(start_paused = true)]
    async fn each_route_has_a_bucket_of_its_own() {
        let throttle = RouteThrottle::new(limits(1.0, 1));
        assert!(throttle.admit(route("GET", "/exams/e-1")));
        assert!(
            !throttle.admit(route("GET", "/exams/e-2")),
            "one route, whatever the id"
        );
        assert!(
            throttle.admit(route("PATCH", "/exams/e-1")),
            "another method: another route"
        );
        assert!(throttle.admit(route("GET", "/exams/e-1/questions")));
    }
}
