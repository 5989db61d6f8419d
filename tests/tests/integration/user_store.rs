//! The contract of `UserStore`, run against both implementations: unique email addresses, the
//! updates and what each one changes, moves between addresses, deleting an account, the writes
//! made on a one-time link's behalf (a reset, a move), refused once the account is no longer as
//! the link saw it, and unverified accounts: replaced in one step, absent once expired (before
//! the store's TTL deletes them), kept for good once their address is proven.
//!
//! - One async body per property, taking `&dyn UserStore`.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over `MemoryUsers` and
//!   `on_dynamodb::<body>` over `DynamoUsers` in a fresh table of the emulator.
//!
//! Conditions are tested one write after the other: moto does not lock its tables, so
//! simultaneous conditional writes prove nothing there.

use aws_sdk_dynamodb::types::AttributeValue;
use oes_adapters::dynamo::DynamoUsers;
use oes_adapters::memory::MemoryUsers;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::{LinkedState, StoreError, UserConflict, UserStore, UserUpdate};
use oes_domain::user::{
    DisplayName, Email, Role, UNVERIFIED_ACCOUNT_TTL_SECONDS, User, UserId, UserStatus,
};
use oes_tests::TestEnv;

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(&MemoryUsers::default()).await;
                }
            )*
        }

        mod on_dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let users = DynamoUsers::new(
                        env.clients.dynamodb(),
                        env.provisioned.table.clone(),
                    );
                    super::$body(&users).await;
                }
            )*
        }
    };
}

contract!(
    an_email_address_belongs_to_one_account,
    an_account_is_read_back_by_id_and_by_address,
    updates_bump_the_token_version_where_they_must,
    each_update_changes_its_fields_and_the_update_time_only,
    updating_an_absent_account_is_not_found,
    moving_to_a_taken_address_fails_and_a_free_one_releases_the_old,
    a_move_to_an_address_an_unverified_account_holds_takes_it_over,
    a_move_proves_the_new_address_and_frees_the_old_for_anyone,
    moving_to_its_own_address_changes_nothing,
    moving_an_absent_account_is_not_found,
    deleting_an_account_frees_its_address,
    an_account_whose_address_is_no_longer_its_own_is_not_deleted,
    a_reset_from_a_stale_link_state_is_refused,
    a_move_from_a_stale_link_state_is_refused,
    a_move_back_to_an_earlier_address_does_not_revive_the_links_of_before,
    an_expired_unverified_account_is_absent_and_its_address_free,
    proving_the_address_keeps_the_account_and_its_address_for_good,
    an_unverified_account_is_replaced_in_one_step_and_a_verified_one_is_not,
);

// ---- helpers ------------------------------------------------------------------------------

