//! The contract of `TokenStore`, run against both implementations: a one-time token is taken at
//! most once, only for one of its purposes, and comes back as it was stored (expired or not:
//! expiry is the caller's check).
//!
//! - One async body per property, taking `&dyn TokenStore`.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over `MemoryTokens` and
//!   `on_dynamodb::<body>` over `DynamoTokens` in a fresh table of the emulator.
//!
//! Takes are tested one after the other: the take is a conditional delete, atomic in DynamoDB,
//! but moto's threaded server does not lock its tables, so simultaneous takes prove nothing
//! there.

use oes_adapters::dynamo::DynamoTokens;
use oes_adapters::memory::MemoryTokens;
use oes_domain::ports::{StoredToken, TokenPurpose, TokenStore};
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
                        env.clients.dynamodb.clone(),
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
);

fn token(purpose: TokenPurpose) -> StoredToken {
    StoredToken {
        hash: OneTimeToken::generate().hash(),
        purpose,
        user_id: UserId::generate(),
        new_email: None,
        token_version: 3,
        account_email: Some(Email::parse("ada@example.com").expect("valid")),
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
        // As a token stored before the account's address was recorded.
        account_email: None,
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
