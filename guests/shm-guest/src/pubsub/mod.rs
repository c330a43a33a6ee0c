//! Publish/subscribe of memory blocks: a safe API over `pub-sub`.
//!
//! ```no_run
//! use shm_guest::pubsub::{Publisher, Subscriber};
//!
//! // Publisher: a pool of 4 blocks of 4 KiB on topic "frames".
//! let publisher = Publisher::new("frames", 4, 4096)?;
//! let (block, _old_bytes) = publisher.allocate()?;
//! {
//!     let mut w = block.attach_write()?;
//!     w[..5].copy_from_slice(b"frame");
//!     w.commit(5)?;
//! }
//! publisher.publish(block)?;
//!
//! // Subscriber (usually another component): every message, in order.
//! for message in Subscriber::new("frames")? {
//!     let bytes = message.attach_read()?;
//!     println!("{} bytes", bytes.len());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Pooled topics: the subscriber maps the publisher's whole pool once and
//! reads each message where it already is, with no system call per message.
//!
//! ```no_run
//! use shm_guest::pubsub::{Publisher, Subscriber};
//!
//! let publisher = Publisher::pooled("frames", 4, 1 << 20)?;
//! let subscriber = publisher.subscription()?;
//! let (block, _) = publisher.allocate()?;
//! block.attach_write()?.commit(1 << 20)?;
//! publisher.publish(block)?;
//!
//! subscriber.map_pool()?; // once: donates storage and maps the pool
//! while let Some(message) = subscriber.try_next_pooled()? {
//!     println!("{} bytes", message.len()); // read in place
//! } // dropping a message releases it to the pool
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::raw::pub_sub as wit;
use crate::Block;

mod ring;
pub use ring::{Next, Ring, RingMessage};

/// How many subscriptions this process ever made (native backend only: a
/// native topology runner waits for its subscribers before it starts the
/// publisher, as `shm-host pubsub` does).
#[cfg(not(target_arch = "wasm32"))]
pub fn subscriptions() -> usize {
    crate::raw::pub_sub::subscriptions()
}

/// Why a publish/subscribe operation failed: the WIT `pub-sub-error`, with
/// its messages, defined once in `shm-rules`.
pub use shm_rules::PubSubError;

// The generated `pub-sub-error` and ours convert both ways (natively they
// are one type).
#[cfg(target_arch = "wasm32")]
shm_rules::pubsub_error_conversions!(wit::PubSubError);

/// The publishing side of a topic, with its pool of blocks.
#[derive(Debug)]
pub struct Publisher {
    raw: wit::Publisher,
    /// The size of each pool block.
    size: u32,
}

impl Publisher {
    /// A publisher on `topic` with `elements` blocks of `size` bytes.
    pub fn new(topic: &str, elements: u32, size: u32) -> Result<Publisher, PubSubError> {
        Ok(Publisher {
            raw: wit::Publisher::new(topic, elements, size)?,
            size,
        })
    }

    /// A publisher on `topic` whose subscribers may map the pool once and
    /// receive messages in place ([`Subscriber::next_pooled`]). They can
    /// then read every block of the pool, including one being written: pool
    /// only topics whose subscribers may see all of their data.
    ///
    /// It also maps its own pool once (storage donated for it), so that
    /// writing a message opens a write window onto its block in that
    /// mapping where the host can, instead of mapping the block per message
    /// (`publisher.map-pool`). Should that fail (no storage), messages are
    /// written the usual way.
    pub fn pooled(topic: &str, elements: u32, size: u32) -> Result<Publisher, PubSubError> {
        let raw = wit::Publisher::pooled(topic, elements, size)?;
        // Not mapped (no storage): every message is mapped for writing on
        // its own, as without windows.
        let _unmapped = raw
            .pool_storage()
            .and_then(|need| crate::donate_storage(need).map_err(|_| wit::PubSubError::NoStorage))
            .and_then(|()| raw.map_pool());
        Ok(Publisher { raw, size })
    }

