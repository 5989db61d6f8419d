//! The API Gateway HTTP API (payload format 2.0) event, field for field in the order AWS
//! documents and sends it. The local gateway and the `events/` fixtures both build this one
//! shape.

use std::collections::BTreeMap;

use serde::Serialize;

/// A payload-format-2.0 event, as a Lambda behind an HTTP API receives it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiEvent {
    /// Always `"2.0"`.
    pub version: &'static str,
    /// `METHOD /template` for an explicit route, `$default` for the catch-all route.
    pub route_key: String,
    /// The path as sent, without the query string.
    pub raw_path: String,
    /// The query string as sent, without `?` (empty when there is none).
    pub raw_query_string: String,
    /// Header names in lower case; repeated headers joined with commas.
    pub headers: BTreeMap<String, String>,
    /// The decoded query; no key when the query is empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub query_string_parameters: BTreeMap<String, String>,
    /// Who sent it, when, through which route.
    pub request_context: RequestContext,
    /// The template's `{…}` segments of `raw_path`; no key when the route has none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub path_parameters: BTreeMap<String, String>,
    /// The body (base64 when `is_base64_encoded`); no key when the request has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether `body` is base64.
    pub is_base64_encoded: bool,
}

/// `requestContext`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The API owner's account.
    pub account_id: String,
    /// The API's id (the first label of its default domain name).
    pub api_id: String,
    /// The host the client called.
    pub domain_name: String,
    /// The first label of `domain_name`.
    pub domain_prefix: String,
    /// Method, path, protocol, client address and user agent.
    pub http: HttpDetails,
    /// API Gateway's id for this request.
    pub request_id: String,
    /// Same as the event's `routeKey`.
    pub route_key: String,
    /// `$default` for the auto-deployed stage.
    pub stage: String,
    /// When the request arrived, as `22/Nov/2026:01:00:00 +0000` (see [`request_time`]).
    pub time: String,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub time_epoch: i64,
}

/// `requestContext.http`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpDetails {
    /// The request method.
    pub method: String,
    /// Same as `rawPath`.
    pub path: String,
    /// `HTTP/1.1`, `HTTP/2.0`…
    pub protocol: String,
    /// The client's address.
    pub source_ip: String,
    /// The `user-agent` header (empty when there is none).
    pub user_agent: String,
}

/// `requestContext.time` for `epoch_ms`: `dd/Mon/yyyy:HH:MM:SS +0000`, in UTC; empty if the
/// instant is out of range.
pub fn request_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000)) else {
        return String::new();
    };
    let month = MONTHS[usize::from(u8::from(at.month())) - 1];
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::request_time;

    #[test]
    fn the_request_time_is_in_api_gateway_format() {
        assert_eq!(
            request_time(1_795_309_200_000),
            "22/Nov/2026:01:00:00 +0000"
        );
        assert_eq!(
            request_time(1_795_310_881_999),
            "22/Nov/2026:01:28:01 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(i64::MAX), "");
    }
}
