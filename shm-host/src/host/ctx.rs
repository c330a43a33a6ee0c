//! [`ShmCtx`]: the per-store state of the `exchange` interface, one guest's
//! view of the host, and what its operations do.

use shm_rules::guest_text::Shown;
use shm_rules::log_budget::{LogBudget, LogLine};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use super::place::Pending;
use super::proof::{self, MapsEntry};
use super::{bump, ForeignMemory, PlaceFailed, Stats, StatsSnapshot, TooLarge, MAX_BLOCK};
use crate::isolation::Watchdog;
use crate::os::pages::SharedPages;
use crate::rules::ExchangeError as Error;
use crate::rules::{
    Access, BackingId, GuestId, HandleId, HostWriteError, Ledger, LoanId, MemoryId, Placement,
    Release,
};
use crate::wit::MemoryArea;
use crate::{page_size, Grants, ShmHost, ENDED_GUESTS_KEPT};

/// Bytes the host copies into or out of a block under one hold of the
/// ledger's lock (about 20-60 us of copying).
pub const HOST_COPY_CHUNK: usize = 256 * 1024;

/// A protection window attached but not opened yet
/// ([`ShmCtx::attach_write_later`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowToOpen {
    handle: HandleId,
    memory: MemoryId,
    guest_offset: u32,
    len: u32,
}

/// The per-store state of the `exchange` interface.
///
/// Dropping it (with its store) releases every handle the guest still held.
pub struct ShmCtx {
    host: ShmHost,
    guest: GuestId,
    name: String,
    stats: Arc<Stats>,
    grants: Grants,
    watchdog: Arc<Watchdog>,
    /// Held across an attach of this guest (this guest's only, not a
    /// process-wide lock): see [`ShmCtx::attach`].
    attaching: Mutex<()>,
    /// Log lines this guest's refused calls may still write (see
    /// [`ShmCtx::refused`]).
    log_budget: Mutex<LogBudget>,
}

impl ShmCtx {
    pub(crate) fn new(
        host: ShmHost,
        guest: GuestId,
        name: String,
        stats: Arc<Stats>,
        watchdog: Arc<Watchdog>,
    ) -> ShmCtx {
        ShmCtx {
            host,
            guest,
            name,
            stats,
            grants: Grants::none(),
            watchdog,
            attaching: Mutex::new(()),
            log_budget: Mutex::new(LogBudget::default()),
        }
    }
}

impl std::fmt::Debug for ShmCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmCtx")
            .field("name", &self.name)
            .field("guest", &self.guest)
            .finish()
    }
}

impl Drop for ShmCtx {
    fn drop(&mut self) {
        // The store's memory is going away with it: release the guest's
        // handles without touching that memory.
        let freed = self.host.ledger().remove_guest(self.guest);
        drop(freed);
        self.host.released().notify();
        let gone = self
            .host
            .0
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.guest);
        if let Some(e) = gone {
            let mut ended = self.host.0.ended.lock().unwrap_or_else(|e| e.into_inner());
            if ended.len() == ENDED_GUESTS_KEPT {
                ended.pop_front();
            }
            ended.push_back((self.guest, e.name, e.stats.snapshot()));
        }
    }
}

/// Where a proof of aliasing found a guest page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageBacking {
    /// The `/proc/self/maps` line of the mapping holding the page.
    pub maps: MapsEntry,
    /// The block whose pages these are, if any: the mapping's file is that
    /// block's memfd, at the page's offset in it.
    pub block: Option<BackingId>,
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The guest donated no storage, so its memory is unknown.
    #[error("the guest has no known linear memory (it donated no storage)")]
    NoMemory,
    /// The address is outside the memory.
    #[error("the address is outside the guest's linear memory")]
    OutOfRange,
    /// `/proc/self/maps` could not be read or lists no such mapping.
    #[error("/proc/self/maps lists no mapping at that address")]
    NotMapped,
}

impl ShmCtx {
    /// The guest's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The guest's identity in the ledger.
    pub fn guest(&self) -> GuestId {
        self.guest
    }

    /// The host this context belongs to.
    pub fn host(&self) -> &ShmHost {
        &self.host
    }

