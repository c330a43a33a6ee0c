//! Lease rings: a pooled subscription's messages offered in shared memory,
//! so that a subscriber takes and releases them without a host call.
//!
//! A ring is two regions of shared pages per pooled subscription:
//! - *offered*, written by the host and mapped read-only into the
//!   subscriber: a header ([`OFFERED_PUBLISHED`], [`OFFERED_CAPACITY`],
//!   [`OFFERED_CONSUMED`], [`OFFERED_CLOSED`]) and `capacity` entries
//!   ([`OfferedEntry`]: the sequence number, the pool block's index and the
//!   message's length), the entry of sequence `s` at slot `s % capacity`;
//! - *returned*, written by the subscriber (mapped writable into it) and
//!   read by the host: a header ([`RETURNED_COUNT`]) and `capacity` entries,
//!   each the sequence number of a message the subscriber released, the
//!   `k`-th release at slot `k % capacity`.
//!
//! The host offers a message by writing its entry and then the published
//! count (a release store); a subscriber reads the count (an acquire load),
//! then the entries below it. It releases by writing an entry and then its
//! count. The host reads the returned region when it needs blocks back
//! ([`RingLeases::reconcile`]): when the publisher finds no free block, when
//! the subscriber waits, leaves or is evicted.
//!
//! The returned region is guest-writable memory: the host treats it as
//! hostile. It reads each value once, never more than `capacity` entries
//! per reconcile, and acts only on a sequence number it offered and has not
//! had back: a count that goes backwards or jumps ahead, an entry out of
//! range, repeated, never offered, or rewritten while read is refused and
//! counted, and costs the subscriber only its own messages (they stay held
//! until the stall limit, then the subscriber is evicted and every hold
//! comes back, [`RingLeases::drain`]). What the host holds per offered
//! message (`H`: a ledger handle of the block, so that the publisher cannot
//! have the block back) is returned exactly once: released or drained.
//!
//! The offered region is the host's: a subscriber can only read it. The
//! host never writes the slot of a message still held: a ring offers
//! messages only within `capacity` of the oldest one held
//! ([`RingLeases::has_room`]), so a subscriber that holds a message holds
//! up its own ring, not the slot's next message.
//!
//! This module is the plain logic (offsets, the host's bookkeeping, the
//! subscriber's cursor) that the host and the guest crate drive over their
//! own mappings of the pages, through [`RingMemory`].
//!
//! How the drivers use it:
//! - WIT: `subscriber.map-ring(capacity) -> result<ring-area>` maps the pool
//!   (as `map-pool`) and the two regions (host blocks of the subscriber's:
//!   the offered one a read-only pool mapping, the returned one attached
//!   for writing) and answers their addresses and each pool block's;
//!   `subscriber.wait-ring(seen, timeout-ms)` reconciles, then waits until
//!   more than `seen` were offered or the ring ended (the only host call of
//!   a subscriber while messages flow); `publisher.publish-loans` publishes
//!   a batch with one call.
//! - Both backends make the ring a stage of the subscription's queue
//!   ([`RingStage`], [`crate::pubsub::Queue::attach_ring`]): the queue stays
//!   the backlog, under its bound and policy, and its messages move into
//!   the ring while it has room; what the ring holds for each is the queued
//!   handle (a read-only clone of the block). A publisher that finds no
//!   free block reconciles the topic's rings first
//!   ([`crate::pubsub::Topic::reconcile_rings`]); a full ring is reconciled
//!   before a message waits in the backlog; the stall limit ends a ring
//!   subscriber that keeps a block too long (`reclaim`); leaving drains.
//! - The host maps the regions through its own mapping of the pages (atomic
//!   accesses, `shm-host/src/os/pages.rs`), the native backend through
//!   [`HeapRegion`]s; the guest crate's `Ring` reads them in its linear
//!   memory through [`RingReader`].

use std::collections::BTreeMap;

