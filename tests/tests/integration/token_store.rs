//! The contract of `TokenStore`, run against both implementations: a one-time token is taken at
//! most once, only for one of its purposes, and comes back as it was stored (expired or not:
//! expiry is the caller's check); a token stored by `replace` voids the one its user's last
//! `replace` of the same purpose stored, and nothing else; a token given back after a failed use
//! is taken again as it was, unless a `replace` voided it meanwhile.
//!
//! - One async body per property, taking `&dyn TokenStore`.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over `MemoryTokens` and
//!   `on_dynamodb::<body>` over `DynamoTokens` in a fresh table of the emulator.
//!
//! Takes are tested one after the other: the take is a conditional update, atomic in DynamoDB,
//! but moto's threaded server does not lock its tables, so simultaneous takes prove nothing
//! there.

use oes_adapters::dynamo::DynamoTokens;
use oes_adapters::memory::MemoryTokens;
use oes_domain::ports::{Replaced, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::OneTimeToken;
use oes_domain::user::{Email, UserId};
use oes_tests::TestEnv;

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(&MemoryTokens::default()).await;
                }
            )*
        }

        mod on_dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let tokens = DynamoTokens::new(
                        env.clients.dynamodb(),
                        env.provisioned.table.clone(),
                    );
                    super::$body(&tokens).await;
                }
            )*
        }
    };
}

contract!(
    a_token_is_taken_once_and_only_for_its_purpose,
    a_token_taken_for_the_wrong_purpose_stays_for_the_right_one,
    a_token_comes_back_with_every_field_it_was_stored_with,
    an_expired_token_is_still_returned,
    an_unknown_token_is_not_found_and_tokens_are_taken_independently,
    a_replacing_token_voids_the_one_it_replaces,
    replacing_leaves_other_users_other_purposes_and_put_tokens_alone,
    a_replaced_token_that_was_taken_or_expired_is_no_obstacle,
    a_token_given_back_is_taken_again_as_it_was,
    a_token_replaced_while_it_was_out_is_not_given_back,
);

/// A take lands and its answer is lost (a timeout after the write): the SDK sends it again,
/// which finds the token taken by itself and returns it. A delete sent again found nothing, and
/// the user's link was spent with nothing done (no email verified, no password reset). Only
/// DynamoDB: the retry is the SDK's.
#[tokio::test]
async fn on_dynamodb_a_take_whose_answer_was_lost_returns_the_token() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let tokens = DynamoTokens::new(env.clients.dynamodb(), table.clone());
    let client = oes_tests::lost_answers::LoseAnswers::client(&env.clients.dynamodb(), 1);
    let losing = DynamoTokens::new(client, table);
    let stored = token(TokenPurpose::PasswordReset);
    tokens.put(&stored).await.expect("stored");
    let purposes = [TokenPurpose::PasswordReset];
    let taken = losing.take(&stored.hash, &purposes).await.expect("read");
    assert_eq!(taken, Some(stored.clone()), "taken, its first answer lost");
    let again = tokens.take(&stored.hash, &purposes).await.expect("read");
    assert_eq!(again, None, "and taken once");
}

/// A take meets a transaction holding the token's item (a reset link's replace deleting it,
/// say): DynamoDB refuses the update with `TransactionConflictException`, which the SDK's
/// standard retries do not retry, and the link's use answered 503. It is tried again. Only
/// DynamoDB: the retry is the SDK's.
#[tokio::test]
async fn on_dynamodb_a_take_that_meets_a_transaction_is_tried_again() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let tokens = DynamoTokens::new(env.clients.dynamodb(), table.clone());
    let client = oes_tests::throttled::Refused::conflicting_updates(&env.clients.dynamodb(), 1);
    let meeting = DynamoTokens::new(client, table);
    let stored = token(TokenPurpose::PasswordReset);
    tokens.put(&stored).await.expect("stored");
    let purposes = [TokenPurpose::PasswordReset];
    let taken = meeting.take(&stored.hash, &purposes).await;
    assert_eq!(taken.ok(), Some(Some(stored)), "taken on the second try");
}

fn token(purpose: TokenPurpose) -> StoredToken {
    StoredToken {
        hash: OneTimeToken::generate().hash(),
        purpose,
        user_id: UserId::generate(),
        new_email: None,
        token_version: 3,
        account_email: Some(Email::parse("ada@example.com").expect("valid")),
        email_version: 2,
        expires_at: 2_000_000_000,
    }
}

async fn a_token_is_taken_once_and_only_for_its_purpose(tokens: &dyn TokenStore) {
    let token = OneTimeToken::generate();
    let stored = StoredToken {
        hash: token.hash(),
        purpose: TokenPurpose::PasswordReset,
        user_id: UserId::generate(),
        new_email: None,
        token_version: 3,
        account_email: Some(Email::parse("ada@example.com").expect("valid")),
        email_version: 1,
        expires_at: 2_000_000_000,
    };
    tokens.put(&stored).await.expect("stored");
    let wrong = tokens
        .take(&token.hash(), &[TokenPurpose::VerifyEmail])
        .await
        .expect("read");
    assert_eq!(wrong, None, "a reset token is not a verification token");
    let hash = token.hash();
    let first = tokens
        .take(&hash, &[TokenPurpose::PasswordReset])
        .await
        .expect("read");
    let second = tokens
        .take(&hash, &[TokenPurpose::PasswordReset])
        .await
        .expect("read");
    assert_eq!((first, second), (Some(stored), None));
}