    /// This guest's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// This context with `grants` (topic authority) instead of its own.
    pub fn with_grants(mut self, grants: Grants) -> ShmCtx {
        self.grants = grants;
        self
    }

    /// What this guest may publish and subscribe to.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// This guest's watchdog (time limits, eviction): [`crate::new_store`]
    /// arms the guest's store with it.
    pub fn watchdog(&self) -> &Arc<Watchdog> {
        &self.watchdog
    }

    /// `Err` (a trap of the calling guest) once it was stopped.
    pub(crate) fn alive(&self) -> wasmtime::Result<()> {
        Ok(self.watchdog.check()?)
    }

    fn bump(&self, field: fn(&Stats) -> &AtomicU64, n: u64) {
        bump(&self.stats, &self.host.0.totals, field, n);
    }

    /// Records a refused call of this guest (an error value it gets back):
    /// counted in its statistics (`errors`) always, logged as a warning
    /// only within the guest's log budget (a burst, then one line a
    /// second), so that a guest failing calls on purpose cannot flood the
    /// log. `what` must show guest-supplied strings through
    /// [`shm_rules::guest_text::Shown`].
    pub(crate) fn refused(&self, what: std::fmt::Arguments<'_>) {
        self.bump(|s| &s.errors, 1);
        let line = self
            .log_budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(std::time::Instant::now());
        if let LogLine::Write { suppressed } = line {
            if suppressed > 0 {
                tracing::warn!(guest = %Shown(&self.name), "refused: {what} ({suppressed} earlier refusals not logged)");
            } else {
                tracing::warn!(guest = %Shown(&self.name), "refused: {what}");
            }
        }
    }

    fn fail<T>(&self, op: &str, e: impl Into<Error> + std::fmt::Display) -> Result<T, Error> {
        tracing::debug!(guest = %Shown(&self.name), "{op} failed: {e}");
        self.bump(|s| &s.errors, 1);
        Err(e.into())
    }

    /// Creates a zeroed block of `size` bytes owned by this guest.
    pub(crate) fn create(&self, size: u32) -> Result<HandleId, Error> {
        if size > MAX_BLOCK {
            return self.fail("create", TooLarge);
        }
        let page = page_size();
        let made = self.host.ledger().create(self.guest, size, || {
            SharedPages::new(size as usize, page)
                .map(Arc::new)
                .map_err(|e| tracing::error!("creating a block of {size} bytes failed: {e}"))
                .ok()
        });
        match made {
            Ok(h) => {
                self.bump(|s| &s.blocks_created, 1);
                tracing::debug!(guest = %self.name, size, handle = h.0, "block created");
                Ok(h)
            }
            Err(e) => self.fail("create", e),
        }
    }

    /// Registers `len` bytes at host address `ptr` (inside this guest's
    /// linear memory) as storage.
    pub(crate) fn add_storage(&self, ptr: *const u8, len: usize) -> Result<(), Error> {
        let Some((memory, offset)) = self.host.0.registry.find(ptr, len) else {
            return self.fail("add-storage", ForeignMemory);
        };
        let len = u32::try_from(len).map_err(|_| Error::WrongSize)?;
        match self
            .host
            .ledger()
            .add_storage(self.guest, memory, offset, len)
        {
            Ok(()) => {
                tracing::debug!(guest = %self.name, offset, len, "storage added");
                Ok(())
            }
            Err(e) => self.fail("add-storage", e),
        }
    }

    pub(crate) fn create_local(&self, ptr: *const u8, len: usize) -> Result<HandleId, Error> {
        let Some((memory, offset)) = self.host.0.registry.find(ptr, len) else {
            return self.fail("create-local", ForeignMemory);
        };
        let len = u32::try_from(len).map_err(|_| Error::WrongSize)?;
        match self
            .host
            .ledger()
            .create_local(self.guest, memory, offset, len)
        {
            Ok(h) => {
                self.bump(|s| &s.blocks_created, 1);
                Ok(h)
            }
            Err(e) => self.fail("create-local", e),
        }
    }

