//! The publish/subscribe rules as plain logic, driven alike by the wasm host
//! (`shm-host`) and the guest crate's native backend: the settings
//! ([`PubSubConfig`]), a publisher's pool (which block is free, what may be
//! published, which published blocks are stale: [`Pool`]), one bounded
//! queue per subscription and the topics ([`Topics`]), the wake-up of
//! publishers waiting for a free block ([`Released`]), and the errors
//! ([`PubSubError`]).
//!
//! The rules never touch memory and never call the guests: a backend asks
//! them what to do, carries it out on its ledger, and reports back. What a
//! backend does with a stalling subscriber (the host evicts it) is its own.
//!
//! Files: `config.rs`, `pool.rs`, `queue.rs` (queues and topics),
//! `fan_out.rs` (a message to every queue), `reclaim.rs` (blocks kept by
//! stalling subscribers), `released.rs`, `ring.rs` (lease rings: messages
//! offered in shared memory), `error.rs`.

mod config;
mod error;
mod fan_out;
mod pool;
mod queue;
mod reclaim;
mod released;
pub mod ring;

pub use config::{PubSubConfig, MAX_POOL};
pub use error::PubSubError;
pub use fan_out::fan_out;
pub use pool::{check_pool, Pool};
pub use queue::{
    Overflow, Pushed, Queue, RingRefused, RingWaited, SharedPool, TimedOut, Topic, Topics,
    ENDED_KEPT, MAX_HELD, RING_POLL,
};
pub use reclaim::{reclaim, Reclaimer};
pub use released::{Released, RETRY_AFTER};