async fn a_token_taken_for_the_wrong_purpose_stays_for_the_right_one(tokens: &dyn TokenStore) {
    let stored = token(TokenPurpose::ChangeEmail);
    tokens.put(&stored).await.expect("stored");
    for wrong in [
        &[][..],
        &[TokenPurpose::VerifyEmail][..],
        &[TokenPurpose::PasswordReset, TokenPurpose::VerifyEmail][..],
    ] {
        assert_eq!(
            tokens.take(&stored.hash, wrong).await.expect("read"),
            None,
            "{wrong:?} does not take a change-email token"
        );
    }
    assert_eq!(
        tokens
            .take(
                &stored.hash,
                &[TokenPurpose::VerifyEmail, TokenPurpose::ChangeEmail]
            )
            .await
            .expect("read"),
        Some(stored.clone()),
        "one matching purpose among several is enough"
    );
    assert_eq!(
        tokens
            .take(&stored.hash, &[TokenPurpose::ChangeEmail])
            .await
            .expect("read"),
        None
    );
}

async fn a_token_comes_back_with_every_field_it_was_stored_with(tokens: &dyn TokenStore) {
    let change = StoredToken {
        new_email: Some(Email::parse("ada@new.example").expect("valid")),
        token_version: 0,
        expires_at: 1_800_000_123,
        ..token(TokenPurpose::ChangeEmail)
    };
    let verify = StoredToken {
        token_version: u64::from(u32::MAX) + 7,
        // As a token stored before the account's address and email version were recorded.
        account_email: None,
        email_version: 0,
        ..token(TokenPurpose::VerifyEmail)
    };
    for stored in [&change, &verify] {
        tokens.put(stored).await.expect("stored");
    }
    for stored in [&change, &verify] {
        assert_eq!(
            tokens
                .take(&stored.hash, &[stored.purpose])
                .await
                .expect("read"),
            Some(stored.clone())
        );
    }
}

async fn an_expired_token_is_still_returned(tokens: &dyn TokenStore) {
    let expired = StoredToken {
        expires_at: 1,
        ..token(TokenPurpose::VerifyEmail)
    };
    tokens.put(&expired).await.expect("stored");
    assert_eq!(
        tokens
            .take(&expired.hash, &[TokenPurpose::VerifyEmail])
            .await
            .expect("read"),
        Some(expired.clone()),
        "expiry is the caller's check"
    );
    assert_eq!(
        tokens
            .take(&expired.hash, &[TokenPurpose::VerifyEmail])
            .await
            .expect("read"),
        None,
        "and it is still taken only once"
    );
}

