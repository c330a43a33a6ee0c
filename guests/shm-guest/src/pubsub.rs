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
//! for message in Subscriber::new("frames") {
//!     let bytes = message.attach_read()?;
//!     println!("{} bytes", bytes.len());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::raw::pub_sub as wit;
use crate::Block;

/// How many subscriptions this process ever made (native backend only: a
/// native topology runner waits for its subscribers before it starts the
/// publisher, as `shm-host pubsub` does).
#[cfg(not(target_arch = "wasm32"))]
pub fn subscriptions() -> usize {
    crate::raw::pub_sub::subscriptions()
}

/// Why a publish/subscribe operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PubSubError {
    /// Every pool block is in use: retry when subscribers dropped theirs.
    #[error("every block of the pool is still in use: retry later or use a larger pool")]
    PoolExhausted,
    /// The block is still attached.
    #[error("the block is still attached: detach it before publishing")]
    StillAttached,
    /// The block does not come from this publisher.
    #[error("the block was not allocated from this publisher")]
    ForeignBlock,
    /// The topic has a publisher already.
    #[error("the topic already has a publisher")]
    TopicTaken,
    /// An argument is out of range.
    #[error("an argument is out of range (empty pool, block too large, or past the limits)")]
    InvalidArgument,
    /// The host failed.
    #[error("the host failed; see its log")]
    Internal,
}

impl From<wit::PubSubError> for PubSubError {
    fn from(e: wit::PubSubError) -> Self {
        match e {
            wit::PubSubError::PoolExhausted => PubSubError::PoolExhausted,
            wit::PubSubError::StillAttached => PubSubError::StillAttached,
            wit::PubSubError::ForeignBlock => PubSubError::ForeignBlock,
            wit::PubSubError::TopicTaken => PubSubError::TopicTaken,
            wit::PubSubError::InvalidArgument => PubSubError::InvalidArgument,
            wit::PubSubError::Internal => PubSubError::Internal,
        }
    }
}

/// The publishing side of a topic, with its pool of blocks.
#[derive(Debug)]
pub struct Publisher {
    raw: wit::Publisher,
}

impl Publisher {
    /// A publisher on `topic` with `elements` blocks of `size` bytes.
    pub fn new(topic: &str, elements: u32, size: u32) -> Result<Publisher, PubSubError> {
        Ok(Publisher {
            raw: wit::Publisher::new(topic, elements, size)?,
        })
    }

    /// A free pool block, writable, and how many of its bytes are
    /// initialized from its last use.
    pub fn allocate(&self) -> Result<(Block, u32), PubSubError> {
        let (raw, bytes) = self.raw.allocate()?;
        Ok((Block::from_raw(raw), bytes))
    }

    /// Sends `block` to every subscriber. The block must be detached.
    pub fn publish(&self, block: Block) -> Result<(), PubSubError> {
        Ok(self.raw.publish(block.into_raw())?)
    }

    /// A new subscription to this publisher's topic.
    pub fn subscription(&self) -> Subscriber {
        Subscriber {
            raw: self.raw.subscribers(),
        }
    }

    /// How many subscriptions the topic has.
    pub fn subscriber_count(&self) -> u32 {
        self.raw.subscriber_count()
    }
}

/// The receiving side of a topic. Iterating waits for each message and
/// ends when the publisher is gone and the queue is empty.
#[derive(Debug)]
pub struct Subscriber {
    raw: wit::Subscriber,
}

impl Subscriber {
    /// Subscribes to `topic`.
    pub fn new(topic: &str) -> Subscriber {
        Subscriber {
            raw: wit::Subscriber::new(topic),
        }
    }

    /// Wraps a subscription received through another interface.
    pub fn from_raw(raw: wit::Subscriber) -> Subscriber {
        Subscriber { raw }
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
