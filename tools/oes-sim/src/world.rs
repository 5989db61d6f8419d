//! One run: the real producer, worker (driven as Lambda's event source mapping drives it) and
//! redrive over the fault layers, a phase of random steps with faults on, then faults off and the
//! queues drained, the invariants checked, everything on the dead-letter queue redriven, drained
//! and checked again.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use email_worker::Worker;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::{DeadLetterEntry, EmailLanes, QueueAdmin, redrive};
use oes_domain::ports::{JobLedger, JobStatus, MessageQueues, NewMessage, QueueName};
use oes_domain::producer::EmailProducer;
use oes_domain::security::Secret;
use oes_domain::user::Email;
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_runtime::wiring::WorkerAdapters;

use crate::clock::SimClock;
use crate::defect::Defect;
use crate::faults::Faults;
use crate::layers::{FaultLedger, FaultQueues, SimSes, recipient};
use crate::profile::{PROFILES, Profile};
use crate::rng::Rng;

/// Steps with faults on.
const STEPS: usize = 160;
/// Rounds the drain may take before the run is declared stuck.
const DRAIN_ROUNDS: usize = 3_000;

/// What one run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The fault schedule it drew.
    pub profile: &'static str,
    /// Jobs the producer accepted.
    pub jobs: usize,
    /// Messages SES accepted.
    pub sends: usize,
    /// Second sends inside the documented window.
    pub window: u32,
    /// The same, by cause.
    pub window_causes: BTreeMap<&'static str, u32>,
    /// Broken promises.
    pub violations: Vec<String>,
}

struct World {
    dice: Rng,
    faults: Arc<Faults>,
    clock: Arc<SimClock>,
    memory: Arc<MemoryQueues>,
    ledger_memory: Arc<MemoryJobs>,
    queues: Arc<dyn MessageQueues>,
    ledger: Arc<dyn JobLedger>,
    producer: EmailProducer,
    worker: Worker,
    /// Jobs the producer accepted, in order.
    accepted: Vec<String>,
    produced: usize,
    poison: usize,
}

/// Runs seed `seed` to the end.
pub fn run(seed: u64) -> RunReport {
    run_with(seed, None)
}

/// Runs seed `seed` to the end with `defect` planted, if any.
pub fn run_with(seed: u64, defect: Option<Defect>) -> RunReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(World::new(seed, defect).run(seed)),
        Err(error) => RunReport {
            seed,
            profile: "none",
            jobs: 0,
            sends: 0,
            window: 0,
            window_causes: BTreeMap::new(),
            violations: vec![format!("no runtime: {error}")],
        },
    }
}

impl World {
    fn new(seed: u64, defect: Option<Defect>) -> Self {
        let mut dice = Rng::new(seed);
        let profile: Profile =
            PROFILES[usize::try_from(dice.below(PROFILES.len() as u64)).unwrap_or(0)];
        let faults = Arc::new(Faults::new(profile, Rng::new(dice.next_u64())));
        let clock = Arc::new(SimClock::at(1_800_000_000));
        let memory = Arc::new(MemoryQueues::named("sim"));
        let ledger_memory = Arc::new(MemoryJobs::default());
        let queues: Arc<dyn MessageQueues> =
            Arc::new(FaultQueues::new(memory.clone(), faults.clone()));
        let mut ledger: Arc<dyn JobLedger> =
            Arc::new(FaultLedger::new(ledger_memory.clone(), faults.clone()));
        if let Some(defect) = defect {
            ledger = defect.ledger(ledger);
        }
        let lanes = Arc::new(EmailLanes::new(queues.clone()));
        let producer = EmailProducer::new(lanes.clone(), ledger.clone(), clock.clone());
        let adapters = WorkerAdapters {
            mailer: Arc::new(SimSes::new(faults.clone(), clock.clone())),
            jobs: ledger.clone(),
            control: lanes,
        };
        let jitter = faults.clone();
        let worker = Worker::new(
            adapters,
            "https://exams.example",
            RetryPolicy::default(),
            5,
            clock.clone(),
        )
        .with_jitter(Arc::new(move || jitter.jitter()));
        Self {
            dice,
            faults,
            clock,
            memory,
            ledger_memory,
            queues,
            ledger,
            producer,
            worker,
            accepted: Vec::new(),
            produced: 0,
            poison: 0,
        }
    }

