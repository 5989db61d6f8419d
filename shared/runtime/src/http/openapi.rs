//! What the OpenAPI documents of the API functions share: the error body (the type
//! [`ApiError`](super::ApiError) answers with), the bearer scheme, and the error answers any
//! operation can give, added by [`complete`] from what the operation takes, so no operation
//! forgets one.

use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Type;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, ObjectBuilder, OpenApi, PathItem, Ref, RefOr, Schema,
};
use utoipa::{PartialSchema, ToSchema};

/// The name of the bearer security scheme (`Authorization: Bearer <access_token>`).
pub const BEARER: &str = "bearer";

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's stable code and its message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `validation_error`, `rate_limited`.
    #[schema(value_type = String)]
    pub code: &'static str,
    /// For people; never internal details.
    pub message: String,
}

/// What a text field of a request body may hold, as the domain's parsers check it (after
/// trimming): [`text_field`] states it as a pattern, so the fuzzer generates text they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRule {
    /// Not blank; no control character but tab and newline (titles, questions, options).
    Required,
    /// May be blank; no control character but tab and newline (descriptions).
    Optional,
    /// Not blank; no control character at all (display names).
    Name,
}

/// A character other than a control character, tab and newline excepted (JSON Schema regex).
const TEXT_CHAR: &str = r"[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]";
/// A character other than a control character.
const NAME_CHAR: &str = r"[^\u0000-\u001F\u007F-\u009F]";
/// A character that is neither white space nor a control character.
const VISIBLE_CHAR: &str = r"[^\s\u0000-\u001F\u007F-\u009F]";

/// The schema of a text field of at most `max_chars` characters that follows `rule` (use it
/// with `#[schema(schema_with = ...)]`, from a function that names the domain's limit).
pub fn text_field(max_chars: usize, rule: TextRule) -> utoipa::openapi::Object {
    let (pattern, min_length, description) = match rule {
        TextRule::Required => (
            format!("^{TEXT_CHAR}*{VISIBLE_CHAR}{TEXT_CHAR}*$"),
            Some(1),
            "trimmed; not blank; no control characters but tab and newline",
        ),
        TextRule::Optional => (
            format!("^{TEXT_CHAR}*$"),
            None,
            "trimmed; no control characters but tab and newline",
        ),
        TextRule::Name => (
            format!("^{NAME_CHAR}*{VISIBLE_CHAR}{NAME_CHAR}*$"),
            Some(1),
            "trimmed; not blank; no control characters",
        ),
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(min_length)
        .max_length(Some(max_chars))
        .pattern(Some(pattern))
        .build()
}

/// `?limit=` of a list ([`super::paging`]).
pub const LIMIT: &str = "page size, 1 to 100 (default 20)";
/// `?cursor=` of a list.
pub const CURSOR: &str = "the `next_cursor` of the previous page of this same list";

/// The body of an answer that only says what happened: `{"status": "deleted"}`, …
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// What happened, e.g. `accepted`, `deleted`, `password_reset`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// The error answers [`complete`] adds, by status: when each applies, and its description.
const COMMON: [(&str, &str); 6] = [
    (
        "400",
        "Bad input: `malformed_json`, `invalid_body` or `validation_error` (which field, and why)",
    ),
    (
        "401",
        "`unauthorized`: no bearer token, or one that is invalid, expired or revoked",
    ),
    ("404", "`not_found`: no such resource, or not the caller's"),
    ("413", "`payload_too_large`: the body is over 96 KiB"),
    (
        "415",
        "`unsupported_media_type`: a body that is not `application/json`",
    ),
    (
        "503",
        "`service_unavailable` (or `email_queue_unavailable`): a store, queue or the cache \
         cannot be reached just now, or kept the request past its deadline; try again after \
         `Retry-After`. `busy`: too many password checks at once on this instance",
    ),
];

/// The `Retry-After` header of every 429 and 503.
fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build(),
        ))
        .description(Some("seconds to wait before trying again"))
        .build()
}

/// An error answer with the [`ErrorBody`] schema.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Completes a document built from the functions' descriptions: the [`ErrorBody`] schema and
/// the bearer scheme in its components, and on each operation the error answers it can give
/// that it does not describe itself — 400 (a body or a query), 401 (a bearer token), 404 (an
/// id in its path), 413 and 415 (a body), 503 (any) — each a reference to the shared answer.
/// Every error answer gets the [`ErrorBody`] schema, and every 429 and 503 its `Retry-After`
/// header.
pub fn complete(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
    ErrorBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (status, description) in COMMON {
        let mut response = error_response(description);
        if status == "503" {
            response
                .headers
                .insert("Retry-After".to_owned(), retry_after());
        }
        components
            .responses
            .insert(name(status).to_owned(), RefOr::T(response));
    }
    for (path, item) in &mut doc.paths.paths {
        let has_id = path.contains('{');
        for operation in operations(item) {
            let has_body = operation.request_body.is_some();
            let has_query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
            let has_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let applies = |status: &str| match status {
                "400" => has_body || has_query,
                "401" => has_token,
                "404" => has_id,
                "413" | "415" => has_body,
                _ => true,
            };
            let responses = &mut operation.responses.responses;
            for (status, _) in COMMON {
                if applies(status) {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name(status))));
                }
            }
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !status.starts_with(['4', '5']) {
                    continue;
                }
                if response.content.is_empty() {
                    response.content = error_response(&response.description).content;
                }
                if status == "429" || status == "503" {
                    response
                        .headers
                        .entry("Retry-After".to_owned())
                        .or_insert_with(retry_after);
                }
            }
        }
    }
}

/// Makes every operation of `doc` take the bearer token.
pub fn require_bearer(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            operation.security = Some(vec![SecurityRequirement::new(BEARER, [""; 0])]);
        }
    }
}

/// A link between operations: `(operation, status, operation it leads to, [(parameter,
/// runtime expression)])`, e.g. the `exam_id` of a created exam to the routes that take one.
/// Clients and the fuzzer's stateful phase follow them.
pub type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Adds `links` to the answers of `doc`'s operations (by operation id); a link from an
/// operation or answer `doc` does not have is left out (the document test checks there is
/// none).
pub fn link(doc: &mut OpenApi, links: &[LinkSpec]) {
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            let id = operation.operation_id.clone().unwrap_or_default();
            for (from, status, to, parameters) in links {
                if *from != id {
                    continue;
                }
                let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status)
                else {
                    continue;
                };
                let mut link = LinkBuilder::new().operation_id(*to);
                for (name, expression) in *parameters {
                    link = link.parameter(*name, *expression);
                }
                response
                    .links
                    .insert((*to).to_owned(), RefOr::T(link.build()));
            }
        }
    }
}

/// `doc` as pretty JSON, with a final newline. utoipa 5 writes a link's `operationId` as
/// `operation_id`; this puts it right.
pub fn to_pretty_json(doc: &OpenApi) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(doc)?;
    let links = value["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|links| links.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for link in links {
        if let Some(id) = link.remove("operation_id") {
            link.insert("operationId".to_owned(), id);
        }
    }
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}

/// The component name of a shared error answer.
fn name(status: &str) -> &'static str {
    match status {
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "404" => "NotFound",
        "413" => "PayloadTooLarge",
        "415" => "UnsupportedMediaType",
        _ => "ServiceUnavailable",
    }
}

/// Every operation of a path.
pub fn operations(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}
