//! Shared pages: the bytes of one memory block.
//!
//! A block is a memfd, sized to whole pages, plus one read-write mapping of
//! it in the host for the rare cases where the host itself must touch the
//! bytes (the copy fallback, zeroing the tail of the last valid page, and
//! embedders reading a block). Guests get their own mappings of the same
//! file through [`crate::os::memory`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::{fstat, ftruncate, memfd_create, open, MemfdFlags, Mode, OFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

/// The pages of one block.
#[derive(Debug)]
pub struct SharedPages {
    /// Shared with the fault handler's table while a read-only mapping of
    /// the block is listed there, so that the descriptor it names stays open.
    fd: Arc<OwnedFd>,
    /// The same file opened read-only, for every read-only mapping of the
    /// block in a guest: a shared mapping of a descriptor without the write
    /// right can never be made writable, whatever `mprotect` is asked
    /// (defense in depth beside the fault handler's own bookkeeping).
    /// Opened on the first read-only mapping.
    read_only: std::sync::OnceLock<Arc<OwnedFd>>,
    /// Bytes in the block (the file is `mapped` long).
    len: usize,
    /// Length of the file and of the host mapping: `len` rounded up to pages.
    mapped: usize,
    /// The host's mapping, `None` for an empty block.
    host: Option<NonNull<u8>>,
    inode: u64,
}

// SAFETY: the host mapping is only reached through `&self` methods that copy
// with raw pointers (no references into the shared bytes escape), and the
// callers hold the ledger's lock, which serialises every host access with
// the attach rules (no host copy races a guest write attachment). The fd is
// an owned file descriptor, which is Send and Sync.
unsafe impl Send for SharedPages {}
// SAFETY: see `Send` above.
unsafe impl Sync for SharedPages {}

impl SharedPages {
    /// A new block of `len` zero bytes, its file rounded up to `page`.
    pub fn new(len: usize, page: usize) -> io::Result<SharedPages> {
        let fd = memfd_create("zero-copy-shm-block", MemfdFlags::CLOEXEC)?;
        let mapped = len.div_ceil(page) * page;
        ftruncate(&fd, mapped as u64)?;
        let inode = fstat(&fd)?.st_ino;
        let host = if mapped == 0 {
            None
        } else {
            // SAFETY: a fresh mapping at an address the kernel chooses (null
            // hint, no MAP_FIXED) cannot overlap anything we or wasmtime use;
            // `fd` is a memfd of exactly `mapped` bytes, so the whole mapping
            // is backed by the file.
            let ptr = unsafe {
                mmap(
                    std::ptr::null_mut(),
                    mapped,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::SHARED,
                    &fd,
                    0,
                )?
            };
            NonNull::new(ptr.cast::<u8>())
        };
        Ok(SharedPages {
            fd: Arc::new(fd),
            read_only: std::sync::OnceLock::new(),
            len,
            mapped,
            host,
            inode,
        })
    }

    /// The memfd, shared: it stays open as long as the returned `Arc` lives.
    pub fn shared_fd(&self) -> Arc<OwnedFd> {
        self.fd.clone()
    }

    /// The memfd opened again, read-only, for read-only mappings (see the
    /// field's documentation); it stays open as long as the `Arc` lives.
    pub fn read_only_fd(&self) -> rustix::io::Result<Arc<OwnedFd>> {
        if let Some(fd) = self.read_only.get() {
            return Ok(fd.clone());
        }
        // Through the process's own descriptor table: the memfd has no
        // other name. O_RDONLY gives a new open file description without
        // the write right.
        let path = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let fd = Arc::new(open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        // Two threads may race here: one descriptor wins, the other closes.
        Ok(self.read_only.get_or_init(|| fd).clone())
    }

    /// The block's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The memfd's inode, as `/proc/self/maps` shows it for every mapping
    /// of this block.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    fn range(&self, offset: u64, len: usize) -> Option<NonNull<u8>> {
        let end = offset.checked_add(len as u64)?;
        if end > self.mapped as u64 {
            return None;
        }
        let host = self.host?;
        // SAFETY: `offset + len <= mapped`, so the result stays inside (or
        // one past the end of) the host mapping.
        Some(unsafe { host.add(offset as usize) })
    }

