//! DynamoDB adapters: accounts and one-time tokens in one table (`pk`/`sk` string keys, TTL
//! attribute `expires_at`; see [`crate::resources`]).
//!
//! Items:
//! - `USER#<id>` / `USER`: the account.
//! - `EMAIL#<address>` / `EMAIL`: claims an address for one account (uniqueness), written in the
//!   same transaction as the account.
//! - `TOKEN#<sha256>` / `TOKEN`: a one-time token, removed by a conditional delete when used.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use crate::ports::{StoreError, StoredToken, TokenPurpose, TokenStore, UserStore, UserUpdate};
use crate::security::TokenHash;
use crate::user::{Email, User, UserId};

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn user_key(id: &UserId) -> Item {
    key(format!("USER#{id}"), "USER")
}

fn email_key(email: &Email) -> Item {
    key(format!("EMAIL#{email}"), "EMAIL")
}

fn token_key(hash: &TokenHash) -> Item {
    key(format!("TOKEN#{}", hash.as_str()), "TOKEN")
}

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    user: User,
}

#[derive(Serialize, Deserialize)]
struct EmailItem {
    pk: String,
    sk: String,
    user_id: UserId,
}

#[derive(Serialize, Deserialize)]
struct TokenItem {
    pk: String,
    sk: String,
    purpose: TokenPurpose,
    user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_email: Option<Email>,
    token_version: u64,
    expires_at: i64,
}

fn to_item<T: Serialize>(value: &T, context: &'static str) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::unavailable(context, e))
}

fn from_item<T: for<'de> Deserialize<'de>>(
    item: Item,
    context: &'static str,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::unavailable(context, e))
}

fn user_from_item(item: Item) -> Result<User, StoreError> {
    from_item::<UserItem>(item, "decoding a user item").map(|i| i.user)
}

/// Accounts in DynamoDB.
#[derive(Clone)]
pub struct DynamoUsers {
    client: Client,
    table: String,
}

impl DynamoUsers {
    /// Accounts in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::unavailable("building a put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(
        &self,
        key: Item,
        condition: Option<(&str, Item)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some((expression, values)) = condition {
            delete = delete
                .condition_expression(expression)
                .set_expression_attribute_values(Some(values));
        }
        let delete = delete
            .build()
            .map_err(|e| StoreError::unavailable("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: &'static str,
        context: &'static str,
    ) -> Result<(), StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                Err(StoreError::Conflict(conflict))
            }
            Err(e) => Err(StoreError::unavailable(context, e)),
        }
    }
}

