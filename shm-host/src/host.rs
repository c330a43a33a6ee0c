//! The `exchange` interface: host state, the per-store context, and the
//! functions added to a component linker.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType, WasmList};
use wasmtime::{Config, StoreContextMut};

use crate::bindings::exchange::{AttachFlags, Error, MemoryArea};
use crate::memory::{MapError, MemoryRegistry, ShmMemoryCreator};
use crate::pages::SharedPages;
use crate::proof::{self, MapsEntry};
use crate::rules::{
    Access, AttachError, BackingId, CreateError, DetachError, Dropped, GuestId, HandleError,
    HandleId, Ledger, Limits, LoanId, MemoryId, PartitionError, Placement, Release, StorageError,
};
use crate::stats::{bump, Stats, StatsSnapshot};
use crate::watchdog::Watchdog;
use crate::Grants;

/// The host type behind the WIT resource `memory-block`: one handle.
#[derive(Debug)]
pub struct MemoryBlock {
    handle: HandleId,
}

impl MemoryBlock {
    pub(crate) fn new(handle: HandleId) -> Self {
        MemoryBlock { handle }
    }

    /// The ledger handle this resource stands for.
    pub fn handle(&self) -> HandleId {
        self.handle
    }
}

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
    /// hold ([`crate::process::limits`]).
    pub process_limits: Option<crate::rules::ProcessLimits>,
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
        }
    }
}

/// What the host knows of a live guest.
struct GuestEntry {
    name: String,
    stats: Arc<Stats>,
    watchdog: Arc<Watchdog>,
}

struct Inner {
    ledger: Mutex<Ledger<SharedPages>>,
    registry: Arc<MemoryRegistry>,
    config: ShmConfig,
    totals: Stats,
    guests: Mutex<HashMap<GuestId, GuestEntry>>,
    /// The last guests that ended, for statistics after their stores are
    /// gone (bounded: [`ENDED_KEPT`]).
    ended: Mutex<std::collections::VecDeque<(GuestId, String, StatsSnapshot)>>,
    broker: crate::pubsub::Broker,
}

