//! The email pipeline over the [`MessageQueues`](crate::ports::MessageQueues) port, written once
//! for SQS and its in-memory twin alike.
//!
//! - [`EmailLanes`]: the producers' [`EmailQueue`](crate::ports::EmailQueue) (a job goes to the
//!   lane its priority selects) and the worker's [`QueueControl`](crate::ports::QueueControl)
//!   (backoff through the visibility timeout, dead-lettering with a reason).
//! - [`QueueAdmin`]: counts, the dead-letter queue's entries, purge — for `oesctl` and the admin
//!   API.
//! - [`redrive`]: moves dead letters back to their lane and resets their job records; the only
//!   redrive there is.

mod admin;
mod lanes;
mod redrive;

pub use admin::{DeadLetterEntry, QueueAdmin};
pub use lanes::EmailLanes;
pub use redrive::{RedriveReport, redrive};
