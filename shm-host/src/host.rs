//! The host side of memory blocks: [`ShmHost`], shared by every store of
//! an engine (the ledger, the memory registry, the broker, statistics and
//! guests), and carrying out the placements the rules decide.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::Config;

use crate::os::memory::{Locked, MapError, MemoryRegistry, ShmMemoryCreator, Ticket};
use crate::os::pages::SharedPages;
use crate::os::proof::MapsEntry;
use crate::rules::{
    Access, Dropped, GuestId, HandleError, HandleId, Ledger, Limits, LoanId, Placement, Release,
};
use crate::stats::{bump, Stats, StatsSnapshot};
use crate::watchdog::Watchdog;
use crate::ShmCtx;

/// Settings of a [`ShmHost`].
#[derive(Clone, Copy, Debug)]
pub struct ShmConfig {
    /// Limits applied to every guest.
    pub limits: Limits,
    /// Publish/subscribe settings.
    pub pubsub: crate::pubsub::PubSubConfig,
    /// After every mapped attach, check in `/proc/self/maps` that the
    /// guest's pages are a mapping of the block's own memfd at the right
    /// offset, and count the result ([`StatsSnapshot::verified`]). Costs a
    /// read of `/proc/self/maps` per attach: for demonstrations and tests.
    pub verify_sharing: bool,
    /// Wasm execution time each guest may use in all (its CPU budget), to
    /// an epoch tick's precision; `None` for no limit. A guest past it traps
    /// ([`crate::watchdog::Stopped::CpuLimit`]).
    pub cpu_limit: Option<Duration>,
    /// How often engines made by [`ShmHost::engine`] advance their epoch:
    /// how soon a stopped or evicted guest that runs wasm traps.
    pub epoch_tick: Duration,
    /// Limits for all guests together; `None`: from what this process may
    /// hold ([`crate::os::process::limits`]).
    pub process_limits: Option<crate::rules::ProcessLimits>,
    /// Engines support concurrent (WASI 0.3 style) execution: streams and
    /// futures, such as `subscriber.get-stream` (default). Without it
    /// every component call is cheaper (wasmtime sets up no task state:
    /// an empty host-to-guest call costs about a third), but components
    /// that use streams or futures do not run.
    pub concurrency: bool,
}

impl Default for ShmConfig {
    fn default() -> Self {
        ShmConfig {
            limits: Limits::default(),
            pubsub: crate::pubsub::PubSubConfig::default(),
            verify_sharing: false,
            cpu_limit: None,
            epoch_tick: Duration::from_millis(10),
            process_limits: None,
            concurrency: true,
        }
    }
}

/// What the host knows of a live guest.
pub(crate) struct GuestEntry {
    pub(crate) name: String,
    pub(crate) stats: Arc<Stats>,
    pub(crate) watchdog: Arc<Watchdog>,
}

pub(crate) struct Inner {
    pub(crate) ledger: Mutex<Ledger<Arc<SharedPages>>>,
    pub(crate) registry: Arc<MemoryRegistry>,
    pub(crate) config: ShmConfig,
    pub(crate) totals: Stats,
    pub(crate) guests: Mutex<HashMap<GuestId, GuestEntry>>,
    /// The last guests that ended, for statistics after their stores are
    /// gone (bounded: [`ENDED_KEPT`]).
    pub(crate) ended: Mutex<std::collections::VecDeque<(GuestId, String, StatsSnapshot)>>,
    pub(crate) broker: crate::pubsub::Broker,
    /// Wakes host code waiting for a block to come free.
    pub(crate) released: crate::released::Released,
}

/// The host side of memory blocks, shared by every store of an engine.
///
/// Cheap to clone. Make the engine with [`ShmHost::engine_config`] so that
/// every linear memory comes from this host, give each store a [`ShmCtx`],
/// and add the interface with [`add_to_linker`](crate::add_to_linker).
#[derive(Clone)]
pub struct ShmHost(pub(crate) Arc<Inner>);

impl std::fmt::Debug for ShmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmHost")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl Default for ShmHost {
    fn default() -> Self {
        ShmHost::new(ShmConfig::default())
    }
}

/// How many ended guests' statistics a host keeps.
pub const ENDED_KEPT: usize = 256;

/// The host's page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

