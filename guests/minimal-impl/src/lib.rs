//! The minimal example's worker: attaches a lent block for writing and
//! increments one byte in place.
//!
//! On wasm this is a component exporting `zero-copy:examples/counter`;
//! natively the same function is linked into `minimal-main` directly.

use shm_guest::raw::{Error, MemoryBlock};
use shm_guest::BlockRef;

/// Attaches `block` for writing, increments the byte at `position`, and
/// detaches with every byte valid.
pub fn increment(block: &MemoryBlock, position: u32) -> Result<(), Error> {
    let block = BlockRef::new(block);
    let size = block.size() as usize;
    if position as usize >= size {
        // Checked before attaching: a write attach that is not committed
        // leaves the block with no valid bytes.
        return Err(Error::WrongSize);
    }
    // The caller's block is mapped into this component's memory for
    // writing: the increment happens in the block's own pages.
    let mut bytes = block.attach_write()?;
    bytes[position as usize] = bytes[position as usize].wrapping_add(1);
    bytes.commit(size)?;
    Ok(())
}

#[cfg(target_arch = "wasm32")]
mod component {
    mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
            world: "zero-copy:examples/minimal-impl",
            with: { "zero-copy:shm/exchange@0.1.0": shm_guest::raw },
        });
    }

    use shm_guest::raw::{Error, MemoryBlock};

    struct Worker;

    impl bindings::exports::zero_copy::examples::counter::Guest for Worker {
        fn increment(block: &MemoryBlock, position: u32) -> Result<(), Error> {
            super::increment(block, position)
        }
    }

    bindings::export!(Worker with_types_in bindings);
}
