//! The attempt sweeper's schedule: what EventBridge does in AWS (run the `attempt-sweeper`
//! function every minute), a background task does here, in either mode.

use std::sync::Arc;
use std::time::Duration;

use exam_api::sweep::AttemptSweeper;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often the sweep runs locally: attempts close within this long after their deadline.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Starts a task that runs `sweeper` every `every` (the first run at once) until `stop` (a
/// sweep under way finishes first). A failed sweep is logged; the next one tries again.
pub fn spawn(
    sweeper: Arc<AttemptSweeper>,
    every: Duration,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The stop first: a sweep that used its whole budget ends with the next tick due,
            // and unbiased, a new sweep started after the stop with even odds, again and again.
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(error) = sweeper.sweep(every).await {
                tracing::error!(error = %error, "the attempt sweep could not read the due attempts");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    use oes_domain::clock::{Clock, ManualClock};
    use oes_domain::exam::{
        Attempt, AttemptStatus, ClosedBy, Exam, ExamFields, ExamStatus, Question, QuestionFields,
    };
    use oes_domain::ports::{MessageQueues, QueueName};
    use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
    use oes_runtime::wiring::ApiAdapters;

    #[tokio::test(start_paused = true)]
    async fn an_attempt_left_open_is_closed_by_the_background_sweep() {
        let queues = MemoryQueues::new();
        let adapters = ApiAdapters::in_memory(queues.clone(), Arc::new(MemoryJobs::default()));
        let clock = Arc::new(ManualClock::at(1_800_000_000));
        let now = clock.now();
        let student = User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: "not-used".into(),
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            email_version: 0,
            created_at: now,
            updated_at: now,
        };
        adapters.users.create(&student).await.expect("created");
        let fields = ExamFields {
            title: "Rust".into(),
            description: String::new(),
            duration_minutes: 1,
            pass_mark_percent: 50,
        };
        let mut exam = Exam::draft(UserId::generate(), fields, now);
        exam.status = ExamStatus::Published;
        exam.published_at = Some(now);
        adapters.exams.create_exam(&exam).await.expect("stored");
        let options = ["a".to_owned(), "b".to_owned()];
        let question = Question::new(
            exam.id.clone(),
            QuestionFields::parse("q?", &options, 1, 2).expect("valid"),
            now,
        );
        let attempt = Attempt::start(&exam, &[question], student.id.clone(), now);
        adapters
            .attempts
            .create_attempt(&attempt, 1)
            .await
            .expect("started");

        let task = spawn(
            Arc::new(AttemptSweeper::new(&adapters, clock.clone())),
            SWEEP_EVERY,
            &CancellationToken::new(),
        );
        tokio::time::sleep(SWEEP_EVERY / 2).await;
        clock.advance(61);
        tokio::time::sleep(SWEEP_EVERY).await;
        task.abort();

        let stored = adapters
            .attempts
            .get_attempt(&attempt.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(stored.status, AttemptStatus::Submitted);
        assert_eq!(stored.result.map(|r| r.closed_by), Some(ClosedBy::Deadline));
        let waiting = queues
            .receive(QueueName::Bulk, 10, None, Duration::ZERO)
            .await
            .expect("received");
        assert_eq!(waiting.len(), 1, "one result email");
    }
}