    /// Attaches `handle` with `access` and carries out the placement.
    pub(crate) fn attach(&self, handle: HandleId, access: Access) -> Result<MemoryArea, Error> {
        if access == Access::Write && self.watchdog.windows().keyed() {
            if let Some(area) = self.attach_in_window(handle) {
                return Ok(area);
            }
        }
        // One attach of this guest at a time (its store makes one call at a
        // time anyway): an attach whose map fails after the ledger was
        // released can then tell its own attachment from any other.
        let _attaching = self.attaching.lock().unwrap_or_else(|e| e.into_inner());
        let mut ledger = self.host.ledger();
        let attached = match ledger.attach(self.guest, handle, access) {
            Ok(a) => a,
            Err(e) => {
                drop(ledger);
                return self.fail("attach", e);
            }
        };
        // Under the ledger: copies are done, a map is queued in its memory
        // (in ledger order) with its own reference to the block's memfd.
        let pending = match self.host.place(&ledger, &attached.placement) {
            Ok(p) => p,
            Err(e) => {
                ledger.abort_attach(handle);
                drop(ledger);
                tracing::error!(guest = %self.name, "attach could not map: {e}");
                return self.fail("attach", PlaceFailed(e));
            }
        };
        // The mmap runs without the ledger, in the memory's turn only: other
        // guests attach and detach meanwhile. Whatever the ledger decides
        // for this memory from now on (a detach, drop or revocation of this
        // very attachment, or a reuse of storage) is queued after this map.
        drop(ledger);
        if let Some(pending) = pending {
            let started = std::time::Instant::now();
            let ran = pending.run(self.host.0.config.verify_sharing);
            if let Placement::Copied { .. } = attached.placement {
                // The copy is host work on this guest's behalf.
                self.watchdog.charge(started.elapsed());
            }
            match ran {
                Ok(Some(true)) => self.bump(|s| &s.verified, 1),
                Ok(Some(false)) => {
                    tracing::error!(guest = %self.name, "an attached range is not the block's own pages");
                    self.bump(|s| &s.verify_failures, 1);
                }
                Ok(None) => {}
                Err(e) => {
                    // The failed map put zero pages back (or touched
                    // nothing). Abort the attachment if it is still the one
                    // recorded above: another thread may have ended it
                    // meanwhile (a drop, revocation or transfer of the
                    // handle), and then its own undo, queued after this map,
                    // only restores zero pages again and nothing is left to
                    // abort. It cannot have been ended and attached again to
                    // the very same placement: a placement in this guest's
                    // memory is made only by an attach of this guest, and we
                    // hold its attach lock. The turn was released before the
                    // ledger is taken (ledger before memory, always).
                    let mut ledger = self.host.ledger();
                    if ledger.attachment(handle) == Ok(Some((access, attached.placement))) {
                        ledger.abort_attach(handle);
                    }
                    drop(ledger);
                    tracing::error!(guest = %self.name, "attach could not map: {e}");
                    return self.fail("attach", PlaceFailed(e));
                }
            }
        }
        self.bump(|s| &s.attaches, 1);
        match attached.placement {
            Placement::Mapped { len, .. } => {
                self.bump(|s| &s.maps, 1);
                self.bump(|s| &s.bytes_mapped, u64::from(len));
            }
            Placement::Copied { len, .. } => {
                self.bump(|s| &s.copies, 1);
                self.bump(|s| &s.bytes_copied, u64::from(len));
            }
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => {}
        }
        tracing::trace!(guest = %self.name, handle = handle.0, ?access, address = attached.address, size = attached.size, "attached");
        Ok(MemoryArea {
            address: attached.address,
            size: attached.size,
        })
    }

    /// Attaches `handle` for writing as [`ShmCtx::attach`] does, except
    /// that a protection window is not opened yet: it is returned (the
    /// handle, its memory, offset and length), for [`ShmCtx::open_windows`]
    /// to open with others before the guest runs again. Used to lend a
    /// batch of loans. No memory's turn is drawn here: a thread must never
    /// hold an unserved turn while it takes the ledger again.
    pub(crate) fn attach_write_later(
        &self,
        handle: HandleId,
    ) -> Result<(MemoryArea, Option<WindowToOpen>), Error> {
        if self.watchdog.windows().keyed() {
            if let Some(made) = self.attach_in_window_with(handle, false) {
                return Ok(made);
            }
        }
        self.attach(handle, Access::Write).map(|area| (area, None))
    }

