//! Which exam an attempt is at, remembered by the process, so that the student's paper read
//! (`GET /attempts/{id}`, issue 14) asks the cache for the caller, the attempt and the exam's
//! questions at once: one round trip, not two in a row.
//!
//! An attempt never changes exam, so a remembered pair can only go out of date by the attempt
//! being deleted, which the read finds as it does today. The memo holds ids, never content: what
//! is shown is still what the cache (or the store) answers on that read, with its invalidation
//! and freshness untouched. It is bounded: [`SLOTS`] slots, an attempt's slot chosen by a hash
//! of its id, a newcomer replacing whoever held its slot (forgetting costs one more round trip,
//! nothing else).

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use oes_domain::exam::{AttemptId, ExamId};

/// The most attempts remembered at once (two ids, about 150 bytes, each).
pub const SLOTS: usize = 1024;

/// A slot: an attempt and its exam, or nothing. Boxed, so that an empty slot is a null pointer:
/// the empty table is zeroed memory the allocator hands out untouched, not 48 KiB written at
/// every cold start (12 page faults of exam-api's init).
type Slot = Option<Box<(AttemptId, ExamId)>>;

/// Attempt id → exam id, at most [`SLOTS`] of them.
pub struct ExamOfAttempt {
    slots: Mutex<Box<[Slot]>>,
    hasher: RandomState,
}

impl Default for ExamOfAttempt {
    fn default() -> Self {
        Self {
            slots: Mutex::new(vec![None; SLOTS].into_boxed_slice()),
            hasher: RandomState::new(),
        }
    }
}

impl ExamOfAttempt {
    /// The exam `attempt` is at, if remembered.
    pub fn get(&self, attempt: &AttemptId) -> Option<ExamId> {
        let slot = self.slot(attempt);
        match &self.lock()[slot] {
            Some(pair) if pair.0 == *attempt => Some(pair.1.clone()),
            _ => None,
        }
    }

    /// Remembers that `attempt` is at `exam` (in its slot, replacing whoever held it).
    pub fn remember(&self, attempt: &AttemptId, exam: &ExamId) {
        let slot = self.slot(attempt);
        let mut slots = self.lock();
        if !matches!(&slots[slot], Some(pair) if pair.0 == *attempt && pair.1 == *exam) {
            slots[slot] = Some(Box::new((attempt.clone(), exam.clone())));
        }
    }

    /// Forgets `attempt` (a closed attempt has no paper to read ahead for).
    pub fn forget(&self, attempt: &AttemptId) {
        let slot = self.slot(attempt);
        let mut slots = self.lock();
        if matches!(&slots[slot], Some(pair) if pair.0 == *attempt) {
            slots[slot] = None;
        }
    }

    fn slot(&self, attempt: &AttemptId) -> usize {
        // The remainder is below SLOTS: the cast back cannot truncate.
        (self.hasher.hash_one(attempt) % SLOTS as u64) as usize
    }

    fn lock(&self) -> MutexGuard<'_, Box<[Slot]>> {
        // A slot is written whole under the lock: one left by a panicking holder is still sound.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets_an_attempt_s_exam() {
        let memo = ExamOfAttempt::default();
        let (attempt, exam) = (AttemptId::generate(), ExamId::generate());
        assert_eq!(memo.get(&attempt), None);
        memo.remember(&attempt, &exam);
        assert_eq!(memo.get(&attempt), Some(exam));
        assert_eq!(memo.get(&AttemptId::generate()), None);
        memo.forget(&attempt);
        assert_eq!(memo.get(&attempt), None);
    }

    #[test]
    fn holds_at_most_its_slots() {
        let memo = ExamOfAttempt::default();
        let exam = ExamId::generate();
        let attempts: Vec<AttemptId> = (0..SLOTS * 4).map(|_| AttemptId::generate()).collect();
        for attempt in &attempts {
            memo.remember(attempt, &exam);
        }
        let held = attempts.iter().filter(|a| memo.get(a).is_some()).count();
        assert!(held <= SLOTS, "{held} remembered");
        // The last one in always holds its slot.
        assert_eq!(memo.get(&attempts[attempts.len() - 1]), Some(exam));
    }

    #[test]
    fn forgetting_another_attempt_leaves_a_slot_as_it_is() {
        let memo = ExamOfAttempt::default();
        let (attempt, exam) = (AttemptId::generate(), ExamId::generate());
        memo.remember(&attempt, &exam);
        for _ in 0..SLOTS * 4 {
            memo.forget(&AttemptId::generate());
        }
        assert_eq!(memo.get(&attempt), Some(exam));
    }
}
