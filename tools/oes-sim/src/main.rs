//! `oes-sim`: runs seeds of the pipeline's fault simulation and reports per fault schedule.
//!
//! ```text
//! oes-sim [--seeds N] [--from S] [--list]  # N seeds from S (default 2000 from 0); --list: every violation
//! OES_SIM_SEED=S oes-sim             # one seed, every violation printed
//! ```
//! Exits 1 if any seed broke a promise.

use std::process::ExitCode;

fn arg(args: &[String], name: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(seed) = std::env::var("OES_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        // One seed: what the code and the fault layer log, if RUST_LOG asks for it.
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
            )
            .with_writer(std::io::stderr)
            .without_time()
            .init();
        let report = oes_sim::run(seed);
        println!(
            "seed {seed} ({}): {} jobs, {} sends, {} in the window",
            report.profile, report.jobs, report.sends, report.window
        );
        for violation in &report.violations {
            println!("  - {violation}");
        }
        return if report.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let seeds = arg(&args, "--seeds").unwrap_or(2_000);
    let from = arg(&args, "--from").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let sweep = oes_sim::sweep::sweep(from, seeds, threads);
    print!("{sweep}");
    if args.iter().any(|a| a == "--list") {
        for failure in &sweep.failures {
            for violation in &failure.violations {
                println!("seed {} ({}): {violation}", failure.seed, failure.profile);
            }
        }
    }
    if sweep.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