impl ShmHost {
    /// A host with `config`.
    ///
    /// Create the host before the process's first wasmtime `Engine`: it
    /// installs a fault handler that must come before wasmtime's (see
    /// [`crate::os::guard`]).
    pub fn new(config: ShmConfig) -> ShmHost {
        crate::os::guard::install();
        let page = page_size();
        let process = config
            .process_limits
            .unwrap_or_else(crate::os::process::limits);
        let mut ledger = Ledger::with_process_limits(page as u32, process);
        // The broker holds pool blocks and queued messages as a guest of its
        // own: its limits are the sum of what publishers were charged.
        let broker_guest = ledger.add_guest(Limits {
            max_blocks: u32::MAX,
            max_bytes: u64::MAX,
            max_handles: u32::MAX,
            max_storage_regions: 0,
            max_mappings: 0,
            max_copy: 0,
        });
        ShmHost(Arc::new(Inner {
            ledger: Mutex::new(ledger),
            registry: MemoryRegistry::new(page),
            config,
            totals: Stats::default(),
            guests: Mutex::new(HashMap::new()),
            ended: Mutex::new(std::collections::VecDeque::new()),
            broker: crate::pubsub::Broker::new(broker_guest, config.pubsub),
            released: Default::default(),
        }))
    }

    /// A wasmtime configuration whose linear memories all come from this
    /// host, with the settings block mapping needs: the host memory creator,
    /// no copy-on-write memory images (they are incompatible with a custom
    /// creator), signal-based traps (so that a guest writing into a
    /// read-only attachment traps instead of crashing the process), the
    /// default on-demand allocator (the pooling allocator ignores custom
    /// creators), and the component model.
    pub fn engine_config(&self) -> Config {
        let mut config = Config::new();
        self.configure(&mut config);
        config
    }

    /// Applies the settings of [`ShmHost::engine_config`] to `config`.
    ///
    /// Epoch interruption is on: a store of such an engine traps at once
    /// unless armed ([`Watchdog::arm`], or [`crate::link::new_store`]), and the
    /// epoch must advance ([`ShmHost::engine`] starts a thread for it).
    pub fn configure(&self, config: &mut Config) {
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .with_host_memory(Arc::new(ShmMemoryCreator::new(self.0.registry.clone())))
            .memory_init_cow(false)
            .signals_based_traps(true)
            .concurrency_support(self.0.config.concurrency)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
    }

    /// An engine with [`ShmHost::engine_config`] whose epoch advances every
    /// [`ShmConfig::epoch_tick`] for as long as this host lives.
    pub fn engine(&self) -> wasmtime::Result<wasmtime::Engine> {
        let engine = wasmtime::Engine::new(&self.engine_config())?;
        crate::watchdog::start_ticker(
            engine.clone(),
            self.0.config.epoch_tick,
            Arc::downgrade(&self.0),
        )?;
        Ok(engine)
    }

    /// The settings this host was made with.
    pub fn config(&self) -> &ShmConfig {
        &self.0.config
    }

    /// Every guest's counters and the totals (`Display`: the runner's
    /// table).
    pub fn statistics(&self) -> crate::Statistics {
        crate::Statistics {
            guests: self.guest_stats(),
            total: self.totals(),
        }
    }

    /// The totals over all guests.
    pub fn totals(&self) -> StatsSnapshot {
        self.0.totals.snapshot()
    }

    /// Each guest's name and counters, in the order they were created: the
    /// live ones and the last [`ENDED_KEPT`] that ended.
    pub fn guest_stats(&self) -> Vec<(String, StatsSnapshot)> {
        let guests = self.0.guests.lock().unwrap_or_else(|e| e.into_inner());
        let ended = self.0.ended.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = guests
            .iter()
            .map(|(id, e)| (id.0, e.name.clone(), e.stats.snapshot()))
            .chain(ended.iter().map(|(id, n, s)| (id.0, n.clone(), *s)))
            .collect();
        all.sort_by_key(|g| g.0);
        all.into_iter().map(|(_, n, s)| (n, s)).collect()
    }

    /// How many blocks are alive.
    pub fn live_blocks(&self) -> usize {
        self.ledger().live_blocks()
    }

    /// How many block handles are alive.
    pub fn live_handles(&self) -> usize {
        self.ledger().live_handles()
    }

    /// How many linear memories of this host are alive.
    pub fn live_memories(&self) -> usize {
        self.0.registry.live()
    }

