//! The email job schema. Versioned: `v` is checked on decode so a worker never misreads a
//! message written by a newer producer; fields added within a version have defaults, so messages
//! written before them still decode.

use serde::{Deserialize, Serialize};

use crate::security::Secret;
use crate::user::Email;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// SQS accepts per-message delays of 0–900 seconds on standard queues.
pub const MAX_DELAY_SECONDS: u32 = 900;

/// Attempts before a job is declared dead. With the default backoff (10 s doubling, see the
/// worker's `RetryPolicy`) the eighth attempt comes about 21 minutes after the first, so an SES
/// outage or throttling spell of 15 minutes sends nothing to the dead-letter queue.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// The longest job id a message may carry. Producers write UUIDs (36 characters); the id is
/// the ledger's key and a queue attribute, so one far longer (DynamoDB refuses a key over 2 KiB)
/// could never be claimed.
pub const MAX_JOB_ID_CHARS: usize = 128;

/// Jobs with at least this priority travel on the priority lane.
pub const PRIORITY_LANE_THRESHOLD: u8 = 10;

/// Which queue a job travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Account emails a user is waiting for (verification, password reset, email change, the
    /// notice of a sign-up with an address that has an account).
    Priority,
    /// Notifications and newsletters.
    Bulk,
}

impl Lane {
    /// Both lanes, priority first.
    pub const ALL: [Self; 2] = [Self::Priority, Self::Bulk];

    /// The lane named `name` (`priority` or `bulk`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|lane| lane.as_str() == name)
    }

    /// The lane's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Bulk => "bulk",
        }
    }
}

/// What to send, with the data its template needs. One-time tokens are [`Secret`]s so a job
/// never prints one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EmailTemplate {
    /// "Confirm your email address" after sign-up or on resend.
    Verification {
        /// Recipient's display name. Never rendered (the address is not proven yet): a job
        /// without it decodes, so the release after this one can stop sending it while workers
        /// of this one still run.
        #[serde(default)]
        name: String,
        /// The verification token.
        token: Secret,
        /// The address was signed up again before it was verified, so no sign-up's password
        /// was kept: the email says to choose one with a reset link once the address is
        /// confirmed. (A worker of a release before it renders the plain verification email.)
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        choose_password: bool,
    },
    /// "Reset your password".
    PasswordReset {
        /// Recipient's display name.
        name: String,
        /// The reset token.
        token: Secret,
    },
    /// "Confirm your new email address".
    EmailChange {
        /// Recipient's display name. Never rendered (the new address is not proven yet); a job
        /// without it decodes, as [`EmailTemplate::Verification`]'s.
        #[serde(default)]
        name: String,
        /// The change token.
        token: Secret,
    },
    /// "Someone tried to create an account with your address": sent instead of a verification
    /// email when a sign-up names the address of a verified account, so the sign-up is answered
    /// as any other. Carries no token: it points at the password reset page.
    AccountExists {
        /// The account's display name (never the name the sign-up gave).
        name: String,
    },
    /// "Your result for `<exam>` is available".
    ExamResult {
        /// Recipient's display name.
        name: String,
        /// The exam's title.
        exam_title: String,
        /// Score, 0–100.
        score_percent: u32,
        /// Whether the pass mark was reached.
        passed: bool,
        /// The attempt, for the link to the result.
        attempt_id: String,
    },
    /// A plain notification (announcements, newsletters). The text is escaped in the HTML part.
    Generic {
        /// Subject line.
        subject: String,
        /// Body text (paragraphs separated by blank lines).
        text: String,
    },
}

impl EmailTemplate {
    /// The default priority of this kind (BullMQ's: verification 10, notifications 5,
    /// newsletters 1).
    pub fn default_priority(&self) -> u8 {
        match self {
            Self::Verification { .. }
            | Self::PasswordReset { .. }
            | Self::EmailChange { .. }
            | Self::AccountExists { .. } => 10,
            Self::ExamResult { .. } => 5,
            Self::Generic { .. } => 1,
        }
    }