    /// Copies `dst.len()` bytes from `offset` of the block into `dst`.
    /// Returns `false` (copying nothing) when the range is out of bounds.
    ///
    /// The caller must ensure no guest write attachment covers the range
    /// (the ledger's lock and rules do).
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> bool {
        if dst.is_empty() {
            return true;
        }
        let Some(src) = self.range(offset, dst.len()) else {
            return false;
        };
        // SAFETY: `src .. src + len` lies inside the host mapping (checked by
        // `range`), which is readable; `dst` is a distinct, writable Rust
        // slice (host heap or a guest storage range that is not this
        // mapping), so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// Copies `src` into the block at `offset`. Returns `false` (copying
    /// nothing) when the range is out of bounds.
    pub fn write(&self, offset: u64, src: &[u8]) -> bool {
        if src.is_empty() {
            return true;
        }
        let Some(dst) = self.range(offset, src.len()) else {
            return false;
        };
        // SAFETY: `dst .. dst + len` lies inside the host mapping, which is
        // writable; `src` is a distinct Rust slice, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_ptr(), src.len()) };
        true
    }

    /// Zeroes `len` bytes at `offset`. Returns `false` when out of bounds.
    pub fn zero(&self, offset: u64, len: usize) -> bool {
        if len == 0 {
            return true;
        }
        let Some(dst) = self.range(offset, len) else {
            return false;
        };
        // SAFETY: the range lies inside the writable host mapping.
        unsafe { std::ptr::write_bytes(dst.as_ptr(), 0, len) };
        true
    }
}

/// A block's pages as one region of a lease ring
/// ([`shm_rules::pubsub::ring`]): `u64` and `u32` loads (acquire) and stores
/// (release) through the host's mapping, which lives as long as this does.
/// A guest may write the same bytes at any time (its returned region):
/// every access is atomic, whatever the guest does, and a value is only a
/// value to the ring's rules, which read each one once and treat it as
/// hostile. An access out of the block, or misaligned, reads 0 and writes
/// nothing (the ring's offsets never are).
#[derive(Debug, Clone)]
pub(crate) struct RingPages(pub(crate) Arc<SharedPages>);

impl RingPages {
    /// The aligned word of `size` bytes at `offset`, if it lies in the
    /// block.
    fn word(&self, offset: usize, size: usize) -> Option<NonNull<u8>> {
        if !offset.is_multiple_of(size) || offset.checked_add(size)? > self.0.len {
            return None;
        }
        // The host mapping is page-aligned, so `offset`'s alignment is the
        // address's.
        self.0.range(offset as u64, size)
    }
}

impl shm_rules::pubsub::ring::RingMemory for RingPages {
    fn load_u64(&self, offset: usize) -> u64 {
        let Some(at) = self.word(offset, 8) else {
            return 0;
        };
        // SAFETY: `at` is 8-aligned and lies, with its 8 bytes, inside the
        // host mapping, which stays mapped while `self.0` lives (as long
        // as the returned reference is used: this statement). The host
        // accesses ring regions only through these atomic accessors; the
        // guest's accesses are another process's, as far as Rust's memory
        // model goes (shared memory with a peer).
        unsafe { AtomicU64::from_ptr(at.as_ptr().cast()) }.load(Ordering::Acquire)
    }

    fn load_u32(&self, offset: usize) -> u32 {
        let Some(at) = self.word(offset, 4) else {
            return 0;
        };
        // SAFETY: as in `load_u64`, for 4 aligned bytes.
        unsafe { AtomicU32::from_ptr(at.as_ptr().cast()) }.load(Ordering::Acquire)
    }

    fn store_u64(&self, offset: usize, value: u64) {
        if let Some(at) = self.word(offset, 8) {
            // SAFETY: as in `load_u64`; the host mapping is writable.
            unsafe { AtomicU64::from_ptr(at.as_ptr().cast()) }.store(value, Ordering::Release);
        }
    }

    fn store_u32(&self, offset: usize, value: u32) {
        if let Some(at) = self.word(offset, 4) {
            // SAFETY: as in `load_u32`; the host mapping is writable.
            unsafe { AtomicU32::from_ptr(at.as_ptr().cast()) }.store(value, Ordering::Release);
        }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        if let Some(host) = self.host {
            // SAFETY: `host .. host + mapped` is the mapping made in `new`,
            // unmapped once here; no reference into it outlives `self`.
            if let Err(e) = unsafe { munmap(host.as_ptr().cast(), self.mapped) } {
                tracing::error!("munmap of a block's host mapping failed: {e}");
            }
        }
    }
}
