//! A safe API over the `zero-copy:shm/exchange` imports, for guest
//! components.
//!
//! A [`Block`] is shared memory owned by the host. Attaching it maps its
//! pages into this component's linear memory, inside storage the component
//! donated once; the guards returned borrow the block and detach it when
//! dropped, so no raw pointer reaches user code.
//!
//! ```no_run
//! use shm_guest::Block;
//!
//! let block = Block::new(4096)?;
//! {
//!     let mut w = block.attach_write()?; // read-write, exclusive
//!     w[..5].copy_from_slice(b"hello");
//!     w.commit(5)?; // five valid bytes
//! }
//! let r = block.attach_read()?; // read-only, shared with other readers
//! assert_eq!(&*r, b"hello");
//! # Ok::<(), shm_guest::Error>(())
//! ```
//!
//! Storage: the first attach donates exactly what its block needs
//! (`minimum-size`), and an attach that finds the storage full donates
//! that much more. A component that attaches several blocks at once
//! reserves once with [`reserve_storage`], sized by `optimum-size`.

// The generated WIT errors convert to this crate's (defined once in
// `shm-rules`) with `?` and `From`: natively the backend already returns
// those types, so the same conversions are identities there.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(clippy::useless_conversion, clippy::needless_question_mark)
)]
#![deny(missing_docs)]

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Has this component donated storage yet?
static DONATED: AtomicBool = AtomicBool::new(false);

#[cfg(target_arch = "wasm32")]
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "zero-copy:shm/pub-sub-guest",
    });
}

#[cfg(not(target_arch = "wasm32"))]
mod native;

/// The `exchange` interface: on wasm the generated bindings (map them with
/// wit-bindgen's `with: { "zero-copy:shm/exchange@0.1.0": shm_guest::raw }`
/// in components that pass blocks through their own interfaces); natively
/// the in-process backend, with the same names and signatures.
#[cfg(target_arch = "wasm32")]
pub mod raw {
    pub use crate::bindings::zero_copy::shm::exchange::*;

    /// The generated bindings of the `pub-sub` interface.
    pub mod pub_sub {
        pub use crate::bindings::zero_copy::shm::pub_sub::*;
    }
}

/// The `exchange` interface: on wasm the generated bindings; natively the
/// in-process backend, with the same names and signatures.
#[cfg(not(target_arch = "wasm32"))]
pub mod raw {
    pub use crate::native::exchange::*;

    /// The `pub-sub` interface, in-process.
    pub mod pub_sub {
        pub use crate::native::pub_sub::*;
    }
}

pub mod pubsub;
#[cfg(feature = "typed")]
pub mod typed;
/// The flat format typed topics use (the version this crate is built with).
#[cfg(feature = "typed")]
pub use flat_layout;

#[cfg(not(target_arch = "wasm32"))]
pub use native::block_on;
/// Runs a future to completion from synchronous code (e.g. `main`),
/// waiting on the component model's own events (streams, futures); natively
/// on this thread.
#[cfg(target_arch = "wasm32")]
pub use wit_bindgen::block_on;

/// Attaches `raw` and returns the visible bytes, borrowed from the handle.
#[cfg(target_arch = "wasm32")]
#[allow(clippy::mut_from_ref)]
fn attach_slice(raw: &MemoryBlock, flags: AttachFlags) -> Result<&mut [u8], raw::Error> {
    let area = raw.attach(flags)?;
    if area.size == 0 {
        return Ok(&mut []);
    }
    // SAFETY: the host returned a range of `area.size` bytes at
    // `area.address` in this component's own linear memory, inside storage
    // donated by `donate_storage` (leaked, never referenced again) or, for a
    // local block, bytes given up to `create-local`. No other Rust reference
    // to these bytes exists. The slice borrows the handle, and the guards of
    // this crate, which alone call this, detach (ending the mapping) only
    // when they are dropped, after their last use of the slice. A read
    // attachment is mapped read-only; the guards only give `&[u8]` for it.
    Ok(unsafe {
        core::slice::from_raw_parts_mut(area.address as usize as *mut u8, area.size as usize)
    })
}

/// Attaches `raw` and returns the visible bytes, borrowed from the handle.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::mut_from_ref)]
fn attach_slice(raw: &MemoryBlock, flags: AttachFlags) -> Result<&mut [u8], raw::Error> {
    // SAFETY: only the guards of this crate call this; they hold the
    // handle borrowed for the slice's lifetime, detach when dropped, after
    // their last use of the slice, and give out only `&[u8]` for reads.
    unsafe { raw.attach_bytes(flags) }
}

