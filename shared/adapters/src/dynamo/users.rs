//! [`DynamoUsers`]: accounts and the email claims that keep addresses unique. An account is
//! created, deleted and moved to another address in one transaction with its claims; a claim is
//! only ever deleted by its own account (`user_id = :id`). A reset and a move, made on a one-time
//! link's behalf, are conditioned on the account's token version and address being the link's.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, Update};

use oes_domain::ports::{
    LinkedState, StoreError, StoreUnavailable, UserConflict, UserStore, UserUpdate,
};
use oes_domain::user::{Email, User, UserId};

use super::schema::{EmailItem, UserItem, email_key, user_key};
use super::{Cancelled, Item, Table, from_item, n, only, s, to_item, unless_refused};

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
        let mut condition = "attribute_exists(pk)";
        let mut link = None;
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
            UserUpdate::Password { hash, linked } => {
                names.insert("#status".to_owned(), "status".to_owned());
                values.insert(":hash".into(), s(hash));
                values.insert(":active".into(), s("active"));
                values.insert(":one".into(), n(1));
                values.insert(":version".into(), n(linked.token_version));
                values.insert(":email".into(), s(linked.email.as_str()));
                condition = "attribute_exists(pk) AND token_version = :version AND email = :email";
                link = Some(linked);
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
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = unless_refused(
            out,
            UpdateItemError::is_conditional_check_failed_exception,
            "updating a user",
        )?;
        match (out, link) {
            (Some(out), _) => Ok(user_from_item(out.attributes.unwrap_or_default())?),
            // A reset: the account is absent or no longer as its link saw it (if it looks so
            // again, it changed and changed back meanwhile).
            (None, Some(linked)) => Err(self
                .why_refused(id, &linked, UserConflict::LinkVoid)
                .await?),
            (None, None) => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        if linked.email == *new_email {
            // Nothing to move (and one transaction cannot both claim and free one item).
            let user = self.get(id).await?.ok_or(StoreError::NotFound)?;
            if !linked.holds_for(&user) {
                return Err(StoreError::Conflict(UserConflict::LinkVoid));
            }
            return Ok(user);
        }
        // No read first: the transaction holds only if the account is still in the state
        // `linked` (which names the address to free), and says why not after the fact.
        let claim = to_item(
            &EmailItem::new(new_email, id.clone()),
            "encoding an email claim",
        )?;
        let update = Update::builder()
            .set_key(Some(user_key(id)))
            .update_expression("SET email = :new, #status = :active, updated_at = :now")
            .condition_expression("email = :old AND token_version = :version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":new", s(new_email.as_str()))
            .expression_attribute_values(":old", s(linked.email.as_str()))
            .expression_attribute_values(":version", n(linked.token_version))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", n(now));
        let items = vec![
            self.table.put(claim, only("attribute_not_exists(pk)"))?,
            self.table
                .delete(email_key(&linked.email), Some(owned_by(id)))?,
            self.table.update(update)?,
        ];
        if let Err(Cancelled) = self
            .table
            .transact(items, "changing an email address")
            .await?
        {
            // The account is absent or changed since the link, or the new address is taken.
            return Err(self
                .why_refused(id, linked, UserConflict::EmailTaken)
                .await?);
        }
        self.get(id).await?.ok_or(StoreError::NotFound)
    }
}

impl DynamoUsers {
    /// Why a write to account `id` conditioned on `linked` was refused, read after the fact:
    /// `NotFound` if the account is absent, `LinkVoid` if it is no longer in that state,
    /// otherwise `otherwise` (the write's other condition).
    async fn why_refused(
        &self,
        id: &UserId,
        linked: &LinkedState,
        otherwise: UserConflict,
    ) -> Result<StoreError<UserConflict>, StoreUnavailable> {
        Ok(match self.get(id).await? {
            None => StoreError::NotFound,
            Some(user) if !linked.holds_for(&user) => StoreError::Conflict(UserConflict::LinkVoid),
            Some(_) => StoreError::Conflict(otherwise),
        })
    }
}
