//! [`DynamoUsers`]: accounts and the email claims that keep addresses unique. An account is
//! created, replaced, deleted and moved to another address in one transaction with its claims; a
//! claim is only ever deleted or taken over by its own account's writes (`user_id = :id`), or by
//! a new account once the unverified account it belonged to has expired. A move adds 1 to the
//! account's `email_version` (absent, 0, from accounts written before it was recorded). A reset
//! and a move, made on a one-time link's behalf, are conditioned on the account's token version,
//! address and email version being the link's.
//!
//! An unverified account and its claim carry the table's TTL (`expires_at`, see
//! [`User::expires_at`]). The TTL deletes them in its own time (DynamoDB within days, the
//! emulator never), so every read and write treats them as absent once it has passed; a proof of
//! the address (verification, reset, move) removes it from the account and its claim in one
//! transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem, Update};

use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::{
    LinkedState, StoreError, StoreUnavailable, UserConflict, UserStore, UserUpdate,
};
use oes_domain::user::{Email, User, UserId, UserStatus};

use super::schema::{EmailItem, UserItem, email_key, user_key};
use super::{Item, TRIES, Table, from_item, n, only, s, to_item, to_value, unless_refused};

/// The condition that an item has not expired at `:now`.
const NOT_EXPIRED: &str = "(attribute_not_exists(expires_at) OR expires_at > :now)";

/// The condition that an address is free at `:now`: unclaimed, or claimed by an unverified
/// account that has expired.
const FREE: &str = "attribute_not_exists(pk) OR expires_at <= :now";

/// The condition that the account's email version is `:moves`, the one of `linked`: an account
/// written before the version was recorded has none, which is 0.
fn moved_as(linked: &LinkedState) -> &'static str {
    if linked.email_version == 0 {
        "(attribute_not_exists(email_version) OR email_version = :moves)"
    } else {
        "email_version = :moves"
    }
}

/// Accounts in DynamoDB.
#[derive(Clone)]
pub struct DynamoUsers {
    table: Table,
}

/// A user id no account has (ids are random UUIDs, and this one is not a version 4 UUID): the
/// read [`DynamoUsers::find_by_email`] makes for an address without an account.
const NO_ACCOUNT: &str = "00000000-0000-0000-0000-000000000000";