    /// The kind, as written in the message (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Verification { .. } => "verification",
            Self::PasswordReset { .. } => "password_reset",
            Self::EmailChange { .. } => "email_change",
            Self::AccountExists { .. } => "account_exists",
            Self::ExamResult { .. } => "exam_result",
            Self::Generic { .. } => "generic",
        }
    }

    /// The subject line, on one line. It never holds a token: the job ledger keeps it, and the
    /// operator console shows it.
    pub fn subject(&self) -> String {
        let subject = match self {
            Self::Verification { .. } => "Confirm your email address",
            Self::PasswordReset { .. } => "Reset your password",
            Self::EmailChange { .. } => "Confirm your new email address",
            Self::AccountExists { .. } => "Someone tried to sign up with your email address",
            Self::ExamResult { exam_title, .. } => {
                return format!("Your result for {exam_title}").replace(['\r', '\n'], " ");
            }
            Self::Generic { subject, .. } => subject,
        };
        subject.replace(['\r', '\n'], " ")
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    /// Schema version.
    pub v: u32,
    /// Unique id generated by the producer; the idempotency key of the send.
    pub job_id: String,
    /// Recipient.
    pub to: Email,
    /// Template and its data.
    #[serde(flatten)]
    pub template: EmailTemplate,
    /// Higher goes first; absent means the kind's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Seconds before the first delivery (0–900).
    #[serde(default)]
    pub delay_seconds: u32,
    /// Sending attempts before the job is declared dead.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Epoch seconds.
    pub created_at: i64,
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

/// A queue message body is not a job this worker can read.
#[derive(Debug, thiserror::Error)]
pub enum JobDecodeError {
    /// Not JSON, or not the job shape.
    #[error("the message is not a valid email job: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a producer with a schema this worker does not know.
    #[error("unsupported email job schema version {0}")]
    UnsupportedVersion(u32),
    /// A job id that cannot be the ledger's key: blank, longer than [`MAX_JOB_ID_CHARS`], or
    /// not printable ASCII without spaces.
    #[error(
        "the job id cannot be a key (1–{MAX_JOB_ID_CHARS} printable ASCII characters, no spaces)"
    )]
    InvalidJobId,
}

/// A job that cannot be queued as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// SQS delays stop at 900 seconds; longer ones need a scheduler, not a queue.
    #[error("a delay of {0} s is more than the {MAX_DELAY_SECONDS} s a queue allows")]
    DelayTooLong(u32),
    /// At least one attempt.
    #[error("max_attempts must be between 1 and 20, got {0}")]
    InvalidMaxAttempts(u32),
}

impl EmailJob {
    /// A new job with a fresh id, the kind's priority, no delay and the default attempts.
    pub fn new(to: Email, template: EmailTemplate, now: i64) -> Self {
        Self {
            v: SCHEMA_VERSION,
            job_id: uuid::Uuid::new_v4().to_string(),
            to,
            template,
            priority: None,
            delay_seconds: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            created_at: now,
        }
    }

    /// Delays the first delivery by `seconds` (at most 900: a longer delay is an error, never
    /// silently shortened).
    pub fn with_delay(mut self, seconds: u32) -> Result<Self, JobError> {
        if seconds > MAX_DELAY_SECONDS {
            return Err(JobError::DelayTooLong(seconds));
        }
        self.delay_seconds = seconds;
        Ok(self)
    }

    /// Overrides the kind's priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Overrides the number of attempts (1–20).
    pub fn with_max_attempts(mut self, attempts: u32) -> Result<Self, JobError> {
        if !(1..=20).contains(&attempts) {
            return Err(JobError::InvalidMaxAttempts(attempts));
        }
        self.max_attempts = attempts;
        Ok(self)
    }

    /// The effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
            .unwrap_or_else(|| self.template.default_priority())
    }

    /// The lane this job travels on: the priority lane from priority 10 up.
    pub fn lane(&self) -> Lane {
        if self.priority() >= PRIORITY_LANE_THRESHOLD {
            Lane::Priority
        } else {
            Lane::Bulk
        }
    }

    /// The message body.
    pub fn encode(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a message body.
    pub fn decode(body: &str) -> Result<Self, JobDecodeError> {
        #[derive(Deserialize)]
        struct Versioned {
            v: u32,
        }
        let Versioned { v } = serde_json::from_str(body)?;
        if v != SCHEMA_VERSION {
            return Err(JobDecodeError::UnsupportedVersion(v));
        }
        let job: Self = serde_json::from_str(body)?;
        if !is_job_id(&job.job_id) {
            return Err(JobDecodeError::InvalidJobId);
        }
        Ok(job)
    }
}