    /// The publish/subscribe broker.
    pub(crate) fn broker(&self) -> &crate::pubsub::Broker {
        &self.0.broker
    }

    /// How many subscriptions were ever made (the runner waits for its
    /// subscriber components to subscribe before it starts the publisher).
    pub fn subscriptions(&self) -> usize {
        self.0.broker.subscriptions()
    }

    /// Drops a handle no guest memory holds attached (the broker's).
    pub(crate) fn drop_detached(&self, handle: HandleId) {
        let dropped = self.ledger().drop_handle(handle);
        drop(dropped);
        self.0.released.notify();
    }

    /// Counts handle drops, for host code that waits for a free block.
    pub(crate) fn released(&self) -> &crate::released::Released {
        &self.0.released
    }

    /// Drops a handle of any guest, undoing its attachment in that guest's
    /// memory if the memory is still alive (a host-held handle, such as a
    /// subscriber's pool mapping, whose owner's context may be gone).
    pub(crate) fn drop_anywhere(&self, handle: HandleId) {
        let mut ledger = self.ledger();
        if let Ok(dropped) = ledger.drop_handle(handle) {
            let pending = dropped
                .release
                .and_then(|release| self.unplace(&ledger, &release));
            // The restore runs after the ledger is released, in its memory's
            // turn (drawn above, in ledger order).
            drop(ledger);
            if let Some(p) = pending {
                p.finish();
            }
            drop(dropped.freed);
            self.0.released.notify();
        }
    }

    /// A read-only handle to `handle`'s block, owned by `owner`.
    pub(crate) fn clone_for(
        &self,
        handle: HandleId,
        owner: GuestId,
    ) -> Result<HandleId, HandleError> {
        self.ledger().clone_handle(handle, owner)
    }

    /// How many live handles name `handle`'s block (all its contents).
    pub(crate) fn handles_of_block(&self, handle: HandleId) -> usize {
        self.ledger().handles_of_block(handle).unwrap_or(0)
    }

    /// Is `handle` writable, with exactly `others` other writable handles
    /// of its block (through any content)?
    pub(crate) fn sole_writer(&self, handle: HandleId, others: u32) -> bool {
        let ledger = self.ledger();
        ledger.writable(handle) == Ok(true) && ledger.other_writers(handle) == Ok(others)
    }

    /// The guests that keep `handle`'s block in use.
    pub(crate) fn holders(&self, handle: HandleId) -> Vec<GuestId> {
        self.ledger().holders(handle).unwrap_or_default()
    }

    /// Is `handle` itself attached?
    pub(crate) fn is_attached(&self, handle: HandleId) -> bool {
        !matches!(self.ledger().attached(handle), Ok(None))
    }

    /// The valid bytes of `handle`'s block (from its start).
    pub(crate) fn valid_len(&self, handle: HandleId) -> u32 {
        self.ledger()
            .valid_range(handle)
            .map(|(c, n)| c + n)
            .unwrap_or(0)
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, Ledger<Arc<SharedPages>>> {
        self.0.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the attach rules' invariants (for tests).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.ledger().check_invariants()
    }

    /// A context for a new store, for the guest called `name` (used in
    /// statistics and logs). It has no topic grants: give them with
    /// [`ShmCtx::with_grants`].
    pub fn new_ctx(&self, name: impl Into<String>) -> ShmCtx {
        let guest = self.ledger().add_guest(self.0.config.limits);
        let stats = Arc::new(Stats::default());
        let name = name.into();
        let config = &self.0.config;
        let watchdog = Watchdog::new(&name, config.cpu_limit, config.epoch_tick);
        self.0
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                guest,
                GuestEntry {
                    name: name.clone(),
                    stats: stats.clone(),
                    watchdog: watchdog.clone(),
                },
            );
        ShmCtx::new(self.clone(), guest, name, stats, watchdog)
    }