use raw::{AttachFlags, MemoryBlock};

/// Why a memory-block operation failed: the WIT `error`, with its
/// messages, defined once in `shm-rules` for the host, this crate and the
/// native backend.
pub use shm_rules::ExchangeError as Error;

// The generated `error` and ours convert both ways (natively they are one
// type).
#[cfg(target_arch = "wasm32")]
shm_rules::exchange_error_conversions!(raw::Error);

/// The largest piece of storage passed to `add-storage` in one call.
const DONATION_PIECE: usize = 64 << 20;

/// `bytes` of fresh memory that nothing refers to, given up for good.
///
/// On wasm: new pages of linear memory (`memory.grow`). They read as zeros
/// without anyone writing them, so donating them touches no page: the host
/// replaces them with block pages before they are ever faulted in (a
/// zero-filled heap allocation cost about 1,100 page faults, 3.5 ms, for
/// 4.5 MB).
#[cfg(target_arch = "wasm32")]
fn fresh_storage(bytes: u32) -> Result<&'static mut [u8], Error> {
    const WASM_PAGE: usize = 65536;
    let pages = (bytes as usize).div_ceil(WASM_PAGE);
    let old = core::arch::wasm32::memory_grow(0, pages);
    if old == usize::MAX {
        return Err(Error::NoStorage);
    }
    // SAFETY: `memory.grow` just added `pages` pages at `old * WASM_PAGE` to
    // linear memory 0, the memory all of this component's data lives in:
    // the range is in bounds, and zero-initialized by the semantics of
    // `memory.grow`. Nothing else refers to it: the allocator takes memory
    // only by growing it itself (wasi-libc's `sbrk`), which returns pages
    // past these, and memory never shrinks, so the slice may be `'static`.
    // It is the only reference to these bytes.
    Ok(unsafe { core::slice::from_raw_parts_mut((old * WASM_PAGE) as *mut u8, bytes as usize) })
}

/// `bytes` of fresh heap memory, given up for good (natively storage is
/// not used; see the native backend).
#[cfg(not(target_arch = "wasm32"))]
fn fresh_storage(bytes: u32) -> Result<&'static mut [u8], Error> {
    Ok(Box::leak(vec![0u8; bytes as usize].into_boxed_slice()))
}

/// Donates `bytes` of fresh memory as storage for attachments.
///
/// The memory is given up for good: the host maps block pages there, and
/// nothing in this component refers to it again.
pub fn donate_storage(bytes: u32) -> Result<(), Error> {
    if bytes == 0 {
        return Ok(());
    }
    let storage = fresh_storage(bytes)?;
    // The slice is passed once, as `list<u8>` arguments that the host reads
    // in place, and never touched again. In pieces: wasmtime bounds the
    // bytes one call may pass to the host (its "hostcall fuel", 128 MiB by
    // default), and the host joins contiguous pieces into one region.
    for piece in storage.chunks(DONATION_PIECE) {
        MemoryBlock::add_storage(piece)?;
    }
    DONATED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Donates storage for `count` simultaneous attachments of blocks of up to
/// `size` bytes (`optimum-size`).
pub fn reserve_storage(count: u32, size: u32) -> Result<(), Error> {
    donate_storage(MemoryBlock::optimum_size(count, size))
}

/// A memory block: a handle to host-owned shared memory.
#[derive(Debug)]
pub struct Block {
    raw: MemoryBlock,
}

impl Block {
    /// A new block of `size` zero bytes, with no valid bytes.
    pub fn new(size: u32) -> Result<Block, Error> {
        Ok(Block {
            raw: MemoryBlock::new(size)?,
        })
    }

    /// Wraps a handle received through another interface.
    pub fn from_raw(raw: MemoryBlock) -> Block {
        Block { raw }
    }

    /// The handle, to pass through another interface.
    pub fn into_raw(self) -> MemoryBlock {
        self.raw
    }

    /// The handle, to lend through another interface.
    pub fn as_raw(&self) -> &MemoryBlock {
        &self.raw
    }

    /// The block's size in bytes.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }

    /// A read-only handle to the same bytes (for broadcasting).
    pub fn read_only_clone(&self) -> Result<Block, Error> {
        Ok(Block {
            raw: self.raw.clone()?,
        })
    }

    /// A block for `size` bytes from `start`, writable if `writable`.
    pub fn partition(&self, start: u32, size: u32, writable: bool) -> Result<Block, Error> {
        let mode = if writable {
            AttachFlags::WRITE
        } else {
            AttachFlags::empty()
        };
        Ok(Block {
            raw: self.raw.create_partition(start, size, mode)?,
        })
    }

    /// This block as a [`BlockRef`].
    pub fn as_ref(&self) -> BlockRef<'_> {
        BlockRef { raw: &self.raw }
    }

    /// Attaches read-write, exclusively. Commit the valid length with
    /// [`WriteGuard::commit`]; dropping the guard without it leaves no valid
    /// bytes.
    pub fn attach_write(&self) -> Result<WriteGuard<'_>, Error> {
        self.as_ref().attach_write()
    }

    /// Attaches read-only, shared with other readers: the valid bytes.
    pub fn attach_read(&self) -> Result<ReadGuard<'_>, Error> {
        self.as_ref().attach_read()
    }

    /// Attaches read-only and exclusively, to consume bytes from the front
    /// with [`ConsumeGuard::consume`]. Needs a writable handle (a consumer
    /// that passes the block on): through a read-only clone it fails with
    /// [`Error::ReadOnly`], since it would shut out every other reader.
    pub fn attach_consume(&self) -> Result<ConsumeGuard<'_>, Error> {
        self.as_ref().attach_consume()
    }
}

