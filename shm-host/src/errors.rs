//! What the rules' refusals and the host's own failures become in the
//! `exchange` interface's `error`.

use crate::bindings::exchange::Error;
use crate::memory::MapError;
use crate::rules::{
    AttachError, CreateError, DetachError, HandleError, PartitionError, StorageError,
};

impl From<CreateError> for Error {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::LimitExceeded => Error::LimitExceeded,
            CreateError::Backing | CreateError::UnknownGuest => Error::Internal,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Overlapping => Error::OverlappingStorage,
            StorageError::LimitExceeded => Error::LimitExceeded,
            StorageError::UnknownGuest => Error::Internal,
        }
    }
}

impl From<AttachError> for Error {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NoStorage => Error::NoStorage,
            AttachError::Busy => Error::Busy,
            AttachError::AlreadyAttached => Error::AlreadyAttached,
            AttachError::ReadOnly => Error::ReadOnly,
            AttachError::AmbiguousMemory => Error::AmbiguousMemory,
            AttachError::WrongMemory => Error::WrongMemory,
            AttachError::NotMapped => Error::NoStorage,
            AttachError::LimitExceeded => Error::LimitExceeded,
            AttachError::Revoked => Error::Revoked,
            AttachError::Unknown => Error::Internal,
        }
    }
}

impl From<DetachError> for Error {
    fn from(e: DetachError) -> Self {
        match e {
            DetachError::NotAttached => Error::NotAttached,
            DetachError::WrongSize => Error::WrongSize,
            DetachError::Revoked => Error::Revoked,
            DetachError::Unknown => Error::Internal,
        }
    }
}

impl From<PartitionError> for Error {
    fn from(e: PartitionError) -> Self {
        match e {
            PartitionError::WrongSize => Error::WrongSize,
            PartitionError::ReadOnly => Error::ReadOnly,
            PartitionError::LimitExceeded => Error::LimitExceeded,
            PartitionError::Revoked => Error::Revoked,
            PartitionError::Unknown => Error::Internal,
        }
    }
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::LimitExceeded => Error::LimitExceeded,
            HandleError::Revoked => Error::Revoked,
            HandleError::Unknown | HandleError::UnknownGuest => Error::Internal,
        }
    }
}

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