    /// Evicts `guest` for `reason`: every handle it holds is revoked (its
    /// mappings become zero pages, the messages it held go back to their
    /// pools), its subscriptions end, and its next wasm instruction or host
    /// call traps with the reason. Returns `false` if the guest was already
    /// stopped or is gone.
    pub fn evict(&self, guest: GuestId, reason: String) -> bool {
        let (name, watchdog) = {
            let guests = self.0.guests.lock().unwrap_or_else(|e| e.into_inner());
            let Some(e) = guests.get(&guest) else {
                return false;
            };
            (e.name.clone(), e.watchdog.clone())
        };
        if !watchdog.evict(reason.clone()) {
            return false;
        }
        tracing::warn!(guest = %name, "evicted: {reason}");
        for h in self.0.broker.leave_all(guest) {
            self.drop_detached(h);
        }
        let mut ledger = self.ledger();
        let revoked = ledger.revoke_guest(guest);
        self.undo_revoked(ledger, revoked);
        true
    }

    /// Ends `loan`: everything derived from it is revoked, in whichever
    /// guest holds it.
    pub fn end_loan(&self, loan: LoanId) {
        let mut ledger = self.ledger();
        let revoked = ledger.end_loan(loan);
        self.undo_revoked(ledger, revoked);
    }

    /// Undoes the placements of revoked handles, then counts them for their
    /// guests. The copies and the tails are done under the ledger that
    /// revoked them; the restores of mappings are queued in their memories
    /// under it too (so no attach can take their storage and map there
    /// first) and carried out after it is released.
    fn undo_revoked(
        &self,
        ledger: MutexGuard<'_, Ledger<Arc<SharedPages>>>,
        revoked: Vec<(GuestId, Dropped<Arc<SharedPages>>)>,
    ) {
        let mut owners = Vec::with_capacity(revoked.len());
        let mut freed = Vec::new();
        let mut releases = Vec::new();
        for (owner, dropped) in revoked {
            releases.extend(dropped.release);
            owners.push(owner);
            freed.extend(dropped.freed);
        }
        // Placements undone under the ledger (copies wait for their memory's
        // turn there) come first: this thread must hold no unserved ticket
        // while it waits for a turn, or it could wait for itself.
        let mapped = |r: &Release| matches!(r.placement, Placement::Mapped { .. });
        let mut pending = Vec::new();
        for release in releases.iter().filter(|r| !mapped(r)) {
            pending.extend(self.unplace(&ledger, release));
        }
        for release in releases.iter().filter(|r| mapped(r)) {
            pending.extend(self.unplace(&ledger, release));
        }
        drop(ledger);
        // In the order drawn: tickets of one memory are served in order.
        for p in pending {
            p.finish();
        }
        drop(freed);
        if owners.is_empty() {
            return;
        }
        self.0.released.notify();
        let guests = self.0.guests.lock().unwrap_or_else(|e| e.into_inner());
        for owner in owners {
            if let Some(e) = guests.get(&owner) {
                bump(&e.stats, &self.0.totals, |s| &s.revoked, 1);
            }
        }
    }
}

/// A mapping system call decided under the ledger, queued in its memory
/// (its ticket drawn under the ledger, so in ledger order) and carried out
/// after the ledger is released ([`Pending::run`]). It needs nothing from
/// the ledger: a map holds its own reference to the block's memfd.
#[must_use = "a pending placement holds its memory's queue until it runs"]
pub(crate) struct Pending {
    ticket: Ticket,
    op: PendingOp,
}

enum PendingOp {
    Map {
        guest_offset: u32,
        len: u32,
        fd: Arc<OwnedFd>,
        inode: u64,
        file_offset: u64,
        writable: bool,
    },
    Restore {
        guest_offset: u32,
        len: u32,
    },
    CopyIn {
        guest_offset: u32,
        len: u32,
        pages: Arc<SharedPages>,
        from: u64,
    },
    Zero {
        guest_offset: u32,
        len: u32,
    },
}

impl Pending {
    /// Waits for the memory's turn and makes the system call. For a map
    /// with `verify`, also reports whether `/proc/self/maps` lists the
    /// guest's pages as the block's own ([`ShmConfig::verify_sharing`]): a
    /// debug feature, it reads the file in the same turn (holding only this
    /// memory's queue, no process-wide lock).
    pub(crate) fn run(self, verify: bool) -> Result<Option<bool>, MapError> {
        let m = self.ticket.wait()?;
        match self.op {
            PendingOp::Map {
                guest_offset,
                len,
                fd,
                inode,
                file_offset,
                writable,
            } => {
                m.map(guest_offset, len, &fd, file_offset, writable)?;
                Ok(verify.then(|| maps_to(&m, guest_offset, len, inode, file_offset)))
            }
            PendingOp::Restore { guest_offset, len } => m.restore(guest_offset, len).map(|()| None),
            PendingOp::CopyIn {
                guest_offset,
                len,
                pages,
                from,
            } => m.copy_in(guest_offset, len, &pages, from).map(|()| None),
            PendingOp::Zero { guest_offset, len } => m.zero(guest_offset, len).map(|()| None),
        }
    }

