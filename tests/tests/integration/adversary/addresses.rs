//! Look-alike addresses (issue 12, item 9): an address that renders like another one must not
//! make a second account, and an address SES would refuse for good must be refused at the door
//! with a clear 400 — not accepted, then dead-lettered. oes accepts ASCII addresses only
//! (internationalised domains in their `xn--` form); it does not normalise Unicode.

use oes_tests::{call, in_memory_auth};
use serde_json::{Value, json};

async fn register(service: &auth_api::AuthService, email: &str) -> (u16, Value) {
    let payload = json!({"email": email, "password": "correct horse", "name": "Ada"}).to_string();
    call(service, "POST", "/auth/register", Some(&payload), None).await
}

#[tokio::test]
async fn a_look_alike_of_a_registered_address_is_refused_not_made_a_second_account() {
    let (service, _) = in_memory_auth();
    assert_eq!(register(&service, "ada@example.com").await.0, 201);
    // A Cyrillic "а" (U+0430) in the local part, then in the domain.
    for look_alike in ["\u{430}da@example.com", "ada@ex\u{430}mple.com"] {
        let (status, body) = register(&service, look_alike).await;
        assert_eq!(status, 400, "{look_alike}: {body}");
        assert_eq!(body["error"]["code"], "validation_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("ASCII"), "the message says why: {message}");
    }
}

#[tokio::test]
async fn an_internationalised_domain_is_accepted_only_in_its_ascii_form() {
    let (service, _) = in_memory_auth();
    let (status, body) = register(&service, "ada@b\u{fc}cher.example").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = register(&service, "ada@xn--bcher-kva.example").await;
    assert_eq!(
        status, 201,
        "the punycode form is an ordinary ASCII domain: {body}"
    );
}
