//! [`DynamoTokens`]: one-time tokens, stored by their hash and expired by the table's TTL. A
//! token is taken by one conditional delete that returns it, so it is taken at most once.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use oes_domain::ports::{StoreUnavailable, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::TokenHash;

use super::schema::{TokenItem, token_key};
use super::{Table, from_item, to_item, to_value, unless_refused};

/// One-time tokens in DynamoDB, expired by the table's TTL.
#[derive(Clone)]
pub struct DynamoTokens {
    table: Table,
}

impl DynamoTokens {
    /// Tokens in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[async_trait]
impl TokenStore for DynamoTokens {
    #[tracing::instrument(skip_all, fields(purpose = ?token.purpose))]
    async fn put(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        let item = to_item(&TokenItem::new(token), "encoding a token")?;
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreUnavailable::new("storing a token", e))?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreUnavailable> {
        if purposes.is_empty() {
            return Ok(None);
        }
        let mut values = HashMap::new();
        let mut placeholders = Vec::new();
        for (i, purpose) in purposes.iter().enumerate() {
            let placeholder = format!(":p{i}");
            values.insert(
                placeholder.clone(),
                to_value(purpose, "encoding a purpose")?,
            );
            placeholders.push(placeholder);
        }
        let condition = format!(
            "attribute_exists(pk) AND purpose IN ({})",
            placeholders.join(", ")
        );
        let out = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(token_key(hash)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let item = unless_refused(
            out,
            DeleteItemError::is_conditional_check_failed_exception,
            "taking a token",
        )?
        .and_then(|out| out.attributes);
        let Some(item) = item else { return Ok(None) };
        let item: TokenItem = from_item(item, "decoding a token")?;
        Ok(Some(item.into_token(hash.clone())))
    }
}