    /// Runs an undo (a restore); a memory that is gone needs nothing.
    pub(crate) fn finish(self) {
        match self.run(false) {
            Ok(_) | Err(MapError::Gone) => {}
            Err(e) => tracing::error!("detach could not restore guest storage: {e}"),
        }
    }
}

/// Is every page of `len` bytes at `guest_offset` of the memory `m` holds,
/// as `/proc/self/maps` lists it, a shared mapping of the file `inode` from
/// `file_offset`?
fn maps_to(m: &Locked, guest_offset: u32, len: u32, inode: u64, file_offset: u64) -> bool {
    let Some(start) = m.address(guest_offset) else {
        return false;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let entries: Vec<MapsEntry> = maps.lines().filter_map(MapsEntry::parse).collect();
    let page = page_size();
    (0..len as usize / page).all(|i| {
        let addr = start + i * page;
        entries.iter().any(|e| {
            e.start <= addr
                && addr < e.end
                && e.is_shared()
                && e.inode == inode
                && e.offset + (addr - e.start) as u64 == file_offset + (i * page) as u64
        })
    })
}

impl ShmHost {
    /// Carries out a placement, or queues it (with the ledger locked).
    ///
    /// A mapped placement is queued in its memory and returned: the caller
    /// releases the ledger, then runs it ([`Pending::run`]). Because the
    /// ticket is drawn here, under the ledger, the placements of one memory
    /// are carried out in the order the ledger decided them. A copy is
    /// carried out here, under the ledger (the block's host mapping must
    /// stay alive, which only the ledger guarantees; a memcpy, not a system
    /// call), in the memory's turn.
    pub(crate) fn place(
        &self,
        ledger: &Ledger<Arc<SharedPages>>,
        placement: &Placement,
    ) -> Result<Option<Pending>, MapError> {
        match *placement {
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => Ok(None),
            Placement::Mapped {
                memory,
                guest_offset,
                backing,
                file_offset,
                len,
                writable,
                ..
            } => {
                let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                // The memfd's own `Arc`: it stays open until the map is done
                // even if the block is freed meanwhile.
                // A read-only mapping comes from the descriptor opened
                // read-only: no later `mprotect` can make it writable.
                let fd = if writable {
                    pages.shared_fd()
                } else {
                    pages.read_only_fd()?
                };
                let inode = pages.inode();
                let ticket = self.0.registry.enqueue(memory)?;
                Ok(Some(Pending {
                    ticket,
                    op: PendingOp::Map {
                        guest_offset,
                        len,
                        fd,
                        inode,
                        file_offset,
                        writable,
                    },
                }))
            }
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => {
                // Carried out after the ledger is released, like a map: a
                // copy may be long (up to the guest's copy limit), and no
                // other guest may wait for it. The block's pages stay alive
                // through our `Arc`; its bytes cannot change meanwhile (the
                // attachment, recorded now, shuts every writer out), and an
                // undo of this attachment is queued after the copy in the
                // memory's turns.
                let pages = ledger.backing(backing).ok_or(MapError::Gone)?.clone();
                let ticket = self.0.registry.enqueue(memory)?;
                Ok(Some(Pending {
                    ticket,
                    op: PendingOp::CopyIn {
                        guest_offset,
                        len,
                        pages,
                        from: backing_offset,
                    },
                }))
            }
        }
    }

    /// Undoes a placement (with the ledger locked). A copied write is
    /// copied out here, and the tail of a write is zeroed here (the block's
    /// pages must not be seen by a reader before); the restore of a mapping
    /// and the zeroing of a copied placement's storage are queued in its
    /// memory and returned, to run once the ledger is released
    /// ([`Pending::finish`]). A memory that is gone needs nothing undone.
    #[must_use = "a queued restore or zeroing must be run"]
    pub(crate) fn unplace(
        &self,
        ledger: &Ledger<Arc<SharedPages>>,
        release: &Release,
    ) -> Option<Pending> {
        // The tail is block bytes, not guest memory: zeroed before any
        // reader can attach (the ledger is held), while the writer, whose
        // own detach this is, is inside its host call and cannot write.
        if let Some((backing, offset, len)) = release.zero_tail {
            if let Some(pages) = ledger.backing(backing) {
                pages.zero(offset, len as usize);
            }
        }
        let result = match release.placement {
            Placement::InPool {
                memory,
                guest_offset,
                ..
            } => {
                // A write in the pool is a window: close it (a read in the
                // pool has none).
                if release.access == Access::Write {
                    if let Some(at) = self.0.registry.host_address(memory, guest_offset) {
                        crate::os::windows::close(at);
                    }
                }
                Ok(())
            }
            Placement::Empty | Placement::Local { .. } => Ok(()),
            Placement::Mapped {
                memory,
                guest_offset,
                len,
                ..
            } => {
                return self.0.registry.enqueue(memory).ok().map(|ticket| Pending {
                    ticket,
                    op: PendingOp::Restore { guest_offset, len },
                })
            }
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => {
                // The bytes a writer committed are copied out here, under
                // the ledger, before any reader can attach (bounded by the
                // guest's copy limit); zeroing the guest's storage is
                // queued in its memory's turns and runs after the ledger is
                // released, before any later placement there.
                if release.copy_out > 0 {
                    let copied = self.0.registry.lock_memory(memory).and_then(|m| {
                        let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                        m.copy_out(guest_offset, release.copy_out, pages, backing_offset)
                    });
                    if let Err(e) = copied {
                        if !matches!(e, MapError::Gone) {
                            tracing::error!("detach could not copy the committed bytes out: {e}");
                        }
                    }
                }
                return self.0.registry.enqueue(memory).ok().map(|ticket| Pending {
                    ticket,
                    op: PendingOp::Zero { guest_offset, len },
                });
            }
        };
        match result {
            Ok(()) | Err(MapError::Gone) => {}
            Err(e) => tracing::error!("detach could not restore guest storage: {e}"),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    //! The ledger is free while a map runs, and the operations on one memory
    //! run in ledger order. A test-only hook ([`crate::os::memory::BEFORE_MAP`])
    //! holds a map "in flight" until the test lets it go: no timing involved.

    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

    use super::*;
    use crate::os::memory::BEFORE_MAP;
    use crate::os::proof::MapsEntry;
    use crate::rules::MemoryId;

    const MIB: usize = 1 << 20;

    /// A linear memory of this host (1 MiB), its id, and a context whose
    /// guest donated all of it.
    fn guest(host: &ShmHost, name: &str) -> (Box<dyn LinearMemory>, MemoryId, ShmCtx) {
        let creator = ShmMemoryCreator::new(host.0.registry.clone());
        let memory = creator
            .new_memory(MemoryType::new(16, Some(16)), MIB, Some(MIB), None, 0)
            .expect("memory");
        let (id, _) = host
            .0
            .registry
            .find(memory.as_ptr(), MIB)
            .expect("registered");
        let ctx = host.new_ctx(name);
        ctx.add_storage(memory.as_ptr(), MIB).expect("storage");
        (memory, id, ctx)
    }

    /// Holds the next map into `memory` until `go` receives; `entered`
    /// receives once that map is inside (its ledger work done).
    fn hold_next_map(memory: MemoryId) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        BEFORE_MAP.lock().unwrap().push((
            memory,
            Box::new(move || {
                entered_tx.send(()).unwrap();
                let _ = go_rx.recv();
            }),
        ));
        (entered_rx, go_tx)
    }

    #[test]
    fn attach_in_one_memory_does_not_wait_for_a_map_in_another() {
        let host = ShmHost::default();
        let (_mem_a, a, ctx_a) = guest(&host, "a");
        let (_mem_b, _, ctx_b) = guest(&host, "b");
        let block_a = ctx_a.create(4096).unwrap();
        let block_b = ctx_b.create(4096).unwrap();
        let (entered, go) = hold_next_map(a);
        std::thread::scope(|s| {
            let slow = s.spawn(|| ctx_a.attach(block_a, Access::Write));
            entered.recv().unwrap();
            // A's mmap is in flight: the ledger must be free.
            let ledger_free = host.0.ledger.try_lock().is_ok();
            if !ledger_free {
                go.send(()).unwrap();
                slow.join().unwrap().unwrap();
                panic!("the ledger is held across a map");
            }
            // B attaches (and maps) and detaches meanwhile.
            let area = ctx_b.attach(block_b, Access::Write).unwrap();
            assert_eq!(area.size, 4096);
            ctx_b.detach(block_b, 0).unwrap();
            assert_eq!(ctx_b.stats().maps, 1);
            assert_eq!(ctx_a.stats().maps, 0, "A's map is still held");
            go.send(()).unwrap();
            slow.join().unwrap().unwrap();
        });
        assert_eq!(ctx_a.stats().maps, 1);
        ctx_a.detach(block_a, 0).unwrap();
        host.check_invariants().unwrap();
    }

    #[test]
    fn a_drop_queued_behind_a_map_in_flight_runs_after_it() {
        let host = ShmHost::default();
        let (mem_a, a, ctx_a) = guest(&host, "a");
        let block = ctx_a.create(4096).unwrap();
        // Block bytes the guest must not see once the handle is dropped.
        {
            let ledger = host.ledger();
            let (_, start, pages) = ledger.backing_of(block).unwrap();
            assert!(pages.unwrap().write(start, b"secret"));
        }
        let (entered, go) = hold_next_map(a);
        let area = std::thread::scope(|s| {
            let slow = s.spawn(|| ctx_a.attach(block, Access::Write));
            entered.recv().unwrap();
            // Another thread drops the handle while its map is in flight:
            // the ledger ends the attachment and queues the restore.
            let dropper = s.spawn(|| host.drop_anywhere(block));
            let deadline = Instant::now() + Duration::from_secs(60);
            while host
                .0
                .ledger
                .try_lock()
                .map(|l| l.owner(block).is_ok())
                .ok()
                != Some(false)
            {
                if Instant::now() > deadline {
                    go.send(()).unwrap();
                    panic!("the drop never got the ledger");
                }
                std::thread::yield_now();
            }
            // Its restore waits for the map's turn.
            go.send(()).unwrap();
            let area = slow.join().unwrap().unwrap();
            dropper.join().unwrap();
            area
        });
        // The map ran first, then the restore: zero pages, not the block's.
        let at = mem_a.as_ptr() as usize + area.address as usize;
        // SAFETY: inside the accessible part of `mem_a`, which lives.
        let seen = unsafe { std::slice::from_raw_parts(at as *const u8, 6) };
        assert_eq!(seen, [0; 6]);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let entry = maps
            .lines()
            .filter_map(MapsEntry::parse)
            .find(|e| e.start <= at && at < e.end)
            .unwrap();
        assert!(!entry.is_shared(), "the block is still mapped: {entry:?}");
        assert_eq!(host.live_blocks(), 0);
        host.check_invariants().unwrap();
        // The storage is free again: the next attach maps there.
        let again = ctx_a.create(4096).unwrap();
        assert_eq!(
            ctx_a.attach(again, Access::Write).unwrap().address,
            area.address
        );
    }

    #[test]
    fn a_memory_dropped_while_a_map_is_queued_is_unmapped_after_it() {
        let host = ShmHost::default();
        let (mem_a, a, ctx_a) = guest(&host, "a");
        let block = ctx_a.create(4096).unwrap();
        let (entered, go) = hold_next_map(a);
        std::thread::scope(|s| {
            let slow = s.spawn(|| ctx_a.attach(block, Access::Write));
            entered.recv().unwrap();
            let dropper = s.spawn(move || drop(mem_a));
            // The memory is unregistered at once, unmapped only after the
            // map in flight.
            let deadline = Instant::now() + Duration::from_secs(60);
            while host.live_memories() != 0 {
                if Instant::now() > deadline {
                    go.send(()).unwrap();
                    panic!("the drop never unregistered the memory");
                }
                std::thread::yield_now();
            }
            assert!(matches!(
                host.0.registry.lock_memory(a),
                Err(MapError::Gone)
            ));
            go.send(()).unwrap();
            slow.join().unwrap().unwrap();
            dropper.join().unwrap();
        });
        // Its detach finds the memory gone: nothing to undo.
        ctx_a.detach(block, 0).unwrap();
        host.check_invariants().unwrap();
    }
}