/// The host side of memory blocks, shared by every store of an engine.
///
/// Cheap to clone. Make the engine with [`ShmHost::engine_config`] so that
/// every linear memory comes from this host, give each store a [`ShmCtx`],
/// and add the interface with [`add_to_linker`].
#[derive(Clone)]
pub struct ShmHost(Arc<Inner>);

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
    /// [`crate::guard`]).
    pub fn new(config: ShmConfig) -> ShmHost {
        crate::guard::install();
        let page = page_size();
        let process = config.process_limits.unwrap_or_else(crate::process::limits);
        let mut ledger = Ledger::with_process_limits(page as u32, process);
        // The broker holds pool blocks and queued messages as a guest of its
        // own: its limits are the sum of what publishers were charged.
        let broker_guest = ledger.add_guest(Limits {
            max_blocks: u32::MAX,
            max_bytes: u64::MAX,
            max_handles: u32::MAX,
            max_storage_regions: 0,
            max_mappings: 0,
        });
        ShmHost(Arc::new(Inner {
            ledger: Mutex::new(ledger),
            registry: MemoryRegistry::new(page),
            config,
            totals: Stats::default(),
            guests: Mutex::new(HashMap::new()),
            ended: Mutex::new(std::collections::VecDeque::new()),
            broker: crate::pubsub::Broker::new(broker_guest, config.pubsub),
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
    }

    /// Drops a handle of any guest, undoing its attachment in that guest's
    /// memory if the memory is still alive (a host-held handle, such as a
    /// subscriber's pool mapping, whose owner's context may be gone).
    pub(crate) fn drop_anywhere(&self, handle: HandleId) {
        let mut ledger = self.ledger();
        if let Ok(dropped) = ledger.drop_handle(handle) {
            if let Some(release) = dropped.release {
                self.unplace(&ledger, &release);
            }
            drop(ledger);
            drop(dropped.freed);
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

    fn ledger(&self) -> MutexGuard<'_, Ledger<SharedPages>> {
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
        ShmCtx {
            host: self.clone(),
            guest,
            name,
            stats,
            grants: Grants::none(),
            watchdog,
        }
    }

    /// Evicts `guest` for `reason`: every handle it holds is revoked (its
    /// mappings become zero pages, the messages it held go back to their
    /// pools), its subscriptions end, and its next wasm instruction or host
    /// call traps with the reason. Returns `false` if the guest was already
    /// stopped or is gone.
    pub fn evict(&self, guest: GuestId, reason: String) -> bool {
        let (name, stats, watchdog) = {
            let guests = self.0.guests.lock().unwrap_or_else(|e| e.into_inner());
            let Some(e) = guests.get(&guest) else {
                return false;
            };
            (e.name.clone(), e.stats.clone(), e.watchdog.clone())
        };
        if !watchdog.evict(reason.clone()) {
            return false;
        }
        tracing::warn!(guest = %name, "evicted: {reason}");
        for h in self.0.broker.leave_all(guest) {
            self.drop_detached(h);
        }
        let revoked = self.ledger().revoke_guest(guest);
        self.undo_revoked(revoked, |_| Some(stats.clone()));
        true
    }

    /// Ends `loan`: everything derived from it is revoked, in whichever
    /// guest holds it.
    pub fn end_loan(&self, loan: LoanId) {
        let revoked = self.ledger().end_loan(loan);
        let guests = self.0.guests.lock().unwrap_or_else(|e| e.into_inner());
        let stats: HashMap<GuestId, Arc<Stats>> =
            guests.iter().map(|(g, e)| (*g, e.stats.clone())).collect();
        drop(guests);
        self.undo_revoked(revoked, |g| stats.get(&g).cloned());
    }

    /// Undoes the placements of revoked handles and counts them.
    fn undo_revoked(
        &self,
        revoked: Vec<(GuestId, Dropped<SharedPages>)>,
        stats_of: impl Fn(GuestId) -> Option<Arc<Stats>>,
    ) {
        let ledger = self.ledger();
        let mut freed = Vec::new();
        for (owner, dropped) in revoked {
            if let Some(release) = dropped.release {
                self.unplace(&ledger, &release);
            }
            if let Some(stats) = stats_of(owner) {
                bump(&stats, &self.0.totals, |s| &s.revoked, 1);
            }
            freed.extend(dropped.freed);
        }
        drop(ledger);
        drop(freed);
    }
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
        let gone = self
            .host
            .0
            .guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.guest);
        if let Some(e) = gone {
            let mut ended = self.host.0.ended.lock().unwrap_or_else(|e| e.into_inner());
            if ended.len() == ENDED_KEPT {
                ended.pop_front();
            }
            ended.push_back((self.guest, e.name, e.stats.snapshot()));
        }
    }
}

/// What a host function needs: the context and the store's resource table.
pub struct ShmView<'a> {
    /// The context of this store.
    pub ctx: &'a mut ShmCtx,
    /// The store's resource table, where block handles live.
    pub table: &'a mut ResourceTable,
}

impl From<CreateError> for Error {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::LimitExceeded => Error::LimitExceeded,
            CreateError::Backing | CreateError::UnknownGuest => Error::Internal,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Overlapping => Error::OverlappingStorage,
            StorageError::LimitExceeded => Error::LimitExceeded,
            StorageError::UnknownGuest => Error::Internal,
        }
    }
}

impl From<AttachError> for Error {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NoStorage => Error::NoStorage,
            AttachError::Busy => Error::Busy,
            AttachError::AlreadyAttached => Error::AlreadyAttached,
            AttachError::ReadOnly => Error::ReadOnly,
            AttachError::AmbiguousMemory => Error::AmbiguousMemory,
            AttachError::WrongMemory => Error::WrongMemory,
            AttachError::NotMapped => Error::NoStorage,
            AttachError::LimitExceeded => Error::LimitExceeded,
            AttachError::Revoked => Error::Revoked,
            AttachError::Unknown => Error::Internal,
        }
    }
}

