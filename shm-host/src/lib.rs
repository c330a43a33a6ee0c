//! A wasmtime host whose memory blocks are shared pages, mapped into the
//! linear memory of each guest that attaches them.
//!
//! - [`rules`]: the attach rules as plain logic (no wasm, no `unsafe`);
//! - [`memory`], [`pages`], [`guard`], [`windows`] and `pkeys`: the only
//!   `unsafe` code: the memory creator that owns every guest's linear
//!   memory, the shared pages of blocks, the fault handler that keeps host
//!   writes into read-only attachments from crashing the process, and a
//!   pooled publisher's write windows (protection keys);
//! - [`ShmHost`], [`ShmCtx`], [`add_to_linker`]: the `exchange` interface,
//!   in the style of wasmtime's own host extensions;
//! - [`pubsub`]: topics, pools and bounded queues over the same blocks;
//!   [`native`]: host code publishing to or reading a topic;
//! - [`grants`] and [`watchdog`]: isolation the guests cannot negotiate:
//!   who may publish or subscribe to what, CPU budgets and eviction;
//! - [`link`]: runs components in stores of their own and links one's
//!   imports to another's exports through the host, moving or lending
//!   block handles;
//! - [`command`] and [`topology`]: running a command component, and a
//!   publish/subscribe topology of them, as the `shm-host` runner does;
//! - [`proof`]: reads `/proc/self/maps` to show a guest page is a block's;
//! - `bridge` (feature `zenoh`): topics exported to and imported from other
//!   processes and hosts over Zenoh.
//!
//! Built on wasmtime 48, re-exported as [`wasmtime`] and [`wasmtime_wasi`].
//! The runner's own dependencies are behind the default `cli` feature.
//!
//! ```no_run
//! use shm_host::{ShmCtx, ShmHost, ShmView};
//! use wasmtime::component::{Component, Linker, ResourceTable};
//! use wasmtime::{Engine, Store};
//!
//! struct State { shm: ShmCtx, table: ResourceTable }
//!
//! let host = ShmHost::default();
//! let engine = host.engine()?;
//! let mut linker = Linker::<State>::new(&engine);
//! shm_host::add_to_linker(&mut linker, |s: &mut State| ShmView { ctx: &mut s.shm, table: &mut s.table })?;
//! let component = Component::from_file(&engine, "guest.wasm")?;
//! let ctx = host.new_ctx("guest");
//! let watchdog = ctx.watchdog().clone();
//! let mut store = Store::new(&engine, State { shm: ctx, table: ResourceTable::new() });
//! watchdog.arm(&mut store);
//! let _instance = linker.instantiate(&mut store, &component)?;
//! println!("{:?}", host.totals());
//! # Ok::<(), wasmtime::Error>(())
//! ```

pub mod bindings;
#[cfg(feature = "zenoh")]
pub mod bridge;
pub mod command;
mod ctx;
mod errors;
mod exchange;
pub mod grants;
mod host;
pub mod link;
pub mod native;
mod os;
pub mod pubsub;
mod released;
mod stats;
pub mod topology;
pub mod watchdog;
pub use shm_rules as rules;

pub use ctx::{PageBacking, ProofError, ShmCtx, HOST_COPY_CHUNK};
pub use exchange::{add_to_linker, MemoryBlock, ShmView};
pub use grants::Grants;
pub use host::{page_size, ShmConfig, ShmHost, ENDED_KEPT};
pub use os::guard::absorbed_host_writes;
pub use rules::{Limits, ProcessLimits};
pub use stats::{Statistics, Stats, StatsSnapshot};
/// The wasmtime this crate is built on (48): use it rather than adding
/// another version.
pub use wasmtime;
/// The WASI implementation that fits [`wasmtime`].
pub use wasmtime_wasi;
pub use watchdog::{Stopped, Watchdog};

/// The name of the `exchange` interface instance.
pub const EXCHANGE: &str = "zero-copy:shm/exchange@0.1.0";

/// The name of the `pub-sub` interface instance.
pub const PUB_SUB: &str = "zero-copy:shm/pub-sub@0.1.0";
