//! A publisher's pool as plain logic: its blocks, which one is free, what
//! may be published, when each block was published.
//!
//! Every message is a block of its publisher's pool. The pool's own handles
//! are held by a guest of the backend's (the host's broker); a block is
//! free when no handle but the pool's own names it, that is when every
//! subscriber dropped its clone. Publishing gives up the publisher's write
//! right first: the handle published must be the block's only write right
//! besides the pool's own, and detached.

use std::time::{Duration, Instant};

use super::{PubSubConfig, PubSubError};
use crate::rights::{self, Operation};
use crate::{BackingId, HandleId, Ledger};

/// Checks a new publisher's pool against `config`: at least one block and
/// at most [`PubSubConfig::max_pool`], and blocks of at least a byte for a
/// pooled publisher (whose subscribers map them).
pub fn check_pool(
    elements: u32,
    size: u32,
    pooled: bool,
    config: &PubSubConfig,
) -> Result<(), PubSubError> {
    if elements == 0 || elements > config.max_pool || (pooled && size == 0) {
        return Err(PubSubError::InvalidArgument);
    }
    Ok(())
}

/// A publisher's pool: its blocks (the pool's own handles, with their
/// backings), where the search for a free block starts, and when each block
/// was last published.
#[derive(Debug, Default)]
pub struct Pool {
    handles: Vec<HandleId>,
    backings: Vec<BackingId>,
    /// Where the search for a free block starts: after the block lent
    /// last, so that in a steady stream the first block looked at is free.
    cursor: usize,
    /// When each block was last published (`None` once lent again).
    published: Vec<Option<Instant>>,
}

impl Pool {
    /// An empty pool for `elements` blocks.
    pub fn with_capacity(elements: usize) -> Pool {
        Pool {
            handles: Vec::with_capacity(elements),
            backings: Vec::with_capacity(elements),
            cursor: 0,
            published: Vec::with_capacity(elements),
        }
    }

    /// Adds a block: the pool's own handle of it (held by the backend's
    /// pool holder) and its backing.
    pub fn push(&mut self, handle: HandleId, backing: BackingId) {
        self.handles.push(handle);
        self.backings.push(backing);
        self.published.push(None);
    }

    /// The pool's own handles, in pool order.
    pub fn handles(&self) -> &[HandleId] {
        &self.handles
    }

    /// How many blocks the pool has.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the pool has no block.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The pool's own handle of block `index`.
    pub fn handle(&self, index: usize) -> HandleId {
        self.handles[index]
    }

    /// The index of a free block (one no handle but the pool's own names),
    /// searched from the cursor.
    pub fn free_block<B>(&self, ledger: &Ledger<B>) -> Option<usize> {
        let n = self.handles.len();
        (0..n)
            .map(|i| (self.cursor + i) % n)
            .find(|&i| ledger.handles_of_block(self.handles[i]) == Ok(1))
    }

    /// Block `index` is lent for writing: it is no longer published, and
    /// the next search starts after it.
    pub fn lent(&mut self, index: usize) {
        self.published[index] = None;
        self.cursor = (index + 1) % self.handles.len();
    }

    /// Checks that `handle` may be published: a block of this pool
    /// (`foreign-block`), detached (`still-attached`), and the block's only
    /// write right besides the pool's own (`not-sole-writer`: no writable
    /// partition or alias kept beside it). Returns the block's index.
    pub fn check_publish<B>(
        &self,
        ledger: &Ledger<B>,
        handle: HandleId,
    ) -> Result<usize, PubSubError> {
        let (backing, _, _) = ledger
            .backing_of(handle)
            .map_err(|_| PubSubError::Internal)?;
        let index = self
            .backings
            .iter()
            .position(|&b| b == backing)
            .ok_or(PubSubError::ForeignBlock)?;
        if !matches!(ledger.attached(handle), Ok(None)) {
            return Err(PubSubError::StillAttached);
        }
        // The rights table: publishing needs the write right; and it must
        // be the only one besides the pool's own handle (no writable
        // partition or alias kept beside it).
        let writable = ledger.writable(handle) == Ok(true);
        if rights::check(Operation::Publish, writable).is_err()
            || ledger.other_writers(handle) != Ok(1)
        {
            return Err(PubSubError::NotSoleWriter);
        }
        Ok(index)
    }

    /// Block `index` was published `at`.
    pub fn published(&mut self, index: usize, at: Instant) {
        self.published[index] = Some(at);
    }

    /// The published blocks, oldest first.
    pub fn published_oldest_first(&self) -> Vec<usize> {
        let mut published: Vec<(Instant, usize)> = self
            .published
            .iter()
            .enumerate()
            .filter_map(|(i, at)| at.map(|at| (at, i)))
            .collect();
        published.sort_unstable();
        published.into_iter().map(|(_, i)| i).collect()
    }

    /// Whether block `index` was published at least `stall` before `now`
    /// (and not lent again since): a subscriber that still holds or queues
    /// it keeps the publisher waiting past the stall limit.
    pub fn stale(&self, index: usize, now: Instant, stall: Duration) -> bool {
        self.published[index].is_some_and(|at| now.saturating_duration_since(at) >= stall)
    }
}
