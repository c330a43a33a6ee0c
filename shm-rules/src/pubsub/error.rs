//! The `pub-sub` interface's `pub-sub-error` as plain Rust, with its
//! messages: written once for the wasm host, the guest crate and the native
//! backend (the first two convert it to and from their generated type with
//! [`pubsub_error_conversions!`](crate::pubsub_error_conversions)).

use crate::ExchangeError;

/// Why a publish/subscribe operation failed: the cases of the WIT
/// `pub-sub-error` of `zero-copy:shm/pub-sub`, in its order.
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
    #[error("an argument is out of range (a topic name, an empty pool, a block too large, or past the limits)")]
    InvalidArgument,
    /// The host failed.
    #[error("the host failed; see its log")]
    Internal,
    /// The topic's publisher does not share its pool.
    #[error("the topic is not pooled (or has no publisher yet): receive with next_message")]
    NotPooled,
    /// The donated storage cannot hold the pool (or a loan).
    #[error("no storage can hold the pool: map_pool donates what it needs, or donate more")]
    NoStorage,
    /// The next message is not in the mapped pool.
    #[error("the next message is not in the mapped pool: call map_pool again")]
    PoolChanged,
    /// Messages of the mapped pool are still held.
    #[error("messages of the mapped pool are still held: drop them before mapping another pool")]
    MessagesHeld,
    /// No message is held under that lease (or loan).
    #[error("no message is held under that lease")]
    UnknownLease,
    /// The host does not let this component publish or subscribe to the
    /// topic.
    #[error("the host does not permit this component to use this topic (see the host's grants)")]
    NotPermitted,
    /// `publish` needs the block's only write right.
    #[error("publish needs the block's only write right: drop writable partitions and publish the block allocate returned")]
    NotSoleWriter,
    /// A per-component limit (subscriptions, messages held, the handles
    /// and mappings a pool mapping or a loan needs) would be exceeded.
    #[error("a per-component limit (subscriptions, messages held, handles, mappings) would be exceeded: drop or release first")]
    LimitExceeded,
}

impl PubSubError {
    /// What a refused clone or attach of a pool block becomes: for a loan
    /// (`publisher.loan`) and for mapping a pool (`map-pool`), in every
    /// backend alike.
    pub fn from_attach(e: ExchangeError) -> PubSubError {
        match e {
            ExchangeError::NoStorage | ExchangeError::AmbiguousMemory => PubSubError::NoStorage,
            ExchangeError::LimitExceeded => PubSubError::LimitExceeded,
            _ => PubSubError::Internal,
        }
    }
}

/// `From` conversions both ways between [`PubSubError`] and a type
/// generated from the WIT `pub-sub-error`, whose cases have the same names.
#[macro_export]
macro_rules! pubsub_error_conversions {
    ($wit:ty) => {
        $crate::__error_conversions!($crate::PubSubError, $wit;
            PoolExhausted, StillAttached, ForeignBlock, TopicTaken, InvalidArgument,
            Internal, NotPooled, NoStorage, PoolChanged, MessagesHeld, UnknownLease,
            NotPermitted, NotSoleWriter, LimitExceeded);
    };
}
