//! What the rules' refusals and the host's own failures become in the
//! `exchange` interface's `error`.

use crate::bindings::exchange::Error;
use crate::os::memory::MapError;
use crate::rules::{
    AttachError, CreateError, DetachError, ExchangeError, HandleError, PartitionError, StorageError,
};

impl From<ExchangeError> for Error {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::NoStorage => Error::NoStorage,
            ExchangeError::Busy => Error::Busy,
            ExchangeError::WrongSize => Error::WrongSize,
            ExchangeError::NotAttached => Error::NotAttached,
            ExchangeError::AlreadyAttached => Error::AlreadyAttached,
            ExchangeError::ReadOnly => Error::ReadOnly,
            ExchangeError::OverlappingStorage => Error::OverlappingStorage,
            ExchangeError::LimitExceeded => Error::LimitExceeded,
            ExchangeError::AmbiguousMemory => Error::AmbiguousMemory,
            ExchangeError::ForeignMemory => Error::ForeignMemory,
            ExchangeError::WrongMemory => Error::WrongMemory,
            ExchangeError::Internal => Error::Internal,
            ExchangeError::Revoked => Error::Revoked,
        }
    }
}

/// Each refusal of the rules, through [`ExchangeError`] (mapped once, in
/// `shm-rules`, for the host and the native backend alike).
macro_rules! through_exchange_error {
    ($($e:ty),*) => {$(
        impl From<$e> for Error {
            fn from(e: $e) -> Self {
                ExchangeError::from(e).into()
            }
        }
    )*};
}

through_exchange_error!(
    CreateError,
    StorageError,
    AttachError,
    DetachError,
    PartitionError,
    HandleError
);

/// The largest block a guest may create: its linear memory is 4 GiB.
pub(crate) const MAX_BLOCK: u32 = u32::MAX - (1 << 16);

/// A block larger than [`MAX_BLOCK`] was asked for.
#[derive(Debug, thiserror::Error)]
#[error("a block may hold at most {MAX_BLOCK} bytes")]
pub(crate) struct TooLarge;

impl From<TooLarge> for Error {
    fn from(_: TooLarge) -> Self {
        Error::WrongSize
    }
}

/// Storage or a local block outside any memory this host created.
#[derive(Debug, thiserror::Error)]
#[error("the region is not in a linear memory created by this host")]
pub(crate) struct ForeignMemory;

impl From<ForeignMemory> for Error {
    fn from(_: ForeignMemory) -> Self {
        Error::ForeignMemory
    }
}

/// A placement the ledger allowed could not be carried out.
#[derive(Debug, thiserror::Error)]
#[error("the host could not map the block: {0}")]
pub(crate) struct PlaceFailed(pub(crate) MapError);

impl From<PlaceFailed> for Error {
    fn from(_: PlaceFailed) -> Self {
        Error::Internal
    }
}
