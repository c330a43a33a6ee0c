//! The `zero-copy:shm/exchange` interface in a linker: the `memory-block`
//! resource, the view host functions need, and [`add_to_linker`].

use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType, WasmList};
use wasmtime::StoreContextMut;

use crate::bindings::exchange::{AttachFlags, Error};
use crate::rules::{Access, HandleId};
use crate::ShmCtx;

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

/// What a host function needs: the context and the store's resource table.
pub struct ShmView<'a> {
    /// The context of this store.
    pub ctx: &'a mut ShmCtx,
    /// The store's resource table, where block handles live.
    pub table: &'a mut ResourceTable,
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
