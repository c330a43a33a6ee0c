//! Lease rings: a subscription's messages taken and released without a
//! host call.
//!
//! A [`Ring`] is made from a subscription of a pooled topic
//! ([`Subscriber::into_ring`]). The host offers every message of the
//! subscription in shared memory as it is published; [`Ring::try_next`]
//! takes the next one where it lies in the mapped pool, and dropping the
//! [`RingMessage`] releases it by writing into the ring: no host call. Only
//! [`Ring::next`] calls the host, and only when no message waits (it also
//! hands the host what was released meanwhile).
//!
//! ```no_run
//! use shm_guest::pubsub::{Publisher, Subscriber};
//!
//! let publisher = Publisher::pooled("imu", 8, 4096)?;
//! let ring = publisher.subscription()?.into_ring(8)?;
//! let mut loans = vec![publisher.loan()?, publisher.loan()?];
//! for (i, loan) in loans.iter_mut().enumerate() {
//!     loan[0] = i as u8;
//! }
//! // Two messages, one host call.
//! let _next = publisher.publish_batch(loans.into_iter().map(|l| (l, 1)), 0)?;
//! while let Some(message) = ring.try_next() {
//!     println!("{}", message[0]); // in place; released when dropped
//! }
//! # Ok::<(), shm_guest::pubsub::PubSubError>(())
//! ```
//!
//! The ring holds at most its capacity of messages (taken or not): while
//! they are all held, the publisher cannot offer this subscriber more
//! (they wait in its queue, under the host's overflow policy), and a
//! subscriber that keeps them past the host's stall limit is evicted. Hold
//! messages only while reading them.

use core::cell::Cell;
use core::time::Duration;

use shm_rules::pubsub::ring::{RingMemory, RingReader, OFFERED_CLOSED};

use super::{wit, PubSubError, Subscriber};

/// A subscription's lease ring (see the module's notes).
pub struct Ring {
    subscriber: Subscriber,
    reader: Cell<RingReader>,
    regions: Regions,
    /// Each pool block's address (wasm), by index.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    blocks: Vec<u32>,
}

impl core::fmt::Debug for Ring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("taken", &self.reader.get().taken())
            .finish_non_exhaustive()
    }
}

/// The ring's two regions as this backend reaches them.
#[cfg(target_arch = "wasm32")]
struct Regions {
    offered: GuestRegion,
    returned: GuestRegion,
}

#[cfg(not(target_arch = "wasm32"))]
struct Regions {
    offered: shm_rules::pubsub::ring::HeapRegion,
    returned: shm_rules::pubsub::ring::HeapRegion,
}

/// A region of the ring in this component's linear memory, mapped there by
/// the host for as long as the subscription lives.
#[cfg(target_arch = "wasm32")]
struct GuestRegion {
    address: usize,
}

#[cfg(target_arch = "wasm32")]
impl GuestRegion {
    fn at<T>(&self, offset: usize) -> *mut T {
        (self.address + offset) as *mut T
    }
}

#[cfg(target_arch = "wasm32")]
impl RingMemory for GuestRegion {
    fn load_u64(&self, offset: usize) -> u64 {
        // SAFETY: the host mapped the region (page-aligned, at least the
        // ring's size, which bounds every offset the ring's rules use) at
        // `address` for the subscription's life, which the `Ring` owns.
        // The host writes it concurrently: atomic accesses only.
        unsafe { core::sync::atomic::AtomicU64::from_ptr(self.at(offset)) }
            .load(core::sync::atomic::Ordering::Acquire)
    }
    fn load_u32(&self, offset: usize) -> u32 {
        // SAFETY: as in `load_u64`.
        unsafe { core::sync::atomic::AtomicU32::from_ptr(self.at(offset)) }
            .load(core::sync::atomic::Ordering::Acquire)
    }
    fn store_u64(&self, offset: usize, value: u64) {
        // SAFETY: as in `load_u64`; only the returned region, mapped
        // writable, is ever stored to.
        unsafe { core::sync::atomic::AtomicU64::from_ptr(self.at(offset)) }
            .store(value, core::sync::atomic::Ordering::Release)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        // SAFETY: as in `store_u64`.
        unsafe { core::sync::atomic::AtomicU32::from_ptr(self.at(offset)) }
            .store(value, core::sync::atomic::Ordering::Release)
    }
}

impl Subscriber {
    /// Makes this subscription (of a pooled topic) a lease ring of
    /// `capacity` messages: maps the pool and the ring (donating the
    /// storage they need) and from now on receives its messages through
    /// the ring. `capacity` is at most the host's queue bound plus its held
    /// bound (`limit-exceeded`). Fails with `not-pooled` while the topic
    /// has no pooled publisher: see [`Subscriber::into_ring_within`].
    pub fn into_ring(self, capacity: u32) -> Result<Ring, PubSubError> {
        self.into_ring_within(capacity, Duration::ZERO)
    }

