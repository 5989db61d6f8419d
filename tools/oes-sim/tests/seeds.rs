//! The simulation as `make test` runs it: 2,000 seeds, every one must keep every promise.
//! (`make soak` runs 100,000.) A failing seed prints itself; rerun it alone with
//! `OES_SIM_SEED=<seed> cargo run -p oes-sim`.

#[test]
fn two_thousand_seeds_keep_every_promise() {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let sweep = oes_sim::sweep::sweep(0, 2_000, threads);
    println!("{sweep}");
    assert!(sweep.failures.is_empty(), "{sweep}");
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
