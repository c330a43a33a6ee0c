//! The memory creator and the mapping of blocks into guest linear memory.
//!
//! Every linear memory of every guest comes from [`ShmMemoryCreator`]: one
//! reservation of address space (the whole maximum size plus the guard, as
//! `PROT_NONE`), made accessible by `mprotect` as the memory grows, so the
//! base never moves. Because the host made the reservation, it may replace
//! pages inside the accessible part with `MAP_FIXED` mappings of a block,
//! and put zero pages back afterwards: that is attach and detach.
//!
//! Every live memory is listed in a [`MemoryRegistry`]; mapping operations
//! hold its lock and look the memory up first, so they can never touch a
//! memory that has been dropped, nor anything outside a memory's accessible
//! bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::mm::{mmap, mmap_anonymous, mprotect, munmap, MapFlags, MprotectFlags, ProtFlags};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use crate::pages::SharedPages;
use crate::rules::MemoryId;

/// Why a mapping operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The memory was dropped.
    #[error("the linear memory no longer exists")]
    Gone,
    /// The range is not page aligned or not inside the accessible memory.
    #[error("the range is outside the accessible linear memory or not page aligned")]
    OutOfRange,
    /// The system call failed.
    #[error("mapping failed: {0}")]
    Os(#[from] rustix::io::Errno),
    /// The read-only mapping could not be protected against host writes.
    #[error(transparent)]
    Protect(#[from] crate::guard::ProtectError),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: MemoryId,
    accessible: usize,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    /// Live memories by base address.
    by_base: BTreeMap<usize, Entry>,
}

/// The live linear memories made by a [`ShmMemoryCreator`].
#[derive(Debug)]
pub struct MemoryRegistry {
    page: usize,
    inner: Mutex<Registry>,
}

/// A live memory, looked up under the registry's lock.
pub struct Locked<'a> {
    _guard: MutexGuard<'a, Registry>,
    base: usize,
    accessible: usize,
    page: usize,
}