/// The offered region's header: how many messages were offered (the next
/// sequence number), a `u64`.
pub const OFFERED_PUBLISHED: usize = 0;
/// The offered region's header: the ring's capacity, a `u64`.
pub const OFFERED_CAPACITY: usize = 8;
/// The offered region's header: how many returned entries the host has
/// read (a subscriber may write returned entries up to this plus the
/// capacity), a `u64`.
pub const OFFERED_CONSUMED: usize = 16;
/// The offered region's header: non-zero once no message will be offered
/// any more (the publisher ended, or the subscription did), a `u64`.
pub const OFFERED_CLOSED: usize = 24;
/// The size of the offered region's header.
pub const OFFERED_HEADER: usize = 64;
/// The size of one offered entry: sequence `u64`, block `u32`, length `u32`.
pub const OFFERED_ENTRY: usize = 16;

/// The returned region's header: how many entries the subscriber wrote, a
/// `u64`.
pub const RETURNED_COUNT: usize = 0;
/// The size of the returned region's header.
pub const RETURNED_HEADER: usize = 64;
/// The size of one returned entry: a sequence number, a `u64`.
pub const RETURNED_ENTRY: usize = 8;

/// The largest ring: enough for any queue a host allows, small enough that
/// its regions stay a few pages.
pub const MAX_CAPACITY: u32 = 4096;

/// The bytes the offered region of a ring of `capacity` takes.
pub fn offered_bytes(capacity: u32) -> usize {
    OFFERED_HEADER + OFFERED_ENTRY * capacity as usize
}

/// The bytes the returned region of a ring of `capacity` takes.
pub fn returned_bytes(capacity: u32) -> usize {
    RETURNED_HEADER + RETURNED_ENTRY * capacity as usize
}

/// Where in the offered region the entry of sequence `seq` lies.
pub fn offered_slot(seq: u64, capacity: u32) -> usize {
    OFFERED_HEADER + OFFERED_ENTRY * (seq % u64::from(capacity.max(1))) as usize
}

/// Where in the returned region the `k`-th returned entry lies.
pub fn returned_slot(k: u64, capacity: u32) -> usize {
    RETURNED_HEADER + RETURNED_ENTRY * (k % u64::from(capacity.max(1))) as usize
}

/// A message as the offered region lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferedEntry {
    /// Its sequence number in this ring (0, 1, 2, ...).
    pub seq: u64,
    /// The index of its block in the publisher's pool.
    pub block: u32,
    /// How many bytes of the block are the message.
    pub len: u32,
}

/// Loads and stores of one region of a ring, as its driver maps it: the
/// host through its own mapping of the pages, a guest through its linear
/// memory, a test through a buffer. Offsets are in bytes from the region's
/// start; an implementation loads `u64`s with acquire and stores them with
/// release ordering where another party reads them.
pub trait RingMemory {
    /// The `u64` at `offset`.
    fn load_u64(&self, offset: usize) -> u64;
    /// The `u32` at `offset`.
    fn load_u32(&self, offset: usize) -> u32;
    /// Stores `value` at `offset`.
    fn store_u64(&self, offset: usize, value: u64);
    /// Stores `value` at `offset`.
    fn store_u32(&self, offset: usize, value: u32);
}

/// A region of a ring in heap memory, shared between threads: the native
/// backend's (and the tests') stand-in for shared pages. Clones share the
/// bytes.
#[derive(Clone, Debug)]
pub struct HeapRegion(std::sync::Arc<[std::sync::atomic::AtomicU64]>);

impl HeapRegion {
    /// A zeroed region of at least `bytes` bytes.
    pub fn new(bytes: usize) -> HeapRegion {
        use std::sync::atomic::AtomicU64;
        HeapRegion((0..bytes.div_ceil(8)).map(|_| AtomicU64::new(0)).collect())
    }

    fn cell(&self, offset: usize) -> Option<&std::sync::atomic::AtomicU64> {
        self.0.get(offset / 8)
    }
}