    /// A free pool block lent for writing, in one call (`allocate` and a
    /// write attach): write the message into it in place, then
    /// [`Loan::publish`] it. Its old bytes are still there.
    ///
    /// ```no_run
    /// # use shm_guest::pubsub::Publisher;
    /// let publisher = Publisher::pooled("frames", 4, 4096)?;
    /// let mut loan = publisher.loan()?;
    /// for seq in 0u64..100 {
    ///     loan[..8].copy_from_slice(&seq.to_le_bytes());
    ///     // Publish and take the next block in one call (None: the pool
    ///     // is busy now; loan again later).
    ///     match loan.publish_and_loan(8)? {
    ///         Some(next) => loan = next,
    ///         None => loan = publisher.loan()?,
    ///     }
    /// }
    /// # Ok::<(), shm_guest::pubsub::PubSubError>(())
    /// ```
    pub fn loan(&self) -> Result<Loan<'_>, PubSubError> {
        let raw = match self.raw.loan() {
            // Not pooled and nothing donated yet: storage for one block.
            Err(wit::PubSubError::NoStorage) => {
                let need = crate::raw::MemoryBlock::optimum_size(1, self.size);
                crate::donate_storage(need).map_err(|_| PubSubError::NoStorage)?;
                self.raw.loan()?
            }
            other => other?,
        };
        Ok(self.wrap(raw))
    }

    /// [`Publisher::loan`], but while every block of the pool is in use it
    /// waits for one to come free, up to `timeout`: the host wakes it when
    /// a subscriber releases a message (`loan-within`), so a publisher that
    /// is faster than its subscribers neither polls nor sleeps longer than
    /// it must. [`PubSubError::PoolExhausted`] if none came free in time.
    pub fn loan_within(&self, timeout: core::time::Duration) -> Result<Loan<'_>, PubSubError> {
        let raw = match within(timeout, |ms| self.raw.loan_within(ms)) {
            // As in `loan`: storage for one block, then again.
            Err(wit::PubSubError::NoStorage) => {
                let need = crate::raw::MemoryBlock::optimum_size(1, self.size);
                crate::donate_storage(need).map_err(|_| PubSubError::NoStorage)?;
                within(timeout, |ms| self.raw.loan_within(ms))?
            }
            other => other?,
        };
        Ok(self.wrap(raw))
    }

    fn wrap(&self, raw: wit::PooledLoan) -> Loan<'_> {
        Loan {
            publisher: self,
            loan: raw.loan,
            bytes: self.loan_bytes(&raw),
        }
    }

    #[cfg(target_arch = "wasm32")]
    #[allow(clippy::mut_from_ref)]
    fn loan_bytes(&self, raw: &wit::PooledLoan) -> &mut [u8] {
        if raw.size == 0 {
            return &mut [];
        }
        // SAFETY: the host attached the whole block for writing at
        // `raw.address` in this component's memory (in a write window of
        // the mapped pool, or mapped into storage donated by
        // `donate_storage`, leaked and never referenced again), and keeps
        // it attached until the loan is published or dropped. No other Rust
        // reference to these bytes exists: each loan is wrapped once, and
        // the `Loan` that owns the slice ends the loan only when consumed
        // or dropped. The slice borrows the publisher.
        unsafe {
            core::slice::from_raw_parts_mut(raw.address as usize as *mut u8, raw.size as usize)
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[allow(clippy::mut_from_ref)]
    fn loan_bytes(&self, raw: &wit::PooledLoan) -> &mut [u8] {
        // SAFETY: called once per loan (by `wrap`); the `Loan` owning the
        // slice ends the loan only when consumed or dropped, after its last
        // use of the slice, and borrows this publisher.
        unsafe { self.raw.loan_bytes(raw.loan) }.unwrap_or_default()
    }

    /// Publishes a batch of loans in one host call, each with the size of
    /// its message, in order, then lends up to `next` free blocks (fewer
    /// when fewer are free). With a ring subscriber ([`Ring`]) a batch
    /// costs one host call for the publisher and none for the subscribers.
    pub fn publish_batch<'a>(
        &'a self,
        loans: impl IntoIterator<Item = (Loan<'a>, u32)>,
        next: u32,
    ) -> Result<Vec<Loan<'a>>, PubSubError> {
        let mut batch = Vec::new();
        for (loan, size) in loans {
            if !core::ptr::eq(loan.publisher, self) {
                // Nothing is sent: every loan goes back (this one to its
                // own publisher, as it drops).
                for (held, _) in batch {
                    let _ = self.raw.drop_loan(held);
                }
                return Err(PubSubError::UnknownLease);
            }
            batch.push((core::mem::ManuallyDrop::new(loan).loan, size));
        }
        match self.raw.publish_loans(&batch, next) {
            Ok(lent) => Ok(lent.into_iter().map(|raw| self.wrap(raw)).collect()),
            Err(e) => {
                // Refused as a whole: every loan is still held; give them
                // back (their writes commit nothing).
                for (loan, _) in batch {
                    let _ = self.raw.drop_loan(loan);
                }
                Err(e.into())
            }
        }
    }

    /// Up to `count` free pool blocks lent for writing in one host call
    /// (fewer, or none, when fewer are free): [`Publisher::loan`] for a
    /// batch. Where the host writes through protection windows (no
    /// protection keys), their windows open together.
    pub fn loan_many(&self, count: u32) -> Result<Vec<Loan<'_>>, PubSubError> {
        let mut lent = self.publish_batch(core::iter::empty(), count)?;
        // Fewer: none free, or (blocks mapped per loan, outside windows)
        // storage missing, which `loan` donates.
        while (lent.len() as u32) < count {
            match self.loan() {
                Ok(loan) => lent.push(loan),
                Err(PubSubError::PoolExhausted) => break,
                Err(e) if lent.is_empty() => return Err(e),
                Err(_) => break,
            }
            let more = self.publish_batch(core::iter::empty(), count - lent.len() as u32)?;
            lent.extend(more);
        }
        Ok(lent)
    }

    /// A free pool block, writable, and how many of its bytes are
    /// initialized from its last use.
    pub fn allocate(&self) -> Result<(Block, u32), PubSubError> {
        let (raw, bytes) = self.raw.allocate()?;
        Ok((Block::from_raw(raw), bytes))
    }

    /// A free pool block, waiting up to `timeout` for subscribers to give
    /// one back (`PoolExhausted` after that): the host wakes the wait when
    /// a subscriber releases a message (`allocate-within`), nothing polls.
    pub fn allocate_within(
        &self,
        timeout: core::time::Duration,
    ) -> Result<(Block, u32), PubSubError> {
        let (raw, bytes) = within(timeout, |ms| self.raw.allocate_within(ms))?;
        Ok((Block::from_raw(raw), bytes))
    }

    /// Sends `block` to every subscriber. The block must be detached, and
    /// the only writable handle of its bytes (no writable partition left).
    pub fn publish(&self, block: Block) -> Result<(), PubSubError> {
        Ok(self.raw.publish(block.into_raw())?)
    }

    /// A new subscription to this publisher's topic.
    pub fn subscription(&self) -> Result<Subscriber, PubSubError> {
        Ok(Subscriber::from_raw(self.raw.subscribers()?))
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> u32 {
        self.raw.subscriber_count()
    }
}

