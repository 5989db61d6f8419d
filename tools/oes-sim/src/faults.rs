//! The fault layer's shared state: the run's dice, its fault schedule, whether faults are on, the
//! account-wide SES episode under way, and the [`Truth`] (which also counts the faults that
//! struck). One lock; the run is single-threaded.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::layers::CRASH_POINTS;
use crate::profile::Profile;
use crate::rng::Rng;
use crate::scope::Scope;
use crate::truth::Truth;

/// An account-wide SES state lasting until a time (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Episode {
    /// Every send fails transiently (an outage).
    Outage,
    /// Every send is throttled.
    Throttled,
    /// Sending is paused for the account.
    Paused,
    /// The daily sending quota is spent.
    QuotaSpent,
}

/// A fault the layers inject, as a run counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// SES answered a transient error.
    SesTransient,
    /// SES refused a message for good.
    SesPermanent,
    /// SES hung past the timeout, having accepted the message.
    SesHangAccepted,
    /// SES hung past the timeout without accepting the message.
    SesHangRefused,
    /// An SES outage began.
    SesOutage,
    /// An SES throttling spell began.
    SesThrottled,
    /// The SES account was paused.
    SesPaused,
    /// The daily SES quota ran out.
    SesQuotaSpent,
    /// A ledger call failed before it was applied.
    LedgerRefused,
    /// A ledger call was applied, then timed out.
    LedgerTimedOut,
    /// A queue call failed.
    QueueFailed,
    /// A queue send stored the message, then answered an error.
    SendUnheard,
    /// A send to the dead-letter queue failed.
    DeadLetterSendFailed,
    /// A delete answered OK and deleted nothing.
    DeleteLost,
    /// A received message was delivered a second time.
    Duplicate,
    /// A received message became visible again at once.
    Leak,
    /// A crash point crashed its worker or redrive.
    Crash,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Self; 17] = [
        Self::SesTransient,
        Self::SesPermanent,
        Self::SesHangAccepted,
        Self::SesHangRefused,
        Self::SesOutage,
        Self::SesThrottled,
        Self::SesPaused,
        Self::SesQuotaSpent,
        Self::LedgerRefused,
        Self::LedgerTimedOut,
        Self::QueueFailed,
        Self::SendUnheard,
        Self::DeadLetterSendFailed,
        Self::DeleteLost,
        Self::Duplicate,
        Self::Leak,
        Self::Crash,
    ];

    /// How often `profile` makes it strike (per call, or per step for the SES episodes): 0 for
    /// never.
    pub fn rate(self, profile: &Profile) -> f64 {
        match self {
            Self::SesTransient => profile.ses_transient,
            Self::SesPermanent => profile.ses_permanent,
            Self::SesHangAccepted | Self::SesHangRefused => profile.ses_hang,
            Self::SesOutage | Self::SesThrottled | Self::SesPaused | Self::SesQuotaSpent => {
                profile.ses_episode
            }
            Self::LedgerRefused => profile.ledger_fail,
            Self::LedgerTimedOut => profile.ledger_ambiguous,
            Self::QueueFailed => profile.queue_fail,
            Self::SendUnheard => profile.send_unheard,
            Self::DeadLetterSendFailed => profile.dlq_fail,
            Self::DeleteLost => profile.lose_delete,
            Self::Duplicate => profile.duplicate,
            Self::Leak => profile.leak,
            Self::Crash => profile.crash,
        }
    }
}

/// What SES does with one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SesAnswer {
    /// Accepted.
    Accept,
    /// A transient error.
    Transient,
    /// Refused for good.
    Permanent,
    /// The account cannot send.
    Paused,
    /// The daily quota is spent.
    QuotaSpent,
    /// No answer before the timeout; `accepted` says whether SES took it anyway.
    Hang {
        /// SES accepted the message though the caller never heard.
        accepted: bool,
    },
}

struct State {
    dice: Rng,
    on: bool,
    episode: Option<(Episode, i64)>,
    truth: Truth,
    scopes: u32,
}

/// Shared by every fault layer of one run.
pub struct Faults {
    /// The run's schedule.
    pub profile: Profile,
    state: Mutex<State>,
}

