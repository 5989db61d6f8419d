//! JSON request bodies: size limit, content type, and serde errors turned into 4xx answers.

use http::StatusCode;
use http::header::CONTENT_TYPE;
use lambda_http::Request;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Largest accepted request body: the largest question the limits allow (2,000 characters and
/// ten options of 500, `oes_domain::exam::limits`) written with every character `\u`-escaped
/// as a surrogate pair, 12 bytes each (84,000 bytes of text), with room for its field names.
/// The limits are in characters; a body limit below this made them unreachable for text that
/// is not ASCII (a question of 2,000 CJK characters was refused at 16 KiB).
pub const MAX_BODY_BYTES: usize = 96 * 1024;

/// Parses the request body as JSON into `T` (declare `T` with `deny_unknown_fields` to refuse
/// extra fields). Errors: 413 `payload_too_large`, 415 `unsupported_media_type`,
/// 400 `malformed_json` (not JSON) and 400 `invalid_body` (JSON of the wrong shape).
pub fn parse_json<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let is_json = content_type
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", error.to_string())
            }
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {error}"),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/auth/login");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body)).expect("valid request")
    }

    fn code(content_type: Option<&str>, body: &str) -> Result<(), (u16, &'static str)> {
        parse_json::<Login>(&request(content_type, body))
            .map(|_| ())
            .map_err(|e| (e.status.as_u16(), e.code))
    }

    #[test]
    fn each_kind_of_bad_body_has_its_own_answer() {
        let json = Some("application/json");
        assert_eq!(code(json, r#"{"email":"a","password":"b"}"#), Ok(()));
        assert_eq!(code(None, r#"{"email":"a","password":"b"}"#), Ok(()));
        assert_eq!(code(json, ""), Err((400, "malformed_json")));
        assert_eq!(code(json, "{\"email\":"), Err((400, "malformed_json")));
        assert_eq!(code(json, r#"{"email":"a"}"#), Err((400, "invalid_body")));
        assert_eq!(
            code(json, r#"{"email":1,"password":"b"}"#),
            Err((400, "invalid_body"))
        );
        assert_eq!(
            code(json, r#"{"email":"a","password":"b","x":1}"#),
            Err((400, "invalid_body"))
        );
        assert_eq!(code(json, r#"[1,2]"#), Err((400, "invalid_body")));
        assert_eq!(
            code(Some("text/plain"), "{}"),
            Err((415, "unsupported_media_type"))
        );
        let big = format!(
            r#"{{"email":"{}","password":"b"}}"#,
            "a".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(code(json, &big), Err((413, "payload_too_large")));
    }
}
