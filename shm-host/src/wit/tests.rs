//! Every function of the WIT is linked, with the WIT's signature: a
//! component made from the WIT alone (wit-component's dummy module, which
//! imports every function of the world) instantiates against the linker of
//! [`add_to_linker_sync`]. wasmtime type-checks each import there, so a
//! function renamed, missing or with another signature in the WIT fails
//! this test instead of a guest at run time.

use wasmtime::component::{Component, Linker, ResourceTable};
use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

use super::{add_to_linker_async, add_to_linker_sync, ShmCtxView, ShmView};
use crate::{ShmCtx, ShmHost};

struct State {
    shm: ShmCtx,
    table: ResourceTable,
}

impl ShmView for State {
    fn shm(&mut self) -> ShmCtxView<'_> {
        ShmCtxView {
            ctx: &mut self.shm,
            table: &mut self.table,
        }
    }
}

/// A component importing every function of the world `pub-sub-guest`
/// (both interfaces), compiled for `engine`, and how many functions the
/// WIT's interfaces declare.
fn whole_world(engine: &wasmtime::Engine) -> (Component, usize) {
    let mut resolve = Resolve::default();
    let wit = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");
    let (package, _) = resolve.push_dir(wit).expect("the WIT parses");
    let world = resolve
        .select_world(&[package], Some("pub-sub-guest"))
        .expect("the world exists");
    let declared = resolve.worlds[world]
        .imports
        .values()
        .map(|item| match item {
            wit_parser::WorldItem::Interface { id, .. } => resolve.interfaces[*id].functions.len(),
            _ => 0,
        })
        .sum();
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .expect("metadata embeds");
    let bytes = ComponentEncoder::default()
        .module(&module)
        .expect("the module is a core module")
        .validate(true)
        .encode()
        .expect("the component encodes");
    let component = Component::new(engine, &bytes).expect("the component compiles");
    (component, declared)
}

/// How many functions `component` imports, in all its imported instances.
fn imported_functions(engine: &wasmtime::Engine, component: &Component) -> usize {
    use wasmtime::component::types::ComponentItem;
    component
        .component_type()
        .imports(engine)
        .map(|(_, item)| match item.ty {
            ComponentItem::ComponentInstance(i) => i
                .exports(engine)
                .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                .count(),
            _ => 0,
        })
        .sum()
}

#[test]
fn every_function_of_the_wit_is_linked_with_its_signature() {
    let host = ShmHost::default();
    let engine = host.engine().unwrap();
    let (component, declared) = whole_world(&engine);
    // 10 functions in `exchange`, 25 in `pub-sub` today: all of them.
    assert!(declared >= 39, "the WIT declares {declared} functions");
    assert_eq!(imported_functions(&engine, &component), declared);
    let mut linker = Linker::<State>::new(&engine);
    add_to_linker_sync(&mut linker).unwrap();
    if let Err(e) = linker.instantiate_pre(&component) {
        panic!("the linker does not satisfy the WIT: {e:?}");
    }
    // And the linker of asynchronous stores (wasmtime 48's engines
    // support both).
    let mut linker = Linker::<State>::new(&engine);
    add_to_linker_async(&mut linker).unwrap();
    if let Err(e) = linker.instantiate_pre(&component) {
        panic!("the asynchronous linker does not satisfy the WIT: {e:?}");
    }
}

#[test]
fn a_linker_missing_an_interface_is_caught() {
    // The check above can fail: without `pub-sub`, the same component does
    // not link.
    let host = ShmHost::default();
    let engine = host.engine().unwrap();
    let (component, _) = whole_world(&engine);
    let mut linker = Linker::<State>::new(&engine);
    super::exchange::add_to_linker(&mut linker, State::shm).unwrap();
    let error = linker
        .instantiate_pre(&component)
        .err()
        .expect("must not link");
    assert!(format!("{error:?}").contains("pub-sub"), "{error:?}");
}
