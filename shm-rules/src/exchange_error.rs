//! The `exchange` interface's `error` as plain Rust, and what each refusal
//! of the rules becomes in it: written once for every driver (the wasm host
//! converts it to the generated type; the native backend uses it as is).

use crate::{AttachError, CreateError, DetachError, HandleError, PartitionError, StorageError};

/// The cases of the WIT `error` of `zero-copy:shm/exchange`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// No free donated storage can hold the attachment.
    NoStorage,
    /// A conflicting attachment exists.
    Busy,
    /// A size or range is out of bounds.
    WrongSize,
    /// Detach without attach.
    NotAttached,
    /// The handle is already attached.
    AlreadyAttached,
    /// A write or exclusive read through a read-only handle.
    ReadOnly,
    /// Storage overlaps earlier storage or a local block.
    OverlappingStorage,
    /// A limit would be exceeded.
    LimitExceeded,
    /// Storage from several memories.
    AmbiguousMemory,
    /// The memory is not the host's.
    ForeignMemory,
    /// A local block attached by another guest.
    WrongMemory,
    /// The host failed.
    Internal,
    /// The handle was revoked.
    Revoked,
}

impl From<CreateError> for ExchangeError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::LimitExceeded => ExchangeError::LimitExceeded,
            CreateError::Backing | CreateError::UnknownGuest => ExchangeError::Internal,
        }
    }
}

impl From<StorageError> for ExchangeError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Overlapping => ExchangeError::OverlappingStorage,
            StorageError::LimitExceeded => ExchangeError::LimitExceeded,
            StorageError::UnknownGuest => ExchangeError::Internal,
        }
    }
}

impl From<AttachError> for ExchangeError {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NoStorage | AttachError::NotMapped => ExchangeError::NoStorage,
            AttachError::Busy => ExchangeError::Busy,
            AttachError::AlreadyAttached => ExchangeError::AlreadyAttached,
            AttachError::ReadOnly => ExchangeError::ReadOnly,
            AttachError::AmbiguousMemory => ExchangeError::AmbiguousMemory,
            AttachError::WrongMemory => ExchangeError::WrongMemory,
            AttachError::LimitExceeded => ExchangeError::LimitExceeded,
            AttachError::Revoked => ExchangeError::Revoked,
            AttachError::Unknown => ExchangeError::Internal,
        }
    }
}

impl From<DetachError> for ExchangeError {
    fn from(e: DetachError) -> Self {
        match e {
            DetachError::NotAttached => ExchangeError::NotAttached,
            DetachError::WrongSize => ExchangeError::WrongSize,
            DetachError::Revoked => ExchangeError::Revoked,
            DetachError::Unknown => ExchangeError::Internal,
        }
    }
}

impl From<PartitionError> for ExchangeError {
    fn from(e: PartitionError) -> Self {
        match e {
            PartitionError::WrongSize => ExchangeError::WrongSize,
            PartitionError::ReadOnly => ExchangeError::ReadOnly,
            PartitionError::LimitExceeded => ExchangeError::LimitExceeded,
            PartitionError::Revoked => ExchangeError::Revoked,
            PartitionError::Unknown => ExchangeError::Internal,
        }
    }
}

impl From<HandleError> for ExchangeError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::LimitExceeded => ExchangeError::LimitExceeded,
            HandleError::Revoked => ExchangeError::Revoked,
            HandleError::Unknown | HandleError::UnknownGuest => ExchangeError::Internal,
        }
    }
}
