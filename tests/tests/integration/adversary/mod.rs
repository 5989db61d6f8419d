//! The project's threat model, as attacks: each test is named after what an adversary tries, and
//! asserts that it fails. Grouped by what is attacked; every test here failed on the code before
//! its fix (issue 12).

mod account;
mod addresses;
mod exam_integrity;
mod sign_in;

use auth_api::AuthService;
use oes_tests::{read, request_from};
use serde_json::{Value, json};

/// The `n`-th address of a botnet (`10.x.y.z`: none of them an owner's or an attacker's own).
fn bot(n: u64) -> [u8; 4] {
    let [.., a, b, c] = n.to_be_bytes();
    [10, a, b, c]
}

/// `(status, body)` is the 400 `invalid_token` a void link gets; `why` names the link.
#[track_caller]
fn assert_invalid_token((status, body): (u16, Value), why: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_token")),
        "{why}: {body}"
    );
}

/// One `POST /auth/login` from `ip`, with the device token `device` when given.
async fn sign_in_from(
    service: &AuthService,
    ip: [u8; 4],
    email: &str,
    password: &str,
    device: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"email": email, "password": password});
    if let Some(device) = device {
        body["device_token"] = json!(device);
    }
    let request = request_from(ip, "POST", "/auth/login", Some(&body.to_string()), None);
    let response = auth_api::handle(service, request)
        .await
        .expect("no invocation error");
    read(&response)
}