impl From<DetachError> for Error {
    fn from(e: DetachError) -> Self {
        match e {
            DetachError::NotAttached => Error::NotAttached,
            DetachError::WrongSize => Error::WrongSize,
            DetachError::Revoked => Error::Revoked,
            DetachError::Unknown => Error::Internal,
        }
    }
}

impl From<PartitionError> for Error {
    fn from(e: PartitionError) -> Self {
        match e {
            PartitionError::WrongSize => Error::WrongSize,
            PartitionError::ReadOnly => Error::ReadOnly,
            PartitionError::LimitExceeded => Error::LimitExceeded,
            PartitionError::Revoked => Error::Revoked,
            PartitionError::Unknown => Error::Internal,
        }
    }
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::LimitExceeded => Error::LimitExceeded,
            HandleError::Revoked => Error::Revoked,
            HandleError::Unknown | HandleError::UnknownGuest => Error::Internal,
        }
    }
}

/// The largest block a guest may create: its linear memory is 4 GiB.
const MAX_BLOCK: u32 = u32::MAX - (1 << 16);

/// A block larger than [`MAX_BLOCK`] was asked for.
#[derive(Debug, thiserror::Error)]
#[error("a block may hold at most {MAX_BLOCK} bytes")]
struct TooLarge;

impl From<TooLarge> for Error {
    fn from(_: TooLarge) -> Self {
        Error::WrongSize
    }
}

/// Storage or a local block outside any memory this host created.
#[derive(Debug, thiserror::Error)]
#[error("the region is not in a linear memory created by this host")]
struct ForeignMemory;

impl From<ForeignMemory> for Error {
    fn from(_: ForeignMemory) -> Self {
        Error::ForeignMemory
    }
}

/// A placement the ledger allowed could not be carried out.
#[derive(Debug, thiserror::Error)]
#[error("the host could not map the block: {0}")]
struct PlaceFailed(MapError);

