//! Components in stores of their own, linked through the host.
//!
//! Each component instance gets its own [`Store`], so each has exactly one
//! linear memory and the host always knows which memory an `attach` is for.
//! A component that exports interfaces (a *provider*) can serve the imports
//! of components instantiated after it: [`link_exports`] defines, for every
//! function the provider exports, a host function that forwards the call
//! into the provider's store. Values are carried over as they are; a
//! `memory-block` handle is moved (an `own`) or lent for the duration of
//! the call (a `borrow`) in the ledger, so its bytes never move. When the
//! call returns the loan ends: whatever the provider derived from a lent
//! handle (clones, partitions, attachments), and kept, is revoked.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    Component, Func, Instance, Linker, Resource, ResourceAny, ResourceTable, ResourceType, Val,
};
use wasmtime::{AsContextMut, Engine, Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::rules::LoanId;
use crate::{Grants, MemoryBlock, ShmCtx, ShmCtxView, ShmHost, ShmView};

/// The data of every store made here: WASI, memory blocks, and the table
/// their resources share.
pub struct GuestState {
    /// WASI p2 context.
    pub wasi: WasiCtx,
    /// Memory-block context.
    pub shm: ShmCtx,
    /// Resources of both.
    pub table: ResourceTable,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl GuestState {
    /// A state for the guest `name`, with WASI as `wasi` builds it and the
    /// topic authority `grants`.
    pub fn new(host: &ShmHost, name: &str, mut wasi: WasiCtxBuilder, grants: Grants) -> GuestState {
        GuestState {
            wasi: wasi.build(),
            shm: host.new_ctx(name).with_grants(grants),
            table: ResourceTable::new(),
        }
    }
}

impl ShmView for GuestState {
    fn shm(&mut self) -> ShmCtxView<'_> {
        ShmCtxView {
            ctx: &mut self.shm,
            table: &mut self.table,
        }
    }
}

/// A linker with WASI p2 (synchronous) and the `exchange` and `pub-sub`
/// interfaces.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::add_to_linker_sync(&mut linker)?;
    Ok(linker)
}

/// A linker with WASI p2 (asynchronous, for stores whose guests wait on
/// component-model streams and futures) and the `exchange` and `pub-sub`
/// interfaces.
pub fn linker_async(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// Why a file could not be loaded as a component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is a core module.
    #[error("{path} is a core wasm module, not a component: build it for wasm32-wasip2, or wrap it with `wasm-tools component new`")]
    CoreModule {
        /// The file.
        path: String,
    },
    /// The file is not wasm at all.
    #[error("{path} is not a wasm component (it does not start with the wasm magic number)")]
    NotWasm {
        /// The file.
        path: String,
    },
    /// wasmtime rejected it.
    #[error("{path} is not a valid component: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        source: wasmtime::Error,
    },
}

/// Loads and compiles the component at `path`, with clear errors for a
/// missing file, a core module, or something else.
pub fn load_component(engine: &Engine, path: &Path) -> Result<Component, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { path: shown });
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule { path: shown });
    }
    Component::new(engine, &bytes).map_err(|source| LoadError::Invalid {
        path: shown,
        source,
    })
}

/// A component instance in a store of its own whose exports others import.
pub struct Provider {
    name: String,
    store: Mutex<Store<GuestState>>,
    instance: Instance,
}

impl Provider {
    /// Instantiates `component` as `name` in `store` with `linker`.
    pub fn new(
        name: &str,
        mut store: Store<GuestState>,
        linker: &Linker<GuestState>,
        component: &Component,
    ) -> wasmtime::Result<Arc<Provider>> {
        let instance = linker.instantiate(&mut store, component)?;
        Ok(Arc::new(Provider {
            name: name.to_string(),
            store: Mutex::new(store),
            instance,
        }))
    }