impl Faults {
    /// Faults on, with `profile`, rolled from `dice`.
    pub fn new(profile: Profile, dice: Rng) -> Self {
        Self {
            profile,
            state: Mutex::new(State {
                dice,
                on: true,
                episode: None,
                truth: Truth::default(),
                scopes: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads or updates the truth.
    pub fn truth<R>(&self, f: impl FnOnce(&mut Truth) -> R) -> R {
        f(&mut self.state().truth)
    }

    /// Stops every fault (and any episode) for good: the run drains.
    pub fn stop(&self) {
        let mut state = self.state();
        state.on = false;
        state.episode = None;
    }

    /// Whether faults are on.
    pub fn on(&self) -> bool {
        self.state().on
    }

    /// Whether `fault` strikes now: with the schedule's probability while faults are on.
    /// Counted when it does.
    pub fn strike(&self, fault: Fault) -> bool {
        let mut state = self.state();
        let struck = state.on && state.dice.chance(fault.rate(&self.profile));
        if struck {
            state.truth.struck(fault);
        }
        struck
    }

    /// A number in `lo..=hi` (whether faults are on or not).
    pub fn between(&self, lo: u64, hi: u64) -> u64 {
        self.state().dice.between(lo, hi)
    }

    /// 32 random bits (the worker's backoff jitter).
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.state().dice.next_u64() >> 32).unwrap_or(0)
    }

    /// A new scope for an invocation.
    pub fn scope(&self) -> std::sync::Arc<Scope> {
        let mut state = self.state();
        state.scopes += 1;
        Scope::new(state.scopes)
    }

    /// The latency of one call: up to the schedule's, a few milliseconds once faults stop.
    pub async fn latency(&self) {
        let most = if self.on() {
            self.profile.latency_ms
        } else {
            2
        };
        let ms = self.between(0, most);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.halt_if_crashed().await;
    }

    /// Inside a scope that crashed, nothing goes on: every call of its other tasks stops here
    /// (a crash stops the whole process, not just the task that tripped it).
    async fn halt_if_crashed(&self) {
        if Scope::current().is_some_and(|scope| scope.crashed()) {
            std::future::pending::<()>().await;
        }
    }

    /// A crash point: inside a scope, may crash it here (named for the reader of the code and
    /// the counts: one of [`CRASH_POINTS`]).
    pub async fn point(&self, at: &'static str) {
        debug_assert!(CRASH_POINTS.contains(&at), "{at:?} is not in CRASH_POINTS");
        self.halt_if_crashed().await;
        let Some(scope) = Scope::current() else {
            return;
        };
        if self.strike(Fault::Crash) {
            tracing::warn!(target: "sim", scope = scope.id, at, "CRASH");
            self.truth(|t| t.crashed(scope.id, at));
            scope.crash().await;
        }
    }

    /// Marks the current scope as one whose worker could not act (a queue call failed or was
    /// lost under it).
    pub fn cut(&self) {
        tracing::warn!(target: "sim", "queue fault");
        if let Some(scope) = Scope::current() {
            self.truth(|t| t.cut.insert(scope.id));
        }
    }

    /// Per step: may start an account-wide episode lasting 1–90 minutes from `now`; ends one
    /// that is over.
    pub fn weather(&self, now: i64) {
        let mut state = self.state();
        if state.episode.is_some_and(|(_, until)| until <= now) {
            state.episode = None;
        }
        if state.on && state.episode.is_none() && state.dice.chance(self.profile.ses_episode) {
            let (kind, fault) = match state.dice.below(4) {
                0 => (Episode::Outage, Fault::SesOutage),
                1 => (Episode::Throttled, Fault::SesThrottled),
                2 => (Episode::Paused, Fault::SesPaused),
                _ => (Episode::QuotaSpent, Fault::SesQuotaSpent),
            };
            state.truth.struck(fault);
            let minutes = i64::try_from(state.dice.between(1, 90)).unwrap_or(1);
            state.episode = Some((kind, now + minutes * 60));
        }
    }

    /// What SES does with a send at `now`.
    pub fn ses_answer(&self, now: i64) -> SesAnswer {
        let p = self.profile;
        let mut state = self.state();
        if !state.on {
            return SesAnswer::Accept;
        }
        if let Some((episode, until)) = state.episode
            && now < until
        {
            return match episode {
                Episode::Outage | Episode::Throttled => SesAnswer::Transient,
                Episode::Paused => SesAnswer::Paused,
                Episode::QuotaSpent => SesAnswer::QuotaSpent,
            };
        }
        let dice = &mut state.dice;
        let (answer, fault) = if dice.chance(p.ses_hang) {
            if dice.chance(0.5) {
                (SesAnswer::Hang { accepted: true }, Fault::SesHangAccepted)
            } else {
                (SesAnswer::Hang { accepted: false }, Fault::SesHangRefused)
            }
        } else if dice.chance(p.ses_permanent) {
            (SesAnswer::Permanent, Fault::SesPermanent)
        } else if dice.chance(p.ses_transient) {
            (SesAnswer::Transient, Fault::SesTransient)
        } else {
            return SesAnswer::Accept;
        };
        state.truth.struck(fault);
        answer
    }
}
