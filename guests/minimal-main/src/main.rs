//! The minimal example's main component: creates a block, lends it to the
//! worker component for each increment, then attaches it and checks every
//! byte in place.
//!
//! Run it under the shm-host runner with the worker linked:
//! `shm-host run --link minimal_impl.wasm minimal-main.wasm`, or natively,
//! from the same source: `cargo run -p minimal-main`.

use std::process::ExitCode;

use shm_guest::{Block, Error};

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "zero-copy:examples/minimal-main",
        with: { "zero-copy:shm/exchange@0.1.0": shm_guest::raw },
    });
}

// The worker: another component on wasm (linked by the runner), the same
// code linked in-process natively.
#[cfg(target_arch = "wasm32")]
use bindings::zero_copy::examples::counter;
#[cfg(not(target_arch = "wasm32"))]
use minimal_impl as counter;

const SIZE: u32 = 64 * 1024;

fn run() -> Result<(), String> {
    let positions: Vec<u32> = match std::env::args().nth(1) {
        Some(list) => list
            .split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .map_err(|e| format!("bad position {p:?}: {e}"))
            })
            .collect::<Result<_, _>>()?,
        None => vec![0, 1, 1, 4095, 4096, 40000, 1, SIZE - 1],
    };
    let block = Block::new(SIZE).map_err(|e| format!("creating the block: {e}"))?;
    let mut expected = vec![0u8; SIZE as usize];
    for &p in &positions {
        match counter::increment(block.as_raw(), p) {
            Ok(()) => expected[p as usize] = expected[p as usize].wrapping_add(1),
            Err(e) if p >= SIZE => {
                let e = error(e);
                println!("main: position {p} is outside the block; the worker said: {e}");
            }
            Err(e) => return Err(format!("increment at {p}: {}", error(e))),
        }
    }
    // Attach the same block read-only: these are the pages the worker wrote.
    let bytes = block
        .attach_read()
        .map_err(|e| format!("attaching for reading: {e}"))?;
    if bytes.len() != SIZE as usize {
        return Err(format!(
            "expected {SIZE} valid bytes, found {}",
            bytes.len()
        ));
    }
    let wrong: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i] != expected[i])
        .collect();
    if let Some(&i) = wrong.first() {
        return Err(format!(
            "{} bytes differ; first at {i}: found {}, expected {}",
            wrong.len(),
            bytes[i],
            expected[i]
        ));
    }
    let touched = expected.iter().filter(|&&b| b != 0).count();
    println!(
        "main: the worker made {} increments at {touched} positions; all {} bytes verified in place",
        positions.iter().filter(|&&p| p < SIZE).count(),
        bytes.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("main: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The worker's error with its message (on wasm the generated type
/// converts; natively it already is this crate's).
fn error(e: impl Into<Error>) -> Error {
    e.into()
}
