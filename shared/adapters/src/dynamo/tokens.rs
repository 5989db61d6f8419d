//! [`DynamoTokens`]: one-time tokens, stored by their hash and expired by the table's TTL. A
//! token is taken by one conditional delete that returns it, so it is taken at most once. A
//! token stored as its user's one valid token of its purpose is put in one transaction with the
//! item naming it (on condition that item still names the token seen before) and the delete of
//! the token it replaces.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use oes_domain::ports::{StoreUnavailable, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::TokenHash;

use super::schema::{LatestTokenItem, TokenItem, latest_token_key, token_key};
use super::{TRIES, Table, from_item, only, s, to_item, to_value, unless_refused};

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

    #[tracing::instrument(skip_all, fields(purpose = ?token.purpose))]
    async fn replace(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        let latest_key = latest_token_key(&token.user_id, token.purpose);
        let item = to_item(&TokenItem::new(token), "encoding a token")?;
        let latest = to_item(&LatestTokenItem::new(token), "encoding a token's place")?;
        for _ in 0..TRIES {
            let seen: Option<LatestTokenItem> = self
                .table
                .read(latest_key.clone(), "reading a user's valid token")
                .await?;
            let mut items = vec![self.table.put(item.clone(), None)?];
            match seen {
                None => items.push(
                    self.table
                        .put(latest.clone(), only("attribute_not_exists(pk)"))?,
                ),
                Some(seen) => {
                    let condition = HashMap::from([(":seen".to_owned(), s(&seen.token_hash))]);
                    items.push(
                        self.table
                            .put(latest.clone(), Some(("token_hash = :seen", condition)))?,
                    );
                    // Taken or expired already, it is simply not there.
                    let replaced = TokenHash::from_stored(seen.token_hash);
                    items.push(self.table.delete(token_key(&replaced), None)?);
                }
            }
            if self
                .table
                .transact(items, "replacing a token")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreUnavailable::new(
            "replacing a token",
            format!("another replace of the same token won {TRIES} races in a row"),
        ))
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