/// A new unverified account (created now: it has not expired).
fn user(email: &str) -> User {
    let now = SystemClock.now();
    User {
        id: UserId::generate(),
        email: email_of(email),
        name: DisplayName::parse("Ada").expect("valid"),
        password_hash: "$argon2id$placeholder".into(),
        role: Role::Student,
        status: UserStatus::PendingVerification,
        token_version: 0,
        email_version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// An unverified account that expired a minute ago.
fn expired_user(email: &str) -> User {
    let created_at = SystemClock.now() - UNVERIFIED_ACCOUNT_TTL_SECONDS - 60;
    User {
        created_at,
        updated_at: created_at,
        ..user(email)
    }
}

fn email_of(address: &str) -> Email {
    Email::parse(address).expect("valid")
}

fn name(text: &str) -> DisplayName {
    DisplayName::parse(text).expect("valid")
}

async fn stored(users: &dyn UserStore, id: &UserId) -> Option<User> {
    users.get(id).await.expect("read")
}

async fn owner_of(users: &dyn UserStore, email: &Email) -> Option<User> {
    users.find_by_email(email).await.expect("read")
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(
    result: Result<T, StoreError<UserConflict>>,
    expected: UserConflict,
) {
    match result {
        Err(StoreError::Conflict(conflict)) if conflict == expected => {}
        other => panic!("expected the conflict {expected:?}, got {other:?}"),
    }
}

/// A password reset made with a link issued in state `linked`.
fn reset_from(linked: LinkedState) -> UserUpdate {
    UserUpdate::Password {
        hash: "$argon2id$new".into(),
        linked,
    }
}

/// The state `user` is in (as a link issued now would record it).
fn state(user: &User) -> LinkedState {
    LinkedState::of(user)
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError<UserConflict>>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

// ---- unique addresses ---------------------------------------------------------------------

async fn an_email_address_belongs_to_one_account(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let twin = user("ada@example.com");
    let error = users.create(&twin).await.expect_err("taken");
    assert!(
        matches!(error, StoreError::Conflict(UserConflict::EmailTaken)),
        "{error:?}"
    );
    assert_eq!(
        stored(users, &twin.id).await,
        None,
        "the refused account is not half-created"
    );
    let found = users
        .find_by_email(&ada.email)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, ada);

    let same_id = User {
        email: email_of("other@example.com"),
        ..ada.clone()
    };
    assert_conflict(users.create(&same_id).await, UserConflict::EmailTaken);
    assert_eq!(
        owner_of(users, &same_id.email).await,
        None,
        "an account with a used id claims no address"
    );
    assert_eq!(stored(users, &ada.id).await, Some(ada.clone()));

    users.delete(&ada).await.expect("deleted");
    assert_eq!(users.find_by_email(&ada.email).await.expect("read"), None);
    users
        .create(&user("ada@example.com"))
        .await
        .expect("the address is free again");
}

async fn an_account_is_read_back_by_id_and_by_address(users: &dyn UserStore) {
    let ada = User {
        role: Role::Instructor,
        status: UserStatus::Active,
        token_version: 4,
        email_version: 3,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_100,
        ..user("ada@example.com")
    };
    let grace = user("grace@example.com");
    users.create(&ada).await.expect("created");
    users.create(&grace).await.expect("created");
    assert_eq!(stored(users, &ada.id).await, Some(ada.clone()));
    assert_eq!(owner_of(users, &ada.email).await, Some(ada));
    assert_eq!(owner_of(users, &grace.email).await, Some(grace));
    assert_eq!(stored(users, &UserId::generate()).await, None);
    assert_eq!(owner_of(users, &email_of("nobody@example.com")).await, None);
}

// ---- updates ------------------------------------------------------------------------------

async fn updates_bump_the_token_version_where_they_must(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let renamed = users
        .update(&ada.id, UserUpdate::Name(name("Ada King")), 5)
        .await
        .expect("renamed");
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.token_version,
            renamed.updated_at
        ),
        ("Ada King", 0, 5)
    );
    let reset = users
        .update(&ada.id, reset_from(state(&ada)), 6)
        .await
        .expect("reset");
    assert_eq!((reset.token_version, reset.status), (1, UserStatus::Active));
    let promoted = users
        .update(&ada.id, UserUpdate::Role(Role::Instructor), 7)
        .await
        .expect("role");
    assert_eq!(
        (promoted.role, promoted.token_version),
        (Role::Instructor, 2)
    );
    let missing = users
        .update(&UserId::generate(), UserUpdate::Verified, 8)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

async fn each_update_changes_its_fields_and_the_update_time_only(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let mut expected = ada.clone();

    let renamed = users
        .update(&ada.id, UserUpdate::Name(name("Ada King")), 5)
        .await
        .expect("renamed");
    expected.name = name("Ada King");
    expected.updated_at = 5;
    assert_eq!(renamed, expected, "a new name keeps the token version");
    assert_eq!(stored(users, &ada.id).await, Some(expected.clone()));

    let promoted = users
        .update(&ada.id, UserUpdate::Role(Role::Admin), 6)
        .await
        .expect("role");
    expected.role = Role::Admin;
    expected.token_version = 1;
    expected.updated_at = 6;
    assert_eq!(
        promoted, expected,
        "a new role bumps the token version and leaves the account unverified"
    );
    assert_eq!(stored(users, &ada.id).await, Some(expected.clone()));

    let verified = users
        .update(&ada.id, UserUpdate::Verified, 7)
        .await
        .expect("verified");
    expected.status = UserStatus::Active;
    expected.updated_at = 7;
    assert_eq!(verified, expected, "verifying keeps the token version");
    let again = users
        .update(&ada.id, UserUpdate::Verified, 8)
        .await
        .expect("verified again");
    expected.updated_at = 8;
    assert_eq!(again, expected, "verifying twice is harmless");

    let grace = user("grace@example.com");
    users.create(&grace).await.expect("created");
    let reset = users
        .update(&grace.id, reset_from(state(&grace)), 9)
        .await
        .expect("reset");
    let expected_grace = User {
        password_hash: "$argon2id$new".into(),
        status: UserStatus::Active,
        token_version: 1,
        updated_at: 9,
        ..grace.clone()
    };
    assert_eq!(
        reset, expected_grace,
        "a reset changes the hash, bumps the token version and proves the address"
    );
    assert_eq!(stored(users, &grace.id).await, Some(expected_grace));
    assert_eq!(
        owner_of(users, &ada.email).await,
        Some(expected),
        "the other account is untouched"
    );
}

async fn updating_an_absent_account_is_not_found(users: &dyn UserStore) {
    let absent = UserId::generate();
    for update in [
        UserUpdate::Name(name("Nobody")),
        UserUpdate::Verified,
        reset_from(LinkedState {
            token_version: 0,
            email: email_of("nobody@example.com"),
            email_version: 0,
        }),
        UserUpdate::Role(Role::Admin),
    ] {
        assert_not_found(users.update(&absent, update, 5).await);
    }
    assert_eq!(
        stored(users, &absent).await,
        None,
        "an update creates nothing"
    );
}

// ---- moves --------------------------------------------------------------------------------

async fn moving_to_a_taken_address_fails_and_a_free_one_releases_the_old(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    let grace = User {
        status: UserStatus::Active,
        ..user("grace@example.com")
    };
    users.create(&ada).await.expect("created");
    users.create(&grace).await.expect("created");
    let taken = users
        .change_email(&ada.id, &grace.email, &state(&ada), 9)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_conflict(
        users
            .change_email(&ada.id, &grace.email, &state(&ada), 9)
            .await,
        UserConflict::EmailTaken,
    );
    assert_eq!(
        stored(users, &ada.id).await,
        Some(ada.clone()),
        "a refused move changes nothing"
    );
    assert_eq!(owner_of(users, &grace.email).await, Some(grace.clone()));
    assert_eq!(owner_of(users, &ada.email).await, Some(ada.clone()));

    let new = Email::parse("ada@new.example").expect("valid");
    let moved = users
        .change_email(&ada.id, &new, &state(&ada), 10)
        .await
        .expect("moved");
    assert_eq!(moved.email, new);
    assert_eq!(users.find_by_email(&ada.email).await.expect("read"), None);
    assert_eq!(
        users.find_by_email(&new).await.expect("read").map(|u| u.id),
        Some(ada.id)
    );
}

/// Someone signed up with an address and never proved it (a squatter, or its owner who forgot).
/// The address is not taken for a move, as it is not for a sign-up: the move, made from a link
/// sent to that address, proves it, and ends the unverified account (its links with it).
async fn a_move_to_an_address_an_unverified_account_holds_takes_it_over(users: &dyn UserStore) {
    let ada = User {
        status: UserStatus::Active,
        ..user("ada@example.com")
    };
    let squatter = user("ada@new.example");
    users.create(&ada).await.expect("created");
    users.create(&squatter).await.expect("created");
    let moved = users
        .change_email(&ada.id, &squatter.email, &state(&ada), 10)
        .await
        .expect("moved over the unverified account");
    assert_eq!(moved.email, squatter.email);
    assert_eq!(
        owner_of(users, &squatter.email).await.map(|u| u.id),
        Some(ada.id.clone())
    );
    assert_eq!(
        stored(users, &squatter.id).await,
        None,
        "the unverified account is gone"
    );
    assert_eq!(users.find_by_email(&ada.email).await.expect("read"), None);
}

async fn a_move_proves_the_new_address_and_frees_the_old_for_anyone(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let new = email_of("ada@new.example");
    let moved = users
        .change_email(&ada.id, &new, &state(&ada), 10)
        .await
        .expect("moved");
    let expected = User {
        email: new.clone(),
        status: UserStatus::Active,
        email_version: 1,
        updated_at: 10,
        ..ada.clone()
    };
    assert_eq!(
        moved, expected,
        "the account moves, is verified, bumps its email version and keeps its token version"
    );
    assert_eq!(stored(users, &ada.id).await, Some(expected.clone()));
    assert_eq!(owner_of(users, &new).await, Some(expected.clone()));

    let newcomer = User {
        status: UserStatus::Active,
        ..user("ada@example.com")
    };
    users
        .create(&newcomer)
        .await
        .expect("the old address is free for a new account");
    assert_eq!(owner_of(users, &ada.email).await, Some(newcomer.clone()));
    assert_conflict(
        users
            .change_email(&ada.id, &ada.email, &state(&moved), 11)
            .await,
        UserConflict::EmailTaken,
    );
    assert_eq!(
        owner_of(users, &new).await,
        Some(expected),
        "moving back to an address taken meanwhile is refused"
    );
}

async fn moving_to_its_own_address_changes_nothing(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let unchanged = users
        .change_email(&ada.id, &ada.email, &state(&ada), 10)
        .await
        .expect("a move to the address it has is no conflict");
    assert_eq!(unchanged, ada, "the account is returned as it is");
    assert_eq!(stored(users, &ada.id).await, Some(ada.clone()));
    assert_eq!(
        owner_of(users, &ada.email).await,
        Some(ada.clone()),
        "the account keeps its address"
    );
    assert_conflict(
        users.create(&user("ada@example.com")).await,
        UserConflict::EmailTaken,
    );
}

async fn moving_an_absent_account_is_not_found(users: &dyn UserStore) {
    let grace = user("grace@example.com");
    users.create(&grace).await.expect("created");
    let absent = UserId::generate();
    let free = email_of("free@example.com");
    let nobody = LinkedState {
        token_version: 0,
        email: email_of("nobody@example.com"),
        email_version: 0,
    };
    assert_not_found(users.change_email(&absent, &free, &nobody, 10).await);
    assert_eq!(
        owner_of(users, &free).await,
        None,
        "no address is claimed for nobody"
    );
    users
        .create(&user("free@example.com"))
        .await
        .expect("the address is still free");
    assert_not_found(users.change_email(&absent, &grace.email, &nobody, 10).await);
    assert_eq!(owner_of(users, &grace.email).await, Some(grace));
}

// ---- deletes ------------------------------------------------------------------------------

async fn deleting_an_account_frees_its_address(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    let grace = user("grace@example.com");
    users.create(&ada).await.expect("created");
    users.create(&grace).await.expect("created");
    users.delete(&ada).await.expect("deleted");
    assert_eq!(stored(users, &ada.id).await, None);
    assert_eq!(owner_of(users, &ada.email).await, None);
    assert_eq!(
        owner_of(users, &grace.email).await,
        Some(grace),
        "the other account stays"
    );
    assert_conflict(users.delete(&ada).await, UserConflict::ConcurrentUpdate);
    let again = user("ada@example.com");
    users
        .create(&again)
        .await
        .expect("the address is free again");
    assert_eq!(owner_of(users, &again.email).await, Some(again));
}

async fn an_account_whose_address_is_no_longer_its_own_is_not_deleted(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let moved = users
        .change_email(&ada.id, &email_of("ada@new.example"), &state(&ada), 10)
        .await
        .expect("moved");

    // `ada` as read before the move: its address is free now.
    assert_conflict(users.delete(&ada).await, UserConflict::ConcurrentUpdate);
    assert_eq!(
        stored(users, &ada.id).await,
        Some(moved.clone()),
        "nothing is deleted"
    );

    // ... and then taken by another account.
    let grace = user("ada@example.com");
    users.create(&grace).await.expect("created");
    assert_conflict(users.delete(&ada).await, UserConflict::ConcurrentUpdate);
    assert_eq!(stored(users, &ada.id).await, Some(moved.clone()));
    assert_eq!(
        owner_of(users, &grace.email).await,
        Some(grace.clone()),
        "the other account keeps its address"
    );
    assert_eq!(owner_of(users, &moved.email).await, Some(moved.clone()));

    users.delete(&moved).await.expect("deleted as it is now");
    assert_eq!(stored(users, &ada.id).await, None);
    assert_eq!(owner_of(users, &moved.email).await, None);
    assert_eq!(owner_of(users, &grace.email).await, Some(grace));
}

// ---- writes on a one-time link's behalf ---------------------------------------------------

async fn a_reset_from_a_stale_link_state_is_refused(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let sent = state(&ada);

    // Two reset links sent in one state: both were checked against it, the first writes ...
    let first = users
        .update(&ada.id, reset_from(sent.clone()), 5)
        .await
        .expect("the first reset");
    assert_eq!(first.token_version, 1);
    // ... and the second, conditioned on the state both read, is refused.
    let second = UserUpdate::Password {
        hash: "$argon2id$second".into(),
        linked: sent,
    };
    assert_conflict(
        users.update(&ada.id, second, 6).await,
        UserConflict::LinkVoid,
    );
    assert_eq!(
        stored(users, &ada.id).await,
        Some(first.clone()),
        "the refused reset changes nothing"
    );

    // A role change voids a link sent before it ...
    let before_role = state(&first);
    let promoted = users
        .update(&ada.id, UserUpdate::Role(Role::Instructor), 7)
        .await
        .expect("role");
    assert_conflict(
        users.update(&ada.id, reset_from(before_role), 8).await,
        UserConflict::LinkVoid,
    );
    // ... and so does a move to another address (the token version stays).
    let before_move = state(&promoted);
    let moved = users
        .change_email(&ada.id, &email_of("ada@new.example"), &before_move, 9)
        .await
        .expect("moved");
    assert_eq!(moved.token_version, promoted.token_version);
    assert_conflict(
        users.update(&ada.id, reset_from(before_move), 10).await,
        UserConflict::LinkVoid,
    );
    assert_eq!(stored(users, &ada.id).await, Some(moved.clone()));

    users
        .update(&ada.id, reset_from(state(&moved)), 11)
        .await
        .expect("a link sent in the current state resets");
}

async fn a_move_from_a_stale_link_state_is_refused(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let elsewhere = email_of("ada@elsewhere.example");

    // A reset voids a move asked for before it ...
    let before_reset = state(&ada);
    let reset = users
        .update(&ada.id, reset_from(state(&ada)), 5)
        .await
        .expect("reset");
    assert_conflict(
        users
            .change_email(&ada.id, &elsewhere, &before_reset, 6)
            .await,
        UserConflict::LinkVoid,
    );
    assert_eq!(
        stored(users, &ada.id).await,
        Some(reset.clone()),
        "the refused move changes nothing"
    );
    assert_eq!(owner_of(users, &elsewhere).await, None, "claims nothing");
    assert_eq!(owner_of(users, &ada.email).await, Some(reset.clone()));
    // ... whoever holds the address it names: a void link is void, not a taken address.
    let grace = user("grace@example.com");
    users.create(&grace).await.expect("created");
    users
        .update(&grace.id, UserUpdate::Verified, 5)
        .await
        .expect("verified");
    assert_conflict(
        users
            .change_email(&ada.id, &grace.email, &before_reset, 6)
            .await,
        UserConflict::LinkVoid,
    );

    // ... so does a role change ...
    let before_role = state(&reset);
    let promoted = users
        .update(&ada.id, UserUpdate::Role(Role::Admin), 7)
        .await
        .expect("role");
    assert_conflict(
        users
            .change_email(&ada.id, &elsewhere, &before_role, 8)
            .await,
        UserConflict::LinkVoid,
    );

    // ... and so does another move: a link sent before it moves nothing, not even back.
    let before_move = state(&promoted);
    let moved = users
        .change_email(&ada.id, &email_of("ada@new.example"), &before_move, 9)
        .await
        .expect("moved");
    for target in [&elsewhere, &ada.email, &moved.email] {
        assert_conflict(
            users.change_email(&ada.id, target, &before_move, 10).await,
            UserConflict::LinkVoid,
        );
    }
    assert_eq!(stored(users, &ada.id).await, Some(moved.clone()));
    assert_eq!(owner_of(users, &elsewhere).await, None);
    assert_eq!(
        owner_of(users, &ada.email).await,
        None,
        "the old address stays free"
    );
    assert_eq!(owner_of(users, &moved.email).await, Some(moved.clone()));

    users
        .change_email(&ada.id, &elsewhere, &state(&moved), 11)
        .await
        .expect("a link sent in the current state moves");
}

async fn a_move_back_to_an_earlier_address_does_not_revive_the_links_of_before(
    users: &dyn UserStore,
) {
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let stray = email_of("ada@typo.example");
    let before = state(&ada);

    // The account moves to another address and back: address and token version are as before.
    let away = users
        .change_email(&ada.id, &email_of("ada@new.example"), &before, 5)
        .await
        .expect("moved away");
    let back = users
        .change_email(&ada.id, &ada.email, &state(&away), 6)
        .await
        .expect("moved back");
    assert_eq!(
        (&back.email, back.token_version),
        (&ada.email, ada.token_version)
    );
    assert_eq!(
        (away.email_version, back.email_version),
        (1, 2),
        "each move bumps the email version"
    );

    // A link sent before the moves neither moves the account nor resets its password.
    assert_conflict(
        users.change_email(&ada.id, &stray, &before, 7).await,
        UserConflict::LinkVoid,
    );
    assert_conflict(
        users.update(&ada.id, reset_from(before), 8).await,
        UserConflict::LinkVoid,
    );
    assert_eq!(
        stored(users, &ada.id).await,
        Some(back.clone()),
        "the refused writes change nothing"
    );
    assert_eq!(owner_of(users, &stray).await, None, "claims nothing");

    users
        .change_email(&ada.id, &stray, &state(&back), 9)
        .await
        .expect("a link sent in the current state moves");
}

/// An account DynamoDB holds from before email versions were recorded has none: it is read at
/// version 0, a link sent in that state resets and moves it, and its first move records 1. On
/// DynamoDB only: the twin holds no account without the field.
#[tokio::test]
async fn an_account_stored_before_email_versions_is_at_version_0() {
    let env = TestEnv::spawn().await;
    let client = env.clients.dynamodb();
    let users = DynamoUsers::new(client.clone(), env.provisioned.table.clone());
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    client
        .update_item()
        .table_name(&env.provisioned.table)
        .key("pk", AttributeValue::S(format!("USER#{}", ada.id)))
        .key("sk", AttributeValue::S("USER".to_owned()))
        .update_expression("REMOVE email_version")
        .send()
        .await
        .expect("written as before email versions");

    let before = stored(&users, &ada.id).await;
    assert_eq!(before.as_ref(), Some(&ada), "read at version 0");
    let reset = users
        .update(&ada.id, reset_from(state(&ada)), 5)
        .await
        .expect("a link sent at version 0 resets");
    let moved = users
        .change_email(&ada.id, &email_of("ada@new.example"), &state(&reset), 6)
        .await
        .expect("and moves");
    assert_eq!(moved.email_version, 1);
    assert_eq!(stored(&users, &ada.id).await, Some(moved));
    assert_conflict(
        users
            .change_email(&ada.id, &ada.email, &state(&reset), 7)
            .await,
        UserConflict::LinkVoid,
    );
}

// ---- unverified accounts ------------------------------------------------------------------

async fn an_expired_unverified_account_is_absent_and_its_address_free(users: &dyn UserStore) {
    let now = SystemClock.now();
    let squatter = expired_user("ada@example.com");
    users
        .create(&squatter)
        .await
        .expect("created (in the past)");
    assert_eq!(stored(users, &squatter.id).await, None);
    assert_eq!(owner_of(users, &squatter.email).await, None);
    for update in [
        UserUpdate::Name(name("Squatter")),
        UserUpdate::Verified,
        reset_from(state(&squatter)),
        UserUpdate::Role(Role::Admin),
    ] {
        assert_not_found(users.update(&squatter.id, update, now).await);
    }

    let ada = user("ada@example.com");
    users.create(&ada).await.expect("the address is free");
    assert_eq!(owner_of(users, &ada.email).await, Some(ada.clone()));
    assert_eq!(stored(users, &squatter.id).await, None);

    // An account can move to the address of one that expired, too.
    let other = expired_user("other@example.com");
    users.create(&other).await.expect("created (in the past)");
    let moved = users
        .change_email(&ada.id, &other.email, &state(&ada), now)
        .await
        .expect("moved to a free address");
    assert_eq!(owner_of(users, &other.email).await, Some(moved));
}

async fn proving_the_address_keeps_the_account_and_its_address_for_good(users: &dyn UserStore) {
    let ada = user("ada@example.com");
    let grace = user("grace@example.com");
    let hopper = user("hopper@example.com");
    for account in [&ada, &grace, &hopper] {
        users.create(account).await.expect("created");
    }
    let now = SystemClock.now();
    users
        .update(&ada.id, UserUpdate::Verified, now)
        .await
        .expect("verified");
    users
        .update(&grace.id, reset_from(state(&grace)), now)
        .await
        .expect("reset");
    let moved = users
        .change_email(
            &hopper.id,
            &email_of("hopper@new.example"),
            &state(&hopper),
            now,
        )
        .await
        .expect("moved");

    // Long after an unverified account would have expired:
    let later = ada.created_at + 2 * UNVERIFIED_ACCOUNT_TTL_SECONDS;
    for (account, email) in [
        (&ada, &ada.email),
        (&grace, &grace.email),
        (&moved, &moved.email),
    ] {
        let renamed = users
            .update(&account.id, UserUpdate::Name(name("Still here")), later)
            .await;
        assert!(renamed.is_ok(), "{email}: {renamed:?}");
        let claim = User {
            created_at: later,
            updated_at: later,
            ..user(email.as_str())
        };
        assert_conflict(users.create(&claim).await, UserConflict::EmailTaken);
    }
}

async fn an_unverified_account_is_replaced_in_one_step_and_a_verified_one_is_not(
    users: &dyn UserStore,
) {
    let squatter = user("ada@example.com");
    users.create(&squatter).await.expect("created");
    let ada = User {
        name: name("The real Ada"),
        password_hash: "$argon2id$ada".into(),
        ..user("ada@example.com")
    };
    users
        .replace_unverified(&squatter, &ada)
        .await
        .expect("replaced");
    assert_eq!(
        stored(users, &squatter.id).await,
        None,
        "the old account is gone"
    );
    assert_eq!(owner_of(users, &ada.email).await, Some(ada.clone()));
    assert_not_found(users.update(&squatter.id, UserUpdate::Verified, 5).await);

    // A replace from a stale read changes nothing.
    let late = user("ada@example.com");
    assert_conflict(
        users.replace_unverified(&squatter, &late).await,
        UserConflict::ConcurrentUpdate,
    );
    assert_eq!(stored(users, &late.id).await, None);
    assert_eq!(owner_of(users, &ada.email).await, Some(ada.clone()));

    // Nor does one of an account verified since it was read.
    let verified = users
        .update(&ada.id, UserUpdate::Verified, 6)
        .await
        .expect("verified");
    assert_conflict(
        users.replace_unverified(&ada, &late).await,
        UserConflict::ConcurrentUpdate,
    );
    assert_eq!(stored(users, &late.id).await, None);
    assert_eq!(owner_of(users, &ada.email).await, Some(verified));

    // Nor one at another account's address.
    let grace = user("grace@example.com");
    users.create(&grace).await.expect("created");
    let elsewhere = user("elsewhere@example.com");
    users.create(&elsewhere).await.expect("created");
    let intruder = user("grace@example.com");
    assert_conflict(
        users.replace_unverified(&elsewhere, &intruder).await,
        UserConflict::ConcurrentUpdate,
    );
    assert_eq!(owner_of(users, &grace.email).await, Some(grace));
    assert_eq!(stored(users, &elsewhere.id).await, Some(elsewhere));
}

/// A transaction DynamoDB cancelled because it was throttled (a reason other than a failed
/// condition) is the store unavailable, not a conflict: a sign-up told "the address is taken"
/// would be answered as a lost race and write nothing, and a reset told "the link is void" would
/// answer 400 for a link that works. On DynamoDB only: the twin is never throttled.
#[tokio::test]
async fn a_transaction_cancelled_for_throttling_is_the_store_unavailable_not_a_conflict() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let users = DynamoUsers::new(env.clients.dynamodb(), table.clone());
    let throttled = DynamoUsers::new(
        oes_tests::throttled::ThrottledTransactions::client(&env.clients.dynamodb()),
        table,
    );
    let ada = user("ada@example.com");
    let created = throttled.create(&ada).await;
    assert!(
        matches!(created, Err(StoreError::Unavailable(_))),
        "a create: {created:?}"
    );
    let grace = user("grace@example.com");
    users.create(&grace).await.expect("created");
    let reset = throttled
        .update(&grace.id, reset_from(state(&grace)), 5)
        .await;
    assert!(
        matches!(reset, Err(StoreError::Unavailable(_))),
        "a password reset: {reset:?}"
    );
}

/// A transaction throttled once (DynamoDB cancels it with `ThrottlingError`: nothing applied)
/// is tried again by the SDK, as a throttled single-item call is; its standard retries leave
/// `TransactionCanceledException` alone, so the first throttle of a sign-up, start or submit
/// answered 503. On DynamoDB only: the twin is never throttled.
#[tokio::test]
async fn a_transaction_throttled_once_is_tried_again() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let users = DynamoUsers::new(env.clients.dynamodb(), table.clone());
    let throttled = DynamoUsers::new(
        oes_tests::throttled::Refused::throttled_transactions(&env.clients.dynamodb(), 1),
        table,
    );
    let ada = user("ada@example.com");
    let created = throttled.create(&ada).await;
    assert!(created.is_ok(), "created on the second try: {created:?}");
    assert_eq!(stored(&users, &ada.id).await, Some(ada));
}