/// Calls a waiting operation (`allocate-within`, `loan-within`) with the
/// milliseconds left until `timeout` has passed: the host waits at most
/// its stall limit per call, so a longer `timeout` takes several calls.
fn within<T>(
    timeout: core::time::Duration,
    mut call: impl FnMut(u32) -> Result<T, wit::PubSubError>,
) -> Result<T, wit::PubSubError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Rounded up: a last fraction of a millisecond is waited, not spun.
        let ms = u32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u32::MAX);
        match call(ms) {
            Err(wit::PubSubError::PoolExhausted) if !left.is_zero() => {}
            done => return done,
        }
    }
}

/// A pool block lent for writing ([`Publisher::loan`]): derefs to the
/// whole block. Publish it with [`Loan::publish`]; dropped unpublished,
/// nothing of it becomes valid.
pub struct Loan<'a> {
    publisher: &'a Publisher,
    loan: u64,
    bytes: &'a mut [u8],
}

impl<'a> Loan<'a> {
    /// Commits the first `size` bytes and sends them to every subscriber.
    pub fn publish(self, size: u32) -> Result<(), PubSubError> {
        self.finish(size, false).map(|_| ())
    }

    /// Publishes as [`Loan::publish`] and lends the next free block in the
    /// same call: one call per message. `None`: the message was sent but
    /// no block could be lent in the same call (none free, or storage for
    /// it is missing): [`Publisher::loan`] says why, and donates storage
    /// where that is what is missing.
    pub fn publish_and_loan(self, size: u32) -> Result<Option<Loan<'a>>, PubSubError> {
        self.finish(size, true)
    }

    fn finish(self, size: u32, next: bool) -> Result<Option<Loan<'a>>, PubSubError> {
        let this = core::mem::ManuallyDrop::new(self);
        let publisher = this.publisher;
        match publisher.raw.publish_loan(this.loan, size, next) {
            Ok(next) => Ok(next.map(|raw| publisher.wrap(raw))),
            Err(e) => {
                // A refused size leaves the loan held: give it back.
                let _ = publisher.raw.drop_loan(this.loan);
                Err(e.into())
            }
        }
    }
}

