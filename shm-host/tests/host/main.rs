//! The host's end-to-end tests, one module per subject, in one test binary:
//! every integration test binary links all of wasmtime, so one binary
//! instead of eleven saves CI about a gigabyte of disk and the links.
//! Two stay binaries of their own: `process_figures` (tests that measure the
//! whole process's open files and memory) and `zenoh` (feature `zenoh`).

#[path = "../common/mod.rs"]
mod common;

mod api_suite;
mod complex;
mod complex_c;
mod embed;
mod exchange;
mod frames;
mod frames_c;
mod fuzz;
mod isolation;
mod pubsub;
#[cfg(feature = "record")]
mod record;
mod runner;
mod topology;
