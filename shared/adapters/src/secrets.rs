//! Secrets Manager, read once at init: the JWT signing key. In AWS the stack generates the secret
//! (`{"secret": "<64 characters>"}`) and gives the functions only its ARN, so the key never
//! appears in the function configuration.

use aws_sdk_secretsmanager::Client;

use oes_domain::ports::BoxError;

/// The value of the secret `secret_id` (an ARN or a name): the `secret` field if the secret is a
/// JSON object with one, else the whole secret string.
pub async fn read_secret(client: &Client, secret_id: &str) -> Result<String, BoxError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| format!("reading the secret {secret_id}: {e}"))?;
    let raw = out
        .secret_string()
        .ok_or_else(|| format!("the secret {secret_id} has no string value"))?;
    Ok(secret_field(raw).unwrap_or_else(|| raw.to_owned()))
}

fn secret_field(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    value.get("secret")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_field_of_a_json_secret_is_used_and_a_plain_secret_as_is() {
        assert_eq!(secret_field(r#"{"secret":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(secret_field("plain-value"), None);
        assert_eq!(secret_field(r#"{"other":"x"}"#), None);
    }
}
