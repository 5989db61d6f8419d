//! The simulation as `make test` runs it: 2,000 seeds, every one must keep every promise.
//! (`make soak` runs 100,000.) A failing seed prints itself; rerun it alone with
//! `OES_SIM_SEED=<seed> cargo run -p oes-sim`.

use oes_sim::defect::Defect;
use oes_sim::faults::Fault;
use oes_sim::layers::CRASH_POINTS;
use oes_sim::profile::PROFILES;
use oes_sim::truth::{CRASH_AFTER_ACCEPTED, LOST_TO_A_TIMEOUT};

#[test]
fn two_thousand_seeds_keep_every_promise() {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let sweep = oes_sim::sweep::sweep(0, 2_000, threads);
    println!("{sweep}");
    assert!(sweep.failures.is_empty(), "{sweep}");
    // Not passed for want of anything to check: every schedule ran, produced jobs and sent them,
    // and struck with every fault it schedules (and with none it does not).
    for profile in PROFILES {
        let figures = sweep.profiles.get(profile.name);
        assert!(
            figures.is_some_and(|f| f.runs > 0 && f.jobs > 0 && f.sends > 0),
            "{}: {figures:?}",
            profile.name
        );
        for fault in Fault::ALL {
            let struck = figures
                .and_then(|f| f.struck.get(&fault).copied())
                .unwrap_or(0);
            assert_eq!(
                struck > 0,
                fault.rate(profile) > 0.0,
                "{}: {fault:?} struck {struck} time(s) at a rate of {}",
                profile.name,
                fault.rate(profile)
            );
        }
    }
    for point in CRASH_POINTS {
        assert!(
            sweep.crashes.get(point).is_some_and(|&n| n > 0),
            "no crash {point}: {:?}",
            sweep.crashes
        );
    }
    // Both common causes of the window. (The third, the ledger refusing every write of a send
    // whose receipt no queue would take, comes about 3 times in 100,000 seeds: `make soak`.)
    for cause in [CRASH_AFTER_ACCEPTED, LOST_TO_A_TIMEOUT] {
        assert!(
            sweep.window_causes.get(cause).is_some_and(|&n| n > 0),
            "no second send after: {cause}"
        );
    }
    // Purges marked jobs dead, and left others as they were; the producer refused jobs in
    // every way it can.
    assert!(sweep.purges > 0, "no purge marked a job dead");
    assert!(sweep.left_by_purges > 0, "no purge left a job not ended");
    for how in [
        "queue",
        "unsure, on its lane",
        "unsure, never on its lane",
        "ledger",
    ] {
        assert!(
            sweep.refused.get(how).is_some_and(|&n| n > 0),
            "the producer never refused a job this way: {how} ({:?})",
            sweep.refused
        );
    }
}

/// A send that stored its message and then answered an error, the job taken by a worker
/// meanwhile: the producer answers that it is queued (`producer.rs`), and the checks hold it
/// to that.
#[test]
fn a_job_a_worker_took_while_its_send_answered_an_error_is_queued() {
    let reached = (0..2_000).any(|seed| oes_sim::run(seed).queued_unheard > 0);
    assert!(
        reached,
        "no seed of 2,000 had a worker take a job whose send then answered an error"
    );
}

/// Whether some seed of the first `seeds`, run with `defect`, broke a promise in words that
/// contain `words`.
fn caught(defect: Defect, seeds: u64, words: &str) -> bool {
    (0..seeds).any(|seed| {
        oes_sim::run_with(seed, Some(defect))
            .violations
            .iter()
            .any(|violation| violation.contains(words))
    })
}

/// A pipeline that sends a job twice fails the simulation: the checks are not vacuous.
#[test]
fn a_ledger_that_forgets_what_it_sent_is_caught() {
    assert!(
        caught(Defect::ForgetsSends, 300, "was sent again"),
        "no seed of 300 saw a job sent again after it was sent"
    );
}

/// A purge that deletes a failed job's letter while its record still points at it fails the
/// simulation.
#[test]
fn a_purge_that_leaves_records_pointing_at_deleted_letters_is_caught() {
    assert!(
        caught(
            Defect::IgnoresPurges,
            300,
            "its message is not on the dead-letter queue"
        ),
        "no seed of 300 saw a failed job whose letter a purge deleted"
    );
}

/// A job the producer refused whose record is not failed (and whose copy on its lane is sent)
/// fails the simulation.
#[test]
fn a_refused_job_left_queued_is_caught() {
    assert!(
        caught(Defect::IgnoresUnqueued, 300, "was refused (queue)"),
        "no seed of 300 saw a refused job left queued"
    );
}

/// Seed 85 draws the chaos schedule: crashes, queue faults and second sends in the window.
#[test]
fn a_seed_replays_exactly() {
    let a = oes_sim::run(85);
    let b = oes_sim::run(85);
    assert_eq!(a, b);
    // What it replays: a crash, a queue fault, a second send in the window.
    assert!(a.crashes.values().sum::<u32>() > 0, "{a:?}");
    assert!(
        a.struck.get(&Fault::QueueFailed).is_some_and(|&n| n > 0),
        "{a:?}"
    );
    assert!(!a.window_causes.is_empty(), "{a:?}");
}
