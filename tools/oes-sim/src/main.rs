//! `oes-sim`: runs seeds of the pipeline's fault simulation and reports per fault schedule.
//!
//! ```text
//! oes-sim [--seeds N] [--from S] [--list]  # N seeds from S (default 2000 from 0); --list: every violation
//! OES_SIM_SEED=S oes-sim             # one seed, every violation printed
//! ```
//! Exits 1 if any seed broke a promise.

use std::process::ExitCode;

/// What the command line asks for.
struct Args {
    seeds: u64,
    from: u64,
    list: bool,
}

/// `--seeds N`, `--from S` and `--list`; anything else, or a number that does not parse, is an
/// error (a typo must not run 2,000 seeds and pass).
fn parse(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        seeds: 2_000,
        from: 0,
        list: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            value
                .parse()
                .map_err(|_| format!("{name} {value}: not a whole number"))
        };
        match arg.as_str() {
            "--seeds" => parsed.seeds = number("--seeds")?,
            "--from" => parsed.from = number("--from")?,
            "--list" => parsed.list = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&raw) {
        Ok(args) => args,
        Err(error) => {
            eprintln!(
                "oes-sim: {error}\nusage: oes-sim [--seeds N] [--from S] [--list]; OES_SIM_SEED=S oes-sim"
            );
            return ExitCode::from(2);
        }
    };
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
