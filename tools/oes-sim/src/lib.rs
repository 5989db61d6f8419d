//! A seeded, deterministic fault simulation of the email pipeline.
//!
//! One `u64` seed drives every choice of a run ([`world::run`]): which fault schedule
//! ([`profile`]), which steps (jobs produced — alone, or while a worker polls their lane —,
//! worker invocations — alone, two at once, or beside an operator's redrive or purge —, poison
//! messages, time jumps), and every fault the layers ([`layers`]) inject between the real code
//! and the in-memory twins. Time is Tokio's paused clock: nothing sleeps, and a seed replays
//! exactly (`OES_SIM_SEED=…`).
//!
//! After the faulty phase, faults stop, the queues drain, and the invariants are checked: every
//! job was accepted by SES exactly once, or is failed/dead with its reason and its message on the
//! dead-letter queue (or dead, its letter purged); a second send only inside the documented
//! window ([`truth`]); records that agree with what happened; every job the producer refused as
//! it promised. Then everything on the dead-letter queue is redriven and drained, and every job
//! must have been sent, except those whose letter a purge deleted.

pub mod clock;
pub mod defect;
pub mod faults;
pub mod layers;
pub mod profile;
pub mod rng;
pub mod scope;
pub mod sweep;
pub mod truth;
pub mod world;

pub use world::{RunReport, run, run_with};
