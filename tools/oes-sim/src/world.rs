//! One run: the real producer, worker (driven as Lambda's event source mapping drives it),
//! redrive and purge over the fault layers, a phase of random steps with faults on, then faults
//! off and the queues drained, the invariants checked, everything on the dead-letter queue
//! redriven, drained and checked again.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use email_worker::Worker;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::{DeadLetterEntry, EmailLanes, QueueAdmin, Step, purge, redrive};
use oes_domain::ports::{
    JobEventKind, JobLedger, JobRecord, JobStatus, MessageQueues, NewMessage, PURGED, QueueName,
};
use oes_domain::producer::{EmailProducer, EnqueueError};
use oes_domain::security::Secret;
use oes_domain::user::Email;
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_runtime::wiring::WorkerAdapters;

use crate::clock::SimClock;
use crate::defect::Defect;
use crate::faults::{Fault, Faults};
use crate::layers::{FaultLedger, FaultQueues, SimSes, recipient};
use crate::profile::{PROFILES, Profile};
use crate::rng::Rng;

/// Steps with faults on.
const STEPS: usize = 160;
/// Rounds the drain may take before the run is declared stuck.
const DRAIN_ROUNDS: usize = 3_000;

/// What one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The faults that struck, by kind.
    pub struck: BTreeMap<Fault, u32>,
    /// The crashes, by crash point.
    pub crashes: BTreeMap<&'static str, u32>,
    /// Job records a purge marked dead.
    pub purges: u32,
    /// Jobs left unsent and not ended by a purge that deleted their letter (one the queue's
    /// redrive policy moved) and, as it does for a job not ended, left their record as it was.
    pub left_by_purges: u32,
    /// Jobs the producer answered queued though their send answered an error: a worker had
    /// them already.
    pub queued_unheard: u32,
    /// Jobs the producer refused, by how ([`Refusal::name`]).
    pub refused: BTreeMap<&'static str, u32>,
    /// Broken promises.
    pub violations: Vec<String>,
}

/// How the producer refused a job, and so what it promises of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The queue refused and the job is recorded failed: nothing is sent, not even a copy that
    /// reached its lane unheard.
    Queue,
    /// The queue refused and the ledger could not record the job failed: its record stays
    /// queued, and a copy on its lane (`on_lane`: the send was stored unheard) is sent, once.
    Unsure {
        /// The send stored the message before it answered an error.
        on_lane: bool,
    },
    /// The job could not be recorded: nothing was put on a lane.
    Ledger,
    /// A job of that id was recorded already (never, for the run's fresh ids).
    Duplicate,
}

