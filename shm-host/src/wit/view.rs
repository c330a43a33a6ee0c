//! The one way in: a store's data gives the host functions their view
//! ([`ShmView`], as wasmtime's `WasiView`), one call adds both interfaces to
//! a linker, and [`new_store`] makes the store they run in.

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};

use crate::ShmCtx;

/// What the host functions borrow from a store's data: its memory-block
/// context and the resource table its handles live in (shared with WASI
/// and any other interface, as wasmtime's own views do).
pub struct ShmCtxView<'a> {
    /// The store's memory-block context (one guest of the host).
    pub ctx: &'a mut ShmCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// A store's data that carries a memory-block context: implement it once
/// and [`add_to_linker_sync`] adds the `exchange` and `pub-sub` interfaces.
///
/// ```
/// use shm_host::{ShmCtx, ShmCtxView, ShmView};
/// use wasmtime::component::ResourceTable;
///
/// struct State { shm: ShmCtx, table: ResourceTable }
///
/// impl ShmView for State {
///     fn shm(&mut self) -> ShmCtxView<'_> {
///         ShmCtxView { ctx: &mut self.shm, table: &mut self.table }
///     }
/// }
/// ```
pub trait ShmView: Send {
    /// The view of this store's context and table.
    fn shm(&mut self) -> ShmCtxView<'_>;
}

impl<T: ?Sized + ShmView> ShmView for &mut T {
    fn shm(&mut self) -> ShmCtxView<'_> {
        T::shm(self)
    }
}

impl<T: ?Sized + ShmView> ShmView for Box<T> {
    fn shm(&mut self) -> ShmCtxView<'_> {
        T::shm(self)
    }
}

/// Adds both interfaces, `zero-copy:shm/exchange` and
/// `zero-copy:shm/pub-sub`, to `linker`.
///
/// Every function is a synchronous host function: a call that waits
/// (`subscriber.next`, `publisher.allocate-within`) waits on the calling
/// thread, within its bounds. A linker test checks that every function
/// of the WIT is defined here with the WIT's signature.
pub fn add_to_linker_sync<T: ShmView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    super::exchange::add_to_linker(linker, T::shm)?;
    super::pub_sub::add_to_linker(linker, T::shm)
}

/// Adds both interfaces to the linker of stores that run asynchronously
/// (`Config::async_support`, WASI's `add_to_linker_async`), where guests
/// wait on component-model streams (`subscriber.get-stream`).
///
/// The functions are those of [`add_to_linker_sync`]: the calls that wait
/// (`next`, `next-pooled`, `*-within`) hold the calling thread while they
/// do; a guest of an asynchronous store should wait with `get-stream`.
pub fn add_to_linker_async<T: ShmView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    add_to_linker_sync(linker)
}

/// A store for `data`, armed with its guest's watchdog: its wasm time is
/// counted against the guest's CPU budget, an evicted or stopped guest
/// traps, and its thread gets the rights of its write windows (protection
/// keys) only while its wasm runs.
///
/// This is the only way to make a store that runs on an engine of a
/// [`ShmHost`](crate::ShmHost): such engines interrupt every unarmed store
/// at its first instruction.
pub fn new_store<T: ShmView + 'static>(engine: &Engine, mut data: T) -> Store<T> {
    let watchdog = data.shm().ctx.watchdog().clone();
    let mut store = Store::new(engine, data);
    watchdog.arm(&mut store);
    store
}
