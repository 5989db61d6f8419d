//! Who may do what to exams and attempts. Pure rules: a wrong role is `Forbidden` (403); a
//! resource that exists but is not the caller's is `NotFound` (404), exactly as if it did not
//! exist, so ids cannot be probed.

use oes_domain::exam::{Attempt, Exam};
use oes_domain::user::{Role, UserProfile};

use crate::error::ExamError;

/// Only instructors and admins write exams.
pub fn may_author(caller: &UserProfile) -> Result<(), ExamError> {
    match caller.role {
        Role::Instructor | Role::Admin => Ok(()),
        Role::Student => Err(ExamError::Forbidden("this needs the instructor role")),
    }
}

/// Only students take exams.
pub fn may_take_exams(caller: &UserProfile) -> Result<(), ExamError> {
    match caller.role {
        Role::Student => Ok(()),
        Role::Instructor | Role::Admin => Err(ExamError::Forbidden("only students take exams")),
    }
}

/// An admin, or the exam's owner while they hold the instructor role. Rights follow the
/// caller's current role (the session reads it from the profile, and a role change revokes
/// earlier tokens): an owner demoted to student manages nothing, and promoted again, manages
/// their exams again.
pub fn manages(caller: &UserProfile, exam: &Exam) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Instructor => exam.owner_id == caller.id,
        Role::Student => false,
    }
}

/// An exam the caller may see: published, or theirs to manage.
pub fn visible(caller: &UserProfile, exam: Option<Exam>) -> Result<Exam, ExamError> {
    match exam {
        Some(exam) if exam.is_published() || manages(caller, &exam) => Ok(exam),
        _ => Err(ExamError::NotFound),
    }
}

/// An exam the caller may change: an author role (else 403), and theirs or an admin (else 404).
pub fn managed(caller: &UserProfile, exam: Option<Exam>) -> Result<Exam, ExamError> {
    may_author(caller)?;
    match exam {
        Some(exam) if manages(caller, &exam) => Ok(exam),
        _ => Err(ExamError::NotFound),
    }
}

/// An exam whose questions the caller may read outside an attempt: theirs to manage. A student
/// sees the questions only inside their own open attempt (403 here); another instructor's
/// exam is 404.
pub fn questions_of(caller: &UserProfile, exam: Option<Exam>) -> Result<Exam, ExamError> {
    if caller.role == Role::Student {
        return Err(ExamError::Forbidden(
            "students see the questions inside their own attempt (POST /exams/{id}/attempts)",
        ));
    }
    managed(caller, exam)
}

/// An attempt only its student may work on.
pub fn own_attempt(caller: &UserProfile, attempt: Option<Attempt>) -> Result<Attempt, ExamError> {
    match attempt {
        Some(attempt) if attempt.user_id == caller.id => Ok(attempt),
        _ => Err(ExamError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oes_domain::exam::{ExamFields, ExamStatus};
    use oes_domain::user::{DisplayName, Email, UserId, UserStatus};

    fn user(role: Role) -> UserProfile {
        UserProfile {
            id: UserId::generate(),
            email: Email::parse("a@example.com").expect("valid"),
            name: DisplayName::parse("A").expect("valid"),
            role,
            status: UserStatus::Active,
            token_version: 0,
            created_at: 0,
        }
    }

    fn exam_of(owner: &UserProfile, status: ExamStatus) -> Exam {
        let fields = ExamFields {
            title: "T".into(),
            description: String::new(),
            duration_minutes: 10,
            pass_mark_percent: 50,
        };
        let mut exam = Exam::draft(owner.id.clone(), fields, 0);
        exam.status = status;
        exam
    }

    #[test]
    fn drafts_are_hidden_from_everyone_but_their_owner_and_admins() {
        let owner = user(Role::Instructor);
        let draft = exam_of(&owner, ExamStatus::Draft);
        assert!(visible(&owner, Some(draft.clone())).is_ok());
        assert!(visible(&user(Role::Admin), Some(draft.clone())).is_ok());
        assert!(matches!(
            visible(&user(Role::Instructor), Some(draft.clone())),
            Err(ExamError::NotFound)
        ));
        assert!(matches!(
            visible(&user(Role::Student), Some(draft)),
            Err(ExamError::NotFound)
        ));
        let published = exam_of(&owner, ExamStatus::Published);
        assert!(visible(&user(Role::Student), Some(published)).is_ok());
    }

    #[test]
    fn a_wrong_role_is_forbidden_and_someone_elses_exam_is_not_found() {
        let owner = user(Role::Instructor);
        let exam = exam_of(&owner, ExamStatus::Published);
        assert!(matches!(
            managed(&user(Role::Student), Some(exam.clone())),
            Err(ExamError::Forbidden(_))
        ));
        assert!(matches!(
            managed(&user(Role::Student), None),
            Err(ExamError::Forbidden(_))
        ));
        assert!(matches!(
            managed(&user(Role::Instructor), Some(exam.clone())),
            Err(ExamError::NotFound)
        ));
        assert!(managed(&owner, Some(exam.clone())).is_ok());
        assert!(managed(&user(Role::Admin), Some(exam)).is_ok());
    }

    #[test]
    fn an_owner_without_the_instructor_role_manages_nothing() {
        let mut owner = user(Role::Instructor);
        let exam = exam_of(&owner, ExamStatus::Published);
        assert!(manages(&owner, &exam));
        owner.role = Role::Student;
        assert!(!manages(&owner, &exam));
        assert!(matches!(
            managed(&owner, Some(exam.clone())),
            Err(ExamError::Forbidden(_))
        ));
        let draft = exam_of(&owner, ExamStatus::Draft);
        assert!(matches!(
            visible(&owner, Some(draft)),
            Err(ExamError::NotFound)
        ));
        owner.role = Role::Admin;
        assert!(manages(&owner, &exam));
    }

    #[test]
    fn only_who_manages_an_exam_reads_its_questions_outside_an_attempt() {
        let owner = user(Role::Instructor);
        let exam = exam_of(&owner, ExamStatus::Published);
        assert!(questions_of(&owner, Some(exam.clone())).is_ok());
        assert!(questions_of(&user(Role::Admin), Some(exam.clone())).is_ok());
        assert!(matches!(
            questions_of(&user(Role::Student), Some(exam.clone())),
            Err(ExamError::Forbidden(_))
        ));
        assert!(matches!(
            questions_of(&user(Role::Instructor), Some(exam)),
            Err(ExamError::NotFound)
        ));
    }

    #[test]
    fn only_students_take_exams() {
        assert!(may_take_exams(&user(Role::Student)).is_ok());
        assert!(may_take_exams(&user(Role::Instructor)).is_err());
        assert!(may_take_exams(&user(Role::Admin)).is_err());
    }
}
