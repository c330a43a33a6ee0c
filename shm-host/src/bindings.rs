//! Types generated from `wit/`.
//!
//! The functions are added by hand in [`crate::add_to_linker`] (two of them
//! take `list<u8>` in place, which generated bindings would copy); the
//! types come from the WIT so that host and contract cannot drift apart.

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "zero-copy:shm/pub-sub-guest",
    });
}

pub use generated::zero_copy::shm::{exchange, pub_sub};
