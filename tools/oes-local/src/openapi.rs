//! The one OpenAPI 3.1 document of every oes route: auth-api's, exam-api's and admin-api's
//! descriptions merged, and completed with the error answers they share. Served
//! at `GET /openapi.json` by the gateway; committed as `docs/openapi.json`
//! (`cargo run -p oes-local -- --openapi > docs/openapi.json` writes it again).

use oes_runtime::http::openapi::{complete, to_pretty_json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::info::InfoBuilder;

/// The path the gateway serves the document at.
pub const PATH: &str = "/openapi.json";

/// The document.
pub fn document() -> OpenApi {
    let mut doc = auth_api::openapi::document();
    doc.merge(exam_api::openapi::document());
    doc.merge(admin_api::openapi::document());
    complete(&mut doc);
    doc.info = InfoBuilder::new()
        .title("oes")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The online exam API: accounts and sessions (auth-api), exams and attempts \
             (exam-api), and the admin API of the email pipeline and the cache (admin-api). \
             Every error answers `{\"error\": {\"code\", \"message\"}}`.",
        ))
        .build();
    doc
}

/// The document as pretty JSON, with a final newline: what `docs/openapi.json` holds.
pub fn json() -> String {
    to_pretty_json(&document()).unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}\n"))
}
