//! What one EMF metric line costs a request (in Lambda each cache read writes one): rendering
//! it, and rendering and writing it to stdout as `metrics::record` does (run with stdout to
//! /dev/null; `OES_METRICS=emf` turns the write on, as `AWS_LAMBDA_FUNCTION_NAME` does in Lambda).

use std::time::Instant;

use oes_domain::metrics::{self, CACHE_HITS};

const DIMENSION: Option<(&str, &str)> = Some(("Cache", "exam_questions"));

/// The mean time of `call`, per call, over `lines` calls after as many to warm up.
fn per_line(lines: usize, mut call: impl FnMut(u64)) -> f64 {
    for n in 0..lines {
        call(n as u64);
    }
    let started = Instant::now();
    for n in 0..lines {
        call(n as u64);
    }
    started.elapsed().as_secs_f64() * 1e6 / lines.max(1) as f64
}

/// Renders and records `lines` lines of each kind and prints the mean cost of one.
pub fn run(lines: usize) {
    let render = per_line(lines, |n| {
        std::hint::black_box(metrics::render(
            "oes/bench",
            CACHE_HITS,
            1.0,
            DIMENSION,
            1_700_000_000_000 + n,
        ));
    });
    let record = per_line(lines, |_| metrics::record(CACHE_HITS, 1.0, DIMENSION));
    eprintln!("| EMF line | mean per line |");
    eprintln!("|---|---|");
    eprintln!("| rendered | {render:.3} µs |");
    eprintln!("| rendered and written to stdout (`metrics::record`) | {record:.3} µs |");
}
