//! Fault schedules: how often each fault strikes while faults are on. Every run picks one; the
//! report gives the duplicate rate per schedule.

/// Probabilities per call (or per step, for episodes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Its name in reports.
    pub name: &'static str,
    /// Longest simulated latency of one port call, in milliseconds.
    pub latency_ms: u64,
    /// SES answers a transient error (throttling, 5xx).
    pub ses_transient: f64,
    /// SES refuses the message for good.
    pub ses_permanent: f64,
    /// SES hangs past its timeout (and may have accepted the message meanwhile).
    pub ses_hang: f64,
    /// Per step: an account-wide episode starts (outage, throttling, paused, quota spent).
    pub ses_episode: f64,
    /// A ledger call fails before it is applied.
    pub ledger_fail: f64,
    /// A ledger call is applied, then times out (the caller sees an error).
    pub ledger_ambiguous: f64,
    /// A queue call fails.
    pub queue_fail: f64,
    /// A queue send stores the message, then answers an error (every answer lost): the caller
    /// cannot tell it from a send that failed.
    pub send_unheard: f64,
    /// A send to the dead-letter queue fails.
    pub dlq_fail: f64,
    /// A delete answers OK but deletes nothing.
    pub lose_delete: f64,
    /// A received message is delivered a second time later (SQS's at-least-once).
    pub duplicate: f64,
    /// A received message becomes visible again at once (two workers get it at the same time).
    pub leak: f64,
    /// A crash point in a worker or redrive crashes it.
    pub crash: f64,
    /// Per step: an operator redrives or purges the dead-letter queue.
    pub redrive: f64,
}

const CALM: Profile = Profile {
    name: "calm",
    latency_ms: 20,
    ses_transient: 0.02,
    ses_permanent: 0.01,
    ses_hang: 0.0,
    ses_episode: 0.0,
    ledger_fail: 0.0,
    ledger_ambiguous: 0.0,
    queue_fail: 0.0,
    send_unheard: 0.0,
    dlq_fail: 0.0,
    lose_delete: 0.0,
    duplicate: 0.0,
    leak: 0.0,
    crash: 0.0,
    redrive: 0.02,
};

/// The schedules a run picks from.
pub const PROFILES: &[Profile] = &[
    CALM,
    Profile {
        name: "ses-trouble",
        ses_transient: 0.2,
        ses_permanent: 0.05,
        ses_hang: 0.05,
        ses_episode: 0.03,
        ..CALM
    },
    Profile {
        name: "flaky-ledger",
        ses_transient: 0.05,
        ledger_fail: 0.15,
        ledger_ambiguous: 0.05,
        ..CALM
    },
    Profile {
        name: "flaky-queues",
        ses_permanent: 0.05,
        queue_fail: 0.08,
        send_unheard: 0.05,
        dlq_fail: 0.4,
        lose_delete: 0.1,
        duplicate: 0.1,
        leak: 0.1,
        ..CALM
    },
    Profile {
        name: "crashes",
        ses_transient: 0.05,
        ses_permanent: 0.03,
        crash: 0.04,
        redrive: 0.05,
        ..CALM
    },
    Profile {
        name: "operators",
        ses_permanent: 0.1,
        ses_transient: 0.1,
        duplicate: 0.05,
        leak: 0.05,
        lose_delete: 0.05,
        crash: 0.01,
        redrive: 0.15,
        ..CALM
    },
    Profile {
        name: "chaos",
        latency_ms: 200,
        ses_transient: 0.1,
        ses_permanent: 0.05,
        ses_hang: 0.03,
        ses_episode: 0.02,
        ledger_fail: 0.05,
        ledger_ambiguous: 0.03,
        queue_fail: 0.03,
        send_unheard: 0.02,
        dlq_fail: 0.2,
        lose_delete: 0.05,
        duplicate: 0.05,
        leak: 0.05,
        crash: 0.02,
        redrive: 0.08,
    },
];
