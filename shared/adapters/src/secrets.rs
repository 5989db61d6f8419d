//! Secrets Manager, read once at init: the JWT signing key. In AWS the stack generates the secret
//! (`{"secret": "<64 characters>"}`) and gives the functions only its ARN, so the key never
//! appears in the function configuration.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use oes_domain::ports::BoxError;

/// The value of the secret `secret_id` (an ARN or a name): the `secret` field of a JSON object
/// (what the stack generates), or the whole secret string if it is not one. An object without a
/// string `secret` is refused: its JSON text would otherwise become the key.
pub async fn read_secret(client: &Client, secret_id: &str) -> Result<String, BoxError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        // The cause too (not found, access denied, no route to the endpoint): the SDK error's
        // own text is only "service error" or "dispatch failure".
        .map_err(|e| {
            format!(
                "reading the secret {secret_id}: {}",
                DisplayErrorContext(&e)
            )
        })?;
    let raw = out
        .secret_string()
        .ok_or_else(|| format!("the secret {secret_id} has no string value"))?;
    secret_value(raw).ok_or_else(|| {
        format!("the secret {secret_id} is a JSON object without a string field \"secret\"").into()
    })
}

/// The key in a secret string: its `secret` field if it is a JSON object (`None` if that field is
/// missing or not a string), else the string itself.
fn secret_value(raw: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(object)) => object.get("secret")?.as_str().map(str::to_owned),
        _ => Some(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_field_of_a_json_secret_is_used_and_a_plain_secret_as_is() {
        assert_eq!(secret_value(r#"{"secret":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(secret_value("plain-value").as_deref(), Some("plain-value"));
    }

    #[test]
    fn a_json_secret_without_a_string_secret_field_is_no_key() {
        assert_eq!(secret_value(r#"{"jwt_key":"hunter2hunter2"}"#), None);
        assert_eq!(secret_value(r#"{"secret":12345678901234567890}"#), None);
    }
}
