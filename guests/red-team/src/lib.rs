//! The red team: components written from the WIT alone that try every
//! attack on isolation, for the tests to run beside honest components.
//!
//! - this library, as `red_team.wasm`, is a hostile *worker* for the
//!   minimal example (it exports `zero-copy:examples/counter`): during each
//!   call it keeps what it can derive from the borrowed block (a clone
//!   attached for reading, a writable partition) and in the next call tries
//!   to read the lender's later bytes through them, overwrite them and
//!   consume them;
//! - the binary, as `red-team.wasm`, is a hostile publisher or subscriber
//!   command (see [`attacks`]).
//!
//! Every attempt is reported on stdout as `REFUSED` (the host said no) or
//! `SUCCEEDED` (a hole): the tests require the first and the honest
//! components' output intact.

pub mod attacks;

use std::cell::RefCell;

use shm_guest::raw::{AttachFlags, Error, MemoryBlock};
use shm_guest::BlockRef;

/// What the worker kept from earlier calls.
#[derive(Default)]
struct Kept {
    clone: Option<MemoryBlock>,
    partition: Option<MemoryBlock>,
    /// Where the kept clone was attached, and how many bytes.
    mapping: Option<(u32, u32)>,
    calls: u32,
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Prints the verdict on one attempt: `refused` is what the host must do.
pub fn verdict(who: &str, attempt: &str, refused: Result<String, String>) {
    match refused {
        Ok(how) => println!("{who}: REFUSED {attempt}: {how}"),
        Err(what) => println!("{who}: SUCCEEDED {attempt}: {what}"),
    }
}

/// The counter's `increment`, done honestly, after trying to use what was
/// kept from the last call, and keeping more for the next.
pub fn increment(block: &MemoryBlock, position: u32) -> Result<(), Error> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.calls += 1;
        let who = format!("red-team worker (call {})", kept.calls);
        if let Some(clone) = &kept.clone {
            verdict(
                &who,
                "reading through a clone kept from the last call",
                match clone.attach(AttachFlags::SHARED) {
                    Err(Error::Revoked) => Ok("revoked".into()),
                    Err(e) => Ok(format!("{e:?}")),
                    Ok(area) => Err(format!("{} bytes readable", area.size)),
                },
            );
        }
        if let Some(part) = &kept.partition {
            verdict(
                &who,
                "writing through a partition kept from the last call",
                match part.attach(AttachFlags::WRITE) {
                    Err(Error::Revoked) => Ok("revoked".into()),
                    Err(e) => Ok(format!("{e:?}")),
                    Ok(area) => {
                        write_bytes(area.address, area.size.min(16), 0xEE);
                        let _ = part.detach(0);
                        Err("wrote 0xEE into the lender's block".into())
                    }
                },
            );
        }
        if let Some((address, len)) = kept.mapping {
            verdict(
                &who,
                "reading the mapping kept from the last call",
                if read_bytes(address, len).iter().all(|&b| b == 0) {
                    Ok("it reads as zeros".into())
                } else {
                    Err("the lender's bytes are still visible".into())
                },
            );
        }
        // The honest part: the increment the caller asked for.
        let block_ref = BlockRef::new(block);
        let size = block_ref.size() as usize;
        if position as usize >= size {
            return Err(Error::WrongSize);
        }
        {
            let mut bytes = block_ref.attach_write()?;
            bytes[position as usize] = bytes[position as usize].wrapping_add(1);
            bytes.commit(size)?;
        }
        // Keep what can be derived, for the next call.
        kept.clone = block.clone().ok();
        kept.partition = block
            .create_partition(0, (size as u32).min(4096), AttachFlags::WRITE)
            .ok();
        kept.mapping = kept
            .clone
            .as_ref()
            .and_then(|c| c.attach(AttachFlags::SHARED).ok())
            .map(|a| (a.address, a.size.min(4096)));
        Ok(())
    })
}

#[cfg(target_arch = "wasm32")]
fn write_bytes(address: u32, len: u32, value: u8) {
    // SAFETY: a range the host returned for an attachment of this
    // component, inside its own linear memory; a hostile worker writes it
    // on purpose (a write into a read-only page traps this component only).
    unsafe { core::ptr::write_bytes(address as usize as *mut u8, value, len as usize) }
}

#[cfg(target_arch = "wasm32")]
fn write_u64(address: u32, value: u64) {
    // SAFETY: as in `write_bytes`: an address the host gave this component
    // (a ring region), written on purpose; a read-only page traps it.
    unsafe { core::ptr::write_volatile(address as usize as *mut u64, value) }
}

#[cfg(target_arch = "wasm32")]
fn read_bytes(address: u32, len: u32) -> Vec<u8> {
    // SAFETY: a range of this component's own linear memory (storage it
    // donated): whatever is mapped there, or zero pages, is readable.
    unsafe { core::slice::from_raw_parts(address as usize as *const u8, len as usize).to_vec() }
}

// Natively an address is the rules' virtual one: there is nothing to touch.
#[cfg(not(target_arch = "wasm32"))]
fn write_bytes(_address: u32, _len: u32, _value: u8) {}

#[cfg(not(target_arch = "wasm32"))]
fn write_u64(_address: u32, _value: u64) {}

#[cfg(not(target_arch = "wasm32"))]
fn read_bytes(_address: u32, len: u32) -> Vec<u8> {
    vec![0; len as usize]
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