#[async_trait]
impl UserStore for DynamoUsers {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        let user_item = to_item(
            &UserItem {
                pk: format!("USER#{}", user.id),
                sk: "USER".into(),
                user: user.clone(),
            },
            "encoding a user",
        )?;
        let email_item = to_item(
            &EmailItem {
                pk: format!("EMAIL#{}", user.email),
                sk: "EMAIL".into(),
                user_id: user.id.clone(),
            },
            "encoding an email claim",
        )?;
        let items = vec![
            self.put(user_item, "attribute_not_exists(pk)")?,
            self.put(email_item, "attribute_not_exists(pk)")?,
        ];
        self.transact(items, "email_taken", "creating a user").await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn delete(&self, user: &User) -> Result<(), StoreError> {
        let owner = HashMap::from([(":id".to_owned(), s(user.id.as_str()))]);
        let items = vec![
            self.delete(user_key(&user.id), None)?,
            self.delete(email_key(&user.email), Some(("user_id = :id", owner)))?,
        ];
        self.transact(items, "concurrent_update", "deleting a user")
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("reading a user", e))?;
        out.item.map(user_from_item).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(email_key(email)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("reading an email claim", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let claim: EmailItem = from_item(item, "decoding an email claim")?;
        self.get(&claim.user_id).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn update(&self, id: &UserId, update: UserUpdate, now: i64) -> Result<User, StoreError> {
        let mut values = HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]);
        let mut names = HashMap::new();
        let expression = match update {
            UserUpdate::Name(name) => {
                names.insert("#name".to_owned(), "name".to_owned());
                values.insert(":name".into(), s(name.as_str()));
                "SET #name = :name, updated_at = :now"
            }
            UserUpdate::Verified => {
                names.insert("#status".to_owned(), "status".to_owned());
                values.insert(":active".into(), s("active"));
                "SET #status = :active, updated_at = :now"
            }
            UserUpdate::Password(hash) => {
                names.insert("#status".to_owned(), "status".to_owned());
                values.insert(":hash".into(), s(hash));
                values.insert(":active".into(), s("active"));
                values.insert(":one".into(), AttributeValue::N("1".into()));
                "SET password_hash = :hash, #status = :active, updated_at = :now ADD token_version :one"
            }
            UserUpdate::Role(role) => {
                names.insert("#role".to_owned(), "role".to_owned());
                values.insert(":role".into(), s(role.to_string()));
                values.insert(":one".into(), AttributeValue::N("1".into()));
                "SET #role = :role, updated_at = :now ADD token_version :one"
            }
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => user_from_item(out.attributes.unwrap_or_default()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(StoreError::unavailable("updating a user", e)),
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        now: i64,
    ) -> Result<User, StoreError> {
        let user = self.get(id).await?.ok_or(StoreError::NotFound)?;
        let claim = to_item(
            &EmailItem {
                pk: format!("EMAIL#{new_email}"),
                sk: "EMAIL".into(),
                user_id: id.clone(),
            },
            "encoding an email claim",
        )?;
        let owner = HashMap::from([(":id".to_owned(), s(id.as_str()))]);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .update_expression("SET email = :new, #status = :active, updated_at = :now")
            .condition_expression("email = :old")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":new", s(new_email.as_str()))
            .expression_attribute_values(":old", s(user.email.as_str()))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .build()
            .map_err(|e| StoreError::unavailable("building an update", e))?;
        let items = vec![
            self.put(claim, "attribute_not_exists(pk)")?,
            self.delete(email_key(&user.email), Some(("user_id = :id", owner)))?,
            TransactWriteItem::builder().update(update).build(),
        ];
        self.transact(items, "email_taken", "changing an email address")
            .await?;
        self.get(id).await?.ok_or(StoreError::NotFound)
    }
}

/// One-time tokens in DynamoDB, expired by the table's TTL.
#[derive(Clone)]
pub struct DynamoTokens {
    client: Client,
    table: String,
}

impl DynamoTokens {
    /// Tokens in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl TokenStore for DynamoTokens {
    #[tracing::instrument(skip_all, fields(purpose = ?token.purpose))]
    async fn put(&self, token: &StoredToken) -> Result<(), StoreError> {
        let item = to_item(
            &TokenItem {
                pk: format!("TOKEN#{}", token.hash.as_str()),
                sk: "TOKEN".into(),
                purpose: token.purpose,
                user_id: token.user_id.clone(),
                new_email: token.new_email.clone(),
                token_version: token.token_version,
                expires_at: token.expires_at,
            },
            "encoding a token",
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::unavailable("storing a token", e))?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreError> {
        if purposes.is_empty() {
            return Ok(None);
        }
        let mut values = HashMap::new();
        let mut placeholders = Vec::new();
        for (i, purpose) in purposes.iter().enumerate() {
            let placeholder = format!(":p{i}");
            let value = serde_dynamo::to_attribute_value(purpose)
                .map_err(|e| StoreError::unavailable("encoding a purpose", e))?;
            values.insert(placeholder.clone(), value);
            placeholders.push(placeholder);
        }
        let condition = format!(
            "attribute_exists(pk) AND purpose IN ({})",
            placeholders.join(", ")
        );
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(token_key(hash)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let item = match out {
            Ok(out) => out.attributes,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                None
            }
            Err(e) => return Err(StoreError::unavailable("taking a token", e)),
        };
        let Some(item) = item else { return Ok(None) };
        let item: TokenItem = from_item(item, "decoding a token")?;
        Ok(Some(StoredToken {
            hash: hash.clone(),
            purpose: item.purpose,
            user_id: item.user_id,
            new_email: item.new_email,
            token_version: item.token_version,
            expires_at: item.expires_at,
        }))
    }
}