impl core::ops::Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl core::ops::DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        let _ = self.publisher.raw.drop_loan(self.loan);
    }
}

impl core::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Loan")
            .field("loan", &self.loan)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The receiving side of a topic. Iterating waits for each message and
/// ends when the publisher is gone and the queue is empty.
#[derive(Debug)]
pub struct Subscriber {
    raw: wit::Subscriber,
    /// Has storage been donated for a pool of this subscription?
    pool_storage: core::cell::Cell<bool>,
}

impl Subscriber {
    /// Subscribes to `topic`: fails with [`PubSubError::NotPermitted`]
    /// where the host does not allow it.
    pub fn new(topic: &str) -> Result<Subscriber, PubSubError> {
        Ok(Subscriber::from_raw(wit::Subscriber::new(topic)?))
    }

    /// Wraps a subscription received through another interface.
    pub fn from_raw(raw: wit::Subscriber) -> Subscriber {
        Subscriber {
            raw,
            pool_storage: core::cell::Cell::new(false),
        }
    }

    /// The next message, waiting for it.
    pub fn next_message(&self) -> Option<Block> {
        self.raw.next().map(Block::from_raw)
    }

    /// The next message if one is queued.
    pub fn try_next(&self) -> Option<Block> {
        self.raw.try_next().map(Block::from_raw)
    }

    /// The messages as a component-model stream, for async code: read it
    /// with [`Messages::next`]. It takes from the same queue as
    /// [`Subscriber::next_message`].
    pub fn messages(&self) -> Messages {
        Messages {
            stream: self.raw.get_stream(),
        }
    }

    /// Messages lost to the host's drop-oldest policy.
    pub fn dropped(&self) -> u64 {
        self.raw.dropped()
    }

    /// Maps the topic's pool into this component, read-only, donating the
    /// storage it needs: once per pool (again only if the topic's publisher
    /// is replaced).
    pub fn map_pool(&self) -> Result<(), PubSubError> {
        let donate = || -> Result<(), PubSubError> {
            let need = self.raw.pool_storage()?;
            crate::donate_storage(need).map_err(|_| PubSubError::NoStorage)
        };
        // The first pool gets storage of its own; a later one (the
        // publisher was replaced) reuses the storage of the one it replaces
        // when it fits.
        if !self.pool_storage.get() {
            donate()?;
            self.pool_storage.set(true);
            return Ok(self.raw.map_pool()?);
        }
        match self.raw.map_pool() {
            Err(wit::PubSubError::NoStorage) => {
                donate()?;
                Ok(self.raw.map_pool()?)
            }
            other => Ok(other?),
        }
    }

