//! The DynamoDB adapters against the emulator: unique emails, single-use tokens, email moves.

use oes_adapters::dynamo::{DynamoTokens, DynamoUsers};
use oes_domain::ports::{
    StoreError, StoredToken, TokenPurpose, TokenStore, UserConflict, UserStore, UserUpdate,
};
use oes_domain::security::OneTimeToken;
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
use oes_tests::TestEnv;

fn user(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse(email).expect("valid"),
        name: DisplayName::parse("Ada").expect("valid"),
        password_hash: "$argon2id$placeholder".into(),
        role: Role::Student,
        status: UserStatus::PendingVerification,
        token_version: 0,
        created_at: 1,
        updated_at: 1,
    }
}

fn stores(env: &TestEnv) -> (DynamoUsers, DynamoTokens) {
    let table = env.provisioned.table.clone();
    (
        DynamoUsers::new(env.clients.dynamodb.clone(), table.clone()),
        DynamoTokens::new(env.clients.dynamodb.clone(), table),
    )
}

#[tokio::test]
async fn an_email_address_belongs_to_one_account() {
    let env = TestEnv::spawn().await;
    let (users, _) = stores(&env);
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let error = users
        .create(&user("ada@example.com"))
        .await
        .expect_err("taken");
    assert!(
        matches!(error, StoreError::Conflict(UserConflict::EmailTaken)),
        "{error:?}"
    );
    let found = users
        .find_by_email(&ada.email)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found, ada);
    users.delete(&ada).await.expect("deleted");
    assert_eq!(users.find_by_email(&ada.email).await.expect("read"), None);
    users
        .create(&user("ada@example.com"))
        .await
        .expect("the address is free again");
}

#[tokio::test]
async fn updates_bump_the_token_version_where_they_must() {
    let env = TestEnv::spawn().await;
    let (users, _) = stores(&env);
    let ada = user("ada@example.com");
    users.create(&ada).await.expect("created");
    let renamed = users
        .update(
            &ada.id,
            UserUpdate::Name(DisplayName::parse("Ada King").expect("valid")),
            5,
        )
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
        .update(&ada.id, UserUpdate::Password("$argon2id$new".into()), 6)
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

#[tokio::test]
async fn moving_to_a_taken_address_fails_and_a_free_one_releases_the_old() {
    let env = TestEnv::spawn().await;
    let (users, _) = stores(&env);
    let ada = user("ada@example.com");
    let grace = user("grace@example.com");
    users.create(&ada).await.expect("created");
    users.create(&grace).await.expect("created");
    let taken = users.change_email(&ada.id, &grace.email, 9).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let new = Email::parse("ada@new.example").expect("valid");
    let moved = users.change_email(&ada.id, &new, 10).await.expect("moved");
    assert_eq!(moved.email, new);
    assert_eq!(users.find_by_email(&ada.email).await.expect("read"), None);
    assert_eq!(
        users.find_by_email(&new).await.expect("read").map(|u| u.id),
        Some(ada.id)
    );
}

#[tokio::test]
async fn a_token_is_taken_once_and_only_for_its_purpose() {
    let env = TestEnv::spawn().await;
    let (_, tokens) = stores(&env);
    let token = OneTimeToken::generate();
    let stored = StoredToken {
        hash: token.hash(),
        purpose: TokenPurpose::PasswordReset,
        user_id: UserId::generate(),
        new_email: None,
        token_version: 3,
        expires_at: 2_000_000_000,
    };
    tokens.put(&stored).await.expect("stored");
    let wrong = tokens
        .take(&token.hash(), &[TokenPurpose::VerifyEmail])
        .await
        .expect("read");
    assert_eq!(wrong, None, "a reset token is not a verification token");
    // One after the other: the take is a conditional delete, atomic in DynamoDB (moto's threaded
    // server does not lock its tables, so simultaneous takes prove nothing there).
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