    /// The provider's store (locked).
    pub fn store(&self) -> MutexGuard<'_, Store<GuestState>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider's instance.
    pub fn instance(&self) -> Instance {
        self.instance
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Defines in `linker`, for every function `component` (instantiated as
/// `provider`) exports, a host function that forwards to it. Returns the
/// names of the interfaces linked.
pub fn link_exports(
    linker: &mut Linker<GuestState>,
    engine: &Engine,
    component: &Component,
    provider: &Arc<Provider>,
) -> wasmtime::Result<Vec<String>> {
    let mut linked = Vec::new();
    let ty = component.component_type();
    for (name, export) in ty.exports(engine) {
        let ComponentItem::ComponentInstance(instance_ty) = export.ty else {
            continue;
        };
        if name.starts_with("wasi:") {
            continue;
        }
        let mut funcs = Vec::new();
        {
            let mut store = provider.store();
            let inst_idx = provider
                .instance
                .get_export_index(&mut *store, None, name)
                .ok_or_else(|| wasmtime::format_err!("{} exports no `{name}`", provider.name))?;
            for (fname, item) in instance_ty.exports(engine) {
                if let ComponentItem::ComponentFunc(_) = item.ty {
                    let idx = provider
                        .instance
                        .get_export_index(&mut *store, Some(&inst_idx), fname)
                        .ok_or_else(|| {
                            wasmtime::format_err!("{} exports no `{name}#{fname}`", provider.name)
                        })?;
                    let func = provider
                        .instance
                        .get_func(&mut *store, idx)
                        .ok_or_else(|| {
                            wasmtime::format_err!("`{name}#{fname}` is not a function")
                        })?;
                    funcs.push((fname.to_string(), func));
                }
            }
        }
        let mut inst = linker.instance(name)?;
        for (fname, func) in funcs {
            let provider = provider.clone();
            inst.func_new(&fname, move |caller, _ty, params, results| {
                forward(caller, &provider, func, params, results)
            })?;
        }
        linked.push(name.to_string());
    }
    Ok(linked)
}

/// Calls `func` in `provider`'s store with `params` carried over from
/// `caller`, and carries the results back.
fn forward(
    mut caller: StoreContextMut<'_, GuestState>,
    provider: &Provider,
    func: Func,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let mut callee = provider.store();
    let mut loans = Vec::new();
    let args = params
        .iter()
        .map(|v| {
            carry(
                v,
                caller.as_context_mut(),
                callee.as_context_mut(),
                &mut loans,
            )
        })
        .collect::<wasmtime::Result<Vec<_>>>();
    let args = match args {
        Ok(args) => args,
        Err(e) => {
            end_loans(&mut *callee, loans)?;
            return Err(e);
        }
    };
    let mut out = vec![Val::Bool(false); results.len()];
    let called = func.call(&mut *callee, &args, &mut out);
    // Borrowed handles end with the call, whatever its outcome, and so does
    // everything the callee derived from them.
    end_loans(&mut *callee, loans)?;
    called.map_err(|e| e.context(format!("in linked component `{}`", provider.name)))?;
    let mut no_loans = Vec::new();
    for (slot, v) in results.iter_mut().zip(&out) {
        *slot = carry(
            v,
            callee.as_context_mut(),
            caller.as_context_mut(),
            &mut no_loans,
        )?;
    }
    if !no_loans.is_empty() {
        end_loans(&mut caller, no_loans)?;
        wasmtime::bail!("a linked function cannot return a borrowed handle");
    }
    Ok(())
}

/// Ends the loans of a call: revokes everything derived from each lent
/// handle (in any store), then takes the alias itself back from `store`.
fn end_loans(
    mut store: impl AsContextMut<Data = GuestState>,
    loans: Vec<(ResourceAny, LoanId)>,
) -> wasmtime::Result<()> {
    let mut store = store.as_context_mut();
    for (alias, loan) in loans {
        let host = store.data().shm.host().clone();
        host.end_loan(loan);
        let alias: Resource<MemoryBlock> = alias.try_into_resource(&mut store)?;
        let block = store.data_mut().table.delete(alias)?;
        store
            .data()
            .shm
            .drop_handle(block.handle())
            .map_err(|e| wasmtime::format_err!("ending a borrowed block: {e:?}"))?;
    }
    Ok(())
}

/// Carries `v` from store `from` to store `to`.
fn carry(
    v: &Val,
    mut from: StoreContextMut<'_, GuestState>,
    mut to: StoreContextMut<'_, GuestState>,
    loans: &mut Vec<(ResourceAny, LoanId)>,
) -> wasmtime::Result<Val> {
    let mut each = |vals: &[Val]| -> wasmtime::Result<Vec<Val>> {
        vals.iter()
            .map(|x| carry(x, from.as_context_mut(), to.as_context_mut(), loans))
            .collect()
    };
    Ok(match v {
        Val::List(xs) => Val::List(each(xs)?),
        Val::FixedLengthList(xs) => Val::FixedLengthList(each(xs)?),
        Val::Tuple(xs) => Val::Tuple(each(xs)?),
        Val::Record(fields) => {
            let (names, vals): (Vec<String>, Vec<Val>) = fields.iter().cloned().unzip();
            Val::Record(names.into_iter().zip(each(&vals)?).collect())
        }
        Val::Map(pairs) => {
            let flat: Vec<Val> = pairs
                .iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect();
            let carried = each(&flat)?;
            Val::Map(
                carried
                    .chunks(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect(),
            )
        }
        Val::Variant(case, payload) => {
            Val::Variant(case.clone(), carry_opt(payload, from, to, loans)?)
        }
        Val::Option(x) => Val::Option(carry_opt(x, from, to, loans)?),
        Val::Result(Ok(x)) => Val::Result(Ok(carry_opt(x, from, to, loans)?)),
        Val::Result(Err(x)) => Val::Result(Err(carry_opt(x, from, to, loans)?)),
        Val::Resource(any) => Val::Resource(carry_block(*any, from, to, loans)?),
        Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            wasmtime::bail!(
                "futures, streams and error contexts cannot cross between linked components"
            )
        }
        other => other.clone(),
    })
}

fn carry_opt(
    v: &Option<Box<Val>>,
    from: StoreContextMut<'_, GuestState>,
    to: StoreContextMut<'_, GuestState>,
    loans: &mut Vec<(ResourceAny, LoanId)>,
) -> wasmtime::Result<Option<Box<Val>>> {
    v.as_deref()
        .map(|x| carry(x, from, to, loans).map(Box::new))
        .transpose()
}

/// Moves the owned `memory-block` handle `block` from store `from` to
/// store `to`, as passing it between linked components does: the ledger
/// hands the block to `to`'s guest (ending an attachment it had in `from`'s
/// memory), and the bytes stay where they are.
pub fn move_block(
    block: ResourceAny,
    from: StoreContextMut<'_, GuestState>,
    to: StoreContextMut<'_, GuestState>,
) -> wasmtime::Result<ResourceAny> {
    if !block.owned() {
        wasmtime::bail!("only an owned handle can be moved");
    }
    carry_block(block, from, to, &mut Vec::new())
}

/// Moves (own) or aliases (borrow) a `memory-block` handle into `to`.
fn carry_block(
    any: ResourceAny,
    mut from: StoreContextMut<'_, GuestState>,
    mut to: StoreContextMut<'_, GuestState>,
    loans: &mut Vec<(ResourceAny, LoanId)>,
) -> wasmtime::Result<ResourceAny> {
    if any.ty() != ResourceType::host::<MemoryBlock>() {
        wasmtime::bail!("only memory-block resources can cross between linked components");
    }
    let owned = any.owned();
    let res: Resource<MemoryBlock> = any.try_into_resource(&mut from)?;
    let shm_err = |e| wasmtime::format_err!("carrying a block: {e:?}");
    let (handle, loan) = if owned {
        let block = from.data_mut().table.delete(res)?;
        to.data()
            .shm
            .adopt(&from.data().shm, block.handle())
            .map_err(shm_err)?;
        (block.handle(), None)
    } else {
        let handle = from.data().table.get(&res)?.handle();
        let (alias, loan) = to.data().shm.lend(handle).map_err(shm_err)?;
        (alias, Some(loan))
    };
    let new = to.data_mut().table.push(MemoryBlock::new(handle))?;
    // An owned handle is lowered into a `borrow` parameter as a loan, so
    // an alias is passed as owned and taken back after the call.
    let any = new.try_into_resource_any(&mut to)?;
    if let Some(loan) = loan {
        loans.push((any, loan));
    }
    Ok(any)
}
