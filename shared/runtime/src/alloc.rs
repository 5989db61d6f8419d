//! The allocator every deployed binary runs with: mimalloc, in place of the system's (glibc's
//! `malloc`, 19.6 % of the CPU of a cached paper read; mimalloc measured +20–33 % requests per
//! second on it, docs/BENCHMARKS.md "Hot read path").
//!
//! A `#[global_allocator]` belongs to a binary, not to this library (every test and tool that
//! links `oes-runtime` keeps the system's): each binary's `main.rs` declares it with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;
//! ```
//!
//! In Lambda the template sets `MIMALLOC_ALLOW_THP=0`: with transparent huge pages mimalloc backs
//! its first arena with 2 MiB pages, zeroed on first touch, which a function that lives minutes
//! pays at every cold start (docs/BENCHMARKS.md, "Cold starts"); and `MIMALLOC_ARENA_RESERVE=32MiB`:
//! the bookkeeping of mimalloc's default 1 GiB arena costs ~40 page faults at every cold start.
//! `oes-local`, which runs for hours, keeps mimalloc's defaults.

pub use mimalloc::MiMalloc as Allocator;
