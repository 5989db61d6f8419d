//! `cargo run -p oes-local --bin oes-events`: writes `events/` from the fixture table in
//! `tools/oes-local/src/fixtures/table.rs`.
//!
//! Exit status: 0 done (or, with `--check`, up to date); 1 `--check` found differences;
//! 2 bad arguments or an error reading or writing files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use oes_domain::exam::{AttemptId, ExamId, QuestionId};
use oes_local::fixtures::{self, Options};

/// Generates the API Gateway and SQS event fixtures in events/.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Write nothing; list the files that differ from what would be generated (and .json files
    /// the table does not know), and exit 1 if there are any.
    #[arg(long)]
    check: bool,
    /// Folder to write [default: the repository's events/, wherever this is run from].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A real access token (from POST /auth/login) instead of the placeholder.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token)]
    bearer: Option<String>,
    /// An existing exam's id instead of the fixed one.
    #[arg(long, value_name = "UUID", value_parser = parse_id(ExamId::parse))]
    exam_id: Option<ExamId>,
    /// An existing question's id instead of the fixed one.
    #[arg(long, value_name = "UUID", value_parser = parse_id(QuestionId::parse))]
    question_id: Option<QuestionId>,
    /// An existing attempt's id instead of the fixed one.
    #[arg(long, value_name = "UUID", value_parser = parse_id(AttemptId::parse))]
    attempt_id: Option<AttemptId>,
}

/// A token as it goes in the header: `Bearer ` before it is accepted and dropped.
fn parse_token(raw: &str) -> Result<String, String> {
    let token = raw.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token is printable ASCII without spaces".into());
    }
    Ok(token.to_owned())
}

fn parse_id<T>(parse: fn(&str) -> Option<T>) -> impl Fn(&str) -> Result<T, String> + Clone {
    move |raw| parse(raw.trim()).ok_or_else(|| format!("{raw:?} is not a UUID"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let defaults = Options::default();
    let options = Options {
        token: args.bearer.unwrap_or(defaults.token),
        exam_id: args.exam_id.unwrap_or(defaults.exam_id),
        question_id: args.question_id.unwrap_or(defaults.question_id),
        attempt_id: args.attempt_id.unwrap_or(defaults.attempt_id),
    };
    if args.out.is_none() && !args.check && !options.is_default() {
        eprintln!(
            "oes-events: --bearer and the --*-id flags would put a real token or ids into the \
             committed events/; choose where with --out DIR (e.g. --out target/events)"
        );
        return ExitCode::from(2);
    }
    let dir = args.out.unwrap_or_else(fixtures::default_dir);
    match run(&options, &dir, args.check) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("oes-events: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(options: &Options, dir: &std::path::Path, check: bool) -> Result<ExitCode, fixtures::Error> {
    let generated = fixtures::generate(options)?;
    let drift = fixtures::drift(dir, &generated)?;
    if check {
        if drift.is_empty() {
            println!(
                "oes-events: {} is up to date ({} files)",
                dir.display(),
                generated.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        for difference in &drift {
            eprintln!("{}/{difference}", dir.display());
        }
        eprintln!(
            "oes-events: {} file(s) differ; run `cargo run -p oes-local --bin oes-events` to \
             regenerate",
            drift.len()
        );
        return Ok(ExitCode::from(1));
    }
    let written = fixtures::write(dir, &generated)?;
    for file in &written {
        println!("wrote {}", dir.join(file).display());
    }
    for difference in &drift {
        if let fixtures::Drift::Unknown(_) = difference {
            eprintln!("{}/{difference} (left as it is)", dir.display());
        }
    }
    println!(
        "oes-events: {} of {} files in {} written, the others unchanged",
        written.len(),
        generated.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