    /// Opens the protection windows of loans attached with
    /// [`ShmCtx::attach_write_later`]: under one hold of the ledger, each
    /// still attached for writing where it was, one memory turn drawn per
    /// window; then, the ledger released, neighbouring windows open with
    /// one system call ([`Pending::finish_all`]).
    pub(crate) fn open_windows(&self, windows: &[WindowToOpen]) {
        if windows.is_empty() {
            return;
        }
        let ledger = self.host.ledger();
        let mut pending = Vec::with_capacity(windows.len());
        for w in windows {
            let still = matches!(
                ledger.attachment(w.handle),
                Ok(Some((Access::Write, Placement::InPool { memory, guest_offset, .. })))
                    if memory == w.memory && guest_offset == w.guest_offset
            );
            if still {
                if let Ok(ticket) = self.host.0.registry.enqueue(w.memory) {
                    pending.push(Pending::protect(ticket, w.guest_offset, w.len, true));
                }
            }
        }
        drop(ledger);
        Pending::finish_all(pending);
    }

    fn attach_in_window(&self, handle: HandleId) -> Option<MemoryArea> {
        self.attach_in_window_with(handle, true)
            .map(|(area, _)| area)
    }

    /// A write attachment of a whole pool block inside this guest's keyed
    /// mapping of its pool, in the block's write window (see
    /// [`crate::os::windows`]); `None`: attach the usual way (no such
    /// mapping, a partition, or any refusal, which the usual way reports).
    /// A protection window opens now (`open_now`: its turn drawn under the
    /// ledger, served right after it is released) or is returned to open
    /// later.
    fn attach_in_window_with(
        &self,
        handle: HandleId,
        open_now: bool,
    ) -> Option<(MemoryArea, Option<WindowToOpen>)> {
        let windows = self.watchdog.windows();
        let mut ledger = self.host.ledger();
        let backing = ledger.backing_of(handle).ok()?.0;
        let mapping = windows.mapping(backing)?;
        let attached = ledger.write_in_pool(self.guest, handle, mapping).ok()?;
        let Placement::InPool {
            memory,
            guest_offset,
            len,
        } = attached.placement
        else {
            ledger.abort_attach(handle);
            return None;
        };
        let opened = self
            .host
            .0
            .registry
            .host_address(memory, guest_offset)
            .and_then(|at| crate::os::windows::open(windows, at, len as usize));
        let (now, later) = match opened {
            Some(crate::os::windows::Opened::Key) => (None, None),
            Some(crate::os::windows::Opened::Protection { len }) if open_now => {
                // In the memory's turn, drawn here, under the ledger
                // (before any later undo of it).
                match self.host.0.registry.enqueue(memory) {
                    Ok(t) => (Some(Pending::protect(t, guest_offset, len, true)), None),
                    Err(_) => {
                        ledger.abort_attach(handle);
                        return None;
                    }
                }
            }
            Some(crate::os::windows::Opened::Protection { len }) => (
                None,
                Some(WindowToOpen {
                    handle,
                    memory,
                    guest_offset,
                    len,
                }),
            ),
            None => {
                ledger.abort_attach(handle);
                return None;
            }
        };
        drop(ledger);
        if let Some(p) = now {
            if let Err(e) = p.run(false) {
                // The guest's writes there trap it; its attachment ends as
                // any other.
                tracing::error!(guest = %self.name, "opening a protection window failed: {e}");
            }
        }
        self.bump(|s| &s.attaches, 1);
        self.bump(|s| &s.in_pool, 1);
        tracing::trace!(guest = %self.name, handle = handle.0, address = attached.address, size = attached.size, "attached in a write window");
        let area = MemoryArea {
            address: attached.address,
            size: attached.size,
        };
        Some((area, later))
    }

