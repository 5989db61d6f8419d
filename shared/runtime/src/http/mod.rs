//! HTTP helpers shared by the API functions: the runtime loop and API Gateway's event made into a
//! request ([`run`], [`request_from_str`]), the JSON error shape and its one mapping to a
//! response, JSON request bodies (and their whole numbers), JSON responses, bearer tokens, the
//! request log line and the time a request has; and what the functions' OpenAPI descriptions
//! share ([`openapi`]); the lists' paging ([`paging`]).

mod body;
mod deadline;
mod error;
mod event;
pub mod openapi;
pub mod paging;
mod response;
mod whole;

pub use body::{MAX_BODY_BYTES, parse_json};
pub use deadline::{ANSWER_MARGIN, time_left, within_deadline};
pub use error::{ApiError, error_chain, log_error_chain};
pub use event::{request_from_str, run};
pub use response::{
    bearer_token, client_ip, finish, json, no_content_json, request_span, route_path,
    with_cache_status,
};
pub use whole::Whole;
