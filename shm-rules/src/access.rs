//! What an attachment is and what the mapping layer must do about it: the
//! access asked for, where the bytes go, and what to undo when it ends.

use crate::{BackingId, MemoryId};

/// The access an attachment has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write, exclusive.
    Write,
    /// Read-only, exclusive; `detach` consumes.
    ReadExclusive,
    /// Read-only, shared with other readers.
    ReadShared,
    /// A read-only mapping of a whole block that stays in a guest across
    /// many messages (pooled publish/subscribe). It conflicts with nothing
    /// and grants nothing by itself: each message is read through an
    /// attachment made by [`Ledger::attach_in_pool`], which follows the
    /// usual rules (shared read). Never requested through the WIT flags.
    ///
    /// [`Ledger::attach_in_pool`]: crate::Ledger::attach_in_pool
    Pool,
}

impl Access {
    /// The access the WIT flags ask for: `write` wins over `shared`.
    pub fn from_flags(write: bool, shared: bool) -> Access {
        match (write, shared) {
            (true, _) => Access::Write,
            (false, false) => Access::ReadExclusive,
            (false, true) => Access::ReadShared,
        }
    }

    pub(crate) fn conflicts_with(self, other: Access) -> bool {
        if self == Access::Pool || other == Access::Pool {
            return false;
        }
        !(self == Access::ReadShared && other == Access::ReadShared)
    }
}

/// Where an attachment's bytes live in the guest, and how they got there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Nothing to show (zero visible bytes).
    Empty,
    /// The backing's pages `file_offset .. file_offset + len` are mapped at
    /// `guest_offset` of `memory` (page aligned); the visible bytes start
    /// `skew` bytes later.
    Mapped {
        memory: MemoryId,
        guest_offset: u32,
        backing: BackingId,
        file_offset: u64,
        len: u32,
        skew: u32,
        writable: bool,
    },
    /// The visible bytes `backing_offset .. + len` are copied to
    /// `guest_offset` of `memory`.
    Copied {
        memory: MemoryId,
        guest_offset: u32,
        backing: BackingId,
        backing_offset: u64,
        len: u32,
    },
    /// A local block: the bytes already are at `guest_offset` of `memory`.
    Local {
        memory: MemoryId,
        guest_offset: u32,
        len: u32,
    },
    /// The bytes already are at `guest_offset` of `memory`, inside a pool
    /// mapping ([`Access::Pool`]) of the same guest: nothing to map or undo.
    InPool {
        memory: MemoryId,
        guest_offset: u32,
        len: u32,
    },
}

impl Placement {
    /// The guest address of the first visible byte.
    pub fn address(&self) -> u32 {
        match *self {
            Placement::Empty => 0,
            Placement::Mapped {
                guest_offset, skew, ..
            } => guest_offset + skew,
            Placement::Copied { guest_offset, .. }
            | Placement::Local { guest_offset, .. }
            | Placement::InPool { guest_offset, .. } => guest_offset,
        }
    }
}

/// A recorded attachment: where it is and what the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    /// What the mapping layer must do.
    pub placement: Placement,
    /// The guest address of the first visible byte (`memory-area.address`).
    pub address: u32,
    /// The visible bytes (`memory-area.size`).
    pub size: u32,
}

/// What the mapping layer must do when an attachment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// The access the attachment had (an in-pool write is a publisher's
    /// write window, which the mapping layer closes).
    pub access: Access,
    /// The placement to undo (put zero pages back, or copy out then zero).
    pub placement: Placement,
    /// After a write detach: copy this many bytes from the guest back into
    /// the backing (copied placements only).
    pub copy_out: u32,
    /// After a write detach: zero these backing bytes (the rest of the last
    /// valid page), so that readers mapping whole pages see zeros past the
    /// valid bytes.
    pub zero_tail: Option<(BackingId, u64, u64)>,
}

/// The result of dropping a handle.
#[derive(Debug)]
pub struct Dropped<B> {
    /// The attachment the handle still had, to undo in its owner's memory.
    pub release: Option<Release>,
    /// The backing, when this was its last handle.
    pub freed: Option<B>,
}