    async fn run(mut self, seed: u64) -> RunReport {
        for _ in 0..STEPS {
            self.faults.weather(self.clock.now());
            self.step().await;
        }
        self.faults.stop();
        let mut violations = Vec::new();
        if self.drain().await {
            self.check_settled(&mut violations).await;
            self.redrive_everything().await;
            if self.drain().await {
                self.check_redriven(&mut violations).await;
            } else {
                violations.push("the lanes never drained after the redrive".into());
            }
        } else {
            violations.push("the lanes never drained".into());
        }
        let (sends, window, window_causes, mut found) = self.faults.truth(|t| {
            (
                t.accepted.values().map(Vec::len).sum(),
                t.window,
                std::mem::take(&mut t.window_causes),
                std::mem::take(&mut t.violations),
            )
        });
        found.append(&mut violations);
        RunReport {
            seed,
            profile: self.faults.profile.name,
            jobs: self.accepted.len(),
            sends,
            window,
            window_causes,
            violations: found,
        }
    }

    async fn step(&mut self) {
        let roll = self.dice.below(100);
        let lane = if self.dice.chance(0.5) {
            QueueName::Priority
        } else {
            QueueName::Bulk
        };
        match roll {
            0..25 => self.produce().await,
            25..27 => self.poison(lane).await,
            27..60 => {
                self.invoke(lane).await;
            }
            60..68 => {
                tokio::join!(self.invoke(lane), self.invoke(lane));
            }
            68..75 if self.dice.chance(self.faults.profile.redrive * 10.0) => {
                let only = self.pick_job();
                if self.dice.chance(0.5) {
                    tokio::join!(self.operator_redrive(only.clone()), self.invoke(lane));
                } else {
                    self.operator_redrive(only.clone()).await;
                    if self.dice.chance(0.3) {
                        // Twice in a row.
                        self.operator_redrive(only).await;
                    }
                }
            }
            _ => {
                let seconds = if self.dice.chance(0.2) {
                    self.dice.between(100, 2_000)
                } else {
                    self.dice.between(1, 60)
                };
                tokio::time::advance(Duration::from_secs(seconds)).await;
            }
        }
    }

    /// One job, or none (all), for an operator's redrive.
    fn pick_job(&mut self) -> Option<String> {
        if self.accepted.is_empty() || self.dice.chance(0.5) {
            return None;
        }
        let i = usize::try_from(self.dice.below(self.accepted.len() as u64)).unwrap_or(0);
        Some(self.accepted[i].clone())
    }

    async fn produce(&mut self) {
        self.produced += 1;
        let job_id = format!("job-{}", self.produced);
        let Ok(to) = Email::parse(&recipient(&job_id)) else {
            return;
        };
        let template = if self.dice.chance(0.5) {
            EmailTemplate::Verification {
                name: "Ada".into(),
                token: Secret::new("token"),
            }
        } else {
            EmailTemplate::Generic {
                subject: "News".into(),
                text: "Hello".into(),
            }
        };
        let mut job = EmailJob::new(to, template, self.clock.now());
        job.job_id = job_id.clone();
        if self.dice.chance(0.2) {
            job.delay_seconds = u32::try_from(self.dice.between(1, 900)).unwrap_or(0);
        }
        if self.producer.enqueue(job).await.is_ok() {
            self.accepted.push(job_id);
        }
    }

    /// A message no worker can read, straight onto a lane.
    async fn poison(&mut self, lane: QueueName) {
        let message = NewMessage {
            body: "{not an email job".into(),
            ..NewMessage::default()
        };
        if self.memory.send(lane, &message).await.is_ok() {
            self.poison += 1;
        }
    }

    /// One invocation of the worker on `lane`, as the event source mapping makes it. Returns how
    /// many messages it received (0 if it crashed).
    async fn invoke(&self, lane: QueueName) -> usize {
        let scope = self.faults.scope();
        let source = EventSource::new(self.queues.clone(), lane).with_wait(Duration::ZERO);
        let worker = &self.worker;
        let polled = scope
            .run(source.poll_once(|event| async move {
                Ok::<_, Infallible>(worker.handle_batch(event).await)
            }))
            .await;
        match polled {
            Some(Ok(received)) => received,
            Some(Err(_)) | None => 0,
        }
    }

    async fn operator_redrive(&self, only: Option<String>) {
        let scope = self.faults.scope();
        let _ = scope
            .run(redrive(
                self.queues.as_ref(),
                self.ledger.as_ref(),
                self.clock.as_ref(),
                only.as_deref(),
                None,
                |_| {},
            ))
            .await;
    }

    async fn lanes_empty(&self) -> bool {
        for lane in [QueueName::Priority, QueueName::Bulk] {
            match self.memory.counts(lane).await {
                Ok(c) if c.visible + c.in_flight + c.delayed == 0 => {}
                _ => return false,
            }
        }
        true
    }

    /// Faults off: runs the worker on both lanes, letting time pass when nothing comes, until
    /// both lanes are empty. False if they never empty.
    async fn drain(&self) -> bool {
        for _ in 0..DRAIN_ROUNDS {
            if self.lanes_empty().await {
                return true;
            }
            let got = self.invoke(QueueName::Priority).await + self.invoke(QueueName::Bulk).await;
            if got == 0 {
                tokio::time::advance(Duration::from_secs(30)).await;
            }
        }
        self.lanes_empty().await
    }

