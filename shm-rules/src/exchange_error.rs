//! The `exchange` interface's `error` as plain Rust, with its messages, and
//! what each refusal of the rules becomes in it: written once for every
//! driver (the wasm host and the guest crate convert it to and from the
//! generated type with [`exchange_error_conversions!`](crate::exchange_error_conversions);
//! the native backend uses it as is).

use crate::{
    AttachError, CreateError, DetachError, HandleError, PartitionError, StorageError, UnknownHandle,
};

/// The cases of the WIT `error` of `zero-copy:shm/exchange`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// No free donated storage can hold the attachment.
    #[error("no free storage for this attachment: donate more (add-storage, reserve_storage)")]
    NoStorage,
    /// A conflicting attachment exists.
    #[error("the block is attached in a conflicting way: detach the other attachment first")]
    Busy,
    /// A size or range is out of bounds.
    #[error("a size or range is out of bounds")]
    WrongSize,
    /// Detach without attach.
    #[error("the block is not attached")]
    NotAttached,
    /// The handle is already attached.
    #[error("this handle is already attached: use a clone for a second attachment")]
    AlreadyAttached,
    /// A write or exclusive read through a read-only handle.
    #[error("this handle is read-only")]
    ReadOnly,
    /// Storage overlaps earlier storage or a local block.
    #[error("the storage overlaps storage donated earlier")]
    OverlappingStorage,
    /// A limit would be exceeded.
    #[error("a per-component limit (blocks, bytes, handles, storage regions, mappings, copy size) would be exceeded")]
    LimitExceeded,
    /// Storage from several memories.
    #[error("the host cannot tell which linear memory to use")]
    AmbiguousMemory,
    /// The memory is not the host's.
    #[error("this component's memory was not created by the host")]
    ForeignMemory,
    /// A local block attached by another guest.
    #[error("a local block can only be attached by the component that created it")]
    WrongMemory,
    /// The host failed.
    #[error("the host failed; see its log")]
    Internal,
    /// The handle was revoked.
    #[error("the handle was revoked: it came from a borrowed block whose call has returned")]
    Revoked,
}

impl From<UnknownHandle> for ExchangeError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => ExchangeError::Internal,
            UnknownHandle::Revoked => ExchangeError::Revoked,
        }
    }
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

/// `From` conversions both ways between [`ExchangeError`] and a type
/// generated from the WIT `error` (wasmtime's or wit-bindgen's), whose
/// cases have the same names: the list of cases is written here once.
#[macro_export]
macro_rules! exchange_error_conversions {
    ($wit:ty) => {
        $crate::__error_conversions!($crate::ExchangeError, $wit;
            NoStorage, Busy, WrongSize, NotAttached, AlreadyAttached, ReadOnly,
            OverlappingStorage, LimitExceeded, AmbiguousMemory, ForeignMemory,
            WrongMemory, Internal, Revoked);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __error_conversions {
    ($ours:ty, $wit:ty; $($case:ident),*) => {
        impl ::core::convert::From<$ours> for $wit {
            fn from(e: $ours) -> Self {
                type Ours = $ours;
                type Wit = $wit;
                match e { $(Ours::$case => Wit::$case,)* }
            }
        }
        impl ::core::convert::From<$wit> for $ours {
            fn from(e: $wit) -> Self {
                type Wit = $wit;
                type Ours = $ours;
                match e { $(Wit::$case => Ours::$case,)* }
            }
        }
    };
}
