//! A ring as a stage of a subscription's queue: the host's side of one
//! lease ring, over its own mapping of the two regions.
//!
//! A subscription with a ring ([`Queue::attach_ring`]) keeps its queue as
//! the backlog: a published message is queued as always (under the queue's
//! bound and policy) and moved into the ring at once while the ring has
//! room ([`RingStage::offer`]), so the subscriber sees it without a host
//! call. What the ring holds for each offered message is the queued handle
//! itself (a read-only clone of the pool block, held by the backend's pool
//! holder): the block cannot go back to the publisher until the subscriber
//! returned the message and the backend reconciled the ring
//! ([`RingStage::reconcile`]).
//!
//! [`Queue::attach_ring`]: crate::pubsub::Queue::attach_ring

use super::{
    returned_slot, write_offered, RingLeases, RingMemory, OFFERED_CAPACITY, OFFERED_CLOSED,
    OFFERED_CONSUMED, RETURNED_COUNT,
};
use crate::HandleId;

/// Where a ring learns which pool block a queued handle names and how many
/// of its bytes are the message: `None` for a handle of another pool (the
/// topic's publisher was replaced), which the ring cannot offer.
pub type Describe = Box<dyn Fn(HandleId) -> Option<(u32, u32)> + Send>;

/// One region of a ring as the backend maps it.
pub type Region = Box<dyn RingMemory + Send>;

/// What [`RingStage::offer`] did with a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Offered: the ring holds it until the subscriber returns it.
    Offered,
    /// The ring is full: the caller keeps the handle (queued).
    Full(HandleId),
    /// Not a block of the ring's pool: the caller drops the handle (the
    /// message is lost to this subscriber, counted as dropped).
    Foreign(HandleId),
}

/// The host's side of one ring: its bookkeeping ([`RingLeases`]) and its
/// mapping of the offered (written) and returned (read, hostile) regions.
pub struct RingStage {
    leases: RingLeases<HandleId>,
    offered: Region,
    returned: Region,
    describe: Describe,
    /// Returned values refused so far (see [`RingLeases::reconcile`]).
    refused: u64,
    closed: bool,
}

impl std::fmt::Debug for RingStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingStage")
            .field("leases", &self.leases)
            .field("refused", &self.refused)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl RingStage {
    /// A ring of `capacity` entries over `offered` and `returned` (zeroed
    /// regions of at least [`super::offered_bytes`] and
    /// [`super::returned_bytes`] of the capacity): writes the capacity into
    /// the offered region's header.
    pub fn new(capacity: u32, offered: Region, returned: Region, describe: Describe) -> RingStage {
        let leases = RingLeases::new(capacity);
        offered.store_u64(OFFERED_CAPACITY, leases.capacity().into());
        RingStage {
            leases,
            offered,
            returned,
            describe,
            refused: 0,
            closed: false,
        }
    }

    /// Whether a message can be offered now.
    pub fn has_room(&self) -> bool {
        !self.closed && self.leases.has_room()
    }

    /// Offers `handle`'s message: writes its entry and the published count.
    pub fn offer(&mut self, handle: HandleId) -> Offered {
        if !self.has_room() {
            return Offered::Full(handle);
        }
        let Some((block, len)) = (self.describe)(handle) else {
            return Offered::Foreign(handle);
        };
        match self.leases.offer(block, len, handle) {
            Ok(entry) => {
                write_offered(&*self.offered, self.leases.capacity(), entry);
                Offered::Offered
            }
            Err((_, handle)) => Offered::Full(handle),
        }
    }

    /// Reads what the subscriber returned since the last time (each value
    /// once, hostile values refused and counted) and tells it how far the
    /// host read. Returns the handles of the messages released, for the
    /// caller to drop.
    pub fn reconcile(&mut self) -> Vec<HandleId> {
        let count = self.returned.load_u64(RETURNED_COUNT);
        if count == self.leases.consumed() {
            return Vec::new();
        }
        let capacity = self.leases.capacity();
        let returned = &self.returned;
        let r = self
            .leases
            .reconcile(count, |k| returned.load_u64(returned_slot(k, capacity)));
        self.offered
            .store_u64(OFFERED_CONSUMED, self.leases.consumed());
        self.refused += r.refused;
        r.released.into_iter().map(|(_, h)| h).collect()
    }

    /// How many messages were offered.
    pub fn published(&self) -> u64 {
        self.leases.published()
    }

    /// How many offered messages are not returned yet.
    pub fn held(&self) -> usize {
        self.leases.held()
    }

    /// Does the ring hold a message for which `pred` holds?
    pub fn holds(&self, mut pred: impl FnMut(HandleId) -> bool) -> bool {
        self.leases.holds().any(|&h| pred(h))
    }

    /// Returned values refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// No message will be offered any more: says so in the offered
    /// region's header.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.offered.store_u64(OFFERED_CLOSED, 1);
        }
    }

    /// Whether [`RingStage::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the ring and returns every hold still outstanding (the
    /// subscription ended), for the caller to drop.
    pub fn drain(&mut self) -> Vec<HandleId> {
        self.close();
        self.leases.drain().into_iter().map(|(_, h)| h).collect()
    }
}
