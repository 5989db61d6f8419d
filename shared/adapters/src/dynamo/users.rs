//! [`DynamoUsers`]: accounts and the email claims that keep addresses unique. An account is
//! created, deleted and moved to another address in one transaction with its claims; a claim is
//! only ever deleted by its own account (`user_id = :id`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, Update};

use oes_domain::ports::{StoreError, StoreUnavailable, UserConflict, UserStore, UserUpdate};
use oes_domain::user::{Email, User, UserId};

use super::schema::{EmailItem, UserItem, email_key, user_key};
use super::{Item, Table, from_item, n, only, s, to_item, unless_refused};

/// Accounts in DynamoDB.
#[derive(Clone)]
pub struct DynamoUsers {
    table: Table,
}

impl DynamoUsers {
    /// Accounts in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

fn user_from_item(item: Item) -> Result<User, StoreUnavailable> {
    from_item::<UserItem>(item, "decoding a user item").map(|i| i.user)
}

/// The condition that the claim is `id`'s.
fn owned_by(id: &UserId) -> (&'static str, Item) {
    (
        "user_id = :id",
        HashMap::from([(":id".to_owned(), s(id.as_str()))]),
    )
}

#[async_trait]
impl UserStore for DynamoUsers {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let user_item = to_item(&UserItem::new(user.clone()), "encoding a user")?;
        let email_item = to_item(
            &EmailItem::new(&user.email, user.id.clone()),
            "encoding an email claim",
        )?;
        let items = vec![
            self.table
                .put(user_item, only("attribute_not_exists(pk)"))?,
            self.table
                .put(email_item, only("attribute_not_exists(pk)"))?,
        ];
        self.table
            .transact_or(items, UserConflict::EmailTaken, "creating a user")
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let items = vec![
            self.table.delete(user_key(&user.id), None)?,
            self.table
                .delete(email_key(&user.email), Some(owned_by(&user.id)))?,
        ];
        self.table
            .transact_or(items, UserConflict::ConcurrentUpdate, "deleting a user")
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        let item = self.table.get(user_key(id), "reading a user").await?;
        item.map(user_from_item).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        let Some(item) = self
            .table
            .get(email_key(email), "reading an email claim")
            .await?
        else {
            return Ok(None);
        };
        let claim: EmailItem = from_item(item, "decoding an email claim")?;
        self.get(&claim.user_id).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        let mut values = HashMap::from([(":now".to_owned(), n(now))]);
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
                values.insert(":one".into(), n(1));
                "SET password_hash = :hash, #status = :active, updated_at = :now ADD token_version :one"
            }
            UserUpdate::Role(role) => {
                names.insert("#role".to_owned(), "role".to_owned());
                values.insert(":role".into(), s(role.to_string()));
                values.insert(":one".into(), n(1));
                "SET #role = :role, updated_at = :now ADD token_version :one"
            }
        };
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(user_key(id)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = unless_refused(
            out,
            UpdateItemError::is_conditional_check_failed_exception,
            "updating a user",
        )?
        .ok_or(StoreError::NotFound)?;
        Ok(user_from_item(out.attributes.unwrap_or_default())?)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        let user = self.get(id).await?.ok_or(StoreError::NotFound)?;
        if user.email == *new_email {
            // Nothing to move (and one transaction cannot both claim and free one item).
            return Ok(user);
        }
        let claim = to_item(
            &EmailItem::new(new_email, id.clone()),
            "encoding an email claim",
        )?;
        let update = Update::builder()
            .set_key(Some(user_key(id)))
            .update_expression("SET email = :new, #status = :active, updated_at = :now")
            .condition_expression("email = :old")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":new", s(new_email.as_str()))
            .expression_attribute_values(":old", s(user.email.as_str()))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", n(now));
        let items = vec![
            self.table.put(claim, only("attribute_not_exists(pk)"))?,
            self.table
                .delete(email_key(&user.email), Some(owned_by(id)))?,
            self.table.update(update)?,
        ];
        self.table
            .transact_or(items, UserConflict::EmailTaken, "changing an email address")
            .await?;
        self.get(id).await?.ok_or(StoreError::NotFound)
    }
}