impl DynamoUsers {
    /// Accounts in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

/// Whether an item with this TTL has expired now (reads do not take a time: they use the
/// system's, as DynamoDB's TTL does).
fn expired(expires_at: Option<i64>) -> bool {
    expires_at.is_some_and(|expires_at| expires_at <= SystemClock.now())
}

/// The account an item holds, unless it has expired.
fn user_from_item(item: Item) -> Result<Option<User>, StoreUnavailable> {
    let item: UserItem = from_item(item, "decoding a user item")?;
    Ok((!expired(item.expires_at)).then_some(item.user))
}

/// The condition that the claim is `id`'s.
fn owned_by(id: &UserId) -> (&'static str, Item) {
    (
        "user_id = :id",
        HashMap::from([(":id".to_owned(), s(id.as_str()))]),
    )
}

/// The condition that the address is free at `now`.
fn free_at(now: i64) -> (&'static str, Item) {
    (FREE, HashMap::from([(":now".to_owned(), n(now))]))
}

#[async_trait]
impl UserStore for DynamoUsers {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let user_item = to_item(&UserItem::new(user.clone()), "encoding a user")?;
        let email_item = to_item(&EmailItem::of(user), "encoding an email claim")?;
        let items = vec![
            self.table
                .put(user_item, only("attribute_not_exists(pk)"))?,
            self.table.put(email_item, Some(free_at(user.created_at)))?,
        ];
        self.table
            .transact_or(items, UserConflict::EmailTaken, "creating a user")
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        let user_item = to_item(&UserItem::new(user.clone()), "encoding a user")?;
        let email_item = to_item(&EmailItem::of(user), "encoding an email claim")?;
        let items = vec![
            self.delete_unverified(&pending.id)?,
            self.table
                .put(user_item, only("attribute_not_exists(pk)"))?,
            self.table.put(email_item, Some(owned_by(&pending.id)))?,
        ];
        self.table
            .transact_or(
                items,
                UserConflict::ConcurrentUpdate,
                "replacing an unverified user",
            )
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
        Ok(item.map(user_from_item).transpose()?.flatten())
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        let claim: Option<EmailItem> = self
            .table
            .read(email_key(email), "reading an email claim")
            .await?;
        match claim {
            Some(claim) if !expired(claim.expires_at) => self.get(&claim.user_id).await,
            _ => {
                // The read an account's address makes next, of an account no one has: an
                // address without one must not answer a round trip sooner (a sign-in for it
                // would tell, timed, that it has no account).
                self.table
                    .get(
                        user_key(&UserId::from_trusted(NO_ACCOUNT)),
                        "reading a user",
                    )
                    .await?;
                Ok(None)
            }
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        match update {
            UserUpdate::Name(name) => {
                let values = HashMap::from([(":name".to_owned(), s(name.as_str()))]);
                self.update_one(id, "#name = :name", None, ("#name", "name"), values, now)
                    .await
            }
            UserUpdate::Role(role) => {
                let values = HashMap::from([
                    (":role".to_owned(), s(role.to_string())),
                    (":one".to_owned(), n(1)),
                ]);
                let add = Some("token_version :one");
                self.update_one(id, "#role = :role", add, ("#role", "role"), values, now)
                    .await
            }
            UserUpdate::Verified => self.verify(id, now).await,
            UserUpdate::Password { hash, linked } => self.reset(id, hash, &linked, now).await,
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
        // The transaction holds only if the account is still in the state `linked` (which names
        // the address to free), and says why not after the fact. The one read first: who holds
        // the new address. A verified account keeps it; an unverified one's claim the move takes
        // over (on condition it is still that account's, and the account still unverified). A
        // sign-up that claims the address between the read and the write is read again.
        let claim = to_item(
            &EmailItem::new(new_email, id.clone(), None),
            "encoding an email claim",
        )?;
        let update = Update::builder()
            .set_key(Some(user_key(id)))
            .update_expression(
                "SET email = :new, #status = :active, updated_at = :now REMOVE expires_at \
                 ADD email_version :one",
            )
            .condition_expression(format!(
                "email = :old AND token_version = :version AND {} AND {NOT_EXPIRED}",
                moved_as(linked)
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":new", s(new_email.as_str()))
            .expression_attribute_values(":old", s(linked.email.as_str()))
            .expression_attribute_values(":version", n(linked.token_version))
            .expression_attribute_values(":moves", n(linked.email_version))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", n(now));
        for _ in 0..TRIES {
            let holder = self
                .find_by_email(new_email)
                .await?
                .filter(|holder| holder.id != *id);
            if holder
                .as_ref()
                .is_some_and(|holder| holder.status != UserStatus::PendingVerification)
            {
                // Taken, unless the account is gone or the link void: that answer stands first.
                return Err(self
                    .why_refused(id, linked, UserConflict::EmailTaken)
                    .await?);
            }
            let mut items = vec![
                self.table
                    .delete(email_key(&linked.email), Some(owned_by(id)))?,
                self.table.update(update.clone())?,
            ];
            match &holder {
                Some(unverified) => {
                    items.push(self.delete_unverified(&unverified.id)?);
                    items.push(
                        self.table
                            .put(claim.clone(), Some(owned_by(&unverified.id)))?,
                    );
                }
                None => items.push(self.table.put(claim.clone(), Some(free_at(now)))?),
            }
            if self
                .table
                .transact(items, "changing an email address")
                .await?
                .is_ok()
            {
                return self.get(id).await?.ok_or(StoreError::NotFound);
            }
            // The account is absent or changed since the link (that answer stands), or the new
            // address changed hands since it was read (read it again).
            match self
                .why_refused(id, linked, UserConflict::EmailTaken)
                .await?
            {
                StoreError::Conflict(UserConflict::EmailTaken) => {}
                other => return Err(other),
            }
        }
        Err(StoreError::Conflict(UserConflict::ConcurrentUpdate))
    }
}

impl DynamoUsers {
    /// `SET set, updated_at = :now` (and `ADD add`) on account `id` unless it is absent or
    /// expired at `now`, and the account after it; `name` is the one attribute name the
    /// expressions use.
    async fn update_one(
        &self,
        id: &UserId,
        set: &str,
        add: Option<&str>,
        (placeholder, name): (&str, &str),
        mut values: Item,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        values.insert(":now".to_owned(), n(now));
        let expression = match add {
            Some(add) => format!("SET {set}, updated_at = :now ADD {add}"),
            None => format!("SET {set}, updated_at = :now"),
        };
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(user_key(id)))
            .update_expression(expression)
            .condition_expression(format!("attribute_exists(pk) AND {NOT_EXPIRED}"))
            .expression_attribute_names(placeholder, name)
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
        let item: UserItem = from_item(out.attributes.unwrap_or_default(), "decoding a user")?;
        Ok(item.user)
    }

    /// Marks account `id` verified and removes its expiry and its claim's, unless it is absent
    /// or expired at `now`.
    async fn verify(&self, id: &UserId, now: i64) -> Result<User, StoreError<UserConflict>> {
        for _ in 0..TRIES {
            // The claim's key is the account's address.
            let user = self.get(id).await?.ok_or(StoreError::NotFound)?;
            let account = Update::builder()
                .set_key(Some(user_key(id)))
                .update_expression("SET #status = :active, updated_at = :now REMOVE expires_at")
                .condition_expression(format!("email = :email AND {NOT_EXPIRED}"))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":email", s(user.email.as_str()))
                .expression_attribute_values(":now", n(now));
            let items = vec![
                self.table.update(account)?,
                self.claim_kept(&user.email, id)?,
            ];
            if self
                .table
                .transact(items, "verifying a user")
                .await?
                .is_ok()
            {
                return self.get(id).await?.ok_or(StoreError::NotFound);
            }
        }
        Err(StoreError::Conflict(UserConflict::ConcurrentUpdate))
    }

