//! Why an operation of the ledger was refused: one error enum per kind of
//! operation, and the conversions between them. (What each becomes in the
//! WIT `error` is in `exchange_error.rs`.)

use crate::rights::WriteRightNeeded;

macro_rules! error_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $msg:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
        pub enum $name {
            $($(#[$vm])* #[error($msg)] $variant,)*
        }
    };
}

error_enum! {
    /// Why a handle was not found.
    UnknownHandle {
        /// The handle does not exist, or belongs to another guest.
        Unknown => "unknown block handle: it was dropped, moved away, or never existed",
        /// The handle was derived from a loan that ended, or its guest was
        /// evicted: drop it.
        Revoked => "the handle was revoked (it came from a borrow that ended, or its guest was evicted): drop it",
    }
}

error_enum! {
    /// Why a block could not be created.
    CreateError {
        /// A per-guest limit would be exceeded.
        LimitExceeded => "the guest's block, byte or handle limit would be exceeded: drop blocks first",
        /// The driver could not create the backing.
        Backing => "the host could not create the block's memory",
        /// The guest is unknown.
        UnknownGuest => "unknown guest",
    }
}

error_enum! {
    /// Why storage could not be donated.
    StorageError {
        /// The region overlaps storage donated earlier or a local block.
        Overlapping => "the region overlaps storage donated earlier or a local block",
        /// Too many regions.
        LimitExceeded => "the guest donated too many storage regions",
        /// The guest is unknown.
        UnknownGuest => "unknown guest",
    }
}

error_enum! {
    /// Why an attach failed.
    AttachError {
        /// No storage slot fits.
        NoStorage => "no free donated storage can hold this attachment: donate at least minimum-size bytes",
        /// A conflicting attachment exists.
        Busy => "the bytes are attached in a conflicting way elsewhere: detach that first",
        /// This handle already has an attachment.
        AlreadyAttached => "this handle is already attached: detach it or attach a clone",
        /// A write attach through a read-only handle.
        ReadOnly => "this handle is read-only (a clone or a read-only partition)",
        /// Storage from several memories: the host cannot tell which to use.
        AmbiguousMemory => "storage from several linear memories was donated through one store",
        /// A local block attached by a guest that does not hold its memory.
        WrongMemory => "a local block can only be attached by the component whose memory holds it",
        /// An in-pool attach of a block the guest has not mapped as a pool.
        NotMapped => "the block is not mapped in this guest's pool: map the pool first",
        /// The guest's or the process's mapping limit would be exceeded.
        LimitExceeded => "the mapping limit (this guest's or the process's) would be exceeded: detach blocks first",
        /// The handle was revoked.
        Revoked => "the handle was revoked: drop it",
        /// The handle does not exist.
        Unknown => "unknown block handle",
    }
}

error_enum! {
    /// Why a detach failed.
    DetachError {
        /// The handle is not attached.
        NotAttached => "this handle is not attached",
        /// `consumed` is larger than the attached size.
        WrongSize => "consumed is larger than the attached size",
        /// The handle was revoked.
        Revoked => "the handle was revoked: drop it",
        /// The handle does not exist.
        Unknown => "unknown block handle",
    }
}

error_enum! {
    /// Why a partition could not be created.
    PartitionError {
        /// The range is outside the block.
        WrongSize => "the partition range lies outside the block",
        /// A writable partition of a read-only handle.
        ReadOnly => "a writable partition needs a writable handle",
        /// A per-guest limit would be exceeded.
        LimitExceeded => "the guest's handle limit would be exceeded",
        /// The handle was revoked.
        Revoked => "the handle was revoked: drop it",
        /// The handle does not exist.
        Unknown => "unknown block handle",
    }
}

error_enum! {
    /// Why a handle could not be cloned or moved.
    HandleError {
        /// A per-guest limit would be exceeded.
        LimitExceeded => "the guest's handle limit would be exceeded",
        /// The handle was revoked.
        Revoked => "the handle was revoked: drop it",
        /// The handle does not exist.
        Unknown => "unknown block handle",
        /// The receiving guest is unknown.
        UnknownGuest => "unknown guest",
    }
}

error_enum! {
    /// Why the host could not write into a block for the guest holding it
    /// (a host-side publisher filling a pool block, see
    /// [`Ledger::host_write`](crate::Ledger::host_write)).
    HostWriteError {
        /// The handle is read-only.
        ReadOnly => "the handle is read-only: the host writes only through a writable handle",
        /// The block is attached (this handle, or another for writing).
        Busy => "the block is attached: the host writes only into a detached block no one writes",
        /// The bytes would not fit in the block.
        WrongSize => "the bytes do not fit in the block",
        /// The handle was revoked.
        Revoked => "the handle was revoked: drop it",
        /// The handle does not exist, or belongs to another guest.
        Unknown => "unknown block handle",
    }
}

impl From<UnknownHandle> for HostWriteError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => HostWriteError::Unknown,
            UnknownHandle::Revoked => HostWriteError::Revoked,
        }
    }
}

impl From<UnknownHandle> for AttachError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => AttachError::Unknown,
            UnknownHandle::Revoked => AttachError::Revoked,
        }
    }
}
impl From<UnknownHandle> for DetachError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => DetachError::Unknown,
            UnknownHandle::Revoked => DetachError::Revoked,
        }
    }
}
impl From<UnknownHandle> for PartitionError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => PartitionError::Unknown,
            UnknownHandle::Revoked => PartitionError::Revoked,
        }
    }
}
impl From<UnknownHandle> for HandleError {
    fn from(e: UnknownHandle) -> Self {
        match e {
            UnknownHandle::Unknown => HandleError::Unknown,
            UnknownHandle::Revoked => HandleError::Revoked,
        }
    }
}

// Every `ReadOnly` refusal is the rights table's (`rights::check`).
impl From<WriteRightNeeded> for AttachError {
    fn from(_: WriteRightNeeded) -> Self {
        AttachError::ReadOnly
    }
}
impl From<WriteRightNeeded> for PartitionError {
    fn from(_: WriteRightNeeded) -> Self {
        PartitionError::ReadOnly
    }
}
impl From<WriteRightNeeded> for HostWriteError {
    fn from(_: WriteRightNeeded) -> Self {
        HostWriteError::ReadOnly
    }
}
