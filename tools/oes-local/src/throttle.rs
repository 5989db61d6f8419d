//! API Gateway's route throttling (the HTTP API's `DefaultRouteSettings`, template.yaml's
//! `ApiRouteRateLimit` and `ApiRouteBurstLimit`), for `--route-throttle RATE,BURST`: each route
//! — a method and a path template of the template's routes, `GET /exams/{exam_id}` — has a
//! token bucket of `BURST` tokens, full at the start and refilled at `RATE` a second; a request
//! takes one, and one that finds none is answered by the gateway, 429 `{"message":"Too Many
//! Requests"}`, without reaching its function. So a load test against `oes-local` shows what a
//! class would meet with the stack's settings. A request that matches no route is not counted
//! (API Gateway answers it 404 itself).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use tokio::time::Instant;

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
    routes: Vec<(&'static str, &'static str)>,
    /// Each route's tokens and when they were counted, by its index in `routes`.
    buckets: Mutex<HashMap<usize, (f64, Instant)>>,
}

impl RouteThrottle {
    /// Every route of the three API functions (as the template routes them), each with `limits`.
    pub fn new(limits: RouteLimits) -> Self {
        Self::over(
            auth_api::routes::ROUTES
                .iter()
                .copied()
                .chain(exam_api::routes())
                .chain(admin_api::ROUTES.iter().copied())
                .chain(admin_api::console::ROUTES.iter().copied())
                .collect(),
            limits,
        )
    }

    fn over(routes: Vec<(&'static str, &'static str)>, limits: RouteLimits) -> Self {
        Self {
            limits,
            routes,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request for `method` and `path` may go on (taking a token of its route's
    /// bucket), or must be answered 429.
    pub fn admit(&self, method: &str, path: &str) -> bool {
        let Some(route) = self.route_of(method, path) else {
            return true;
        };
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

    /// The route `method` and `path` match: of several, the one with the most literal segments,
    /// as API Gateway prefers `/admin/email-jobs/counts` to `/admin/email-jobs/{job_id}`.
    fn route_of(&self, method: &str, path: &str) -> Option<usize> {
        let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, (m, _))| *m == method)
            .filter_map(|(index, (_, template))| {
                let segments: Vec<&str> = template.split('/').collect();
                let matches = segments.len() == wanted.len()
                    && segments.iter().zip(&wanted).all(|(s, w)| {
                        (s.starts_with('{') && s.ends_with('}') && !w.is_empty()) || s == w
                    });
                matches.then(|| {
                    let literal = segments.iter().filter(|s| !s.starts_with('{')).count();
                    (literal, index)
                })
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, index)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(rate: f64, burst: u32) -> RouteLimits {
        RouteLimits { rate, burst }
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
        let mut admitted = 0;
        for _ in 0..10 {
            admitted += usize::from(throttle.admit("POST", "/auth/login"));
        }
        assert_eq!(admitted, 3, "the burst, at once");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(
            throttle.admit("POST", "/auth/login"),
            "one token in half a second"
        );
        assert!(!throttle.admit("POST", "/auth/login"));
        tokio::time::advance(Duration::from_secs(60)).await;
        let admitted = (0..10)
            .filter(|_| throttle.admit("POST", "/auth/login"))
            .count();
        assert_eq!(admitted, 3, "refilled to the burst, not beyond");
    }

    #[tokio::test(start_paused = true)]
    async fn each_route_has_a_bucket_of_its_own() {
        let throttle = RouteThrottle::new(limits(1.0, 1));
        assert!(throttle.admit("GET", "/exams/e-1"));
        assert!(
            !throttle.admit("GET", "/exams/e-2"),
            "one route, whatever the id"
        );
        assert!(
            throttle.admit("PATCH", "/exams/e-1"),
            "another method: another route"
        );
        assert!(throttle.admit("GET", "/exams/e-1/questions"));
        assert!(throttle.admit("GET", "/admin/email-jobs/counts"));
        assert!(
            throttle.admit("GET", "/admin/email-jobs/j-1"),
            "the literal route is not the parameter's"
        );
        for _ in 0..5 {
            assert!(
                throttle.admit("GET", "/no/such/route"),
                "no route: not counted"
            );
        }
    }
}
