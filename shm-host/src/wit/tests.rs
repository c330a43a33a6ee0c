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
/// (both interfaces), compiled for `engine`.
fn whole_world(engine: &wasmtime::Engine) -> Component {
    let mut resolve = Resolve::default();
    let wit = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");
    let (package, _) = resolve.push_dir(wit).expect("the WIT parses");
    let world = resolve
        .select_world(&[package], Some("pub-sub-guest"))
        .expect("the world exists");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .expect("metadata embeds");
    let bytes = ComponentEncoder::default()
        .module(&module)
        .expect("the module is a core module")
        .validate(true)
        .encode()
        .expect("the component encodes");
    Component::new(engine, &bytes).expect("the component compiles")
}

#[test]
fn every_function_of_the_wit_is_linked_with_its_signature() {
    let host = ShmHost::default();
    let engine = host.engine().unwrap();
    let component = whole_world(&engine);
    let imported: usize = component
        .component_type()
        .imports(&engine)
        .map(|(_, item)| match item.ty {
            wasmtime::component::types::ComponentItem::ComponentInstance(i) => {
                i.exports(&engine).count()
            }
            _ => 0,
        })
        .sum();
    // 11 functions and a resource in `exchange`, 25 functions and two
    // resources in `pub-sub` (and the types they use): the whole WIT.
    assert!(imported >= 36, "only {imported} items imported");
    for add in [add_to_linker_sync::<State>, add_to_linker_async::<State>] {
        let mut linker = Linker::<State>::new(&engine);
        add(&mut linker).unwrap();
        if let Err(e) = linker.instantiate_pre(&component) {
            panic!("the linker does not satisfy the WIT: {e:?}");
        }
    }
}

#[test]
fn a_linker_missing_an_interface_is_caught() {
    // The check above can fail: without `pub-sub`, the same component does
    // not link.
    let host = ShmHost::default();
    let engine = host.engine().unwrap();
    let component = whole_world(&engine);
    let mut linker = Linker::<State>::new(&engine);
    super::exchange::add_to_linker(&mut linker, State::shm).unwrap();
    let error = linker
        .instantiate_pre(&component)
        .err()
        .expect("must not link");
    assert!(format!("{error:?}").contains("pub-sub"), "{error:?}");
}