/// A borrowed block: what a component gets when another lends it a handle
/// (`borrow<memory-block>` in WIT). Attaches like a [`Block`].
#[derive(Clone, Copy, Debug)]
pub struct BlockRef<'a> {
    raw: &'a MemoryBlock,
}

impl<'a> BlockRef<'a> {
    /// Wraps a lent handle.
    pub fn new(raw: &'a MemoryBlock) -> Self {
        BlockRef { raw }
    }

    /// The block's size in bytes.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }

    fn attach(self, flags: AttachFlags) -> Result<&'a mut [u8], Error> {
        if !DONATED.load(Ordering::Relaxed) {
            donate_storage(self.raw.minimum_size())?;
        }
        match attach_slice(self.raw, flags) {
            Err(raw::Error::NoStorage) => {
                donate_storage(self.raw.minimum_size())?;
                Ok(attach_slice(self.raw, flags)?)
            }
            other => Ok(other?),
        }
    }

    /// See [`Block::attach_write`].
    pub fn attach_write(self) -> Result<WriteGuard<'a>, Error> {
        let bytes = self.attach(AttachFlags::WRITE)?;
        Ok(WriteGuard {
            raw: self.raw,
            bytes,
        })
    }

    /// See [`Block::attach_read`].
    pub fn attach_read(self) -> Result<ReadGuard<'a>, Error> {
        let bytes = &*self.attach(AttachFlags::SHARED)?;
        Ok(ReadGuard {
            raw: self.raw,
            bytes,
        })
    }

    /// See [`Block::attach_consume`].
    pub fn attach_consume(self) -> Result<ConsumeGuard<'a>, Error> {
        let bytes = &*self.attach(AttachFlags::empty())?;
        Ok(ConsumeGuard {
            raw: self.raw,
            bytes,
        })
    }
}

/// A read-write attachment. Derefs to the whole block.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    raw: &'a MemoryBlock,
    bytes: &'a mut [u8],
}

impl WriteGuard<'_> {
    /// Detaches, making the first `valid` bytes the block's valid bytes.
    pub fn commit(self, valid: usize) -> Result<(), Error> {
        let this = core::mem::ManuallyDrop::new(self);
        let valid = u32::try_from(valid).map_err(|_| Error::WrongSize)?;
        this.raw.detach(valid).map_err(Error::from)
    }
}

impl Deref for WriteGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Not committed: no valid bytes. The handle is attached, so this
        // cannot fail.
        let _ = self.raw.detach(0);
    }
}

/// A shared read-only attachment. Derefs to the valid bytes.
#[derive(Debug)]
pub struct ReadGuard<'a> {
    raw: &'a MemoryBlock,
    bytes: &'a [u8],
}

impl Deref for ReadGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let _ = self.raw.detach(0);
    }
}

/// An exclusive read-only attachment. Derefs to the valid bytes.
#[derive(Debug)]
pub struct ConsumeGuard<'a> {
    raw: &'a MemoryBlock,
    bytes: &'a [u8],
}

impl ConsumeGuard<'_> {
    /// Detaches, consuming the first `n` bytes: later readers see the rest.
    pub fn consume(self, n: usize) -> Result<(), Error> {
        let this = core::mem::ManuallyDrop::new(self);
        let n = u32::try_from(n).map_err(|_| Error::WrongSize)?;
        this.raw.detach(n).map_err(Error::from)
    }
}

impl Deref for ConsumeGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for ConsumeGuard<'_> {
    fn drop(&mut self) {
        let _ = self.raw.detach(0);
    }
}
