//! The simulation as `make test` runs it: 2,000 seeds, every one must keep every promise.
//! (`make soak` runs 100,000.) A failing seed prints itself; rerun it alone with
//! `OES_SIM_SEED=<seed> cargo run -p oes-sim`.

#[test]
fn two_thousand_seeds_keep_every_promise() {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let sweep = oes_sim::sweep::sweep(0, 2_000, threads);
    println!("{sweep}");
    assert!(sweep.failures.is_empty(), "{sweep}");
    // Not passed for want of anything to check: every schedule ran, produced jobs and sent them.
    for profile in oes_sim::profile::PROFILES {
        let figures = sweep.profiles.get(profile.name);
        assert!(
            figures.is_some_and(|f| f.runs > 0 && f.jobs > 0 && f.sends > 0),
            "{}: {figures:?}",
            profile.name
        );
    }
}

/// A pipeline that sends a job twice fails the simulation: the checks are not vacuous.
#[test]
fn a_ledger_that_forgets_what_it_sent_is_caught() {
    let caught = (0..300).any(|seed| {
        let report = oes_sim::run_with(seed, Some(oes_sim::defect::Defect::ForgetsSends));
        report
            .violations
            .iter()
            .any(|violation| violation.contains("was sent again"))
    });
    assert!(
        caught,
        "no seed of 300 saw a job sent again after it was sent"
    );
}

#[test]
fn a_seed_replays_exactly() {
    let a = oes_sim::run(7);
    let b = oes_sim::run(7);
    assert_eq!(
        (a.profile, a.jobs, a.sends, a.window, &a.violations),
        (b.profile, b.jobs, b.sends, b.window, &b.violations)
    );
}
