//! The memory creator and the mapping of blocks into guest linear memory.
//!
//! Every linear memory of every guest comes from [`ShmMemoryCreator`]: one
//! reservation of address space (the whole maximum size plus the guard, as
//! `PROT_NONE`), made accessible by `mprotect` as the memory grows, so the
//! base never moves. Because the host made the reservation, it may replace
//! pages inside the accessible part with `MAP_FIXED` mappings of a block,
//! and put zero pages back afterwards: that is attach and detach.
//!
//! Every live memory is listed in a [`MemoryRegistry`]. Mapping operations
//! never hold the registry's lock across a system call: each memory has a
//! queue of its own (its *mapping turn*, a ticket lock), and every `mmap`,
//! copy and the final `munmap` of a memory runs in a turn of that memory.
//!
//! # Locking
//!
//! The order is: the ledger (`ShmHost::ledger`), then the registry's lock,
//! then a memory's queue. Taking a ticket ([`MemoryRegistry::enqueue`])
//! never waits: it is a number drawn under the registry's lock (so no
//! ticket is drawn once a memory is unregistered). Callers draw the ticket
//! of a placement *while holding the ledger* that decided it, then release
//! the ledger and wait for their turn ([`Ticket::wait`]) to make the system
//! call. So the operations on one memory run in the order the ledger decided
//! them: an attach and a later detach, drop or revocation of the same slot,
//! or a detach and a later attach that reuses its storage, can never be
//! reordered, and a revoked attachment's zero pages are never overwritten by
//! a stale map. Nobody waits for a turn while holding a turn of the same
//! memory it has not finished, nor takes the ledger while holding an
//! unserved ticket or a turn, so the turns cannot deadlock: the few that
//! wait for a turn while holding the ledger (copies, which need the block's
//! pages alive; keying a pool mapping) wait only for holders that need
//! nothing more than their own turn.
//!
//! A memory's drop unregisters it and draws the last ticket under the
//! registry's lock, then waits its turn before it unmaps the reservation:
//! every operation queued before has finished, and no ticket can be drawn
//! afterwards (the lookup fails with [`MapError::Gone`]; a turn served after
//! the unmap, which cannot happen, would also report `Gone`). A [`Locked`]
//! (a turn being served) therefore guarantees that the memory is alive and
//! that nothing else maps, copies into or unmaps it.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rustix::mm::{mmap, mmap_anonymous, mprotect, munmap, MapFlags, MprotectFlags, ProtFlags};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use crate::os::pages::SharedPages;
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
    Protect(#[from] crate::os::guard::ProtectError),
}

/// One live memory as the registry lists it, with its mapping queue.
#[derive(Debug)]
struct Mem {
    id: MemoryId,
    base: usize,
    /// Bytes accessible from `base`; only grows while the memory lives.
    accessible: AtomicUsize,
    queue: Mutex<Queue>,
    turn: Condvar,
}

/// A ticket lock: `serving` is the ticket whose turn it is.
#[derive(Debug)]
struct Queue {
    next: u64,
    serving: u64,
    /// Threads waiting for their turn (notified only when there are some,
    /// so that an uncontended turn costs no futex wake).
    waiting: u32,
    /// False once the memory's drop has unmapped it.
    alive: bool,
}

