//! `--seed-students N` (embedded mode): N verified student accounts at start-up,
//! `student-1@example.com` … `student-N@example.com`, with the demo password — a class for a
//! load test (`oes-load`) to sign in, without N sign-ups and verification links first.

use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::UserStore;
use oes_domain::security::{Password, PasswordHasher};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};

/// The address of seeded student `n` (from 1).
pub fn student_email(n: usize) -> String {
    format!("student-{n}@example.com")
}

/// Creates students 1 to `count`, active, with `password`. The password is hashed once and the
/// hash shared (same password, same salt): seeding costs one argon2 hash whatever `count`, and
/// each sign-in still verifies a full hash.
pub async fn students(
    users: &dyn UserStore,
    hasher: &PasswordHasher,
    password: &str,
    count: usize,
) -> Result<(), oes_domain::ports::BoxError> {
    if count == 0 {
        return Ok(());
    }
    let password = Password::parse(password.to_owned(), "OES_DEMO_PASSWORD")?;
    let hash = hasher.hash(&password)?;
    let now = SystemClock.now();
    for n in 1..=count {
        let user = User {
            id: UserId::generate(),
            email: Email::parse(&student_email(n))?,
            name: DisplayName::parse(&format!("Student {n}"))?,
            password_hash: hash.clone(),
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            created_at: now,
            updated_at: now,
        };
        users.create(&user).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oes_adapters::memory::MemoryUsers;

    #[tokio::test]
    async fn seeds_active_students_that_verify_with_the_password() {
        let users = MemoryUsers::default();
        let hasher = PasswordHasher::with_params(64, 1, 1).expect("params");
        students(&users, &hasher, "seeded-password", 3)
            .await
            .expect("seeded");
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
}