    /// The next message of a pooled topic, waiting for it, read in place
    /// in the mapped pool (mapped first if needed); `None` once the
    /// publisher is gone and the queue is empty. Dropping the message
    /// releases it.
    pub fn next_pooled(&self) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        self.pooled(|raw| raw.next_pooled())
    }

    /// The next message of a pooled topic if one is queued.
    pub fn try_next_pooled(&self) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        self.pooled(|raw| raw.try_next_pooled())
    }

    /// Releases `previous` and takes the next message, waiting for it, in
    /// one call: a subscriber's loop costs one call per message.
    ///
    /// ```no_run
    /// # use shm_guest::pubsub::Subscriber;
    /// let subscriber = Subscriber::new("frames")?;
    /// let mut message = subscriber.next_pooled()?;
    /// while let Some(m) = message {
    ///     println!("{} bytes", m.len()); // read in place
    ///     message = subscriber.next_pooled_after(m)?;
    /// }
    /// # Ok::<(), shm_guest::pubsub::PubSubError>(())
    /// ```
    pub fn next_pooled_after(
        &self,
        previous: PooledMessage<'_>,
    ) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        let lease = previous.into_lease();
        self.pooled_then(|raw| raw.next_pooled_after(lease), |raw| raw.next_pooled())
    }

    /// Releases `previous` and takes the next message if one is queued.
    pub fn try_next_pooled_after(
        &self,
        previous: PooledMessage<'_>,
    ) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        let lease = previous.into_lease();
        self.pooled_then(
            |raw| raw.try_next_pooled_after(lease),
            |raw| raw.try_next_pooled(),
        )
    }

    fn pooled(
        &self,
        take: impl Fn(&wit::Subscriber) -> Result<Option<wit::PooledMessage>, wit::PubSubError>,
    ) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        self.pooled_then(&take, &take)
    }

    /// Takes a message with `first`; if the pool changed, maps the new one
    /// and takes with `retry`.
    fn pooled_then(
        &self,
        first: impl FnOnce(&wit::Subscriber) -> Result<Option<wit::PooledMessage>, wit::PubSubError>,
        retry: impl FnOnce(&wit::Subscriber) -> Result<Option<wit::PooledMessage>, wit::PubSubError>,
    ) -> Result<Option<PooledMessage<'_>>, PubSubError> {
        let message = match first(&self.raw) {
            Err(wit::PubSubError::PoolChanged) => {
                self.map_pool()?;
                retry(&self.raw)?
            }
            other => other?,
        };
        Ok(message.map(|m| PooledMessage {
            bytes: self.lease_bytes(&m),
            lease: m.lease,
            subscriber: self,
        }))
    }

    #[cfg(target_arch = "wasm32")]
    fn lease_bytes(&self, m: &wit::PooledMessage) -> &[u8] {
        if m.size == 0 {
            return &[];
        }
        // SAFETY: the host attached the message read-only at `m.address`
        // in this component's memory, inside the pool it mapped into
        // storage donated by `donate_storage` (leaked, never referenced
        // again). Until the lease is released the bytes cannot change (the
        // lease is a shared read: no write attach of the block is possible)
        // and stay mapped (the host refuses to unmap a pool while messages
        // of it are held, and the subscription outlives the borrow). The
        // slice borrows the subscription, and `PooledMessage` releases the
        // lease only when dropped.
        unsafe { core::slice::from_raw_parts(m.address as usize as *const u8, m.size as usize) }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn lease_bytes(&self, m: &wit::PooledMessage) -> &[u8] {
        // SAFETY: the slice is used only while the `PooledMessage` holding
        // the lease lives; it releases the lease when dropped, and borrows
        // this subscription, which therefore outlives it.
        unsafe { self.raw.lease_bytes(m.lease) }.unwrap_or(&[])
    }
}

/// A message of a pooled topic, read in place; released when dropped.
pub struct PooledMessage<'a> {
    subscriber: &'a Subscriber,
    lease: u64,
    bytes: &'a [u8],
}

impl core::ops::Deref for PooledMessage<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl PooledMessage<'_> {
    /// Ends this value without releasing the lease (the caller releases it).
    fn into_lease(self) -> u64 {
        core::mem::ManuallyDrop::new(self).lease
    }
}

impl Drop for PooledMessage<'_> {
    fn drop(&mut self) {
        let _ = self.subscriber.raw.release(self.lease);
    }
}

impl core::fmt::Debug for PooledMessage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PooledMessage")
            .field("lease", &self.lease)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Iterator for Subscriber {
    type Item = Block;
    fn next(&mut self) -> Option<Block> {
        self.next_message()
    }
}

/// A subscription's messages as a `stream<memory-block>`.
pub struct Messages {
    stream: MessageStream,
}

#[cfg(target_arch = "wasm32")]
type MessageStream = wit_bindgen::StreamReader<crate::raw::MemoryBlock>;
#[cfg(not(target_arch = "wasm32"))]
type MessageStream = crate::raw::pub_sub::StreamReader;

impl Messages {
    /// The next message, waiting for it without blocking other tasks of
    /// this component; `None` once the publisher is gone and the queue is
    /// empty.
    pub async fn next(&mut self) -> Option<Block> {
        self.stream.next().await.map(Block::from_raw)
    }
}

impl core::fmt::Debug for Messages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}