impl Refusal {
    /// Its name in reports.
    fn name(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Unsure { on_lane: true } => "unsure, on its lane",
            Self::Unsure { on_lane: false } => "unsure, never on its lane",
            Self::Ledger => "ledger",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Whether `record` is of a job its producer recorded failed (could not be queued) that no
/// worker has claimed: failed, or dead since a purge deleted a stray copy's letter.
fn failed_unqueued(record: &JobRecord) -> bool {
    (record.status == JobStatus::Failed || purged(record))
        && !record
            .history
            .iter()
            .any(|event| event.event == JobEventKind::Sending)
}

/// What happened to the job of `record`, oldest first.
fn history(record: &JobRecord) -> Vec<JobEventKind> {
    record.history.iter().map(|event| event.event).collect()
}

/// Whether `record` is of a job whose dead letter a purge deleted.
fn purged(record: &JobRecord) -> bool {
    record.status == JobStatus::Dead && record.last_error.as_deref() == Some(PURGED)
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
    /// Jobs the producer refused, in order.
    refused: Vec<(String, Refusal)>,
    queued_unheard: u32,
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
            violations: vec![format!("no runtime: {error}")],
            ..RunReport::default()
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
            refused: Vec::new(),
            queued_unheard: 0,
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
        let mut left_by_purges = 0;
        if self.drain().await {
            self.check_settled(&mut violations).await;
            self.redrive_everything().await;
            if self.drain().await {
                left_by_purges = self.check_redriven(&mut violations).await;
            } else {
                violations.push("the lanes never drained after the redrive".into());
            }
        } else {
            violations.push("the lanes never drained".into());
        }
        let mut report = self.faults.truth(|t| RunReport {
            seed,
            profile: self.faults.profile.name,
            jobs: self.accepted.len(),
            sends: t.accepted.values().map(Vec::len).sum(),
            window: t.window,
            window_causes: std::mem::take(&mut t.window_causes),
            struck: std::mem::take(&mut t.struck),
            crashes: std::mem::take(&mut t.crashes),
            purges: t.purges,
            left_by_purges,
            queued_unheard: self.queued_unheard,
            refused: BTreeMap::new(),
            violations: std::mem::take(&mut t.violations),
        });
        for (_, refusal) in &self.refused {
            *report.refused.entry(refusal.name()).or_default() += 1;
        }
        report.violations.append(&mut violations);
        report
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
                if self.dice.chance(0.2) {
                    let step = self.purge_step();
                    if self.dice.chance(0.5) {
                        tokio::join!(self.operator_purge(step), self.invoke(lane));
                    } else {
                        self.operator_purge(step).await;
                    }
                    return;
                }
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

    /// How much of the dead-letter queue one purge step may delete: all of it, or a few letters
    /// (as the admin API's steps do).
    fn purge_step(&mut self) -> Step {
        if self.dice.chance(0.5) {
            Step::from(None)
        } else {
            Step::from(usize::try_from(self.dice.between(1, 5)).ok())
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
                choose_password: false,
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
        // Sometimes a worker polls the job's lane meanwhile, so that it may take the job while
        // the producer still waits on a send that stored it and then answered an error.
        let enqueued = if self.dice.chance(0.3) {
            let lane = QueueName::from(job.lane());
            let wait =
                Duration::from_millis(self.dice.between(0, 2 * self.faults.profile.latency_ms));
            let worker = async {
                tokio::time::sleep(wait).await;
                self.invoke(lane).await
            };
            tokio::join!(self.producer.enqueue(job), worker).0
        } else {
            self.producer.enqueue(job).await
        };
        let unheard = self.faults.truth(|t| t.unheard.contains(&job_id));
        let refusal = match enqueued {
            Ok(_) => {
                if unheard {
                    self.queued_unheard += 1;
                }
                self.accepted.push(job_id);
                return;
            }
            Err(EnqueueError::Queue(_)) => Refusal::Queue,
            Err(EnqueueError::Unsure(_)) => Refusal::Unsure { on_lane: unheard },
            Err(EnqueueError::Ledger(_)) => Refusal::Ledger,
            Err(EnqueueError::Duplicate) => Refusal::Duplicate,
        };
        self.refused.push((job_id, refusal));
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

    /// A step of the operator's purge of the dead-letter queue, as the admin API runs it.
    async fn operator_purge(&self, step: Step) {
        let scope = self.faults.scope();
        self.faults.truth(|t| t.purge_scopes.insert(scope.id));
        let _ = scope
            .run(purge(
                self.queues.as_ref(),
                self.ledger.as_ref(),
                self.clock.as_ref(),
                step,
                |_| {},
            ))
            .await;
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

    /// The jobs a message carries: those the producer accepted, and those it was unsure of whose
    /// message reached their lane and whose records still say queued (so a worker sends them);
    /// then the jobs it refused that nothing carries.
    async fn carried(&self) -> (Vec<String>, Vec<(String, Refusal)>) {
        let mut carried = self.accepted.clone();
        let mut refused = Vec::new();
        for (job, refusal) in &self.refused {
            let record = self.ledger_memory.get(job).await.ok().flatten();
            if *refusal == (Refusal::Unsure { on_lane: true })
                && record.is_some_and(|r| !failed_unqueued(&r))
            {
                carried.push(job.clone());
            } else {
                refused.push((job.clone(), *refusal));
            }
        }
        (carried, refused)
    }

    /// After the drain: every job sent once, or failed/dead with its reason and its message on
    /// the dead-letter queue (or dead, its letter purged); nothing moved there without a reason
    /// by a worker that could act; every job the producer refused as it promised.
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
        let poison_purged = self.faults.truth(|t| t.poison_purged);
        if poison_letters + poison_purged < self.poison {
            violations.push(format!(
                "{} poison message(s) sent, {poison_letters} on the dead-letter queue, {poison_purged} purged",
                self.poison
            ));
        }
        let (carried, refused) = self.carried().await;
        for job in &carried {
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
                    if on_dlq.is_none() && !purged(&record) {
                        violations.push(format!(
                            "{job} is {:?} but its message is not on the dead-letter queue",
                            record.status
                        ));
                    }
                }
                status => {
                    // A purge deletes the letter of a job not ended and leaves its record as it
                    // is (`purge.rs`): a letter the queue's redrive policy moved may have been
                    // its only message.
                    let carried = on_dlq.is_some_and(|entries| {
                        entries
                            .iter()
                            .any(|e| self.faults.truth(|t| t.was_cut(&e.message_id)))
                    }) || self.faults.truth(|t| t.letters_purged.contains(job));
                    if !carried {
                        violations.push(format!(
                            "{job} is left {status:?} with no message to carry it (sends: {sends})"
                        ));
                    }
                }
            }
        }
        for (job, refusal) in &refused {
            self.check_refused(job, *refusal, violations).await;
        }
    }

    /// A job the producer refused, that nothing carries: never sent, its record as the refusal
    /// promised — failed, or (unsure, or the write of its record timed out) still queued with
    /// no attempt made.
    async fn check_refused(&self, job: &str, refusal: Refusal, violations: &mut Vec<String>) {
        let name = refusal.name();
        let sends = self.faults.truth(|t| t.sends(job));
        let record = self.ledger_memory.get(job).await.ok().flatten();
        if sends > 0 {
            violations.push(format!(
                "{job} was refused ({name}) but SES accepted it {sends} time(s) (its history: {:?})",
                record.as_ref().map(history)
            ));
        }
        let untouched = |r: &JobRecord| r.status == JobStatus::Queued && r.attempts == 0;
        let kept = match refusal {
            Refusal::Queue => record.as_ref().is_some_and(|r| {
                failed_unqueued(r) && r.last_error.as_deref().is_some_and(|e| !e.is_empty())
            }),
            Refusal::Unsure { .. } => record
                .as_ref()
                .is_some_and(|r| untouched(r) || failed_unqueued(r)),
            Refusal::Ledger => record.as_ref().is_none_or(untouched),
            Refusal::Duplicate => false,
        };
        if !kept {
            violations.push(format!(
                "{job} was refused ({name}) and its record is {:?}",
                record.map(|r| (r.status, r.attempts, history(&r), r.last_error))
            ));
        }
    }

    /// Whether `record` is of a job not ended whose letter a purge deleted, leaving the record
    /// as it was and no message to carry it.
    fn left_by_a_purge(&self, record: &JobRecord) -> bool {
        matches!(
            record.status,
            JobStatus::Queued | JobStatus::Sending | JobStatus::Retrying
        ) && self
            .faults
            .truth(|t| t.letters_purged.contains(&record.job_id))
    }

    /// After redriving everything with SES healthy: every job sent, or dead because a purge
    /// deleted its letter (and not sent since), or left unsent by a purge of its letter before it
    /// ended; only poison on the dead-letter queue; no refused job sent. Returns how many jobs
    /// the purges left unsent and not ended.
    async fn check_redriven(&self, violations: &mut Vec<String>) -> u32 {
        let letters = self.dead_letters().await;
        let (carried, refused) = self.carried().await;
        let mut left = 0;
        for job in &carried {
            let (sends, sends_when_purged) = self
                .faults
                .truth(|t| (t.sends(job), t.purged.get(job).copied()));
            let record = self.ledger_memory.get(job).await.ok().flatten();
            match record {
                Some(record) if record.status == JobStatus::Sent && sends > 0 => {}
                Some(record) if self.left_by_a_purge(&record) => left += 1,
                Some(record) if purged(&record) => {
                    if sends_when_purged != Some(sends) {
                        violations.push(format!(
                            "{job} is dead, its letter purged, but SES accepted it {sends} time(s), {sends_when_purged:?} when it was purged"
                        ));
                    }
                }
                record => violations.push(format!(
                    "after a redrive of everything, {job} is {:?} with {sends} send(s)",
                    record.map(|r| r.status)
                )),
            }
        }
        for (job, refusal) in &refused {
            let sends = self.faults.truth(|t| t.sends(job));
            if sends > 0 {
                let record = self.ledger_memory.get(job).await.ok().flatten();
                violations.push(format!(
                    "after a redrive of everything, {job}, refused ({}), was sent {sends} time(s) (its history: {:?})",
                    refusal.name(),
                    record.as_ref().map(history)
                ));
            }
        }
        for job in letters.keys().flatten() {
            violations.push(format!(
                "after a redrive of everything, {job} is still on the dead-letter queue"
            ));
        }
        left
    }
}
