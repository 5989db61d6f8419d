//! What really happened, kept by the fault layer beside the code under test: every message SES
//! accepted, whether its `sent` record was written, and why not; the faults that struck; what the
//! purges and the producer's unheard sends left behind. A second acceptance of a job is judged the
//! moment it happens.

use std::collections::{BTreeMap, BTreeSet};

use crate::faults::Fault;

/// How many refused `sent` writes excuse an unrecorded send: the worker tries that many times
/// before it falls back.
pub const SENT_WRITE_TRIES: u32 = 3;

/// A first send went unrecorded because SES's answer was lost to a timeout.
pub const LOST_TO_A_TIMEOUT: &str = "SES's answer lost to a timeout";
/// A first send went unrecorded because its worker crashed after SES accepted it.
pub const CRASH_AFTER_ACCEPTED: &str = "crash after SES accepted";
/// A first send went unrecorded because the ledger refused every write of it.
pub const SENT_WRITES_REFUSED: &str = "the ledger refused every try at the sent record";

/// One message SES accepted.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// SES's message id.
    pub ses_id: String,
    /// The scope (worker invocation) that sent it.
    pub scope: Option<u32>,
    /// Its `sent` record was written.
    pub recorded: bool,
    /// Why it could not be recorded, when nothing in our code is to blame: the worker crashed
    /// after SES accepted, or SES's answer was lost to a timeout.
    pub excuse: Option<&'static str>,
    /// `sent` writes the ledger refused for it.
    pub refusals: u32,
    /// A receipt carrying its SES id reached a lane (where a worker records it; one on the
    /// dead-letter queue waits for a redrive).
    pub receipt_on_lane: bool,
}

impl Acceptance {
    /// Whether a second send of its job falls in the documented window: the worker crashed or
    /// lost SES's answer, or the ledger refused every try at the `sent` record and then either
    /// no lane took the receipt or the ledger refused the receipt's write too. (A receipt on its
    /// lane is recorded when it is delivered; a second send before that is not excused.)
    fn excused(&self) -> bool {
        self.excuse.is_some()
            || (self.refusals >= SENT_WRITE_TRIES
                && (!self.receipt_on_lane || self.refusals > SENT_WRITE_TRIES))
    }
}

/// The record of a run.
#[derive(Debug, Default)]
pub struct Truth {
    /// Acceptances by job id.
    pub accepted: BTreeMap<String, Vec<Acceptance>>,
    /// Second sends inside the documented window.
    pub window: u32,
    /// The same, by why the first send went unrecorded.
    pub window_causes: BTreeMap<&'static str, u32>,
    /// Broken promises, in words.
    pub violations: Vec<String>,
    /// Message ids → the scopes that received them.
    pub receives: BTreeMap<String, Vec<u32>>,
    /// Scopes in which a worker could not act: it crashed, or a queue call failed or was lost.
    pub cut: BTreeSet<u32>,
    /// (scope, job) → whether a send of the job was recorded when that scope's claim was granted.
    claims: BTreeMap<(Option<u32>, String), bool>,
    /// The faults that struck, by kind.
    pub struck: BTreeMap<Fault, u32>,
    /// The crashes, by crash point.
    pub crashes: BTreeMap<&'static str, u32>,
    /// Jobs whose producer's send (the one outside any scope) stored the message, then answered
    /// an error.
    pub unheard: BTreeSet<String>,
    /// Jobs whose records a purge marked dead → how many times SES had accepted them when it
    /// last did.
    pub purged: BTreeMap<String, usize>,
    /// Job records a purge marked dead (a job marked twice counts twice).
    pub purges: u32,
    /// Scopes that run a purge.
    pub purge_scopes: BTreeSet<u32>,
    /// Receipt handles of letters received from the dead-letter queue → their job (`None`: an
    /// undecodable letter).
    pub letters_in_hand: BTreeMap<String, Option<String>>,
    /// Undecodable letters a purge deleted.
    pub poison_purged: usize,
    /// Jobs a letter of which a purge deleted.
    pub letters_purged: BTreeSet<String>,
}

impl Truth {
    /// A claim of `job` was granted in `scope`: what was recorded then is what that attempt
    /// could know.
    pub fn claimed(&mut self, job: &str, scope: Option<u32>) {
        let recorded = self
            .accepted
            .get(job)
            .is_some_and(|all| all.iter().any(|a| a.recorded));
        self.claims.insert((scope, job.to_owned()), recorded);
    }

