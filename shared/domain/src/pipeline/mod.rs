//! The email pipeline over the [`crate::ports::MessageQueues`] port, written once
//! for SQS and its in-memory twin alike.
//!
//! - [`EmailLanes`]: the producers' [`EmailQueue`](crate::ports::EmailQueue) (a job goes to the
//!   lane its priority selects) and the worker's [`QueueControl`](crate::ports::QueueControl)
//!   (backoff through the visibility timeout, dead-lettering with a reason).
//! - [`QueueAdmin`]: counts and the dead-letter queue's entries — for `oesctl` and the admin
//!   API.
//! - [`redrive`]: moves dead letters back to their lane and resets their job records; the only
//!   redrive there is.
//! - [`purge`]: deletes the dead letters, their job records saying so; the only purge there is.

mod admin;
mod lanes;
mod purge;
mod redrive;

pub use admin::{DeadLetterEntry, QueueAdmin};

use std::time::Duration;

use crate::ports::{MessageQueues, QueueError, QueueName, ReceivedMessage};

/// How long a dead letter being listed or redriven stays hidden from other receives, so that the
/// next receive brings others (a queue has no peek and no order to walk).
/// A walk must end inside it: past it the first letters it took show again, a receive may bring
/// only letters already seen, and the walk ends as if it had seen them all (bound a long walk by
/// [`Step::time`] and run steps).
pub const IN_HAND_SECONDS: u32 = 30;

/// How many dead letters [`release`] makes visible at once.
const RELEASING: usize = 16;

/// How long a receive of dead letters waits for one. A walk ends at the first receive that brings
/// no letter it has not seen, so that receive must not miss any: a short poll (no wait) asks
/// only a sample of SQS's servers and may come back empty while letters are there; a long poll
/// asks them all. It returns as soon as a letter is there, so only a walk's last receive waits.
const DEAD_LETTER_WAIT: Duration = Duration::from_secs(1);

/// How much of the dead-letter queue one call of [`redrive`] or [`purge`] may walk: at most
/// `letters` letters moved, dropped or deleted, and no letter begun once `time` has passed
/// since it started (a request's step then ends inside its function's timeout however slowly
/// the store answers: it says it is not done, and the next step goes on). `None`: no bound.
/// `Some(n)` and `None` convert to a bound on letters only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// The most letters handled.
    pub letters: Option<usize>,
    /// How long after its start the step stops taking letters.
    pub time: Option<Duration>,
}

impl From<Option<usize>> for Step {
    fn from(letters: Option<usize>) -> Self {
        Self {
            letters,
            time: None,
        }
    }
}

/// A step's bounds as it runs.
struct Bounds {
    letters: usize,
    deadline: Option<tokio::time::Instant>,
}

impl Bounds {
    fn of(step: Step) -> Self {
        Self {
            letters: step.letters.unwrap_or(usize::MAX),
            deadline: step.time.map(|time| tokio::time::Instant::now() + time),
        }
    }

    /// Whether the step's time is spent.
    fn out_of_time(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
    }
}

/// Up to ten dead letters (a long poll: see [`DEAD_LETTER_WAIT`]), hidden for
/// [`IN_HAND_SECONDS`] so that the next call brings others.
async fn take_dead_letters(queues: &dyn MessageQueues) -> Result<Vec<ReceivedMessage>, QueueError> {
    queues
        .receive(
            QueueName::DeadLetter,
            10,
            Some(IN_HAND_SECONDS),
            DEAD_LETTER_WAIT,
        )
        .await
}

/// Makes the dead letters received with these handles visible again at once, [`RELEASING`] at a
/// time: a step that walked a long queue hides hundreds, and one round trip after another would
/// run past its function's timeout. Best effort: one that cannot be released becomes visible
/// by itself after [`IN_HAND_SECONDS`].
async fn release(queues: &dyn MessageQueues, receipts: &[String]) {
    for chunk in receipts.chunks(RELEASING) {
        let released = futures_util::future::join_all(
            chunk
                .iter()
                .map(|receipt| queues.change_visibility(QueueName::DeadLetter, receipt, 0)),
        )
        .await;
        for error in released.into_iter().filter_map(Result::err) {
            tracing::warn!(%error, "a dead letter stays hidden until its visibility timeout ends");
        }
    }
}

pub use lanes::{EmailLanes, HOLDS_ATTRIBUTE, RECEIPT_ATTRIBUTE};
pub use purge::{PurgeReport, purge};
pub use redrive::{RedriveReport, redrive};
