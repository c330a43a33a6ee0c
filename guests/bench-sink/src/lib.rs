//! A subscriber for shm-host's delivery benchmark: reads a payload that
//! arrives as a memory block (attached in place, zero copy) or as a
//! `list<u8>` (copied into this component's memory by the canonical ABI),
//! the same way in both cases.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "zero-copy:bench/bench-sink",
        with: { "zero-copy:shm/exchange@0.1.0": shm_guest::raw },
    });
}

use bindings::exports::zero_copy::bench::sink::Guest;
use shm_guest::raw::{Error, MemoryBlock};
use shm_guest::BlockRef;

/// Sums one byte every `stride` bytes.
fn sum(bytes: &[u8], stride: u32) -> u64 {
    let stride = stride.max(1) as usize;
    bytes.iter().step_by(stride).map(|&b| u64::from(b)).sum()
}

struct Sink;

impl Guest for Sink {
    fn consume_block(block: &MemoryBlock, stride: u32) -> Result<u64, Error> {
        let bytes = BlockRef::new(block).attach_read()?;
        Ok(sum(&bytes, stride))
    }

    fn consume_list(bytes: Vec<u8>, stride: u32) -> u64 {
        sum(&bytes, stride)
    }
}

bindings::export!(Sink with_types_in bindings);
