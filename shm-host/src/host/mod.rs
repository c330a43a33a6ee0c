//! The host side of memory blocks: [`ShmHost`], shared by every store of
//! an engine (the ledger, the memory registry, the broker, statistics and
//! guests), and carrying out the placements the rules decide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::Config;

use crate::isolation::Watchdog;
use crate::os::memory::{MemoryRegistry, ShmMemoryCreator};
use crate::os::pages::SharedPages;
use crate::rules::{
    Dropped, GuestId, HandleError, HandleId, Ledger, Limits, LoanId, Placement, Release,
};

mod config;
mod ctx;
mod errors;
mod place;
pub(crate) mod proof;
mod stats;
#[cfg(test)]
mod tests;

pub use config::ShmConfig;
pub(crate) use ctx::WindowToOpen;
pub use ctx::{PageBacking, ProofError, ShmCtx, HOST_COPY_CHUNK};
pub(crate) use errors::{ForeignMemory, PlaceFailed, TooLarge, MAX_BLOCK};
pub use proof::MapsEntry;
pub(crate) use stats::bump;
pub use stats::{Statistics, Stats, StatsSnapshot};

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
    /// gone (bounded: [`ENDED_GUESTS_KEPT`]).
    pub(crate) ended: Mutex<std::collections::VecDeque<(GuestId, String, StatsSnapshot)>>,
    pub(crate) broker: crate::pubsub::Broker,
    /// Wakes host code waiting for a block to come free.
    pub(crate) released: shm_rules::pubsub::Released,
}

/// The host side of memory blocks, shared by every store of an engine.
///
/// Cheap to clone. Make the engine with [`ShmHost::engine_config`] so that
/// every linear memory comes from this host, give each store a [`ShmCtx`],
/// add the interfaces with [`add_to_linker_sync`](crate::add_to_linker_sync)
/// and make each store with [`new_store`](crate::new_store).
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
pub const ENDED_GUESTS_KEPT: usize = 256;

/// The host's page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

impl ShmHost {
    /// A host with `config`.
    ///
    /// Create the host before the process's first wasmtime `Engine`: it
    /// installs a fault handler that must come before wasmtime's (it keeps
    /// host writes into read-only attachments from crashing the process).
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
    /// unless made with [`crate::new_store`] (which arms it), and the
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
        crate::isolation::start_ticker(
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
    /// live ones and the last [`ENDED_GUESTS_KEPT`] that ended.
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
    pub(crate) fn released(&self) -> &shm_rules::pubsub::Released {
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

    /// The guests that keep `handle`'s block in use.
    pub(crate) fn holders(&self, handle: HandleId) -> Vec<GuestId> {
        self.ledger().holders(handle).unwrap_or_default()
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

    /// Checks the attach rules' invariants: for the project's own tests and
    /// fuzzers (feature `test-support`), not part of the API.
    #[cfg(any(test, feature = "test-support"))]
    #[doc(hidden)]
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

    /// Evicts every live guest whose name `which` accepts, for `reason`
    /// (see [`ShmHost::evict`]); returns how many it evicted. A runner
    /// stopping on a signal evicts its publishers this way: their topics
    /// close and the subscribers drain their queues and end.
    pub fn evict_where(&self, which: impl Fn(&str) -> bool, reason: &str) -> usize {
        let chosen: Vec<GuestId> = self
            .0
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, e)| which(&e.name))
            .map(|(&g, _)| g)
            .collect();
        chosen
            .into_iter()
            .filter(|&g| self.evict(g, reason.to_string()))
            .count()
    }

    /// Ends `loan`: everything derived from it is revoked, in whichever
    /// guest holds it.
    pub(crate) fn end_loan(&self, loan: LoanId) {
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
        // (Closing a protection window, `InPool`, draws a turn too.)
        let mapped = |r: &Release| {
            matches!(
                r.placement,
                Placement::Mapped { .. } | Placement::InPool { .. }
            )
        };
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
