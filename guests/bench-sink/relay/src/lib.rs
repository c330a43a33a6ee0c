//! The guest-to-guest copy baseline of shm-host's delivery benchmark: holds
//! a payload in this component's memory and passes it as a `list<u8>` to
//! the imported `sink.consume-list`. Composed with a bench-sink
//! (`wac plug`), the canonical ABI copies the payload from this component's
//! memory into the sink's on every call.

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "zero-copy:bench/bench-relay",
        generate_all,
    });
}

use std::cell::RefCell;

use bindings::exports::zero_copy::bench::relay::Guest;
use bindings::zero_copy::bench::sink;

thread_local! {
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct Relay;

impl Guest for Relay {
    fn prepare(size: u32) {
        PAYLOAD.with(|p| *p.borrow_mut() = vec![1; size as usize]);
    }

    fn send(stride: u32) -> u64 {
        PAYLOAD.with(|p| sink::consume_list(&p.borrow(), stride))
    }
}

bindings::export!(Relay with_types_in bindings);