    /// SES accepted `ses_id` for `job`.
    pub fn accept(
        &mut self,
        job: &str,
        ses_id: String,
        scope: Option<u32>,
        excuse: Option<&'static str>,
    ) {
        let recorded_at_claim = self
            .claims
            .get(&(scope, job.to_owned()))
            .copied()
            .unwrap_or(true);
        let prior = self.accepted.entry(job.to_owned()).or_default();
        if !prior.is_empty() {
            if recorded_at_claim || prior.iter().any(|a| a.recorded && !a.excused()) {
                self.violations.push(format!(
                    "{job} was sent again after its first send was recorded as sent"
                ));
            } else if prior.iter().all(Acceptance::excused) {
                self.window += 1;
                let cause = prior
                    .iter()
                    .rev()
                    .find_map(|a| a.excuse)
                    .unwrap_or(SENT_WRITES_REFUSED);
                *self.window_causes.entry(cause).or_default() += 1;
            } else {
                self.violations.push(format!(
                    "{job} was sent twice: the first send was never recorded, though nothing stopped it"
                ));
            }
        }
        prior.push(Acceptance {
            ses_id,
            scope,
            recorded: false,
            excuse,
            refusals: 0,
            receipt_on_lane: false,
        });
    }

    fn find(&mut self, job: &str, ses_id: &str) -> Option<&mut Acceptance> {
        self.accepted
            .get_mut(job)?
            .iter_mut()
            .find(|a| a.ses_id == ses_id)
    }

    /// The ledger wrote `sent` with `ses_id` for `job`.
    pub fn recorded(&mut self, job: &str, ses_id: &str) {
        match self.find(job, ses_id) {
            Some(acceptance) => acceptance.recorded = true,
            None => self.violations.push(format!(
                "{job} was recorded as sent with {ses_id}, which SES never accepted"
            )),
        }
    }

    /// The ledger refused to write `sent` with `ses_id` for `job`.
    pub fn refused(&mut self, job: &str, ses_id: &str) {
        if let Some(acceptance) = self.find(job, ses_id) {
            acceptance.refusals += 1;
        }
    }

    /// A receipt of `ses_id` for `job` reached its lane.
    pub fn receipt_on_lane(&mut self, job: &str, ses_id: &str) {
        if let Some(acceptance) = self.find(job, ses_id) {
            acceptance.receipt_on_lane = true;
        }
    }

    /// `fault` struck.
    pub fn struck(&mut self, fault: Fault) {
        *self.struck.entry(fault).or_default() += 1;
    }

    /// Scope `scope` crashed at point `at`: what it sent and had not recorded, it never will.
    pub fn crashed(&mut self, scope: u32, at: &'static str) {
        *self.crashes.entry(at).or_default() += 1;
        self.cut.insert(scope);
        for acceptance in self.accepted.values_mut().flatten() {
            if acceptance.scope == Some(scope)
                && !acceptance.recorded
                && acceptance.excuse.is_none()
            {
                acceptance.excuse = Some(CRASH_AFTER_ACCEPTED);
            }
        }
    }

    /// A purge marked `job` dead: from now on, while its record says so, it is never sent.
    pub fn purged(&mut self, job: &str) {
        let sends = self.sends(job);
        self.purged.insert(job.to_owned(), sends);
        self.purges += 1;
    }

    /// The letter received with `handle` was deleted from the dead-letter queue in `scope`: if
    /// by a purge, it is noted. (A stale handle deletes nothing, yet is noted: the notes may say
    /// too much, never too little.)
    pub fn letter_deleted(&mut self, handle: &str, scope: Option<u32>) {
        let Some(job) = self.letters_in_hand.remove(handle) else {
            return;
        };
        if !scope.is_some_and(|scope| self.purge_scopes.contains(&scope)) {
            return;
        }
        match job {
            Some(job) => {
                self.letters_purged.insert(job);
            }
            None => self.poison_purged += 1,
        }
    }

    /// How many times SES accepted `job`.
    pub fn sends(&self, job: &str) -> usize {
        self.accepted.get(job).map_or(0, Vec::len)
    }

    /// Whether every send of `job` is excused (it may have gone out without our code knowing).
    pub fn all_excused(&self, job: &str) -> bool {
        self.accepted
            .get(job)
            .is_none_or(|all| all.iter().all(|a| a.excuse.is_some()))
    }

    /// Whether SES accepted `ses_id` for `job`.
    pub fn has(&self, job: &str, ses_id: &str) -> bool {
        self.accepted
            .get(job)
            .is_some_and(|all| all.iter().any(|a| a.ses_id == ses_id))
    }

    /// Whether some worker that received message `message_id` could not act on it.
    pub fn was_cut(&self, message_id: &str) -> bool {
        self.receives
            .get(message_id)
            .is_some_and(|scopes| scopes.iter().any(|s| self.cut.contains(s)))
    }
}