    /// A password reset of account `id` made with a link issued in state `linked`: also marks
    /// it verified, removing its expiry and its claim's, and bumps the token version.
    async fn reset(
        &self,
        id: &UserId,
        hash: String,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        for _ in 0..TRIES {
            let account = Update::builder()
                .set_key(Some(user_key(id)))
                .update_expression(
                    "SET password_hash = :hash, #status = :active, updated_at = :now \
                 REMOVE expires_at ADD token_version :one",
                )
                .condition_expression(format!(
                    "token_version = :version AND email = :email AND {} AND {NOT_EXPIRED}",
                    moved_as(linked)
                ))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":hash", s(hash.clone()))
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":version", n(linked.token_version))
                .expression_attribute_values(":moves", n(linked.email_version))
                .expression_attribute_values(":email", s(linked.email.as_str()))
                .expression_attribute_values(":now", n(now));
            let items = vec![
                self.table.update(account)?,
                self.claim_kept(&linked.email, id)?,
            ];
            if self
                .table
                .transact(items, "resetting a password")
                .await?
                .is_ok()
            {
                return self.get(id).await?.ok_or(StoreError::NotFound);
            }
            // The account is absent or no longer as its link saw it (the link is void: its state's
            // versions only grow), or the transaction met another one on the account: again.
            match self
                .why_refused(id, linked, UserConflict::ConcurrentUpdate)
                .await?
            {
                StoreError::Conflict(UserConflict::ConcurrentUpdate) => {}
                other => return Err(other),
            }
        }
        Err(StoreError::Conflict(UserConflict::ConcurrentUpdate))
    }

    /// A transaction's update removing the expiry of `email`'s claim, which must be `id`'s.
    fn claim_kept(
        &self,
        email: &Email,
        id: &UserId,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        self.table.update(
            Update::builder()
                .set_key(Some(email_key(email)))
                .update_expression("REMOVE expires_at")
                .condition_expression("user_id = :id")
                .expression_attribute_values(":id", s(id.as_str())),
        )
    }

    /// A transaction's delete of account `id`, on condition it is unverified.
    fn delete_unverified(&self, id: &UserId) -> Result<TransactWriteItem, StoreUnavailable> {
        let delete = Delete::builder()
            .table_name(&self.table.name)
            .set_key(Some(user_key(id)))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":pending",
                to_value(&UserStatus::PendingVerification, "encoding a status")?,
            )
            .build()
            .map_err(|e| StoreUnavailable::new("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

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
