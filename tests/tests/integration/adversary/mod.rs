//! The project's threat model, as attacks: each test is named after what an adversary tries, and
//! asserts that it fails. Grouped by what is attacked; every test here failed on the code before
//! its fix (issue 12).

mod account;
mod addresses;
mod exam_integrity;
mod sign_in;
