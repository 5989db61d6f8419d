//! Who may do what to exams and attempts, and what a student sees of their finished attempt.
//! Pure rules: a wrong role is `Forbidden` (403); a resource that exists but is not the caller's
//! is `NotFound` (404), exactly as if it did not exist, so ids cannot be probed.

use std::collections::BTreeMap;

use oes_domain::exam::{Attempt, AttemptSummary, Exam, QuestionId, ReviewShows, Window};
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

/// An exam open for attempts at `now`: inside its window (409 `exam_not_open` before it,
/// `exam_closed` after it).
pub fn open_for_attempts(exam: &Exam, now: i64) -> Result<(), ExamError> {
    match exam.rules.window_at(now) {
        Window::Open => Ok(()),
        Window::NotOpen => Err(ExamError::conflict(
            "exam_not_open",
            "this exam does not take attempts yet (see its opens_at)",
        )),
        Window::Closed => Err(ExamError::conflict(
            "exam_closed",
            "this exam is closed (see its closes_at)",
        )),
    }
}

/// What its student sees of `attempt` at `now`: the result only once its review shows it, and
/// whether each answer was right only if the review shows the answers. (Who manages the exam
/// sees both as soon as it is submitted.)
pub fn student_review(
    mut attempt: Attempt,
    now: i64,
) -> (Attempt, Option<BTreeMap<QuestionId, bool>>) {
    let shown = attempt.result.as_ref().and(attempt.review.shown_at(now));
    let marks = (shown == Some(ReviewShows::Answers)).then(|| attempt.marks());
    if shown.is_none() {
        attempt.result = None;
    }
    (attempt, marks)
}

/// An entry of a student's own list as they see it at `now`: the result once its review shows
/// it.
pub fn student_summary(mut summary: AttemptSummary, now: i64) -> AttemptSummary {
    if summary.review.shown_at(now).is_none() {
        summary.result = None;
    }
    summary
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
    use oes_domain::exam::{ExamFields, ExamRules, ExamStatus, ReviewFrom, ReviewPolicy};
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
    fn attempts_start_only_inside_the_window() {
        let mut exam = exam_of(&user(Role::Instructor), ExamStatus::Published);
        exam.rules.opens_at = Some(100);
        exam.rules.closes_at = Some(200);
        let code = |now| match open_for_attempts(&exam, now) {
            Err(ExamError::Conflict { code, .. }) => code,
            Err(other) => panic!("{other}"),
            Ok(()) => "open",
        };
        assert_eq!(
            [code(99), code(100), code(199), code(200)],
            ["exam_not_open", "open", "open", "exam_closed"]
        );
    }

    #[test]
    fn a_finished_attempt_shows_its_student_what_its_review_allows() {
        let mut exam = exam_of(&user(Role::Instructor), ExamStatus::Published);
        exam.rules.closes_at = Some(1_000);
        exam.rules.review = ReviewPolicy {
            shows: ReviewShows::Answers,
            from: ReviewFrom::Close,
        };
        let mut attempt = Attempt::start(&exam, &[], UserId::generate(), 0);
        attempt.result = Some(attempt.grade(10));
        let (before, marks) = student_review(attempt.clone(), 999);
        assert_eq!((before.result, marks), (None, None));
        assert_eq!(student_summary(attempt.summary(), 999).result, None);
        let (after, marks) = student_review(attempt.clone(), 1_000);
        assert_eq!(after.result, attempt.result);
        assert_eq!(marks, Some(BTreeMap::new()));
        assert_eq!(
            student_summary(attempt.summary(), 1_000).result,
            attempt.result
        );

        // By default: the score once submitted, not which answers were right.
        let mut exam = exam_of(&user(Role::Instructor), ExamStatus::Published);
        exam.rules = ExamRules::default();
        let mut attempt = Attempt::start(&exam, &[], UserId::generate(), 0);
        attempt.result = Some(attempt.grade(10));
        let (shown, marks) = student_review(attempt.clone(), 10);
        assert_eq!((shown.result, marks), (attempt.result, None));
    }

    #[test]
    fn only_students_take_exams() {
        assert!(may_take_exams(&user(Role::Student)).is_ok());
        assert!(may_take_exams(&user(Role::Instructor)).is_err());
        assert!(may_take_exams(&user(Role::Admin)).is_err());
    }
}