    async fn redrive_everything(&self) {
        for _ in 0..10 {
            match redrive(
                self.memory.as_ref(),
                self.ledger_memory.as_ref(),
                self.clock.as_ref(),
                None,
                None,
                |_| {},
            )
            .await
            {
                Ok(report) if report.moved == 0 => return,
                _ => {}
            }
        }
    }

    /// Every letter on the dead-letter queue, by job id. First lets an hour pass, so that
    /// letters a crashed redrive or listing had in hand are visible again.
    async fn dead_letters(&self) -> BTreeMap<Option<String>, Vec<DeadLetterEntry>> {
        tokio::time::advance(Duration::from_secs(3_600)).await;
        let mut by_job: BTreeMap<Option<String>, Vec<DeadLetterEntry>> = BTreeMap::new();
        let admin = QueueAdmin::new(self.memory.clone());
        if let Ok(entries) = admin.dead_letters(100_000).await {
            for entry in entries {
                by_job.entry(entry.job_id.clone()).or_default().push(entry);
            }
        }
        by_job
    }

    /// After the drain: every job sent once, or failed/dead with its reason and its message on
    /// the dead-letter queue; nothing moved there without a reason by a worker that could act.
    async fn check_settled(&self, violations: &mut Vec<String>) {
        let letters = self.dead_letters().await;
        for entry in letters.values().flatten() {
            let reasonless = entry.reason.as_deref().is_none_or(str::is_empty);
            if reasonless && !self.faults.truth(|t| t.was_cut(&entry.message_id)) {
                let scopes = self.faults.truth(|t| {
                    t.receives
                        .get(&entry.message_id)
                        .cloned()
                        .unwrap_or_default()
                });
                violations.push(format!(
                    "{} went to the dead-letter queue without a reason though every worker that received it could act (message {}, received in scopes {scopes:?})",
                    entry.job_id.as_deref().unwrap_or("a poison message"),
                    entry.message_id,
                ));
            }
        }
        let poison_letters = letters.get(&None).map_or(0, Vec::len);
        if poison_letters < self.poison {
            violations.push(format!(
                "{} poison message(s) sent, {poison_letters} on the dead-letter queue",
                self.poison
            ));
        }
        for job in &self.accepted {
            let Ok(Some(record)) = self.ledger_memory.get(job).await else {
                violations.push(format!("{job} has no record"));
                continue;
            };
            let on_dlq = letters.get(&Some(job.clone()));
            let (sends, excused) = self.faults.truth(|t| (t.sends(job), t.all_excused(job)));
            match record.status {
                JobStatus::Sent => {
                    let id = record.ses_message_id.as_deref().unwrap_or_default();
                    if !self.faults.truth(|t| t.has(job, id)) {
                        violations.push(format!(
                            "{job} is recorded as sent with {id:?}, which SES never accepted"
                        ));
                    }
                }
                JobStatus::Failed | JobStatus::Dead => {
                    if sends > 0 && !excused {
                        violations
                            .push(format!("{job} is {:?} but SES accepted it", record.status));
                    }
                    if record.last_error.as_deref().is_none_or(str::is_empty) {
                        violations.push(format!("{job} is {:?} without a reason", record.status));
                    }
                    if on_dlq.is_none() {
                        violations.push(format!(
                            "{job} is {:?} but its message is not on the dead-letter queue",
                            record.status
                        ));
                    }
                }
                status => {
                    let carried = on_dlq.is_some_and(|entries| {
                        entries
                            .iter()
                            .any(|e| self.faults.truth(|t| t.was_cut(&e.message_id)))
                    });
                    if !carried {
                        violations.push(format!(
                            "{job} is left {status:?} with no message to carry it (sends: {sends})"
                        ));
                    }
                }
            }
        }
    }

    /// After redriving everything with SES healthy: every job sent, only poison on the
    /// dead-letter queue.
    async fn check_redriven(&self, violations: &mut Vec<String>) {
        let letters = self.dead_letters().await;
        for job in &self.accepted {
            let sends = self.faults.truth(|t| t.sends(job));
            let status = self
                .ledger_memory
                .get(job)
                .await
                .ok()
                .flatten()
                .map(|r| r.status);
            if sends == 0 || status != Some(JobStatus::Sent) {
                violations.push(format!(
                    "after a redrive of everything, {job} is {status:?} with {sends} send(s)"
                ));
            }
        }
        for job in letters.keys().flatten() {
            violations.push(format!(
                "after a redrive of everything, {job} is still on the dead-letter queue"
            ));
        }
    }
}