impl Mem {
    fn new(id: MemoryId, base: usize) -> Arc<Mem> {
        Arc::new(Mem {
            id,
            base,
            accessible: AtomicUsize::new(0),
            queue: Mutex::new(Queue {
                next: 0,
                serving: 0,
                waiting: 0,
                alive: true,
            }),
            turn: Condvar::new(),
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws a ticket: never waits (the queue's mutex is held for a few
    /// instructions only).
    fn draw(&self) -> u64 {
        let mut q = self.queue();
        q.next += 1;
        q.next - 1
    }

    /// Waits until it is `ticket`'s turn; returns whether the memory is
    /// still mapped.
    fn wait_turn(&self, ticket: u64) -> bool {
        let mut q = self.queue();
        while q.serving != ticket {
            q.waiting += 1;
            q = self.turn.wait(q).unwrap_or_else(|e| e.into_inner());
            q.waiting -= 1;
        }
        q.alive
    }

    /// Ends the current turn (`unmapped`: the memory is gone from now on).
    fn end_turn(&self, unmapped: bool) {
        let mut q = self.queue();
        q.serving += 1;
        if unmapped {
            q.alive = false;
        }
        if q.waiting > 0 {
            self.turn.notify_all();
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// Live memories by base address.
    by_base: BTreeMap<usize, Arc<Mem>>,
    /// The same, by id.
    by_id: BTreeMap<MemoryId, Arc<Mem>>,
}

/// The live linear memories made by a [`ShmMemoryCreator`].
#[derive(Debug)]
pub struct MemoryRegistry {
    page: usize,
    inner: Mutex<Registry>,
}

/// A place in a memory's mapping queue, drawn in ledger order (see the
/// module documentation). Dropped unused, it still waits for its turn and
/// passes it on, so that the queue never stalls.
#[derive(Debug)]
pub struct Ticket {
    mem: Option<Arc<Mem>>,
    number: u64,
    page: usize,
}

/// A live memory in its mapping turn: nothing else maps, copies into or
/// unmaps this memory while it lives, and the memory is alive.
#[derive(Debug)]
pub struct Locked {
    mem: Arc<Mem>,
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
        let (&base, mem) = reg.by_base.range(..=addr).next_back()?;
        let offset = addr - base;
        let end = offset.checked_add(len)?;
        (end <= mem.accessible.load(Ordering::Acquire))
            .then(|| u32::try_from(offset).ok().map(|o| (mem.id, o)))
            .flatten()
    }

    /// A ticket for an operation on memory `id`, without waiting: draw it
    /// with the ledger held, wait for it ([`Ticket::wait`]) after releasing
    /// the ledger. `Gone` if the memory is not alive.
    pub fn enqueue(&self, id: MemoryId) -> Result<Ticket, MapError> {
        let reg = self.lock();
        let mem = reg.by_id.get(&id).ok_or(MapError::Gone)?.clone();
        // Drawn under the registry's lock: a memory's drop unregisters it
        // under the same lock before drawing its own, last, ticket.
        let number = mem.draw();
        drop(reg);
        Ok(Ticket {
            mem: Some(mem),
            number,
            page: self.page,
        })
    }

    /// Looks up memory `id` and waits for a turn in its queue: while the
    /// result lives the memory cannot be unmapped and nothing else maps in
    /// it. Waits for every operation queued before on that memory (they are
    /// system calls, never waits for the ledger).
    pub fn lock_memory(&self, id: MemoryId) -> Result<Locked, MapError> {
        self.enqueue(id)?.wait()
    }

    /// How many memories are alive.
    pub fn live(&self) -> usize {
        self.lock().by_base.len()
    }

    /// The host address of `offset` in memory `id`, if it is alive now
    /// (nothing keeps it alive afterwards: hold a [`Locked`] for that).
    pub fn host_address(&self, id: MemoryId, offset: u32) -> Option<usize> {
        let reg = self.lock();
        let mem = reg.by_id.get(&id)?;
        ((offset as usize) < mem.accessible.load(Ordering::Acquire))
            .then_some(mem.base + offset as usize)
    }
}

impl Ticket {
    /// Waits for this ticket's turn. `Gone` if the memory was unmapped
    /// meanwhile (the turn is passed on).
    pub fn wait(mut self) -> Result<Locked, MapError> {
        let mem = self.mem.take().expect("a ticket is waited for once");
        if !mem.wait_turn(self.number) {
            mem.end_turn(false);
            return Err(MapError::Gone);
        }
        Ok(Locked {
            base: mem.base,
            accessible: mem.accessible.load(Ordering::Acquire),
            page: self.page,
            mem,
        })
    }

    /// Are both tickets of the same memory?
    pub fn same_memory(&self, other: &Ticket) -> bool {
        match (&self.mem, &other.mem) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(mem) = self.mem.take() {
            mem.wait_turn(self.number);
            mem.end_turn(false);
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.mem.end_turn(false);
    }
}

/// Test-only: a function to run inside the next `map` into one memory,
/// just before its `mmap` (to hold a map "in flight" deterministically).
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub(crate) static BEFORE_MAP: Mutex<Vec<(MemoryId, Box<dyn FnOnce() + Send>)>> =
    Mutex::new(Vec::new());

#[cfg(test)]
fn before_map(id: MemoryId) {
    let hook = {
        let mut hooks = BEFORE_MAP.lock().unwrap_or_else(|e| e.into_inner());
        let at = hooks.iter().position(|(m, _)| *m == id);
        at.map(|i| hooks.swap_remove(i).1)
    };
    if let Some(f) = hook {
        f();
    }
}

impl Locked {
    fn range(&self, offset: u32, len: u32, aligned: bool) -> Result<*mut u8, MapError> {
        let (offset, len) = (offset as usize, len as usize);
        let end = offset.checked_add(len).ok_or(MapError::OutOfRange)?;
        if end > self.accessible || (aligned && (offset % self.page != 0 || len % self.page != 0)) {
            return Err(MapError::OutOfRange);
        }
        Ok((self.base + offset) as *mut u8)
    }

    /// The host address of `offset`, if it is accessible.
    pub fn address(&self, offset: u32) -> Option<usize> {
        ((offset as usize) < self.accessible).then_some(self.base + offset as usize)
    }

    /// Maps `len` bytes of the block file `fd` from `file_offset` at
    /// `offset`, read-write or read-only. `fd` is the block's own `Arc`
    /// (cloned under the ledger): it stays open for the whole call even if
    /// the block was freed meanwhile. If the `mmap` fails, fresh zero pages
    /// are put back (best effort), so the storage is ordinary memory again.
    pub fn map(
        &self,
        offset: u32,
        len: u32,
        fd: &Arc<OwnedFd>,
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
        #[cfg(test)]
        before_map(self.mem.id);
        // A read-only mapping is listed first, so that a host write into it
        // can never fault unhandled.
        if !writable {
            crate::os::guard::protect(at as usize, len as usize, fd.clone(), file_offset)?;
        }
        // SAFETY: `at .. at + len` is page aligned and lies inside the
        // accessible part of a linear memory this host reserved (checked by
        // `range`; accessible bytes only grow while the memory lives). We
        // are in this memory's mapping turn (`self`), so the memory is alive
        // (its drop unmaps only in a later turn) and no other map, restore
        // or copy of this memory runs concurrently. MAP_FIXED replaces only
        // those pages of our own reservation: nothing outside it is touched.
        // The pages replaced are donated storage, which the guest gave up
        // (the ledger placed the attachment inside a donated region, and
        // every earlier placement there was carried out in an earlier turn,
        // in ledger order), so no live Rust object of the host lives there,
        // and wasmtime holds no reference into guest memory while a host
        // function runs. `fd` is open (our `Arc`) and `file_offset + len`
        // lies inside the memfd (the ledger derives both from the block's
        // page-rounded size; the file's size never changes).
        let mapped = unsafe {
            mmap(
                at.cast(),
                len as usize,
                prot,
                MapFlags::SHARED | MapFlags::FIXED,
                &**fd,
                file_offset,
            )
        };
        if let Err(e) = mapped {
            crate::os::guard::unprotect(at as usize, len as usize);
            // SAFETY: as above, the same range of our own live reservation,
            // in our turn: a failed MAP_FIXED may have left it unmapped, and
            // fresh zero pages make it ordinary donated storage again.
            let _ = unsafe {
                mmap_anonymous(
                    at.cast(),
                    len as usize,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE | MapFlags::FIXED,
                )
            };
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts fresh zero pages back at `offset .. offset + len`.
    pub fn restore(&self, offset: u32, len: u32) -> Result<(), MapError> {
        let at = self.range(offset, len, true)?;
        crate::os::guard::unprotect(at as usize, len as usize);
        crate::os::windows::forget(at as usize, len as usize);
        // SAFETY: as in `map`: a page-aligned range inside the accessible
        // part of a live reservation of ours, in this memory's turn (alive,
        // and no other operation on it runs; the map this undoes ran in an
        // earlier turn). The new private anonymous pages are zero, so the
        // guest sees no block bytes there any more.
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
        // by `range`), which is alive and untouched by any other mapping
        // operation while we are in its turn (`self`). It is donated storage
        // the ledger reserved for this attachment, not mapped to any block
        // and not read-only: every earlier placement there (a mapping put
        // back to zero pages) was carried out in an earlier turn. The guest
        // is not running (we are inside its host call), and the caller holds
        // the ledger, so `pages` is alive. The slice lives only for this
        // copy.
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

    /// Opens (`writable`) or closes protection windows of this memory:
    /// makes each `(offset, len)` read-write or read-only again,
    /// neighbouring ranges with one system call. Only pool mappings keyed
    /// for protection windows ([`crate::os::windows`]) change: a range that
    /// is no longer one (its mapping undone in an earlier turn) is left
    /// alone. A run of windows that cannot close is unmapped instead (fresh
    /// zero pages): a window must never stay writable. The caller drew
    /// this turn under the ledger while the windows' attachments lived.
    pub fn protect_windows(&self, ranges: &[(u32, u32)], writable: bool) -> Result<(), MapError> {
        let mut runs: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let Ok(at) = self.range(offset, len, true) else {
                continue;
            };
            if crate::os::windows::is_protection_window(at as usize, len as usize) {
                runs.push((at as usize, len as usize));
            }
        }
        runs.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
        for (at, len) in runs {
            match merged.last_mut() {
                Some((start, n)) if *start + *n == at => *n += len,
                _ => merged.push((at, len)),
            }
        }
        let mut failed = Ok(());
        for (at, len) in merged {
            if let Err(e) = self.mprotect_window(at, len, writable) {
                if !writable {
                    tracing::error!(
                        "closing a protection window failed, the pages are unmapped: {e}"
                    );
                    let offset = (at - self.base) as u32;
                    let _ = self.restore(offset, len as u32);
                }
                failed = Err(e);
            }
        }
        failed
    }

    /// The system call of [`Locked::protect_windows`] for one run of
    /// neighbouring protection windows (each checked by the caller).
    fn mprotect_window(&self, at: usize, len: usize, writable: bool) -> Result<(), MapError> {
        let at = at as *mut u8;
        let flags = if writable {
            MprotectFlags::READ | MprotectFlags::WRITE
        } else {
            MprotectFlags::READ
        };
        // SAFETY: `at .. at + len` is page aligned inside the accessible
        // part of a live reservation of ours (`range`), in this memory's
        // turn (no map, restore or unmap of it runs concurrently), and is
        // made of pool mappings keyed for protection windows (each checked
        // by `protect_windows`, neighbours joined; a restore forgets the
        // keying in its own turn): a shared
        // mapping of one block's pages through its read-write descriptor,
        // which the ledger lets this guest write while its write-in-pool
        // attachment lives (opened) and no longer (closed). Changing its
        // protection touches no other memory and no Rust object.
        unsafe { mprotect(at.cast(), len, flags) }.map_err(MapError::from)
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
        // Unique in the process, not only in this registry: two hosts in
        // one process never name different memories alike (test hooks and
        // logs key on ids).
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = MemoryId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let mut memory = GuestMemory {
            base: base as usize,
            accessible: 0,
            capacity,
            total,
            mem: Mem::new(id, base as usize),
            registry: self.registry.clone(),
        };
        // On failure `memory` is dropped, which unmaps the reservation (it
        // was never registered).
        memory.grow_to(minimum).map_err(|e| e.to_string())?;
        let mut reg = self.registry.lock();
        reg.by_base.insert(memory.base, memory.mem.clone());
        reg.by_id.insert(id, memory.mem.clone());
        drop(reg);
        tracing::trace!(id = id.0, capacity, "linear memory created");
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
    /// Its registry entry (id, accessible bytes, mapping queue).
    mem: Arc<Mem>,
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
            // Published after the mprotect: a mapping operation that sees
            // the new size finds the pages accessible. (Growth never races a
            // mapping operation's range: those lie below the old size.)
            self.mem.accessible.store(new_size, Ordering::Release);
        }
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // Unregister first, so that no ticket can be drawn for this memory
        // any more, and draw the last one under the same lock. The registry's
        // lock is not held while we wait: only this memory's queue is.
        let last = {
            let mut reg = self.registry.lock();
            reg.by_base.remove(&self.base);
            reg.by_id.remove(&self.mem.id);
            self.mem.draw()
        };
        // Every operation queued before (maps and restores in flight) ends
        // first; the turns after ours find the memory gone.
        self.mem.wait_turn(last);
        crate::os::guard::unprotect(self.base, self.total);
        crate::os::windows::forget(self.base, self.total);
        // SAFETY: the reservation made in `new_memory`, unmapped once; the
        // registry no longer lists it, every operation queued on it has
        // finished (we are in the last turn, and any later ticket sees
        // `alive == false`), and wasmtime drops a memory only when nothing
        // refers to it any more.
        if let Err(e) = unsafe { munmap(self.base as *mut _, self.total) } {
            tracing::error!("munmap of a linear memory failed: {e}");
        }
        self.mem.end_turn(true);
    }
}