    /// Attaches `handle` read-only where its block already is: inside
    /// `mapping`, a pool mapping of this guest ([`Access::Pool`]). Nothing
    /// is mapped.
    pub(crate) fn attach_in_pool(
        &self,
        handle: HandleId,
        mapping: HandleId,
    ) -> Result<MemoryArea, Error> {
        let attached = self
            .host
            .ledger()
            .attach_in_pool(self.guest, handle, mapping);
        match attached {
            Ok(a) => {
                self.bump(|s| &s.attaches, 1);
                self.bump(|s| &s.in_pool, 1);
                Ok(MemoryArea {
                    address: a.address,
                    size: a.size,
                })
            }
            Err(e) => self.fail("attach in pool", e),
        }
    }

    /// Ends the attachment of `handle`.
    pub(crate) fn detach(&self, handle: HandleId, consumed: u32) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        let release = match ledger.detach(self.guest, handle, consumed) {
            Ok(r) => r,
            Err(e) => {
                drop(ledger);
                return self.fail("detach", e);
            }
        };
        self.release(ledger, &release);
        Ok(())
    }

    /// Ends the attachments of `items` (handle, bytes to commit) under one
    /// hold of the ledger, as [`ShmCtx::detach`] each, and carries out what
    /// follows after it is released: neighbouring protection windows close
    /// with one system call ([`Pending::finish_all`]), all before this
    /// returns. Copies (which wait for their memory's turn under the
    /// ledger) are undone before any turn is drawn, so this thread never
    /// waits for a turn it holds itself. Used to publish a batch of loans.
    pub(crate) fn detach_all(&self, items: &[(HandleId, u32)]) -> Vec<Result<(), Error>> {
        let started = std::time::Instant::now();
        let mut ledger = self.host.ledger();
        let mut results = Vec::with_capacity(items.len());
        let mut releases = Vec::with_capacity(items.len());
        for &(handle, consumed) in items {
            match ledger.detach(self.guest, handle, consumed) {
                Ok(r) => {
                    releases.push(r);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e.into())),
            }
        }
        let draws_turn = |r: &Release| {
            matches!(
                r.placement,
                Placement::Mapped { .. } | Placement::InPool { .. }
            )
        };
        let mut pending = Vec::new();
        for r in releases.iter().filter(|r| !draws_turn(r)) {
            pending.extend(self.host.unplace(&ledger, r));
        }
        for r in releases.iter().filter(|r| draws_turn(r)) {
            pending.extend(self.host.unplace(&ledger, r));
        }
        drop(ledger);
        Pending::finish_all(pending);
        if releases
            .iter()
            .any(|r| matches!(r.placement, Placement::Copied { .. }))
        {
            self.watchdog.charge(started.elapsed());
        }
        for r in &releases {
            self.bump(|s| &s.detaches, 1);
            if r.copy_out > 0 {
                self.bump(|s| &s.bytes_copied, u64::from(r.copy_out));
            }
        }
        results
            .into_iter()
            .map(|r| r.or_else(|e: Error| self.fail("detach", e)))
            .collect()
    }

    /// Undoes `release` (an attachment of this guest the ledger ended):
    /// copies and zeroing under `ledger`, the restore of a mapping queued
    /// under it and carried out after it is released.
    fn release(&self, ledger: MutexGuard<'_, Ledger<Arc<SharedPages>>>, release: &Release) {
        let started = std::time::Instant::now();
        let pending = self.host.unplace(&ledger, release);
        drop(ledger);
        if let Some(p) = pending {
            p.finish();
        }
        if let Placement::Copied { .. } = release.placement {
            // Copying out (under the ledger, bounded by the copy limit) and
            // zeroing (after it) are host work on this guest's behalf.
            self.watchdog.charge(started.elapsed());
        }
        self.bump(|s| &s.detaches, 1);
        if release.copy_out > 0 {
            self.bump(|s| &s.bytes_copied, u64::from(release.copy_out));
        }
    }

    /// Drops `handle`, detaching it first if it is attached.
    pub(crate) fn drop_handle(&self, handle: HandleId) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        let dropped = ledger.drop_handle(handle)?;
        match dropped.release {
            Some(release) => self.release(ledger, &release),
            None => drop(ledger),
        }
        drop(dropped.freed);
        self.host.released().notify();
        Ok(())
    }

    /// Moves `handle`, which `holder` holds, to guest `to`; an attachment
    /// it had is ended in `holder`'s memory first.
    fn move_handle(&self, handle: HandleId, to: GuestId, holder: &ShmCtx) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        match ledger.transfer(handle, to) {
            Ok(Some(release)) => {
                holder.release(ledger, &release);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                drop(ledger);
                self.fail("transfer", e)
            }
        }
    }

    /// Moves `handle`, held by the broker's guest (never attached), here.
    pub(crate) fn adopt_from(&self, handle: HandleId) -> Result<(), Error> {
        self.move_handle(handle, self.guest, self)
    }

    /// Moves `handle`, held here, to guest `to`.
    pub(crate) fn give_to(&self, handle: HandleId, to: GuestId) -> Result<(), Error> {
        self.move_handle(handle, to, self)
    }

    /// A read-only handle to the same bytes, owned by this guest.
    pub(crate) fn clone_handle(&self, handle: HandleId) -> Result<HandleId, Error> {
        let r = self.host.ledger().clone_handle(handle, self.guest);
        r.or_else(|e| self.fail("clone", e))
    }

    /// A partition of `handle`'s block.
    pub(crate) fn partition(
        &self,
        handle: HandleId,
        start: u32,
        size: u32,
        writable: bool,
    ) -> Result<HandleId, Error> {
        let r = self.host.ledger().partition(handle, start, size, writable);
        r.or_else(|e| self.fail("create-partition", e))
    }

    /// Takes over `handle` from `from` (another store's context): the handle
    /// moves here; an attachment it had is ended in `from`'s memory first.
    pub(crate) fn adopt(&self, from: &ShmCtx, handle: HandleId) -> Result<(), Error> {
        self.move_handle(handle, self.guest, from)
    }

    /// A new handle here with the rights of `handle`, for good (the host
    /// handing out a block it holds).
    pub(crate) fn alias(&self, handle: HandleId) -> Result<HandleId, Error> {
        let r = self.host.ledger().alias(handle, self.guest);
        r.or_else(|e| self.fail("alias", e))
    }

    /// A new handle here with the rights of `handle` (which another store
    /// holds) for one call: what a borrowed handle becomes when a call
    /// crosses stores. End the loan with [`ShmHost::end_loan`] when the call
    /// returns.
    pub(crate) fn lend(&self, handle: HandleId) -> Result<(HandleId, LoanId), Error> {
        let r = self.host.ledger().lend(handle, self.guest);
        r.or_else(|e| self.fail("lend", e))
    }

    /// The size of `handle`'s block.
    pub(crate) fn size(&self, handle: HandleId) -> Result<u32, Error> {
        Ok(self.host.ledger().size(handle)?)
    }

    /// Storage needed for one attachment of `handle`.
    pub(crate) fn minimum_size(&self, handle: HandleId) -> Result<u32, Error> {
        Ok(self.host.ledger().minimum_size(handle)?)
    }

    /// Storage needed for `count` attachments of up to `size` bytes.
    pub(crate) fn optimum_size(&self, count: u32, size: u32) -> u32 {
        self.host.ledger().optimum_size(count, size)
    }

    /// Writes `src` at `offset` of `handle`'s block from the host (a native
    /// publisher filling a pool block): the handle must be this guest's,
    /// writable and detached, and no handle of the block attached for
    /// writing ([`Ledger::host_write`]). Copies in chunks of
    /// [`HOST_COPY_CHUNK`], taking the ledger's lock for each, so that a
    /// large message never holds up other guests' operations for long.
    /// Commit the bytes with [`ShmCtx::commit_block`].
    pub(crate) fn write_block(
        &self,
        handle: HandleId,
        offset: u32,
        src: &[u8],
    ) -> Result<(), HostWriteError> {
        let len = u32::try_from(src.len()).map_err(|_| HostWriteError::WrongSize)?;
        // The whole range first: nothing is written unless all of it fits.
        self.host
            .ledger()
            .host_write(self.guest, handle, offset, len)?;
        let mut at = offset;
        for chunk in src.chunks(HOST_COPY_CHUNK) {
            let ledger = self.host.ledger();
            let n = chunk.len() as u32;
            let (backing, start) = ledger.host_write(self.guest, handle, at, n)?;
            let pages = ledger.backing(backing).ok_or(HostWriteError::Unknown)?;
            if !pages.write(start, chunk) {
                return Err(HostWriteError::WrongSize);
            }
            at += n;
        }
        Ok(())
    }

    /// Commits the first `len` bytes of `handle`'s block, written with
    /// [`ShmCtx::write_block`], as its valid bytes (and zeroes the rest of
    /// their last page, as a guest's write detach does).
    pub(crate) fn commit_block(&self, handle: HandleId, len: u32) -> Result<(), HostWriteError> {
        let mut ledger = self.host.ledger();
        if let Some((backing, from, n)) = ledger.host_commit(self.guest, handle, len)? {
            if let Some(pages) = ledger.backing(backing) {
                pages.zero(from, n as usize);
            }
        }
        Ok(())
    }

    /// Appends the valid bytes of `handle`'s block to `out` (a copy, for
    /// a host-side subscriber), in chunks of [`HOST_COPY_CHUNK`] under the
    /// ledger's lock each. Fails with `busy` while the block is attached
    /// for writing; a published message never is (its publisher gave up
    /// its write right).
    pub(crate) fn read_block(&self, handle: HandleId, out: &mut Vec<u8>) -> Result<(), Error> {
        let base = out.len();
        let mut read = || {
            let (from, len) = {
                let ledger = self.host.ledger();
                ledger.valid_range(handle)?
            };
            out.resize(base + len as usize, 0);
            let mut done = 0usize;
            // Checked before each chunk, and once for an empty block.
            loop {
                let ledger = self.host.ledger();
                if ledger.write_attached(handle)? {
                    return Err(Error::Busy);
                }
                if len == 0 {
                    return Ok(());
                }
                let (_, start, pages) = ledger.backing_of(handle)?;
                let pages = pages.ok_or(Error::WrongMemory)?;
                let end = (done + HOST_COPY_CHUNK).min(len as usize);
                let at = start + u64::from(from) + done as u64;
                if !pages.read(at, &mut out[base + done..base + end]) {
                    return Err(Error::Internal);
                }
                done = end;
                if done == len as usize {
                    return Ok(());
                }
            }
        };
        let result = read();
        if result.is_err() {
            out.truncate(base);
        }
        result
    }

    /// Counts a message of `bytes` that crossed the host's boundary for
    /// this guest (copied in from, or out to, a native peer or the network).
    pub(crate) fn count_remote(&self, bytes: u64) {
        self.bump(|s| &s.remote, 1);
        self.bump(|s| &s.bytes_remote, bytes);
    }

    /// Proof of aliasing: what backs the page at guest `address` of this
    /// guest's memory, read from `/proc/self/maps` and matched against the
    /// memfds of live blocks.
    pub fn page_backing(&self, address: u32) -> Result<PageBacking, ProofError> {
        let ledger = self.host.ledger();
        let memory: MemoryId = ledger
            .storage_memory(self.guest)
            .ok()
            .flatten()
            .ok_or(ProofError::NoMemory)?;
        let host_addr = self
            .host
            .0
            .registry
            .host_address(memory, address)
            .ok_or(ProofError::OutOfRange)?;
        let maps = proof::mapping_at(host_addr).ok_or(ProofError::NotMapped)?;
        let page_offset = maps.offset + (host_addr - maps.start) as u64;
        let block = ledger.find_backing(|pages| {
            pages.inode() == maps.inode
                && page_offset < pages.len().div_ceil(page_size()) as u64 * page_size() as u64
        });
        Ok(PageBacking { maps, block })
    }

    /// The host address of guest `address` in this guest's memory, for
    /// diagnostics (`None` when the guest donated no storage yet).
    pub fn host_address(&self, address: u32) -> Option<usize> {
        let memory = self
            .host
            .ledger()
            .storage_memory(self.guest)
            .ok()
            .flatten()?;
        self.host.0.registry.host_address(memory, address)
    }

    /// The block (backing) `handle` names.
    pub(crate) fn backing_id(&self, handle: HandleId) -> Result<BackingId, Error> {
        Ok(self.host.ledger().backing_of(handle)?.0)
    }
}