impl MemoryRegistry {
    /// A registry for a host with `page`-byte pages.
    pub fn new(page: usize) -> Arc<Self> {
        Arc::new(MemoryRegistry {
            page,
            inner: Mutex::new(Registry::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which live memory holds `len` bytes at host address `ptr`, and at
    /// which offset. `None` for memory this host did not create.
    pub fn find(&self, ptr: *const u8, len: usize) -> Option<(MemoryId, u32)> {
        let addr = ptr as usize;
        let reg = self.lock();
        let (&base, entry) = reg.by_base.range(..=addr).next_back()?;
        let offset = addr - base;
        let end = offset.checked_add(len)?;
        (end <= entry.accessible)
            .then(|| u32::try_from(offset).ok().map(|o| (entry.id, o)))
            .flatten()
    }

    /// Looks up memory `id` and holds the registry's lock while the result
    /// lives, so the memory cannot be dropped meanwhile.
    pub fn lock_memory(&self, id: MemoryId) -> Result<Locked<'_>, MapError> {
        let guard = self.lock();
        let (&base, entry) = guard
            .by_base
            .iter()
            .find(|(_, e)| e.id == id)
            .ok_or(MapError::Gone)?;
        let accessible = entry.accessible;
        Ok(Locked {
            _guard: guard,
            base,
            accessible,
            page: self.page,
        })
    }

    /// How many memories are alive.
    pub fn live(&self) -> usize {
        self.lock().by_base.len()
    }

    /// The host address of `offset` in memory `id`, if it is alive.
    pub fn host_address(&self, id: MemoryId, offset: u32) -> Option<usize> {
        let m = self.lock_memory(id).ok()?;
        ((offset as usize) < m.accessible).then_some(m.base + offset as usize)
    }
}

impl Locked<'_> {
    fn range(&self, offset: u32, len: u32, aligned: bool) -> Result<*mut u8, MapError> {
        let (offset, len) = (offset as usize, len as usize);
        let end = offset.checked_add(len).ok_or(MapError::OutOfRange)?;
        if end > self.accessible || (aligned && (offset % self.page != 0 || len % self.page != 0)) {
            return Err(MapError::OutOfRange);
        }
        Ok((self.base + offset) as *mut u8)
    }

    /// Maps `len` bytes of `pages` from `file_offset` at `offset`, read-write
    /// or read-only.
    pub fn map(
        &self,
        offset: u32,
        len: u32,
        pages: &SharedPages,
        file_offset: u64,
        writable: bool,
    ) -> Result<(), MapError> {
        let at = self.range(offset, len, true)?;
        if !file_offset.is_multiple_of(self.page as u64) {
            return Err(MapError::OutOfRange);
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // A read-only mapping is listed first, so that a host write into it
        // can never fault unhandled.
        if !writable {
            crate::guard::protect(at as usize, len as usize, pages.shared_fd(), file_offset)?;
        }
        // SAFETY: `at .. at + len` is page aligned and lies inside the
        // accessible part of a linear memory this host reserved (checked by
        // `range` against the registry, whose lock we hold, so the memory is
        // alive). MAP_FIXED replaces only those pages of our own reservation:
        // nothing outside it is touched. The pages replaced are donated
        // storage, which the guest gave up (the ledger placed the attachment
        // inside a donated region), so no live Rust object of the host lives
        // there, and wasmtime holds no reference into guest memory while a
        // host function runs. `file_offset + len` lies inside the memfd
        // (the ledger derives both from the block's page-rounded size).
        let mapped = unsafe {
            mmap(
                at.cast(),
                len as usize,
                prot,
                MapFlags::SHARED | MapFlags::FIXED,
                pages.fd(),
                file_offset,
            )
        };
        if let Err(e) = mapped {
            crate::guard::unprotect(at as usize, len as usize);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts fresh zero pages back at `offset .. offset + len`.
    pub fn restore(&self, offset: u32, len: u32) -> Result<(), MapError> {
        let at = self.range(offset, len, true)?;
        crate::guard::unprotect(at as usize, len as usize);
        crate::windows::forget(at as usize, len as usize);
        // SAFETY: as in `map`: a page-aligned range inside the accessible
        // part of a live reservation of ours. The new private anonymous
        // pages are zero, so the guest sees no block bytes there any more.
        unsafe {
            mmap_anonymous(
                at.cast(),
                len as usize,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::FIXED,
            )?;
        }
        Ok(())
    }

    /// Copies `len` block bytes from `offset` of `pages` into the guest.
    pub fn copy_in(
        &self,
        offset: u32,
        len: u32,
        pages: &SharedPages,
        from: u64,
    ) -> Result<(), MapError> {
        let at = self.range(offset, len, false)?;
        // SAFETY: `at .. at + len` is inside the accessible memory (checked
        // by `range`) and is donated storage the ledger reserved for this
        // attachment, not mapped to any block and not read-only; the guest
        // is not running (we are inside its host call). The slice lives only
        // for this copy.
        let dst = unsafe { std::slice::from_raw_parts_mut(at, len as usize) };
        if pages.read(from, dst) {
            Ok(())
        } else {
            Err(MapError::OutOfRange)
        }
    }

    /// Copies `len` guest bytes at `offset` into `pages` at `to`.
    pub fn copy_out(
        &self,
        offset: u32,
        len: u32,
        pages: &SharedPages,
        to: u64,
    ) -> Result<(), MapError> {
        let at = self.range(offset, len, false)?;
        // SAFETY: as in `copy_in`; the range is only read.
        let src = unsafe { std::slice::from_raw_parts(at.cast_const(), len as usize) };
        if pages.write(to, src) {
            Ok(())
        } else {
            Err(MapError::OutOfRange)
        }
    }

    /// Zeroes `len` guest bytes at `offset`.
    pub fn zero(&self, offset: u32, len: u32) -> Result<(), MapError> {
        let at = self.range(offset, len, false)?;
        // SAFETY: as in `copy_in`.
        unsafe { std::ptr::write_bytes(at, 0, len as usize) };
        Ok(())
    }
}

/// The memory creator every engine of this host uses (see
/// [`ShmHost::engine_config`](crate::ShmHost::engine_config)).
#[derive(Debug)]
pub struct ShmMemoryCreator {
    registry: Arc<MemoryRegistry>,
}

impl ShmMemoryCreator {
    /// A creator registering its memories in `registry`.
    pub fn new(registry: Arc<MemoryRegistry>) -> Self {
        ShmMemoryCreator { registry }
    }
}

/// The default reservation when wasmtime does not ask for one: the whole
/// 32-bit address space, so the base never moves.
const DEFAULT_RESERVATION: usize = 1 << 32;

// SAFETY: every memory returned is a fresh reservation of its own (see
// `GuestMemory`), zero filled, page aligned, followed by at least
// `guard_size_in_bytes` of PROT_NONE, and its base never moves.
unsafe impl MemoryCreator for ShmMemoryCreator {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if ty.is_64() || ty.is_shared() {
            return Err("shm-host supports 32-bit, unshared linear memories only".into());
        }
        let page = self.registry.page;
        let capacity = reserved_size_in_bytes
            .unwrap_or(0)
            .max(
                maximum
                    .unwrap_or(DEFAULT_RESERVATION)
                    .min(DEFAULT_RESERVATION),
            )
            .max(minimum);
        let capacity = capacity.div_ceil(page) * page;
        let total = capacity
            .checked_add(guard_size_in_bytes.div_ceil(page) * page)
            .ok_or("memory reservation overflows")?;
        // SAFETY: a fresh PROT_NONE reservation at an address the kernel
        // chooses; it overlaps nothing.
        let base = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                total,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| format!("reserving {total} bytes of address space failed: {e}"))?;
        let mut memory = GuestMemory {
            base: base as usize,
            accessible: 0,
            capacity,
            total,
            id: MemoryId(0),
            registry: self.registry.clone(),
        };
        memory.grow_to(minimum).map_err(|e| e.to_string())?;
        let mut reg = self.registry.lock();
        reg.next += 1;
        memory.id = MemoryId(reg.next);
        reg.by_base.insert(
            memory.base,
            Entry {
                id: memory.id,
                accessible: memory.accessible,
            },
        );
        drop(reg);
        tracing::trace!(id = memory.id.0, capacity, "linear memory created");
        Ok(Box::new(memory))
    }
}

/// One guest linear memory: a reservation of `total` bytes of which the
/// first `accessible` are read-write.
#[derive(Debug)]
struct GuestMemory {
    base: usize,
    accessible: usize,
    capacity: usize,
    total: usize,
    id: MemoryId,
    registry: Arc<MemoryRegistry>,
}

// SAFETY: the memory is page aligned (mmap), a multiple of pages, and is
// followed by the guard region of the reservation (PROT_NONE) as asked.
unsafe impl LinearMemory for GuestMemory {
    fn byte_size(&self) -> usize {
        self.accessible
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!(
                "cannot grow a linear memory past its reservation of {} bytes",
                self.capacity
            );
        }
        let page = self.registry.page;
        let new_size = new_size.div_ceil(page) * page;
        if new_size > self.accessible {
            // SAFETY: `accessible .. new_size` lies inside our own
            // reservation (new_size <= capacity < total) and is PROT_NONE so
            // far: no attachment lives there (they lie below `accessible`).
            unsafe {
                mprotect(
                    (self.base + self.accessible) as *mut _,
                    new_size - self.accessible,
                    MprotectFlags::READ | MprotectFlags::WRITE,
                )?;
            }
            self.accessible = new_size;
            if let Some(e) = self.registry.lock().by_base.get_mut(&self.base) {
                e.accessible = new_size;
            }
        }
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // Unregister first, under the lock, so no mapping operation can
        // target this memory once it is unmapped.
        let mut reg = self.registry.lock();
        reg.by_base.remove(&self.base);
        crate::guard::unprotect(self.base, self.total);
        crate::windows::forget(self.base, self.total);
        // SAFETY: the reservation made in `new_memory`, unmapped once; the
        // registry no longer lists it, and wasmtime drops a memory only when
        // nothing refers to it any more.
        if let Err(e) = unsafe { munmap(self.base as *mut _, self.total) } {
            tracing::error!("munmap of a linear memory failed: {e}");
        }
        drop(reg);
    }
}