async fn an_unknown_token_is_not_found_and_tokens_are_taken_independently(tokens: &dyn TokenStore) {
    let first = token(TokenPurpose::PasswordReset);
    let second = StoredToken {
        user_id: first.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    assert_eq!(
        tokens
            .take(&first.hash, &[TokenPurpose::PasswordReset])
            .await
            .expect("read"),
        None,
        "nothing stored yet"
    );
    tokens.put(&first).await.expect("stored");
    tokens.put(&second).await.expect("stored");
    assert_eq!(
        tokens
            .take(&second.hash, &[TokenPurpose::PasswordReset])
            .await
            .expect("read"),
        Some(second.clone())
    );
    assert_eq!(
        tokens
            .take(&first.hash, &[TokenPurpose::PasswordReset])
            .await
            .expect("read"),
        Some(first),
        "taking one token of a user leaves the others"
    );
    assert_eq!(
        tokens
            .take(
                &OneTimeToken::generate().hash(),
                &[TokenPurpose::PasswordReset]
            )
            .await
            .expect("read"),
        None
    );
}

/// A link whose use failed (the store unreachable) is given back: taken again, it is as it was,
/// whether `put` or `replace` stored it, and given back it is still taken only once.
async fn a_token_given_back_is_taken_again_as_it_was(tokens: &dyn TokenStore) {
    let put = token(TokenPurpose::VerifyEmail);
    tokens.put(&put).await.expect("stored");
    let replaced = token(TokenPurpose::PasswordReset);
    assert_eq!(
        tokens.replace(&replaced).await.expect("stored"),
        Replaced::Stored
    );
    for stored in [&put, &replaced] {
        assert!(taken(tokens, stored).await, "{:?} taken", stored.purpose);
        assert!(!taken(tokens, stored).await, "and gone");
        tokens.give_back(stored).await.expect("given back");
        assert!(
            taken(tokens, stored).await,
            "{:?} taken again",
            stored.purpose
        );
        assert!(!taken(tokens, stored).await, "and gone again");
    }
    // The reset link given back is still its user's valid one: the next replace voids it.
    tokens.give_back(&replaced).await.expect("given back");
    let newer = StoredToken {
        user_id: replaced.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    assert_eq!(
        tokens.replace(&newer).await.expect("stored"),
        Replaced::Stored
    );
    assert!(!taken(tokens, &replaced).await, "voided by the newer link");
    assert!(taken(tokens, &newer).await);
}

/// A reset link taken, and a newer one sent meanwhile (which voids it): its use failing does not
/// bring it back beside the newer one, which stays the one that works.
async fn a_token_replaced_while_it_was_out_is_not_given_back(tokens: &dyn TokenStore) {
    let older = token(TokenPurpose::PasswordReset);
    tokens.replace(&older).await.expect("stored");
    assert!(taken(tokens, &older).await);
    let newer = StoredToken {
        user_id: older.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    assert_eq!(
        tokens.replace(&newer).await.expect("stored"),
        Replaced::Stored
    );
    tokens.give_back(&older).await.expect("no failure");
    assert!(!taken(tokens, &older).await, "the older link stays used");
    assert!(taken(tokens, &newer).await, "the newer link works");
}

/// Takes `token` for its own purpose: whether it was there.
async fn taken(tokens: &dyn TokenStore, token: &StoredToken) -> bool {
    let got = tokens
        .take(&token.hash, &[token.purpose])
        .await
        .expect("read");
    if let Some(got) = &got {
        assert_eq!(got, token, "it comes back as it was stored");
    }
    got.is_some()
}

/// A replace that loses every race to other replaces of the same user and purpose (each stored a
/// newer token between its read and its write) stores nothing and is no failure: the token of
/// the last replace that won is the valid one. Only DynamoDB: the twin replaces under one lock,
/// and never loses.
#[tokio::test]
async fn on_dynamodb_a_replace_that_loses_every_race_stores_nothing_and_is_no_failure() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.clone();
    let tokens = DynamoTokens::new(env.clients.dynamodb(), table.clone());
    let outrun = DynamoTokens::new(
        oes_tests::stale_reads::StaleReads::client(&env.clients.dynamodb()),
        table,
    );
    let first = token(TokenPurpose::PasswordReset);
    tokens.replace(&first).await.expect("stored");
    let second = StoredToken {
        user_id: first.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    let replaced = outrun
        .replace(&second)
        .await
        .expect("a replace that loses every race is answered");
    assert_eq!(replaced, Replaced::Outrun, "and says it stored nothing");
    assert!(!taken(&tokens, &second).await, "it stored nothing");
    assert!(taken(&tokens, &first).await, "the token that won works");
}

async fn a_replacing_token_voids_the_one_it_replaces(tokens: &dyn TokenStore) {
    let first = token(TokenPurpose::PasswordReset);
    let second = StoredToken {
        user_id: first.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    let third = StoredToken {
        user_id: first.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    for token in [&first, &second, &third] {
        let replaced = tokens.replace(token).await.expect("stored");
        assert_eq!(replaced, Replaced::Stored);
    }
    assert!(!taken(tokens, &first).await, "the first was replaced");
    assert!(!taken(tokens, &second).await, "the second was replaced");
    assert!(taken(tokens, &third).await, "the last one stored works");
    assert!(!taken(tokens, &third).await, "once");
}

async fn replacing_leaves_other_users_other_purposes_and_put_tokens_alone(tokens: &dyn TokenStore) {
    let mine = token(TokenPurpose::PasswordReset);
    let put_before = StoredToken {
        user_id: mine.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    let other_purpose = StoredToken {
        user_id: mine.user_id.clone(),
        ..token(TokenPurpose::VerifyEmail)
    };
    let other_user = token(TokenPurpose::PasswordReset);
    tokens.put(&put_before).await.expect("stored");
    for token in [&other_purpose, &other_user, &mine] {
        tokens.replace(token).await.expect("stored");
    }
    let newer = StoredToken {
        user_id: mine.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    tokens.replace(&newer).await.expect("stored");
    assert!(!taken(tokens, &mine).await, "replaced by the newer one");
    for kept in [&put_before, &other_purpose, &other_user, &newer] {
        assert!(taken(tokens, kept).await, "{kept:?} is left alone");
    }
}

async fn a_replaced_token_that_was_taken_or_expired_is_no_obstacle(tokens: &dyn TokenStore) {
    let used = token(TokenPurpose::PasswordReset);
    tokens.replace(&used).await.expect("stored");
    assert!(taken(tokens, &used).await);
    let expired = StoredToken {
        user_id: used.user_id.clone(),
        expires_at: 1,
        ..token(TokenPurpose::PasswordReset)
    };
    tokens
        .replace(&expired)
        .await
        .expect("stored after a taken one");
    let fresh = StoredToken {
        user_id: used.user_id.clone(),
        ..token(TokenPurpose::PasswordReset)
    };
    tokens
        .replace(&fresh)
        .await
        .expect("stored after an expired one");
    assert!(!taken(tokens, &expired).await);
    assert!(taken(tokens, &fresh).await);
}
