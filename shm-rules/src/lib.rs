//! The attach rules of zero-copy memory blocks as plain logic: no wasm, no
//! system calls, no `unsafe`.
//!
//! A [`Ledger`] records blocks, handles, attachments and the storage each
//! guest donated, and decides what an operation must do. It never touches
//! memory itself: [`Ledger::attach`] returns a [`Placement`] that says where
//! the bytes go (map, copy or local), and [`Ledger::detach`] returns a
//! [`Release`] that says what to undo. The host's mapping layer carries those
//! out; a fuzzer or an in-process backend can drive the same logic directly.
//!
//! Vocabulary:
//! - a *backing* is the bytes of a block (shared pages in the host, anything
//!   in other drivers: the ledger is generic over it);
//! - a *content* is a byte range of a backing with its own valid length:
//!   a block and its clones share one content, a partition has its own;
//! - a *handle* is what a guest holds (one per resource handle); it names a
//!   content, may be read-only, and holds at most one attachment;
//! - a *guest* is one component instance's memory owner: it donates storage,
//!   owns handles and is charged for the blocks it created;
//! - a *loan* is what a `borrow<memory-block>` becomes when it crosses to
//!   another guest: an alias valid for the call, and everything derived from
//!   it (clones, partitions, attachments, wherever they were moved) is
//!   *revoked* when the loan ends.
//!
//! Rights only ever attenuate (the whole model is one table,
//! [`rights::RULES`], which every check of the ledger asks):
//! - a handle is writable or read-only; a clone is read-only, a partition is
//!   at most as writable as its source (asking for more is refused), an
//!   alias (a loan) has its source's rights, and every handle derived from a
//!   loan belongs to that loan;
//! - a read-only handle can never change a block's contents, its valid bytes
//!   or its consumed offset: it cannot attach for writing (in a pool mapping
//!   or not), it cannot attach exclusively (an exclusive read excludes other
//!   readers and its `detach` consumes for every handle), it cannot make a
//!   writable partition, and the host does not write through it: each fails
//!   with `ReadOnly`. (One consequence is not an escalation: a pool mapping
//!   is usually held through a read-only clone, and ending it abandons the
//!   same guest's write in it, [`Ledger::write_in_pool`], which that guest
//!   made with its own write right.)
//! - [`Ledger::other_writers`] tells a driver whether a handle is the only
//!   writable one of its block (publish/subscribe requires it);
//! - a write attachment that ends without a `detach` (the handle dropped,
//!   moved or revoked) commits nothing: every content of the block that
//!   overlaps it is left with no valid bytes, whether the attachment was
//!   mapped or copied, so uncommitted bytes never become visible.
//!
//! Where things are: `ids.rs` (the identifiers), `limits.rs` (per guest and
//! per process), `access.rs` (an attachment's access, placement and
//! release), `error.rs` (why each operation is refused; `exchange_error.rs`
//! what that becomes in the WIT `error`), [`rights`] (the rights table),
//! `ledger/` (the [`Ledger`]: its records in `state.rs`, one file per group
//! of operations), and beside them [`pubsub`] (the publish/subscribe rules:
//! settings, pools, queues and topics, wake-ups, their errors),
//! [`guest_text`] and [`log_budget`].

mod access;
mod error;
mod exchange_error;
pub mod guest_text;
mod id_hash;
mod ids;
mod ledger;
mod limits;
pub mod log_budget;
pub mod pubsub;
pub mod rights;

pub use access::{Access, Attached, Dropped, Placement, Release};
pub use error::{
    AttachError, CreateError, DetachError, HandleError, HostWriteError, PartitionError,
    StorageError, UnknownHandle,
};
pub use exchange_error::ExchangeError;
pub use id_hash::{IdHasher, IdMap};
pub(crate) use ids::ContentId;
pub use ids::{BackingId, GuestId, HandleId, LoanId, MemoryId};
pub use ledger::Ledger;
pub use limits::{Limits, ProcessLimits};
pub use pubsub::PubSubError;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Rounds `n` up to a multiple of `page`.
pub fn round_up(n: u64, page: u64) -> u64 {
    n.div_ceil(page) * page
}

#[cfg(test)]
mod tests;
