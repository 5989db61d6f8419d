//! The accounts `oes-local` seeds, all with the demo password: the demo accounts (one of each
//! role) and, with `--seed-students N`, a class of N verified students,
//! `student-1@example.com` … `student-N@example.com`, for a load test (`oes-load`) to sign in
//! without N sign-ups and verification links first.
//!
//! The embedded mode seeds them at every start (its data lives in memory). The real mode seeds
//! them only when asked (`--seed-students` with `OES_DEMO_PASSWORD`), and leaves an address that
//! already has an account as it is, so starting again over the same tables changes nothing.

use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::{BoxError, UserStore, UserUpdate};
use oes_domain::security::{Password, PasswordHasher};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};

/// The demo accounts, with their roles: one of each.
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 3] = [
    ("admin@example.com", "Demo Admin", Role::Admin),
    (
        "instructor@example.com",
        "Demo Instructor",
        Role::Instructor,
    ),
    ("student@example.com", "Demo Student", Role::Student),
];

/// The address of seeded student `n` (from 1).
pub fn student_email(n: usize) -> String {
    format!("student-{n}@example.com")
}

/// What [`accounts`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    /// Accounts created.
    pub created: usize,
    /// Addresses that had an account already, left as they were.
    pub existing: usize,
}

/// Creates the demo accounts and students 1 to `students`, active, with `password`, skipping
/// addresses that have an account. The password is hashed once and the hash shared (same
/// password, same salt): seeding costs one argon2 hash however many accounts, and each sign-in
/// still verifies a full hash.
pub async fn accounts(
    users: &dyn UserStore,
    hasher: &PasswordHasher,
    password: &str,
    students: usize,
) -> Result<Seeded, BoxError> {
    let password = Password::parse(password.to_owned(), "OES_DEMO_PASSWORD")?;
    let hash = hasher.hash(&password)?;
    let now = SystemClock.now();
    let demo = DEMO_ACCOUNTS
        .iter()
        .map(|&(email, name, role)| (email.to_owned(), name.to_owned(), role));
    let class = (1..=students).map(|n| (student_email(n), format!("Student {n}"), Role::Student));
    let mut seeded = Seeded {
        created: 0,
        existing: 0,
    };
    for (email, name, role) in demo.chain(class) {
        let email = Email::parse(&email)?;
        if users.find_by_email(&email).await?.is_some() {
            seeded.existing += 1;
            continue;
        }
        let user = User {
            id: UserId::generate(),
            email,
            name: DisplayName::parse(&name)?,
            password_hash: hash.clone(),
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            email_version: 0,
            created_at: now,
            updated_at: now,
        };
        users.create(&user).await?;
        if role != Role::Student {
            users.update(&user.id, UserUpdate::Role(role), now).await?;
        }
        seeded.created += 1;
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oes_adapters::memory::MemoryUsers;

    #[tokio::test]
    async fn seeds_the_demo_accounts_and_active_students_that_verify_with_the_password() {
        let users = MemoryUsers::default();
        let hasher = PasswordHasher::with_params(64, 1, 1).expect("params");
        let seeded = accounts(&users, &hasher, "seeded-password", 3)
            .await
            .expect("seeded");
        assert_eq!(
            seeded,
            Seeded {
                created: 6,
                existing: 0
            }
        );
        for (email, _, role) in DEMO_ACCOUNTS {
            let email = Email::parse(email).expect("email");
            let user = users.find_by_email(&email).await.expect("read");
            let user = user.expect("seeded demo account");
            assert_eq!(user.role, role, "{}", email.as_str());
        }
        for n in 1..=3 {
            let email = Email::parse(&student_email(n)).expect("email");
            let user = users.find_by_email(&email).await.expect("read");
            let user = user.expect("seeded student");
            assert_eq!(user.status, UserStatus::Active);
            assert_eq!(user.role, Role::Student);
            assert!(hasher.verify("seeded-password", Some(&user.password_hash)));
            assert!(!hasher.verify("another-password", Some(&user.password_hash)));
        }
        let fourth = Email::parse(&student_email(4)).expect("email");
        assert!(users.find_by_email(&fourth).await.expect("read").is_none());
    }

    #[tokio::test]
    async fn seeding_again_leaves_existing_accounts_as_they_are() {
        let users = MemoryUsers::default();
        let hasher = PasswordHasher::with_params(64, 1, 1).expect("params");
        accounts(&users, &hasher, "first-password", 2)
            .await
            .expect("seeded");
        let again = accounts(&users, &hasher, "second-password", 4)
            .await
            .expect("seeded again");
        assert_eq!(
            again,
            Seeded {
                created: 2,
                existing: 5
            }
        );
        let first = Email::parse(&student_email(1)).expect("email");
        let first = users
            .find_by_email(&first)
            .await
            .expect("read")
            .expect("kept");
        assert!(hasher.verify("first-password", Some(&first.password_hash)));
    }
}
