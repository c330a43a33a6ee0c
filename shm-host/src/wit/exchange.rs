//! The `zero-copy:shm/exchange` interface in a linker: the `memory-block`
//! resource and its functions, each a call into [`crate::ShmCtx`] whose
//! error ([`crate::ExchangeError`]) becomes the WIT `error` here.

use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType, WasmList};
use wasmtime::StoreContextMut;

use super::bindings::exchange::{AttachFlags, Error};
use super::ShmCtxView;
use crate::rules::{Access, ExchangeError, HandleId};

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

/// Puts a new handle into `table` as a `memory-block` resource; an error
/// of the operation that made it passes through as the WIT error.
fn push_block(
    table: &mut ResourceTable,
    made: Result<HandleId, ExchangeError>,
) -> wasmtime::Result<Result<Resource<MemoryBlock>, Error>> {
    Ok(match made {
        Ok(handle) => Ok(table.push(MemoryBlock { handle })?),
        Err(e) => Err(e.into()),
    })
}

/// Adds the `zero-copy:shm/exchange` interface to `linker`, each host
/// function taking its view with `get` ([`super::add_to_linker_sync`]
/// passes [`super::ShmView::shm`]).
pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ShmCtxView<'_>,
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
            Ok((view.ctx.attach(handle, access).map_err(Error::from),))
        },
    )?;

    inst.func_wrap(
        "[method]memory-block.detach",
        move |mut store, (this, consumed): (Block, u32)| {
            let view = get(store.data_mut());
            let handle = view.table.get(&this)?.handle;
            Ok((view.ctx.detach(handle, consumed).map_err(Error::from),))
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
            Ok((view.ctx.add_storage(ptr, len).map_err(Error::from),))
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
