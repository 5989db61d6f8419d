//! The one OpenAPI 3.1 document of every oes route: auth-api's, exam-api's and admin-api's
//! descriptions merged, and completed with the error answers they share and the one API
//! Gateway gives on every route (its throttle's 429). Served at `GET /openapi.json` by the
//! gateway; committed as `docs/openapi.json` (`cargo run -p oes-local -- --openapi >
//! docs/openapi.json` writes it again).

use oes_runtime::http::openapi::{complete, operations, to_pretty_json};
use utoipa::openapi::info::InfoBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{OneOfBuilder, Type};
use utoipa::openapi::{Components, ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr};

/// The path the gateway serves the document at.
pub const PATH: &str = "/openapi.json";

/// The schema of API Gateway's own answers: `{"message": "Too Many Requests"}`.
const GATEWAY_MESSAGE: &str = "GatewayMessage";

/// What the gateway's 429 says.
const THROTTLED: &str = "API Gateway's route throttle (the template's `ApiRouteRateLimit` and \
    `ApiRouteBurstLimit`, per route): `{\"message\": \"Too Many Requests\"}`, without \
    `Retry-After`; back off and try again";

/// The document.
pub fn document() -> OpenApi {
    let mut doc = auth_api::openapi::document();
    doc.merge(exam_api::openapi::document());
    doc.merge(admin_api::openapi::document());
    complete(&mut doc);
    add_gateway_throttle(&mut doc);
    doc.info = InfoBuilder::new()
        .title("oes")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The online exam API: accounts and sessions (auth-api), exams and attempts \
             (exam-api), and the admin API of the email pipeline and the cache (admin-api). \
             Every error the functions answer is `{\"error\": {\"code\", \"message\"}}`. \
             API Gateway answers some requests itself, as `{\"message\"}`: 404 for a path and \
             method no route has, 429 over a route's throttle, 500 when a function fails or \
             runs out of time.",
        ))
        .build();
    doc
}

/// Adds API Gateway's throttle answer to every operation: a 429 of its own where the function
/// has none, and beside the function's where it has one (its own rate limits).
fn add_gateway_throttle(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    components.schemas.insert(
        GATEWAY_MESSAGE.to_owned(),
        RefOr::T(
            ObjectBuilder::new()
                .description(Some("An answer of API Gateway's own"))
                .property("message", ObjectBuilder::new().schema_type(Type::String))
                .required("message")
                .into(),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            match responses.get_mut("429") {
                Some(RefOr::T(own)) => {
                    own.description = format!("{}; or {THROTTLED}", own.description);
                    for content in own.content.values_mut() {
                        let mut either = OneOfBuilder::new();
                        if let Some(function) = content.schema.take() {
                            either = either.item(function);
                        }
                        let either = either.item(Ref::from_schema_name(GATEWAY_MESSAGE));
                        content.schema = Some(RefOr::T(either.into()));
                    }
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let throttled = ResponseBuilder::new()
                        .description(THROTTLED)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(GATEWAY_MESSAGE)))
                                .build(),
                        )
                        .build();
                    responses.insert("429".to_owned(), RefOr::T(throttled));
                }
            }
        }
    }
}

/// The document as pretty JSON, with a final newline: what `docs/openapi.json` holds.
pub fn json() -> String {
    to_pretty_json(&document()).unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}\n"))
}