    /// [`Subscriber::into_ring`], waiting up to `timeout` for the topic's
    /// pooled publisher (a subscriber may start first: messages published
    /// meanwhile wait in its queue, and the ring offers them).
    pub fn into_ring_within(self, capacity: u32, timeout: Duration) -> Result<Ring, PubSubError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let need = loop {
            match self.raw.ring_storage(capacity) {
                Err(wit::PubSubError::NotPooled) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        crate::donate_storage(need).map_err(|_| PubSubError::NoStorage)?;
        self.pool_storage.set(true);
        let area = self.raw.map_ring(capacity)?;
        let regions = Self::regions(&self.raw, &area)?;
        Ok(Ring {
            reader: Cell::new(RingReader::new(area.capacity)),
            regions,
            blocks: area.blocks,
            subscriber: self,
        })
    }

    #[cfg(target_arch = "wasm32")]
    fn regions(_raw: &wit::Subscriber, area: &wit::RingArea) -> Result<Regions, PubSubError> {
        Ok(Regions {
            offered: GuestRegion {
                address: area.offered as usize,
            },
            returned: GuestRegion {
                address: area.returned as usize,
            },
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn regions(raw: &wit::Subscriber, _area: &wit::RingArea) -> Result<Regions, PubSubError> {
        let (offered, returned) = raw.ring_regions().ok_or(PubSubError::Internal)?;
        Ok(Regions { offered, returned })
    }
}

impl Ring {
    /// The next message if one was offered: no host call.
    pub fn try_next(&self) -> Option<RingMessage<'_>> {
        let mut reader = self.reader.get();
        let entry = reader.next(&self.regions.offered)?;
        self.reader.set(reader);
        let bytes = self.block_bytes(entry.block, entry.len);
        Some(RingMessage {
            ring: self,
            seq: entry.seq,
            bytes,
        })
    }

    /// The next message, waiting for it; `None` once the topic's publisher
    /// is gone and every message was taken. Calls the host only when no
    /// message waits.
    pub fn next(&self) -> Result<Option<RingMessage<'_>>, PubSubError> {
        loop {
            match self.next_within(Duration::from_secs(60))? {
                Next::Message(m) => return Ok(Some(m)),
                Next::Ended => return Ok(None),
                Next::TimedOut => {}
            }
        }
    }

    /// The next message, waiting at most `timeout` for it.
    pub fn next_within(&self, timeout: Duration) -> Result<Next<'_>, PubSubError> {
        if let Some(m) = self.try_next() {
            return Ok(Next::Message(m));
        }
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let waited = self
            .subscriber
            .raw
            .wait_ring(self.reader.get().taken(), ms)?;
        if let Some(m) = self.try_next() {
            return Ok(Next::Message(m));
        }
        Ok(if waited.ended {
            Next::Ended
        } else {
            Next::TimedOut
        })
    }

    /// Whether the ring ended: no message will be offered any more (those
    /// offered may still be taken).
    pub fn is_ended(&self) -> bool {
        self.regions.offered.load_u64(OFFERED_CLOSED) != 0
    }

    /// The subscription the ring serves.
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// Gives message `seq` back: written into the ring, or, when the host
    /// has not read the ring for a while, after a host call that has it
    /// read (`wait-ring` without waiting).
    fn release(&self, seq: u64) {
        let mut reader = self.reader.get();
        let r = &self.regions;
        if reader.release(&r.offered, &r.returned, seq).is_err() {
            let _ = self.subscriber.raw.wait_ring(u64::MAX, 0);
            // Still full only if the host refused what was returned: the
            // message then stays held until the subscription ends.
            let _ = reader.release(&r.offered, &r.returned, seq);
        }
        self.reader.set(reader);
    }

    #[cfg(target_arch = "wasm32")]
    fn block_bytes(&self, block: u32, len: u32) -> &[u8] {
        let Some(&address) = self.blocks.get(block as usize) else {
            return &[];
        };
        if len == 0 {
            return &[];
        }
        // SAFETY: the host mapped pool block `block` read-only at `address`
        // (`map-ring`), for the subscription's life, which the ring owns;
        // `len` is the message's valid length, within the block. The ring
        // holds the message until the `RingMessage` borrowing this slice
        // releases it on drop: until then no write right to the block
        // exists, so the bytes cannot change.
        unsafe { core::slice::from_raw_parts(address as usize as *const u8, len as usize) }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn block_bytes(&self, block: u32, len: u32) -> &[u8] {
        // SAFETY: the block holds a message the ring offered and this
        // subscriber has not returned; the slice is used only by the
        // `RingMessage` that returns it on drop, and borrows the ring,
        // which owns the subscription.
        unsafe { self.subscriber.raw.ring_block_bytes(block, len) }.unwrap_or(&[])
    }
}

/// What [`Ring::next_within`] found.
#[derive(Debug)]
pub enum Next<'r> {
    /// A message.
    Message(RingMessage<'r>),
    /// No message came within the timeout.
    TimedOut,
    /// The topic's publisher is gone and every message was taken.
    Ended,
}

/// A message taken from a [`Ring`], read in place; released (without a
/// host call) when dropped.
pub struct RingMessage<'r> {
    ring: &'r Ring,
    seq: u64,
    bytes: &'r [u8],
}

impl RingMessage<'_> {
    /// The message's sequence number in its ring (0, 1, 2, ...).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl core::ops::Deref for RingMessage<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for RingMessage<'_> {
    fn drop(&mut self) {
        self.ring.release(self.seq);
    }
}

impl core::fmt::Debug for RingMessage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingMessage")
            .field("seq", &self.seq)
            .field("len", &self.bytes.len())
            .finish()
    }
}