/// An unverified sign-up that claims the new address between a move's read and its write: the
/// move reads the address again and takes it over, as it does when it reads the sign-up's claim
/// first (only a verified holder keeps an address). Before, the move answered "taken", and the
/// link it was made from was used up. On DynamoDB only: the twin moves under one lock.
#[tokio::test]
async fn a_sign_up_that_claims_the_new_address_during_a_move_is_taken_over() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let users = DynamoUsers::new(env.clients.dynamodb(), table.clone());
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let squatter = user("new@example.com");
    users.create(&squatter).await.expect("created");
    let racing = DynamoUsers::new(
        oes_tests::hidden_claim::HiddenClaim::client(&env.clients.dynamodb()),
        table,
    );
    let moved = racing
        .change_email(&ada.id, &email_of("new@example.com"), &state(&ada), 5)
        .await
        .expect("moved: the unverified sign-up's claim taken over");
    assert_eq!(moved.email, email_of("new@example.com"));
    assert_eq!(
        stored(&users, &squatter.id).await,
        None,
        "the unverified account is gone"
    );
    assert_eq!(
        users
            .find_by_email(&email_of("new@example.com"))
            .await
            .expect("read")
            .map(|u| u.id),
        Some(ada.id)
    );
}

/// Counts the `GetItem` calls a DynamoDB client makes.
#[derive(Debug, Clone, Default)]
struct GetItems(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl aws_sdk_dynamodb::config::Intercept for GetItems {
    fn name(&self) -> &'static str {
        "GetItems"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let get = context
            .request()
            .headers()
            .get("x-amz-target")
            .is_some_and(|target| target.ends_with(".GetItem"));
        if get {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Looking an address up makes the same reads whether an account has it or not: a sign-in for
/// an unknown address otherwise answered a read sooner (the address's claim, then no account),
/// which, timed over a few tries, told whether an address has an account — the README promises
/// it takes as long as a wrong password. On DynamoDB only: the twin's reads take no time.
#[tokio::test]
async fn looking_an_address_up_reads_as_much_whether_an_account_has_it_or_not() {
    let env = TestEnv::spawn().await;
    let counter = GetItems::default();
    let users = DynamoUsers::new(
        oes_tests::dynamodb_with(&env.clients.dynamodb(), counter.clone()),
        env.provisioned.table.clone(),
    );
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let reads = |email: &str| {
        let users = &users;
        let counter = counter.clone();
        let email = Email::parse(email).expect("an address");
        async move {
            let before = counter.0.load(std::sync::atomic::Ordering::SeqCst);
            let found = users.find_by_email(&email).await.expect("read");
            (
                found.is_some(),
                counter.0.load(std::sync::atomic::Ordering::SeqCst) - before,
            )
        }
    };
    let (known, known_reads) = reads("ada@example.com").await;
    let (unknown, unknown_reads) = reads("nobody@example.com").await;
    assert!(known && !unknown);
    assert_eq!(
        known_reads, unknown_reads,
        "reads for a known and an unknown address"
    );
}

/// A password reset whose transaction met another one on the account (`TransactionConflict`,
/// which says nothing of the link) tries again: it answered `LinkVoid` — 400 `invalid_token`,
/// the user's link spent for a collision. On DynamoDB only: the twin has no transactions.
#[tokio::test]
async fn a_reset_that_met_another_transaction_tries_again() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let users = DynamoUsers::new(env.clients.dynamodb(), table.clone());
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let colliding = DynamoUsers::new(
        oes_tests::throttled::Refused::conflicting_transactions(&env.clients.dynamodb(), 1),
        table,
    );
    let reset = colliding.update(&ada.id, reset_from(state(&ada)), 5).await;
    let reset = reset.expect("the second try resets it");
    assert_eq!(
        (reset.password_hash.as_str(), reset.token_version),
        ("$argon2id$new", ada.token_version + 1)
    );
}