impl RingMemory for HeapRegion {
    fn load_u64(&self, offset: usize) -> u64 {
        use std::sync::atomic::Ordering::Acquire;
        self.cell(offset).map_or(0, |c| c.load(Acquire))
    }
    fn load_u32(&self, offset: usize) -> u32 {
        (self.load_u64(offset & !7) >> (8 * (offset % 8))) as u32
    }
    fn store_u64(&self, offset: usize, value: u64) {
        use std::sync::atomic::Ordering::Release;
        if let Some(c) = self.cell(offset) {
            c.store(value, Release);
        }
    }
    fn store_u32(&self, offset: usize, value: u32) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let shift = 8 * (offset % 8);
        let mask = !(u64::from(u32::MAX) << shift);
        if let Some(c) = self.cell(offset) {
            let _ = c.fetch_update(AcqRel, Acquire, |old| {
                Some((old & mask) | (u64::from(value) << shift))
            });
        }
    }
}

/// Writes `entry` into an offered region, then its published count: the
/// host's side of offering a message ([`RingLeases::offer`] says where).
pub fn write_offered(offered: &(impl RingMemory + ?Sized), capacity: u32, entry: OfferedEntry) {
    let at = offered_slot(entry.seq, capacity);
    offered.store_u64(at, entry.seq);
    offered.store_u32(at + 8, entry.block);
    offered.store_u32(at + 12, entry.len);
    offered.store_u64(OFFERED_PUBLISHED, entry.seq + 1);
}

/// A ring's full: no message can be offered until the subscriber releases
/// the oldest one it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber's ring is full: it holds {held} messages, its capacity")]
pub struct RingFull {
    /// How many messages the subscriber holds (queued or taken).
    pub held: usize,
}

/// What a reconcile found in the returned region.
#[derive(Debug, PartialEq, Eq)]
pub struct Reconciled<H> {
    /// The messages released, with what the host held for each.
    pub released: Vec<(u64, H)>,
    /// Values refused: a count that went backwards or ran ahead of what
    /// the ring can hold, an entry naming a sequence number that was never
    /// offered, is not held any more, or came twice.
    pub refused: u64,
}

/// The host's bookkeeping of one ring: the messages offered and not yet
/// returned, with what it holds for each (`H`), and how far it has read
/// the returned region.
#[derive(Debug)]
pub struct RingLeases<H> {
    capacity: u32,
    /// The next sequence number to offer.
    next: u64,
    /// How many returned entries were read.
    consumed: u64,
    /// Offered and not returned, by sequence number.
    held: BTreeMap<u64, H>,
}