/// Whether `id` can be a job's id, and so the ledger's key: 1–[`MAX_JOB_ID_CHARS`] printable
/// ASCII characters, no spaces. No job has any other id: a lookup by one needs no store call.
pub fn is_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_JOB_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> EmailJob {
        EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::Verification {
                name: "Ada".into(),
                token: Secret::new("tok"),
                choose_password: false,
            },
            1_700_000_000,
        )
    }

    #[test]
    fn a_job_round_trips_through_its_wire_form() {
        let job = job().with_delay(30).expect("valid delay");
        let body = job.encode();
        let wire: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(wire["v"], 1);
        assert_eq!(wire["kind"], "verification");
        assert_eq!(wire["data"]["token"], "tok");
        assert_eq!(wire["delay_seconds"], 30);
        assert_eq!(EmailJob::decode(&body).expect("decodes"), job);
    }

    #[test]
    fn messages_written_before_priority_delay_and_attempts_still_decode() {
        let old = r#"{"v":1,"job_id":"j","to":"ada@example.com","kind":"verification",
                      "data":{"name":"Ada","token":"t"},"created_at":1}"#;
        let job = EmailJob::decode(old).expect("decodes");
        assert_eq!(
            (job.priority(), job.delay_seconds, job.max_attempts),
            (10, 0, DEFAULT_MAX_ATTEMPTS)
        );
        assert_eq!(job.lane(), Lane::Priority);
    }

    /// Step one of dropping the unrendered `name` from the two jobs to unproven addresses: a
    /// worker must read a job written without it before any producer stops writing it.
    #[test]
    fn jobs_to_unproven_addresses_decode_without_a_name() {
        for kind in ["verification", "email_change"] {
            let body = format!(
                r#"{{"v":1,"job_id":"j","to":"ada@example.com","kind":"{kind}",
                     "data":{{"token":"t"}},"created_at":1}}"#
            );
            let job = EmailJob::decode(&body).expect("decodes");
            assert_eq!(job.template.kind(), kind);
        }
        let reset = r#"{"v":1,"job_id":"j","to":"ada@example.com","kind":"password_reset",
                        "data":{"token":"t"},"created_at":1}"#;
        assert!(EmailJob::decode(reset).is_err(), "a reset greets by name");
    }

    /// A job id is the ledger's key: one that cannot be a key (too long for DynamoDB's, blank,
    /// or with spaces or control characters) could never be claimed, so the message is poison.
    #[test]
    fn a_job_id_that_cannot_be_a_key_does_not_decode() {
        for id in [
            "x".repeat(3_000),
            String::new(),
            "a b".into(),
            "a\u{7}b".into(),
        ] {
            let mut job = job();
            job.job_id = id.clone();
            assert!(
                EmailJob::decode(&job.encode()).is_err(),
                "a job id of {} chars, {:?}…, decodes",
                id.chars().count(),
                id.chars().take(8).collect::<String>()
            );
        }
        let uuid = job();
        assert_eq!(EmailJob::decode(&uuid.encode()).expect("decodes"), uuid);
    }

    #[test]
    fn lanes_follow_priority() {
        let notification = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::Generic {
                subject: "Hi".into(),
                text: "News".into(),
            },
            0,
        );
        assert_eq!(notification.lane(), Lane::Bulk);
        assert_eq!(notification.with_priority(10).lane(), Lane::Priority);
        assert_eq!(job().with_priority(5).lane(), Lane::Bulk);
    }

    #[test]
    fn delays_up_to_900_seconds_are_accepted_and_longer_ones_refused() {
        assert_eq!(job().with_delay(900).map(|j| j.delay_seconds), Ok(900));
        assert_eq!(
            job().with_delay(901).map(|j| j.delay_seconds),
            Err(JobError::DelayTooLong(901))
        );
        assert!(job().with_max_attempts(0).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        assert!(!format!("{:?}", job()).contains("tok\""));
    }

    #[test]
    fn garbage_and_unknown_versions_are_refused() {
        assert!(matches!(
            EmailJob::decode("not json"),
            Err(JobDecodeError::Malformed(_))
        ));
        assert!(matches!(
            EmailJob::decode(r#"{"v":1}"#),
            Err(JobDecodeError::Malformed(_))
        ));
        let newer = job().encode().replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            EmailJob::decode(&newer),
            Err(JobDecodeError::UnsupportedVersion(2))
        ));
    }
}
