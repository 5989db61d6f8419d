//! [`DynamoTokens`]: one-time tokens, stored by their hash and expired by the table's TTL. A
//! token is taken by one conditional update that marks it taken by this take and returns it, so
//! it is taken at most once, and a take whose answer was lost, sent again by the SDK, finds the
//! mark its own and still returns it (a delete sent again would find nothing, and burn the
//! user's link); the taken token is then deleted, or expires. A
//! token stored as its user's one valid token of its purpose is put in one transaction with the
//! item naming it (on condition that item still names the token seen before) and the delete of
//! the token it replaces; refused [`TRIES`] times in a row (each time another replace stored a
//! newer token first), it stores nothing and says so.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use oes_domain::ports::{Replaced, StoreUnavailable, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::TokenHash;

use super::schema::{LatestTokenItem, TokenItem, latest_token_key, token_key};
use super::{TRIES, Table, from_item, has, only, s, to_item, to_value, update_or_refusal};

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
    async fn replace(&self, token: &StoredToken) -> Result<Replaced, StoreUnavailable> {
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
                return Ok(Replaced::Stored);
            }
        }
        // Not a failure: a failure would tell that the user has tokens (only they are replaced).
        tracing::info!(
            tries = TRIES,
            "other replaces of the same token won every race"
        );
        Ok(Replaced::Outrun)
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
            "attribute_exists(pk) AND purpose IN ({}) AND attribute_not_exists(taken_by)",
            placeholders.join(", ")
        );
        let take = uuid::Uuid::new_v4().to_string();
        values.insert(":take".to_owned(), s(take.as_str()));
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(token_key(hash)))
            .update_expression("SET taken_by = :take")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let item = match update_or_refusal(out, "taking a token")? {
            Ok(out) => out.attributes.unwrap_or_default(),
            // This take landed before: its answer was lost and the SDK sent it again.
            Err(Some(item)) if has(&item, "taken_by", &take) => item,
            Err(_) => return Ok(None),
        };
        // Taken: marked, it cannot be taken again; deleting it is tidiness (it expires anyway).
        let removed = self.table.remove(token_key(hash), "deleting a taken token");
        if let Err(error) = removed.await {
            let error = DisplayErrorContext(&error);
            tracing::warn!(%error, "could not delete a taken token; it expires");
        }
        let item: TokenItem = from_item(item, "decoding a token")?;
        Ok(Some(item.into_token(hash.clone())))
    }

    /// The token's item put again (over the taken one, if its delete failed), on condition that
    /// no `replace` named another token its user's valid one: one transaction, so a replace
    /// cannot land between the check and the put.
    #[tracing::instrument(skip_all, fields(purpose = ?token.purpose))]
    async fn give_back(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        let item = to_item(&TokenItem::new(token), "encoding a token")?;
        let latest_key = latest_token_key(&token.user_id, token.purpose);
        let this = HashMap::from([(":this".to_owned(), s(token.hash.as_str()))]);
        let items = vec![
            self.table.put(item, None)?,
            self.table.check(
                latest_key,
                Some(("attribute_not_exists(pk) OR token_hash = :this", this)),
            )?,
        ];
        if self
            .table
            .transact(items, "giving a token back")
            .await?
            .is_err()
        {
            tracing::info!("a newer token was stored meanwhile; this one stays taken");
        }
        Ok(())
    }
}
