//! The WIT interfaces in a linker: the view host functions take from a
//! store ([`ShmView`]), `exchange`'s `memory-block` and `pub-sub`'s
//! resources, and the conversions of their errors at the boundary
//! ([`bindings`]).

mod bindings;
mod exchange;
mod pub_sub;
mod view;

pub(crate) use bindings::exchange::MemoryArea;
pub(crate) use bindings::pub_sub::{PooledLoan, PooledMessage, RingArea, RingWait};
pub use exchange::MemoryBlock;
pub use view::{add_to_linker_async, add_to_linker_sync, new_store, ShmCtxView, ShmView};

#[cfg(test)]
mod tests;
