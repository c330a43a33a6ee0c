//! A wasmtime host whose memory blocks are shared pages, mapped into the
//! linear memory of each guest that attaches them.
//!
//! One way in, as wasmtime's own extensions: implement [`ShmView`] for a
//! store's data, add both interfaces (`zero-copy:shm/exchange` and
//! `zero-copy:shm/pub-sub`) with [`add_to_linker_sync`], make each store
//! with [`new_store`] (it arms the store's watchdog), and give each store a
//! context of its own from [`ShmHost::new_ctx`].
//!
//! ```no_run
//! use shm_host::{ShmCtx, ShmCtxView, ShmHost, ShmView};
//! use wasmtime::component::{Component, Linker, ResourceTable};
//!
//! struct State { shm: ShmCtx, table: ResourceTable }
//!
//! impl ShmView for State {
//!     fn shm(&mut self) -> ShmCtxView<'_> {
//!         ShmCtxView { ctx: &mut self.shm, table: &mut self.table }
//!     }
//! }
//!
//! let host = ShmHost::default();
//! let engine = host.engine()?;
//! let mut linker = Linker::<State>::new(&engine);
//! shm_host::add_to_linker_sync(&mut linker)?;
//! let component = Component::from_file(&engine, "guest.wasm")?;
//! let state = State { shm: host.new_ctx("guest"), table: ResourceTable::new() };
//! let mut store = shm_host::new_store(&engine, state);
//! let _instance = linker.instantiate(&mut store, &component)?;
//! println!("{:?}", host.totals());
//! # Ok::<(), wasmtime::Error>(())
//! ```
//!
//! Where things live (one idea per folder):
//! - `wit/`: the interfaces in a linker ([`ShmView`], [`add_to_linker_sync`],
//!   [`MemoryBlock`]) and the generated types, private;
//! - `host/`: [`ShmHost`] (the ledger, the memory registry, guests,
//!   statistics), its [`ShmConfig`], each store's [`ShmCtx`], carrying
//!   out the placements the rules decide, and the proof that a guest page
//!   is a block's ([`ShmCtx::page_backing`], [`MapsEntry`]);
//! - [`pubsub`]: topics, pools and bounded queues over the same blocks, and
//!   host code on a topic ([`pubsub::native`]);
//! - `isolation/`: what guests cannot negotiate: [`Grants`] (who may
//!   publish or subscribe to what) and the [`Watchdog`] (CPU budgets,
//!   eviction);
//! - [`link`], [`command`], [`topology`]: running components in stores of
//!   their own, linked through the host, as the `shm-host` runner does
//!   (its command line is `src/bin/shm-host/`);
//! - `os/`: the only `unsafe` code, private: the memory creator that owns
//!   every guest's linear memory, the shared pages of blocks, the fault
//!   handler that keeps host writes into read-only attachments from
//!   crashing the process, and write windows (protection keys);
//! - [`rules`] (the `shm-rules` crate): the attach and publish/subscribe
//!   rules as plain logic (no wasm, no `unsafe`), and the errors, defined
//!   once;
//! - `bridge` (feature `zenoh`): topics exported to and imported from
//!   other processes and hosts over Zenoh;
//! - [`record`] (feature `record`, on by default): topics recorded to MCAP
//!   files and replayed from them.
//!
//! Built on wasmtime 48, re-exported as [`wasmtime`] and [`wasmtime_wasi`].
//! The runner's own dependencies are behind the default `cli` feature.

#[cfg(feature = "zenoh")]
pub mod bridge;
mod host;
mod isolation;
mod os;
pub mod pubsub;
#[cfg(feature = "record")]
pub mod record;
mod run;
mod wit;

pub use shm_rules as rules;

pub use host::{
    page_size, MapsEntry, PageBacking, ProofError, ShmConfig, ShmCtx, ShmHost, Statistics, Stats,
    StatsSnapshot, ENDED_GUESTS_KEPT, HOST_COPY_CHUNK,
};
pub use isolation::{Grants, Stopped, TopicPattern, Watchdog};
pub use os::guard::absorbed_host_writes;
pub use rules::{ExchangeError, Limits, ProcessLimits, PubSubError};
pub use run::{command, link, topology};
/// The wasmtime this crate is built on (48): use it rather than adding
/// another version.
pub use wasmtime;
/// The WASI implementation that fits [`wasmtime`].
pub use wasmtime_wasi;
pub use wit::{
    add_to_linker_async, add_to_linker_sync, new_store, MemoryBlock, ShmCtxView, ShmView,
};

/// The name of the `exchange` interface instance.
pub const EXCHANGE: &str = "zero-copy:shm/exchange@0.1.0";

/// The name of the `pub-sub` interface instance.
pub const PUB_SUB: &str = "zero-copy:shm/pub-sub@0.1.0";
