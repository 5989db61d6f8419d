//! `cargo run --release -p oes-bench -- <benchmark>`: measures what `docs/BENCHMARKS.md` reports.
//! Figures are printed as Markdown table rows on stderr (stdout carries whatever the code under
//! test writes, such as EMF metric lines, so its cost is measured too: redirect it to /dev/null).

mod cache;
mod cold_start;
mod emf;
mod enqueue;
mod rate_limit;
mod stats;
mod worker;

use clap::{Parser, Subcommand};

/// oes benchmarks.
#[derive(Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// Enqueue latency seen by an API (job record in DynamoDB + SQS send), against the emulator
    /// at AWS_ENDPOINT_URL.
    Enqueue {
        /// Jobs to enqueue (after 20 warm-up jobs).
        #[arg(long, default_value_t = 500)]
        jobs: usize,
    },
    /// Handler latency of GET /exams/{id}/questions on a cache hit and a miss, and a bare
    /// Redis GET, against REDIS_URL and the emulator at AWS_ENDPOINT_URL.
    Cache {
        /// Requests of each kind.
        #[arg(long, default_value_t = 1_000)]
        iterations: usize,
    },
    /// Latency a rate-limit check adds (Redis at REDIS_URL, and the in-memory fallback).
    RateLimit {
        /// Checks of each kind.
        #[arg(long, default_value_t = 2_000)]
        iterations: usize,
    },
    /// Worker CPU time per email and batch throughput on one core, with a mailer that answers
    /// at once.
    Worker {
        /// Emails to process, in batches of 10.
        #[arg(long, default_value_t = 50_000)]
        emails: usize,
        /// Keep job records in DynamoDB in the emulator (AWS_ENDPOINT_URL) instead of memory.
        #[arg(long)]
        dynamo_ledger: bool,
    },
    /// What one EMF metric line costs (rendered; rendered and written to stdout): run with
    /// `OES_METRICS=emf` and stdout to /dev/null.
    Emf {
        /// Lines of each kind (after as many to warm up).
        #[arg(long, default_value_t = 200_000)]
        lines: usize,
    },
    /// Each function's release binary started fresh under a minimal Runtime API, beside a
    /// hello-world `lambda_http` binary: time to its first `next`, to its first answer, its
    /// peak memory, and its CPU time, page faults and threads at its first `next`.
    ColdStart {
        /// Fresh starts of each binary (rounds). 300 take about 12 s here and hold the medians
        /// of the ratios to a few hundredths from run to run; 20 or 30 moved them by a tenth.
        #[arg(long, default_value_t = 300)]
        runs: usize,
        /// Where the binaries are: `DIR/NAME/bootstrap`, as cargo-lambda builds them (`make
        /// bench-cold-start`: as they deploy), or `DIR/NAME` (e.g. `target/release`).
        #[arg(long, default_value = "target/cold-start")]
        binaries: std::path::PathBuf,
        /// Another build laid out the same way (the one before a change, say): its binaries
        /// start in the same rounds, each beside its counterpart, and a third table divides
        /// each start of `--binaries` by its counterpart's.
        #[arg(long, value_name = "DIR")]
        against: Option<std::path::PathBuf>,
        /// Read the JWT key from this Secrets Manager secret in the emulator, as in AWS,
        /// instead of the environment (measures that read).
        #[arg(long)]
        secret_arn: Option<String>,
        /// Give every binary this variable too, or in place of the template's value: to
        /// measure a setting before the template takes it (`--env NAME=VALUE`, repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = name_and_value)]
        set: Vec<(String, String)>,
        /// Leave out this variable of the template's (repeatable).
        #[arg(long, value_name = "NAME")]
        unset: Vec<String>,
    },
}

fn name_and_value(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{pair:?} is not NAME=VALUE"))
}

fn main() -> Result<(), oes_domain::ports::BoxError> {
    // Logging on, as in Lambda (JSON, info), but into a sink: its cost is part of the figures.
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .try_init()
        .map_err(|e| e.to_string())?;
    // One core: a current-thread runtime, as a Lambda with 1 vCPU or less.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match Args::parse().benchmark {
        Benchmark::Enqueue { jobs } => runtime.block_on(enqueue::run(jobs)),
        Benchmark::Cache { iterations } => runtime.block_on(cache::run(iterations)),
        Benchmark::RateLimit { iterations } => runtime.block_on(rate_limit::run(iterations)),
        Benchmark::Worker {
            emails,
            dynamo_ledger,
        } => runtime.block_on(worker::run(emails, dynamo_ledger)),
        Benchmark::Emf { lines } => {
            emf::run(lines);
            Ok(())
        }
        Benchmark::ColdStart {
            runs,
            binaries,
            against,
            secret_arn,
            set,
            unset,
        } => {
            let changes = cold_start::EnvChanges { set, unset };
            Ok(runtime.block_on(cold_start::run(
                runs, binaries, against, secret_arn, changes,
            ))?)
        }
    }
}
