//! Types generated from `wit/`, private to the crate.
//!
//! The functions are added by hand in [`super::exchange`] and
//! [`super::pub_sub`] (two of them take `list<u8>` in place, which
//! generated bindings would copy, and waiting calls are the host's own);
//! the types come from the WIT so that host and contract cannot drift
//! apart, and a test instantiates a component importing every function of
//! the WIT against [`crate::add_to_linker_sync`]'s linker.

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "zero-copy:shm/pub-sub-guest",
    });
}

pub(crate) use generated::zero_copy::shm::{exchange, pub_sub};

shm_rules::exchange_error_conversions!(exchange::Error);
shm_rules::pubsub_error_conversions!(pub_sub::PubSubError);
