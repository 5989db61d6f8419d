//! `oes-sim`: runs seeds of the pipeline's fault simulation and reports per fault schedule.
//!
//! ```text
//! oes-sim [--seeds N] [--from S] [--list]  # N seeds from S (default 2000 from 0); --list: every violation
//! OES_SIM_SEED=S oes-sim             # one seed, every violation printed
//! ```
//! Exits 1 if any seed broke a promise.

use std::process::ExitCode;

use clap::Parser;

/// What the command line asks for; anything else, or a number that does not parse, is an error
/// (a typo must not run 2,000 seeds and pass).
#[derive(clap::Parser)]
#[command(
    about = "Runs seeds of the email pipeline's fault simulation; OES_SIM_SEED=S runs that one seed"
)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 2_000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Print every violation.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(seed) = std::env::var("OES_SIM_SEED") {
        if !raw.is_empty() {
            eprintln!(
                "oes-sim: OES_SIM_SEED runs that one seed; unset it to run {}",
                raw.join(" ")
            );
            return ExitCode::from(2);
        }
        let Ok(seed) = seed.trim().parse() else {
            eprintln!("oes-sim: OES_SIM_SEED={seed}: not a whole number");
            return ExitCode::from(2);
        };
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
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let sweep = oes_sim::sweep::sweep(args.from, args.seeds, threads);
    print!("{sweep}");
    if args.list {
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