impl<H> RingLeases<H> {
    /// The bookkeeping of a new ring of `capacity` entries (1 to
    /// [`MAX_CAPACITY`]).
    pub fn new(capacity: u32) -> RingLeases<H> {
        RingLeases {
            capacity: capacity.clamp(1, MAX_CAPACITY),
            next: 0,
            consumed: 0,
            held: BTreeMap::new(),
        }
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many messages were offered (the next sequence number): what the
    /// offered region's published count says.
    pub fn published(&self) -> u64 {
        self.next
    }

    /// How many returned entries were read: what the offered region's
    /// consumed count says.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// How many messages are offered and not returned.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether a message can be offered: the oldest one held is less than
    /// `capacity` sequence numbers back, so that the slot of the next one
    /// holds nothing the subscriber may still read.
    pub fn has_room(&self) -> bool {
        let oldest = self.held.keys().next().copied().unwrap_or(self.next);
        self.next - oldest < u64::from(self.capacity)
    }

    /// Offers a message for which the host holds `hold`: its entry (with
    /// `block` and `len`) to write with [`write_offered`]. When the ring
    /// is full, `hold` comes back with the error.
    pub fn offer(&mut self, block: u32, len: u32, hold: H) -> Result<OfferedEntry, (RingFull, H)> {
        if !self.has_room() {
            let held = self.held.len();
            return Err((RingFull { held }, hold));
        }
        let seq = self.next;
        self.next += 1;
        self.held.insert(seq, hold);
        Ok(OfferedEntry { seq, block, len })
    }

    /// Reads what the subscriber returned since the last reconcile:
    /// `count`, the returned region's count (read once by the caller), and
    /// `entry(k)`, the `k`-th returned entry (called at most once per `k`,
    /// for at most `capacity` entries). Returns the holds of the messages
    /// released, and how many values were refused (see the module's
    /// notes). The caller then stores [`RingLeases::consumed`] in the
    /// offered region's header.
    pub fn reconcile(&mut self, count: u64, mut entry: impl FnMut(u64) -> u64) -> Reconciled<H> {
        let mut refused = 0;
        let mut released = Vec::new();
        if count < self.consumed {
            // Going backwards: nothing new, and a sign of a hostile writer.
            return Reconciled {
                released,
                refused: 1,
            };
        }
        let limit = self.consumed + u64::from(self.capacity);
        if count > limit {
            // More than the region holds: the entries past it were
            // overwritten. Read what the region can hold; the rest is lost
            // to the subscriber (its messages stay held until drained).
            refused += 1;
        }
        let end = count.min(limit);
        for k in self.consumed..end {
            let seq = entry(k);
            match self.held.remove(&seq) {
                Some(hold) => released.push((seq, hold)),
                None => refused += 1,
            }
        }
        self.consumed = end;
        Reconciled { released, refused }
    }

    /// What the host holds for the messages offered and not returned.
    pub fn holds(&self) -> impl Iterator<Item = &H> {
        self.held.values()
    }

    /// Every hold still outstanding, oldest first: the subscription ended
    /// (it left, or was evicted), and with it every message it held.
    pub fn drain(&mut self) -> Vec<(u64, H)> {
        std::mem::take(&mut self.held).into_iter().collect()
    }
}

/// A subscriber's cursor over its ring: which message it takes next, and
/// how many it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingReader {
    capacity: u32,
    /// The next sequence number to take.
    taken: u64,
    /// How many returned entries this subscriber wrote.
    returned: u64,
}

/// Why a message could not be released without the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The host has not read the returned entries yet: the region is full.
    /// Ask the host to reconcile (its wait call does), then release again.
    #[error("the ring's returned region is full: the host must read it first")]
    Full,
}

impl RingReader {
    /// A cursor over a ring of `capacity` entries (as the offered region's
    /// header says).
    pub fn new(capacity: u32) -> RingReader {
        RingReader {
            capacity: capacity.clamp(1, MAX_CAPACITY),
            taken: 0,
            returned: 0,
        }
    }

    /// The next sequence number to take.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The next message, if one was offered: its entry. `None` when none
    /// waits (then wait with the host, from [`RingReader::taken`]).
    pub fn next(&mut self, offered: &(impl RingMemory + ?Sized)) -> Option<OfferedEntry> {
        let published = offered.load_u64(OFFERED_PUBLISHED);
        if self.taken >= published {
            return None;
        }
        let at = offered_slot(self.taken, self.capacity);
        let entry = OfferedEntry {
            seq: offered.load_u64(at),
            block: offered.load_u32(at + 8),
            len: offered.load_u32(at + 12),
        };
        // The host wrote the entry before the count; a slot never holds a
        // later message while this one is not returned.
        if entry.seq != self.taken {
            return None;
        }
        self.taken += 1;
        Some(entry)
    }

    /// Returns message `seq` to the host: writes the returned entry, then
    /// the count. Fails when the host has not yet read `capacity` earlier
    /// entries.
    pub fn release(
        &mut self,
        offered: &(impl RingMemory + ?Sized),
        returned: &(impl RingMemory + ?Sized),
        seq: u64,
    ) -> Result<(), ReleaseError> {
        let consumed = offered.load_u64(OFFERED_CONSUMED);
        if self.returned.saturating_sub(consumed) >= u64::from(self.capacity) {
            return Err(ReleaseError::Full);
        }
        returned.store_u64(returned_slot(self.returned, self.capacity), seq);
        self.returned += 1;
        returned.store_u64(RETURNED_COUNT, self.returned);
        Ok(())
    }
}

mod stage;
pub use stage::{Describe, Offered, Region, RingStage};

#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod tests;