impl From<PlaceFailed> for Error {
    fn from(_: PlaceFailed) -> Self {
        Error::Internal
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

    /// This guest's watchdog (time limits, eviction). Arm the guest's
    /// store with it ([`Watchdog::arm`]): every store of an engine made with
    /// [`ShmHost::engine_config`] needs it (epoch interruption is on).
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

    fn fail<T>(&self, op: &str, e: impl Into<Error> + std::fmt::Display) -> Result<T, Error> {
        tracing::debug!(guest = %self.name, "{op} failed: {e}");
        self.bump(|s| &s.errors, 1);
        Err(e.into())
    }

    /// Creates a zeroed block of `size` bytes owned by this guest.
    pub fn create(&self, size: u32) -> Result<HandleId, Error> {
        if size > MAX_BLOCK {
            return self.fail("create", TooLarge);
        }
        let page = page_size();
        let made = self.host.ledger().create(self.guest, size, || {
            SharedPages::new(size as usize, page)
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
    fn add_storage(&self, ptr: *const u8, len: usize) -> Result<(), Error> {
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

    fn create_local(&self, ptr: *const u8, len: usize) -> Result<HandleId, Error> {
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
    pub fn attach(&self, handle: HandleId, access: Access) -> Result<MemoryArea, Error> {
        let mut ledger = self.host.ledger();
        let attached = match ledger.attach(self.guest, handle, access) {
            Ok(a) => a,
            Err(e) => {
                drop(ledger);
                return self.fail("attach", e);
            }
        };
        if let Err(e) = self.host.place(&ledger, &attached.placement) {
            ledger.abort_attach(handle);
            drop(ledger);
            tracing::error!(guest = %self.name, "attach could not map: {e}");
            return self.fail("attach", PlaceFailed(e));
        }
        if self.host.0.config.verify_sharing {
            let shared = self.host.verify_mapping(&ledger, &attached.placement);
            match shared {
                Some(true) => self.bump(|s| &s.verified, 1),
                Some(false) => {
                    tracing::error!(guest = %self.name, "an attached range is not the block's own pages");
                    self.bump(|s| &s.verify_failures, 1);
                }
                None => {}
            }
        }
        drop(ledger);
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

    /// Attaches `handle` read-only where its block already is: inside a
    /// pool mapping of this guest ([`Access::Pool`]). Nothing is mapped.
    pub fn attach_in_pool(&self, handle: HandleId) -> Result<MemoryArea, Error> {
        let attached = self.host.ledger().attach_in_pool(self.guest, handle);
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
    pub fn detach(&self, handle: HandleId, consumed: u32) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        let release = match ledger.detach(self.guest, handle, consumed) {
            Ok(r) => r,
            Err(e) => {
                drop(ledger);
                return self.fail("detach", e);
            }
        };
        self.release(&ledger, &release);
        Ok(())
    }

    fn release(&self, ledger: &Ledger<SharedPages>, release: &Release) {
        self.host.unplace(ledger, release);
        self.bump(|s| &s.detaches, 1);
        if release.copy_out > 0 {
            self.bump(|s| &s.bytes_copied, u64::from(release.copy_out));
        }
    }

    /// Drops `handle`, detaching it first if it is attached.
    pub fn drop_handle(&self, handle: HandleId) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        let dropped = match ledger.drop_handle(handle) {
            Ok(d) => d,
            Err(_) => return Err(Error::Internal),
        };
        if let Some(release) = dropped.release {
            self.release(&ledger, &release);
        }
        drop(ledger);
        drop(dropped.freed);
        Ok(())
    }

    /// Moves `handle`, which `holder` holds, to guest `to`; an attachment
    /// it had is ended in `holder`'s memory first.
    fn move_handle(&self, handle: HandleId, to: GuestId, holder: &ShmCtx) -> Result<(), Error> {
        let mut ledger = self.host.ledger();
        match ledger.transfer(handle, to) {
            Ok(Some(release)) => {
                holder.release(&ledger, &release);
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
    pub fn clone_handle(&self, handle: HandleId) -> Result<HandleId, Error> {
        let r = self.host.ledger().clone_handle(handle, self.guest);
        r.or_else(|e| self.fail("clone", e))
    }

    /// A partition of `handle`'s block.
    pub fn partition(
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
    pub fn adopt(&self, from: &ShmCtx, handle: HandleId) -> Result<(), Error> {
        self.move_handle(handle, self.guest, from)
    }

    /// A new handle here with the rights of `handle`, for good (the host
    /// handing out a block it holds).
    pub fn alias(&self, handle: HandleId) -> Result<HandleId, Error> {
        let r = self.host.ledger().alias(handle, self.guest);
        r.or_else(|e| self.fail("alias", e))
    }

    /// A new handle here with the rights of `handle` (which another store
    /// holds) for one call: what a borrowed handle becomes when a call
    /// crosses stores. End the loan with [`ShmHost::end_loan`] when the call
    /// returns.
    pub fn lend(&self, handle: HandleId) -> Result<(HandleId, LoanId), Error> {
        let r = self.host.ledger().lend(handle, self.guest);
        r.or_else(|e| self.fail("lend", e))
    }

    /// The size of `handle`'s block.
    pub fn size(&self, handle: HandleId) -> Result<u32, Error> {
        self.host.ledger().size(handle).map_err(|_| Error::Internal)
    }

    /// Storage needed for one attachment of `handle`.
    pub fn minimum_size(&self, handle: HandleId) -> Result<u32, Error> {
        self.host
            .ledger()
            .minimum_size(handle)
            .map_err(|_| Error::Internal)
    }

    /// Storage needed for `count` attachments of up to `size` bytes.
    pub fn optimum_size(&self, count: u32, size: u32) -> u32 {
        self.host.ledger().optimum_size(count, size)
    }

    /// Reads the valid bytes of `handle`'s block (a copy, for embedders and
    /// tests). Fails with `busy` while the block is attached for writing.
    pub fn read_valid(&self, handle: HandleId) -> Result<Vec<u8>, Error> {
        let ledger = self.host.ledger();
        if ledger.write_attached(handle).map_err(|_| Error::Internal)? {
            return Err(Error::Busy);
        }
        let (from, len) = ledger.valid_range(handle).map_err(|_| Error::Internal)?;
        let (_, start, pages) = ledger.backing_of(handle).map_err(|_| Error::Internal)?;
        let pages = pages.ok_or(Error::WrongMemory)?;
        let mut out = vec![0; len as usize];
        if pages.read(start + u64::from(from), &mut out) {
            Ok(out)
        } else {
            Err(Error::Internal)
        }
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
    pub fn backing_id(&self, handle: HandleId) -> Result<BackingId, Error> {
        Ok(self
            .host
            .ledger()
            .backing_of(handle)
            .map_err(|_| Error::Internal)?
            .0)
    }
}

impl ShmHost {
    /// Carries out a placement (with the ledger locked).
    fn place(&self, ledger: &Ledger<SharedPages>, placement: &Placement) -> Result<(), MapError> {
        match *placement {
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => Ok(()),
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
                self.0.registry.lock_memory(memory)?.map(
                    guest_offset,
                    len,
                    pages,
                    file_offset,
                    writable,
                )
            }
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => {
                let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                self.0.registry.lock_memory(memory)?.copy_in(
                    guest_offset,
                    len,
                    pages,
                    backing_offset,
                )
            }
        }
    }

    /// For a mapped placement: is every page of it, as `/proc/self/maps`
    /// lists it, a shared mapping of the block's memfd at the right offset?
    fn verify_mapping(&self, ledger: &Ledger<SharedPages>, placement: &Placement) -> Option<bool> {
        let Placement::Mapped {
            memory,
            guest_offset,
            backing,
            file_offset,
            len,
            ..
        } = *placement
        else {
            return None;
        };
        let pages = ledger.backing(backing)?;
        let start = self.0.registry.host_address(memory, guest_offset)?;
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let entries: Vec<MapsEntry> = maps.lines().filter_map(MapsEntry::parse).collect();
        let page = page_size();
        Some((0..len as usize / page).all(|i| {
            let addr = start + i * page;
            entries.iter().any(|e| {
                e.start <= addr
                    && addr < e.end
                    && e.is_shared()
                    && e.inode == pages.inode()
                    && e.offset + (addr - e.start) as u64 == file_offset + (i * page) as u64
            })
        }))
    }

    /// Undoes a placement (with the ledger locked). A memory that is gone
    /// needs nothing undone.
    fn unplace(&self, ledger: &Ledger<SharedPages>, release: &Release) {
        let result = match release.placement {
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => Ok(()),
            Placement::Mapped {
                memory,
                guest_offset,
                len,
                ..
            } => self
                .0
                .registry
                .lock_memory(memory)
                .and_then(|m| m.restore(guest_offset, len)),
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => self.0.registry.lock_memory(memory).and_then(|m| {
                if release.copy_out > 0 {
                    let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                    m.copy_out(guest_offset, release.copy_out, pages, backing_offset)?;
                }
                m.zero(guest_offset, len)
            }),
        };
        match result {
            Ok(()) | Err(MapError::Gone) => {}
            Err(e) => tracing::error!("detach could not restore guest storage: {e}"),
        }
        if let Some((backing, offset, len)) = release.zero_tail {
            if let Some(pages) = ledger.backing(backing) {
                pages.zero(offset, len as usize);
            }
        }
    }
}

/// Puts a new handle into `table` as a `memory-block` resource; an error
/// of the operation that made it passes through as the WIT error.
fn push_block(
    table: &mut ResourceTable,
    made: Result<HandleId, Error>,
) -> wasmtime::Result<Result<Resource<MemoryBlock>, Error>> {
    Ok(match made {
        Ok(handle) => Ok(table.push(MemoryBlock { handle })?),
        Err(e) => Err(e),
    })
}

/// Adds the `zero-copy:shm/exchange` interface to `linker`.
///
/// `get` returns the [`ShmView`] of a store's data, as wasmtime's own
/// interfaces do:
///
/// ```no_run
/// use shm_host::{ShmCtx, ShmHost, ShmView};
/// use wasmtime::component::{Linker, ResourceTable};
///
/// struct State { shm: ShmCtx, table: ResourceTable }
///
/// let host = ShmHost::default();
/// let engine = host.engine()?;
/// let mut linker = Linker::<State>::new(&engine);
/// shm_host::add_to_linker(&mut linker, |s: &mut State| ShmView { ctx: &mut s.shm, table: &mut s.table })?;
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ShmView<'_>,
) -> wasmtime::Result<()> {
    type Block = Resource<MemoryBlock>;
    let mut inst = linker.instance(crate::EXCHANGE)?;

    inst.resource(
        "memory-block",
        ResourceType::host::<MemoryBlock>(),
        move |mut store, rep| {
            let view = get(store.data_mut());
            let block = view.table.delete(Resource::<MemoryBlock>::new_own(rep))?;
            view.ctx
                .drop_handle(block.handle)
                .map_err(|e| wasmtime::format_err!("dropping a block: {e:?}"))
        },
    )?;

    inst.func_wrap(
        "[constructor]memory-block",
        move |mut store, (size,): (u32,)| {
            let view = get(store.data_mut());
            Ok((push_block(view.table, view.ctx.create(size))?,))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.clone",
        move |mut store, (this,): (Block,)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            Ok((push_block(view.table, view.ctx.clone_handle(handle))?,))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.size",
        move |mut store, (this,): (Block,)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            Ok((view.ctx.size(handle).unwrap_or(0),))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.attach",
        move |mut store, (this, flags): (Block, AttachFlags)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            let access = Access::from_flags(
                flags.contains(AttachFlags::WRITE),
                flags.contains(AttachFlags::SHARED),
            );
            Ok((view.ctx.attach(handle, access),))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.detach",
        move |mut store, (this, consumed): (Block, u32)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            Ok((view.ctx.detach(handle, consumed),))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.minimum-size",
        move |mut store, (this,): (Block,)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            Ok((view.ctx.minimum_size(handle).unwrap_or(u32::MAX),))
        },
    )?;

    inst.func_wrap(
        "[static]memory-block.optimum-size",
        move |mut store, (count, size): (u32, u32)| {
            let view = get(store.data_mut());
            Ok((view.ctx.optimum_size(count, size),))
        },
    )?;

    inst.func_wrap(
        "[static]memory-block.add-storage",
        move |mut store: StoreContextMut<'_, T>, (buffer,): (WasmList<u8>,)| {
            // The slice points straight into the caller's linear memory
            // (bounds-checked by wasmtime); only its address is kept.
            let (ptr, len) = {
                let bytes = buffer.as_le_slice(&store);
                (bytes.as_ptr(), bytes.len())
            };
            let view = get(store.data_mut());
            Ok((view.ctx.add_storage(ptr, len),))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.create-partition",
        move |mut store, (this, start, size, mode): (Block, u32, u32, AttachFlags)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            let made = view
                .ctx
                .partition(handle, start, size, mode.contains(AttachFlags::WRITE));
            Ok((push_block(view.table, made)?,))
        },
    )?;

    inst.func_wrap(
        "[static]memory-block.create-local",
        move |mut store: StoreContextMut<'_, T>, (buffer,): (WasmList<u8>,)| {
            let (ptr, len) = {
                let bytes = buffer.as_le_slice(&store);
                (bytes.as_ptr(), bytes.len())
            };
            let view = get(store.data_mut());
            Ok((push_block(view.table, view.ctx.create_local(ptr, len))?,))
        },
    )?;
    Ok(())
}
