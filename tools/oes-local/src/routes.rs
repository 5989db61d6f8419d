//! The HTTP API's routes, as the template declares them: one per method and path template of
//! the three API functions (`auth_api::routes::ROUTES`, `exam_api::routes()`,
//! `admin_api::ROUTES` and the console's; tests/tests/integration/template.rs holds the
//! template to them). API Gateway matches each request against them before any function runs:
//! a request that matches none — an unknown path, or a method the path has no route for — is
//! answered by the gateway itself, 404 `{"message":"Not Found"}`, and throttling counts by
//! route.

use crate::fixtures::path_parameters;

/// The routes.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<(&'static str, &'static str)>,
}

impl Default for RouteTable {
    /// The three API functions' routes.
    fn default() -> Self {
        Self {
            routes: auth_api::routes::ROUTES
                .iter()
                .copied()
                .chain(exam_api::routes())
                .chain(admin_api::ROUTES.iter().copied())
                .chain(admin_api::console::ROUTES.iter().copied())
                .collect(),
        }
    }
}

/// A route of a [`RouteTable`], by its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(usize);

impl RouteTable {
    /// The route `method` and `path` match, if one does: of several, the one with the most
    /// literal segments, as API Gateway prefers `/admin/email-jobs/counts` to
    /// `/admin/email-jobs/{job_id}`. A parameter matches one non-empty segment (as API Gateway
    /// fills `pathParameters`: [`path_parameters`]); a trailing `/` does not count.
    pub fn find(&self, method: &str, path: &str) -> Option<RouteId> {
        let path = path.trim_end_matches('/');
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, (m, template))| *m == method && path_parameters(template, path).is_some())
            .max_by_key(|(_, (_, template))| {
                template.split('/').filter(|s| !s.starts_with('{')).count()
            })
            .map(|(index, _)| RouteId(index))
    }

    /// The method and path template of `route`.
    pub fn route(&self, route: RouteId) -> (&'static str, &'static str) {
        self.routes[route.0]
    }

    /// The method and path template of the route `method` and `path` match, if one does
    /// ([`Self::find`]).
    pub fn route_of(&self, method: &str, path: &str) -> Option<(&'static str, &'static str)> {
        self.find(method, path).map(|route| self.route(route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: &str, path: &str) -> Option<(&'static str, &'static str)> {
        let table = RouteTable::default();
        table.find(method, path).map(|route| table.routes[route.0])
    }

    #[test]
    fn a_request_finds_its_route_by_method_and_template() {
        assert_eq!(
            found("GET", "/exams/e-1"),
            Some(("GET", "/exams/{exam_id}"))
        );
        assert_eq!(
            found("PATCH", "/exams/e-1/questions/q-2"),
            Some(("PATCH", "/exams/{exam_id}/questions/{question_id}"))
        );
        assert_eq!(found("GET", "/admin/"), Some(("GET", "/admin")));
        assert_eq!(
            found("GET", "/admin/email-jobs/counts"),
            Some(("GET", "/admin/email-jobs/counts")),
            "the literal route, not the parameter's"
        );
        assert_eq!(
            found("GET", "/admin/email-jobs/j-1"),
            Some(("GET", "/admin/email-jobs/{job_id}"))
        );
    }

    #[test]
    fn an_unknown_path_or_method_finds_none() {
        for (method, path) in [
            ("GET", "/nothing"),
            ("GET", "/exams/e-1/nothing"),
            ("GET", "/exams//questions"),
            ("PUT", "/exams"),
            ("DELETE", "/auth/login"),
            ("HEAD", "/exams"),
        ] {
            assert_eq!(found(method, path), None, "{method} {path}");
        }
    }
}
