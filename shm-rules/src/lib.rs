//! The attach rules of zero-copy memory blocks as plain logic: no wasm, no
//! system calls, no `unsafe`.
//!
//! A [`Ledger`] records blocks, handles, attachments and the storage each
//! guest donated, and decides what an operation must do. It never touches
//! memory itself: [`Ledger::attach`] returns a [`Placement`] that says where
//! the bytes go (map, copy or local), and [`Ledger::detach`] returns a
//! [`Release`] that says what to undo. The host's mapping layer carries those
//! out; a fuzzer or an in-process backend can drive the same logic directly.
//!
//! Vocabulary:
//! - a *backing* is the bytes of a block (shared pages in the host, anything
//!   in other drivers: the ledger is generic over it);
//! - a *content* is a byte range of a backing with its own valid length:
//!   a block and its clones share one content, a partition has its own;
//! - a *handle* is what a guest holds (one per resource handle); it names a
//!   content, may be read-only, and holds at most one attachment;
//! - a *guest* is one component instance's memory owner: it donates storage,
//!   owns handles and is charged for the blocks it created;
//! - a *loan* is what a `borrow<memory-block>` becomes when it crosses to
//!   another guest: an alias valid for the call, and everything derived from
//!   it (clones, partitions, attachments, wherever they were moved) is
//!   *revoked* when the loan ends.
//!
//! Rights only ever attenuate:
//! - a handle is writable or read-only; a clone is read-only, a partition is
//!   at most as writable as its source, an alias (a loan) has its source's
//!   rights, and every handle derived from a loan belongs to that loan;
//! - a read-only handle can never change a block's contents, its valid bytes
//!   or its consumed offset: it cannot attach for writing, and it cannot
//!   attach exclusively (an exclusive read excludes other readers and its
//!   `detach` consumes for every handle): both fail with `ReadOnly`. (One
//!   consequence is not an escalation: a pool mapping is usually held
//!   through a read-only clone, and ending it abandons the same guest's
//!   write in it, [`Ledger::write_in_pool`], which that guest made with its
//!   own write right.)
//! - [`Ledger::other_writers`] tells a driver whether a handle is the only
//!   writable one of its block (publish/subscribe requires it);
//! - a write attachment that ends without a `detach` (the handle dropped,
//!   moved or revoked) commits nothing: every content of the block that
//!   overlaps it is left with no valid bytes, whether the attachment was
//!   mapped or copied, so uncommitted bytes never become visible.

use std::collections::BTreeMap;

use id_hash::IdSet;
pub use id_hash::{IdHasher, IdMap};

mod exchange_error;
pub mod guest_text;
mod id_hash;
pub mod log_budget;
pub mod pubsub;

pub use exchange_error::ExchangeError;
pub use pubsub::PubSubError;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Identifies a guest (one store, one linear memory in the normal case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestId(pub u64);

/// Identifies a handle to a block. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(pub u64);

/// Identifies a backing (the bytes of a block). Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackingId(pub u64);

/// Identifies a linear memory, as the mapping layer numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ContentId(u64);

/// Identifies a loan (a borrowed handle lent to another guest for a call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoanId(pub u64);

/// Per-guest limits. Exceeding one is reported, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live blocks a guest may have created (partitions and clones excluded).
    pub max_blocks: u32,
    /// Total bytes of the live blocks a guest created.
    pub max_bytes: u64,
    /// Handles a guest may hold at once (clones and partitions included).
    pub max_handles: u32,
    /// Storage regions a guest may donate.
    pub max_storage_regions: u32,
    /// Live mapped attachments a guest may have at once (pool mappings
    /// included): each is a mapping of the process, and the process has a
    /// bounded number of them.
    pub max_mappings: u32,
    /// Bytes one copied attachment may hold (the copy fallback, for a view
    /// that cannot be mapped: an unaligned partition, no aligned storage):
    /// the host copies them on the guest's behalf, so one call's copy work
    /// is bounded. Past it, the attach fails with a limit error.
    pub max_copy: u32,
}

/// Limits of the whole process, shared by every guest. A guest reaches its
/// own [`Limits`] first in normal use; these keep the guests together from
/// exhausting what the process has (file descriptors, mappings), so that an
/// operation fails with a limit error before a system call would fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Live host-owned blocks (each holds a file descriptor in the host).
    pub max_blocks: u64,
    /// Live mapped attachments over all guests.
    pub max_mappings: u64,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            max_blocks: u64::MAX,
            max_mappings: u64::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blocks: 1024,
            max_bytes: 1 << 30,
            max_handles: 16 * 1024,
            max_storage_regions: 64,
            max_mappings: 1024,
            max_copy: 16 << 20,
        }
    }
}

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

    fn conflicts_with(self, other: Access) -> bool {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attachment {
    access: Access,
    placement: Placement,
    /// Visible bytes (`memory-area.size`).
    visible: u32,
    /// Backing range covered, for conflict checks.
    lo: u64,
    hi: u64,
    /// For an in-pool attachment: the pool mapping it lies in.
    pool: Option<HandleId>,
}

impl Attachment {
    /// Does this attachment cover any of the backing bytes `lo .. hi`? An
    /// empty range counts as its first byte, so that empty blocks still
    /// conflict.
    fn overlaps(&self, lo: u64, hi: u64) -> bool {
        self.lo < hi.max(lo + 1) && lo < self.hi.max(self.lo + 1)
    }
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

/// After `c`'s valid bytes were written (its `valid` set): the rest of
/// their last page within the content, to zero so that readers mapping
/// whole pages see zeros past them (host-owned bytes only).
fn tail_to_zero(page: u32, c: &Content, shared: bool) -> Option<(BackingId, u64, u64)> {
    let from = c.start + u64::from(c.valid);
    let to = round_up(from, u64::from(page)).min(c.start + u64::from(c.size));
    (to > from && shared).then_some((c.backing, from, to - from))
}

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
    /// [`Ledger::host_write`]).
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

/// What a backing is.
#[derive(Debug)]
enum Bytes<B> {
    /// Host-owned bytes (shared pages), `len` long.
    Shared(B),
    /// A region of one guest's own memory.
    Local {
        guest: GuestId,
        memory: MemoryId,
        offset: u32,
    },
}

#[derive(Debug)]
struct Backing<B> {
    bytes: Bytes<B>,
    len: u64,
    creator: GuestId,
    /// Live contents referring to this backing.
    contents: Vec<ContentId>,
    /// Live writable handles of this backing (through any content).
    writers: u32,
    /// Handles currently attached to this backing.
    attached: Vec<HandleId>,
}

#[derive(Debug)]
struct Content {
    backing: BackingId,
    start: u64,
    size: u32,
    valid: u32,
    consumed: u32,
    handles: u32,
}

#[derive(Debug)]
struct Handle {
    content: ContentId,
    owner: GuestId,
    writable: bool,
    /// The loan this handle was derived from, if any: it is revoked when
    /// the loan ends.
    loan: Option<LoanId>,
    attachment: Option<Attachment>,
}

/// A loan: the handles derived from it, and the loans made from those.
#[derive(Debug, Default)]
struct Loan {
    parent: Option<LoanId>,
    children: Vec<LoanId>,
    handles: IdSet<HandleId>,
}

#[derive(Debug)]
struct Region {
    memory: MemoryId,
    start: u32,
    len: u32,
    /// Used ranges (start -> len), in guest offsets.
    used: BTreeMap<u32, u32>,
}

impl Region {
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.len)
    }

    /// First fit for `len` bytes at an offset that is a multiple of `align`.
    fn find(&self, len: u32, align: u32) -> Option<u32> {
        let mut cursor = u64::from(self.start);
        let fits = |at: u64, limit: u64| -> Option<u64> {
            let aligned = at.div_ceil(u64::from(align)) * u64::from(align);
            (aligned + u64::from(len) <= limit).then_some(aligned)
        };
        for (&s, &l) in &self.used {
            if let Some(at) = fits(cursor, u64::from(s)) {
                return u32::try_from(at).ok();
            }
            cursor = u64::from(s) + u64::from(l);
        }
        fits(cursor, self.end()).and_then(|at| u32::try_from(at).ok())
    }
}

#[derive(Debug)]
struct Guest {
    limits: Limits,
    regions: Vec<Region>,
    /// Local blocks' regions (memory, start, len), for overlap checks.
    locals: Vec<(MemoryId, u32, u32, BackingId)>,
    blocks: u32,
    bytes: u64,
    handles: u32,
    /// Live mapped attachments.
    mappings: u32,
}

impl Guest {
    fn overlaps(&self, memory: MemoryId, start: u32, len: u32) -> bool {
        let (a0, a1) = (u64::from(start), u64::from(start) + u64::from(len));
        let hit = |m: MemoryId, s: u32, l: u32| {
            m == memory && a0 < u64::from(s) + u64::from(l) && u64::from(s) < a1
        };
        self.regions.iter().any(|r| hit(r.memory, r.start, r.len))
            || self.locals.iter().any(|&(m, s, l, _)| hit(m, s, l))
    }

    /// The one memory this guest's storage lies in.
    fn storage_memory(&self) -> Result<Option<MemoryId>, AttachError> {
        let mut memories = self.regions.iter().map(|r| r.memory);
        let Some(first) = memories.next() else {
            return Ok(None);
        };
        if memories.any(|m| m != first) {
            return Err(AttachError::AmbiguousMemory);
        }
        Ok(Some(first))
    }

    /// Reserves `len` bytes aligned to `align` in some region.
    fn allocate(&mut self, len: u32, align: u32) -> Option<(MemoryId, u32)> {
        for region in &mut self.regions {
            if let Some(at) = region.find(len, align) {
                region.used.insert(at, len);
                return Some((region.memory, at));
            }
        }
        None
    }

    fn free(&mut self, memory: MemoryId, at: u32) {
        for region in &mut self.regions {
            if region.memory == memory && region.used.remove(&at).is_some() {
                return;
            }
        }
    }
}

/// How an attachment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// `detach(consumed)`.
    Detached(u32),
    /// Without a detach (the handle dropped, moved or revoked): a write
    /// commits nothing.
    Abandoned,
    /// Its placement was never carried out: nothing happened.
    Aborted,
}

/// Rounds `n` up to a multiple of `page`.
pub fn round_up(n: u64, page: u64) -> u64 {
    n.div_ceil(page) * page
}

/// The attach rules: every block, handle, attachment and storage region.
///
/// `B` is what backs a block's bytes in the driver (shared pages in the
/// host). The ledger only stores it and hands it back when the last handle
/// of the block is dropped.
#[derive(Debug)]
pub struct Ledger<B> {
    page: u32,
    next_id: u64,
    process: ProcessLimits,
    /// Live host-owned backings (for [`ProcessLimits::max_blocks`]).
    shared_blocks: u64,
    /// Live mapped attachments of all guests.
    mappings: u64,
    guests: IdMap<GuestId, Guest>,
    backings: IdMap<BackingId, Backing<B>>,
    contents: IdMap<ContentId, Content>,
    handles: IdMap<HandleId, Handle>,
    /// Revoked handles, by owner, until the owner drops them: they still
    /// count against its handle limit.
    revoked: IdMap<HandleId, GuestId>,
    loans: IdMap<LoanId, Loan>,
}

impl<B> Ledger<B> {
    /// A ledger for a host whose pages are `page` bytes (a power of two).
    pub fn new(page: u32) -> Self {
        Self::with_process_limits(page, ProcessLimits::default())
    }

    /// A ledger that also keeps the guests together within `process`.
    pub fn with_process_limits(page: u32, process: ProcessLimits) -> Self {
        assert!(page.is_power_of_two(), "page size must be a power of two");
        Ledger {
            page,
            next_id: 1,
            process,
            shared_blocks: 0,
            mappings: 0,
            guests: IdMap::default(),
            backings: IdMap::default(),
            contents: IdMap::default(),
            handles: IdMap::default(),
            revoked: IdMap::default(),
            loans: IdMap::default(),
        }
    }

    /// The process-wide limits.
    pub fn process_limits(&self) -> ProcessLimits {
        self.process
    }

    /// Live mapped attachments over all guests.
    pub fn live_mappings(&self) -> u64 {
        self.mappings
    }

    /// The page size mappings are made of.
    pub fn page_size(&self) -> u32 {
        self.page
    }

    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Registers a guest with its limits.
    pub fn add_guest(&mut self, limits: Limits) -> GuestId {
        let id = GuestId(self.fresh());
        self.guests.insert(
            id,
            Guest {
                limits,
                regions: Vec::new(),
                locals: Vec::new(),
                blocks: 0,
                bytes: 0,
                handles: 0,
                mappings: 0,
            },
        );
        id
    }

    /// Removes a guest whose memory is gone: its handles are dropped without
    /// undoing their placements (there is no memory left to undo them in).
    /// Returns the backings freed.
    pub fn remove_guest(&mut self, guest: GuestId) -> Vec<B> {
        let mut freed = Vec::new();
        for id in self.handles_held_by(guest) {
            if let Ok(dropped) = self.drop_handle(id) {
                freed.extend(dropped.freed);
            }
        }
        self.revoked.retain(|_, owner| *owner != guest);
        self.guests.remove(&guest);
        freed
    }

    /// Is `guest` known?
    pub fn has_guest(&self, guest: GuestId) -> bool {
        self.guests.contains_key(&guest)
    }

    fn handle(&self, id: HandleId) -> Result<&Handle, UnknownHandle> {
        match self.handles.get(&id) {
            Some(h) => Ok(h),
            None if self.revoked.contains_key(&id) => Err(UnknownHandle::Revoked),
            None => Err(UnknownHandle::Unknown),
        }
    }

    fn content_of(&self, id: HandleId) -> Result<&Content, UnknownHandle> {
        let h = self.handle(id)?;
        Ok(&self.contents[&h.content])
    }

    /// The guest that holds `handle`.
    pub fn owner(&self, handle: HandleId) -> Result<GuestId, UnknownHandle> {
        Ok(self.handle(handle)?.owner)
    }

    /// The size of the block `handle` names.
    pub fn size(&self, handle: HandleId) -> Result<u32, UnknownHandle> {
        Ok(self.content_of(handle)?.size)
    }

    /// The valid (not consumed) bytes of the block, as
    /// `(offset in the block, length)`.
    pub fn valid_range(&self, handle: HandleId) -> Result<(u32, u32), UnknownHandle> {
        let c = self.content_of(handle)?;
        Ok((c.consumed, c.valid - c.consumed))
    }

    /// Is `handle` writable?
    pub fn writable(&self, handle: HandleId) -> Result<bool, UnknownHandle> {
        Ok(self.handle(handle)?.writable)
    }

    /// Is `handle` attached, and with which access?
    pub fn attached(&self, handle: HandleId) -> Result<Option<Access>, UnknownHandle> {
        Ok(self.handle(handle)?.attachment.map(|a| a.access))
    }

    /// The access and placement of `handle`'s attachment, if it has one.
    pub fn attachment(
        &self,
        handle: HandleId,
    ) -> Result<Option<(Access, Placement)>, UnknownHandle> {
        Ok(self
            .handle(handle)?
            .attachment
            .map(|a| (a.access, a.placement)))
    }

    /// Is any part of the block `handle` names attached for writing (by any
    /// handle)?
    pub fn write_attached(&self, handle: HandleId) -> Result<bool, UnknownHandle> {
        let h = self.handle(handle)?;
        let c = &self.contents[&h.content];
        let (lo, hi) = (c.start, c.start + u64::from(c.size));
        let b = &self.backings[&c.backing];
        Ok(b.attached.iter().any(|other| {
            let a = self.handles[other].attachment.expect("listed as attached");
            a.access == Access::Write && a.overlaps(lo, hi)
        }))
    }

    /// The backing of `handle`, its byte range in it, and whether it is
    /// host-owned (`Some`) or local (`None`).
    pub fn backing_of(
        &self,
        handle: HandleId,
    ) -> Result<(BackingId, u64, Option<&B>), UnknownHandle> {
        let c = self.content_of(handle)?;
        let b = &self.backings[&c.backing];
        let bytes = match &b.bytes {
            Bytes::Shared(p) => Some(p),
            Bytes::Local { .. } => None,
        };
        Ok((c.backing, c.start, bytes))
    }

    /// The host-owned bytes of a backing.
    pub fn backing(&self, id: BackingId) -> Option<&B> {
        match &self.backings.get(&id)?.bytes {
            Bytes::Shared(p) => Some(p),
            Bytes::Local { .. } => None,
        }
    }

    /// The memory `guest`'s storage lies in: `None` without storage, an
    /// error when it lies in several.
    pub fn storage_memory(&self, guest: GuestId) -> Result<Option<MemoryId>, AttachError> {
        self.guests
            .get(&guest)
            .ok_or(AttachError::Unknown)?
            .storage_memory()
    }

    /// The first host-owned backing for which `pred` holds.
    pub fn find_backing(&self, mut pred: impl FnMut(&B) -> bool) -> Option<BackingId> {
        self.backings.iter().find_map(|(&id, b)| match &b.bytes {
            Bytes::Shared(p) if pred(p) => Some(id),
            _ => None,
        })
    }

    /// How many live handles name the block (backing) of `handle`, through
    /// any content, not counting handles that only hold a pool mapping
    /// ([`Access::Pool`]): those keep the bytes shown, not in use.
    pub fn handles_of_block(&self, handle: HandleId) -> Result<usize, UnknownHandle> {
        let backing = self.content_of(handle)?.backing;
        let all: usize = self.backings[&backing]
            .contents
            .iter()
            .map(|c| self.contents[c].handles as usize)
            .sum();
        let pool_maps = self.backings[&backing]
            .attached
            .iter()
            .filter(|h| self.handles[h].attachment.map(|a| a.access) == Some(Access::Pool))
            .count();
        Ok(all - pool_maps)
    }

    /// The guests that hold a handle of `handle`'s block (through any
    /// content), not counting handles that only hold a pool mapping: who
    /// keeps the block from returning to its pool.
    pub fn holders(&self, handle: HandleId) -> Result<Vec<GuestId>, UnknownHandle> {
        let backing = self.content_of(handle)?.backing;
        let mut out: Vec<GuestId> = self
            .handles
            .values()
            .filter(|h| {
                self.contents[&h.content].backing == backing
                    && h.attachment.map(|a| a.access) != Some(Access::Pool)
            })
            .map(|h| h.owner)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// How many blocks (backings) are alive.
    pub fn live_blocks(&self) -> usize {
        self.backings.len()
    }

    /// How many handles are alive.
    pub fn live_handles(&self) -> usize {
        self.handles.len()
    }

    fn charge_handle(&mut self, guest: GuestId) -> bool {
        match self.guests.get_mut(&guest) {
            Some(g) if g.handles < g.limits.max_handles => {
                g.handles += 1;
                true
            }
            _ => false,
        }
    }

    fn new_handle(
        &mut self,
        content: ContentId,
        owner: GuestId,
        writable: bool,
        loan: Option<LoanId>,
    ) -> HandleId {
        let id = HandleId(self.fresh());
        let c = self.contents.get_mut(&content).expect("content");
        c.handles += 1;
        if writable {
            self.backings.get_mut(&c.backing).expect("live").writers += 1;
        }
        if let Some(loan) = loan {
            self.loans
                .get_mut(&loan)
                .expect("a handle's loan is live")
                .handles
                .insert(id);
        }
        self.handles.insert(
            id,
            Handle {
                content,
                owner,
                writable,
                loan,
                attachment: None,
            },
        );
        id
    }

    fn new_content(&mut self, backing: BackingId, start: u64, size: u32, valid: u32) -> ContentId {
        let id = ContentId(self.fresh());
        self.backings
            .get_mut(&backing)
            .expect("backing")
            .contents
            .push(id);
        self.contents.insert(
            id,
            Content {
                backing,
                start,
                size,
                valid,
                consumed: 0,
                handles: 0,
            },
        );
        id
    }

    /// A new zeroed block of `size` bytes created by `guest`; `make` builds
    /// its backing once the limits allow it.
    pub fn create(
        &mut self,
        guest: GuestId,
        size: u32,
        make: impl FnOnce() -> Option<B>,
    ) -> Result<HandleId, CreateError> {
        let g = self.guests.get(&guest).ok_or(CreateError::UnknownGuest)?;
        if g.blocks >= g.limits.max_blocks
            || g.bytes + u64::from(size) > g.limits.max_bytes
            || g.handles >= g.limits.max_handles
            || self.shared_blocks >= self.process.max_blocks
        {
            return Err(CreateError::LimitExceeded);
        }
        let bytes = make().ok_or(CreateError::Backing)?;
        let g = self.guests.get_mut(&guest).expect("checked");
        g.blocks += 1;
        g.bytes += u64::from(size);
        g.handles += 1;
        self.shared_blocks += 1;
        let backing = BackingId(self.fresh());
        self.backings.insert(
            backing,
            Backing {
                bytes: Bytes::Shared(bytes),
                len: u64::from(size),
                creator: guest,
                contents: Vec::new(),
                writers: 0,
                attached: Vec::new(),
            },
        );
        let content = self.new_content(backing, 0, size, 0);
        Ok(self.new_handle(content, guest, true, None))
    }

    /// Wraps `len` bytes at `offset` of `memory`, which belongs to `guest`,
    /// as a block whose bytes are all valid.
    pub fn create_local(
        &mut self,
        guest: GuestId,
        memory: MemoryId,
        offset: u32,
        len: u32,
    ) -> Result<HandleId, StorageError> {
        let g = self.guests.get(&guest).ok_or(StorageError::UnknownGuest)?;
        if g.overlaps(memory, offset, len) {
            return Err(StorageError::Overlapping);
        }
        if g.handles >= g.limits.max_handles || g.blocks >= g.limits.max_blocks {
            return Err(StorageError::LimitExceeded);
        }
        let backing = BackingId(self.fresh());
        let g = self.guests.get_mut(&guest).expect("checked");
        g.locals.push((memory, offset, len, backing));
        g.blocks += 1;
        g.handles += 1;
        self.backings.insert(
            backing,
            Backing {
                bytes: Bytes::Local {
                    guest,
                    memory,
                    offset,
                },
                len: u64::from(len),
                creator: guest,
                contents: Vec::new(),
                writers: 0,
                attached: Vec::new(),
            },
        );
        let content = self.new_content(backing, 0, len, len);
        Ok(self.new_handle(content, guest, true, None))
    }

    /// A read-only handle to the same content, held by `owner`. It belongs
    /// to the loan of `handle`, if any.
    pub fn clone_handle(
        &mut self,
        handle: HandleId,
        owner: GuestId,
    ) -> Result<HandleId, HandleError> {
        self.derive(handle, owner, false, None)
    }

    /// Another handle to the same content with `handle`'s rights (at most
    /// `writable`), held by `owner`, in `loan` or else in `handle`'s loan.
    fn derive(
        &mut self,
        handle: HandleId,
        owner: GuestId,
        writable: bool,
        loan: Option<LoanId>,
    ) -> Result<HandleId, HandleError> {
        let h = self.handle(handle)?;
        let (content, writable, loan) = (h.content, h.writable && writable, loan.or(h.loan));
        if !self.guests.contains_key(&owner) {
            return Err(HandleError::UnknownGuest);
        }
        if !self.charge_handle(owner) {
            return Err(HandleError::LimitExceeded);
        }
        Ok(self.new_handle(content, owner, writable, loan))
    }

    /// Another handle to the same content with the same rights, held by
    /// `owner`, for good: what a host hands out of a block it holds (a
    /// publisher's pool block). For a borrow crossing to another guest for
    /// one call, use [`Ledger::lend`].
    pub fn alias(&mut self, handle: HandleId, owner: GuestId) -> Result<HandleId, HandleError> {
        self.derive(handle, owner, true, None)
    }

    /// Lends `handle` to `owner` for the length of a call: an alias with the
    /// same rights in a new loan. Whatever is derived from the alias
    /// (clones, partitions, and their attachments, wherever they are moved)
    /// belongs to the loan, and [`Ledger::end_loan`] revokes all of it.
    pub fn lend(
        &mut self,
        handle: HandleId,
        owner: GuestId,
    ) -> Result<(HandleId, LoanId), HandleError> {
        let parent = self.handle(handle)?.loan;
        let loan = LoanId(self.fresh());
        self.loans.insert(
            loan,
            Loan {
                parent,
                ..Loan::default()
            },
        );
        if let Some(p) = parent {
            self.loans.get_mut(&p).expect("live").children.push(loan);
        }
        match self.derive(handle, owner, true, Some(loan)) {
            Ok(alias) => Ok((alias, loan)),
            Err(e) => {
                drop(self.end_loan(loan));
                Err(e)
            }
        }
    }

    /// Ends `loan` and the loans made from its handles: every handle that
    /// belongs to them is revoked (its attachment ended, its block released;
    /// the guest holding it gets [`UnknownHandle::Revoked`] for it until it
    /// drops it). Returns, with the guest that held each, what to undo in
    /// its memory and the backings freed.
    pub fn end_loan(&mut self, loan: LoanId) -> Vec<(GuestId, Dropped<B>)> {
        let mut out = Vec::new();
        let Some(l) = self.loans.remove(&loan) else {
            return out;
        };
        if let Some(p) = l.parent.and_then(|p| self.loans.get_mut(&p)) {
            p.children.retain(|&c| c != loan);
        }
        for child in l.children {
            out.extend(self.end_loan(child));
        }
        for h in l.handles {
            out.extend(self.revoke(h));
        }
        out
    }

    /// Revokes every handle `guest` holds (a guest evicted for stalling
    /// others): what to undo in its memory, and the backings freed.
    pub fn revoke_guest(&mut self, guest: GuestId) -> Vec<(GuestId, Dropped<B>)> {
        let owned = self.handles_held_by(guest);
        owned.into_iter().filter_map(|h| self.revoke(h)).collect()
    }

    /// The live handles `guest` holds.
    fn handles_held_by(&self, guest: GuestId) -> Vec<HandleId> {
        self.handles
            .iter()
            .filter(|(_, h)| h.owner == guest)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Drops live `handle` but remembers it as revoked for its owner.
    fn revoke(&mut self, handle: HandleId) -> Option<(GuestId, Dropped<B>)> {
        let owner = self.handles.get(&handle)?.owner;
        let dropped = self.drop_handle(handle).ok()?;
        // Still charged to the owner until it drops the handle.
        if let Some(g) = self.guests.get_mut(&owner) {
            g.handles += 1;
            self.revoked.insert(handle, owner);
        }
        Some((owner, dropped))
    }

    /// How many writable handles of `handle`'s block exist besides
    /// `handle` itself, through any content (the block, its partitions,
    /// aliases). A driver that needs `handle` to hold the only write right
    /// (publishing a message) checks this.
    pub fn other_writers(&self, handle: HandleId) -> Result<u32, UnknownHandle> {
        let h = self.handle(handle)?;
        let c = &self.contents[&h.content];
        Ok(self.backings[&c.backing].writers - u32::from(h.writable))
    }

    /// A block for `start .. start + size` of `handle`'s block.
    pub fn partition(
        &mut self,
        handle: HandleId,
        start: u32,
        size: u32,
        writable: bool,
    ) -> Result<HandleId, PartitionError> {
        let h = self.handle(handle)?;
        let (owner, loan) = (h.owner, h.loan);
        if writable && !h.writable {
            return Err(PartitionError::ReadOnly);
        }
        let c = &self.contents[&h.content];
        if u64::from(start) + u64::from(size) > u64::from(c.size) {
            return Err(PartitionError::WrongSize);
        }
        let (backing, base, valid) = (c.backing, c.start, c.valid);
        if !self.charge_handle(owner) {
            return Err(PartitionError::LimitExceeded);
        }
        let valid = valid.saturating_sub(start).min(size);
        let content = self.new_content(backing, base + u64::from(start), size, valid);
        Ok(self.new_handle(content, owner, writable, loan))
    }

    /// Moves `handle` to `to`. An attachment it had is ended (valid bytes
    /// unchanged) and returned, to be undone in the old owner's memory.
    pub fn transfer(
        &mut self,
        handle: HandleId,
        to: GuestId,
    ) -> Result<Option<Release>, HandleError> {
        let from = self.handle(handle)?.owner;
        if from == to {
            return Ok(None);
        }
        if !self.guests.contains_key(&to) {
            return Err(HandleError::UnknownGuest);
        }
        if !self.charge_handle(to) {
            return Err(HandleError::LimitExceeded);
        }
        let release = self.end_attachment(handle, Ending::Abandoned);
        if let Some(g) = self.guests.get_mut(&from) {
            g.handles -= 1;
        }
        self.handles.get_mut(&handle).expect("checked").owner = to;
        Ok(release)
    }

    /// Records `buffer` (`len` bytes at `offset` of `memory`) as storage of
    /// `guest`.
    pub fn add_storage(
        &mut self,
        guest: GuestId,
        memory: MemoryId,
        offset: u32,
        len: u32,
    ) -> Result<(), StorageError> {
        let g = self
            .guests
            .get_mut(&guest)
            .ok_or(StorageError::UnknownGuest)?;
        if g.overlaps(memory, offset, len) {
            return Err(StorageError::Overlapping);
        }
        // A region that continues one donated earlier extends it, so that a
        // large donation can arrive in pieces (a host may bound the bytes
        // one call passes) and still hold a large attachment.
        if let Some(r) = g.regions.iter_mut().find(|r| {
            r.memory == memory && r.end() == u64::from(offset) && r.len.checked_add(len).is_some()
        }) {
            r.len += len;
            return Ok(());
        }
        if g.regions.len() >= g.limits.max_storage_regions as usize {
            return Err(StorageError::LimitExceeded);
        }
        g.regions.push(Region {
            memory,
            start: offset,
            len,
            used: BTreeMap::new(),
        });
        Ok(())
    }

    /// Storage needed for one attachment of `handle`'s block.
    pub fn minimum_size(&self, handle: HandleId) -> Result<u32, UnknownHandle> {
        let c = self.content_of(handle)?;
        let b = &self.backings[&c.backing];
        Ok(match b.bytes {
            Bytes::Local { .. } => 0,
            Bytes::Shared(_) if self.mappable(c, b.len) => self.optimum_size(1, c.size),
            Bytes::Shared(_) => c.size,
        })
    }

    /// Storage for `count` attachments of up to `size` bytes in one region.
    pub fn optimum_size(&self, count: u32, size: u32) -> u32 {
        if count == 0 {
            return 0;
        }
        let page = u64::from(self.page);
        let need = u64::from(count) * round_up(u64::from(size), page) + page - 1;
        u32::try_from(need).unwrap_or(u32::MAX)
    }

    /// Can `content` be mapped without exposing bytes outside it?
    fn mappable(&self, c: &Content, backing_len: u64) -> bool {
        let page = u64::from(self.page);
        let end = c.start + u64::from(c.size);
        c.start.is_multiple_of(page) && (end.is_multiple_of(page) || end == backing_len)
    }

    /// Attaches `handle` for `guest` with `access`. The attachment is
    /// recorded; the caller must carry out the returned placement, or call
    /// [`Ledger::abort_attach`] if it cannot.
    pub fn attach(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        access: Access,
    ) -> Result<Attached, AttachError> {
        let h = self.unattached(guest, handle)?;
        // Writing, and an exclusive read (it shuts out every other reader
        // and its detach consumes for all handles), need the write right.
        if matches!(access, Access::Write | Access::ReadExclusive) && !h.writable {
            return Err(AttachError::ReadOnly);
        }
        let c = &self.contents[&h.content];
        let backing_id = c.backing;
        let b = &self.backings[&backing_id];
        let (lo, hi) = (c.start, c.start + u64::from(c.size));
        self.check_conflicts(backing_id, lo, hi, access)?;
        // The bytes the guest sees: the whole block for a writer, the valid
        // and not yet consumed bytes for a reader.
        // A pool mapping covers the whole block too: its valid bytes change
        // with every message.
        let (view_start, visible) = match access {
            Access::Write | Access::Pool => (0, c.size),
            _ => (c.consumed, c.valid - c.consumed),
        };
        let g = self.guests.get(&guest).ok_or(AttachError::Unknown)?;
        let placement = match b.bytes {
            Bytes::Local {
                guest: holder,
                memory,
                offset,
            } => {
                if holder != guest || access == Access::Pool {
                    return Err(AttachError::WrongMemory);
                }
                let at = u64::from(offset) + c.start + u64::from(view_start);
                Placement::Local {
                    memory,
                    guest_offset: u32::try_from(at).map_err(|_| AttachError::WrongMemory)?,
                    len: visible,
                }
            }
            Bytes::Shared(_) if visible == 0 => Placement::Empty,
            Bytes::Shared(_) => {
                // Refuse to guess when storage lies in several memories.
                g.storage_memory()?.ok_or(AttachError::NoStorage)?;
                let page = u64::from(self.page);
                let first = c.start + u64::from(view_start);
                let file_offset = first / page * page;
                let mapped_len = round_up(first + u64::from(visible), page) - file_offset;
                let mappable = self.mappable(c, b.len);
                let g = self.guests.get_mut(&guest).expect("checked");
                let room =
                    g.mappings < g.limits.max_mappings && self.mappings < self.process.max_mappings;
                let mapped = match u32::try_from(mapped_len) {
                    Ok(len) if mappable && room => {
                        g.allocate(len, self.page).map(|(m, at)| (m, at, len))
                    }
                    _ => None,
                };
                // Past the mapping limits a copy would hide the refusal: the
                // caller learns that it holds too many mappings.
                if mappable && !room {
                    return Err(AttachError::LimitExceeded);
                }
                match mapped {
                    // A copy would be a snapshot, not a view of later
                    // messages: a pool mapping is mapped or nothing.
                    None if access == Access::Pool => return Err(AttachError::NoStorage),
                    Some((memory, guest_offset, len)) => Placement::Mapped {
                        memory,
                        guest_offset,
                        backing: backing_id,
                        file_offset,
                        len,
                        skew: (first - file_offset) as u32,
                        writable: access == Access::Write,
                    },
                    None if visible > g.limits.max_copy => return Err(AttachError::LimitExceeded),
                    None => {
                        let (memory, guest_offset) =
                            g.allocate(visible, 8).ok_or(AttachError::NoStorage)?;
                        Placement::Copied {
                            memory,
                            guest_offset,
                            backing: backing_id,
                            backing_offset: first,
                            len: visible,
                        }
                    }
                }
            }
        };
        Ok(self.record(
            handle,
            backing_id,
            Attachment {
                access,
                placement,
                visible,
                lo,
                hi,
                pool: None,
            },
        ))
    }

    /// `handle`, if `guest` holds it and it is not attached.
    fn unattached(&self, guest: GuestId, handle: HandleId) -> Result<&Handle, AttachError> {
        let h = self.handle(handle)?;
        if h.owner != guest {
            return Err(AttachError::Unknown);
        }
        if h.attachment.is_some() {
            return Err(AttachError::AlreadyAttached);
        }
        Ok(h)
    }

    /// `Busy` if an attachment of `backing` overlapping `lo .. hi`
    /// conflicts with `access`.
    fn check_conflicts(
        &self,
        backing: BackingId,
        lo: u64,
        hi: u64,
        access: Access,
    ) -> Result<(), AttachError> {
        let busy = self.backings[&backing].attached.iter().any(|other| {
            let a = self.handles[other].attachment.expect("listed as attached");
            a.overlaps(lo, hi) && access.conflicts_with(a.access)
        });
        if busy {
            Err(AttachError::Busy)
        } else {
            Ok(())
        }
    }

    /// Records `attachment` of `handle` (of `backing`) and describes it.
    fn record(&mut self, handle: HandleId, backing: BackingId, attachment: Attachment) -> Attached {
        let h = self.handles.get_mut(&handle).expect("checked");
        h.attachment = Some(attachment);
        if let Placement::Mapped { .. } = attachment.placement {
            self.mappings += 1;
            if let Some(g) = self.guests.get_mut(&h.owner) {
                g.mappings += 1;
            }
        }
        self.backings
            .get_mut(&backing)
            .expect("live")
            .attached
            .push(handle);
        let placement = attachment.placement;
        Attached {
            placement,
            address: placement.address(),
            size: attachment.visible,
        }
    }

    /// Undoes an attach whose placement could not be carried out (nothing
    /// was written: the valid bytes stay).
    pub fn abort_attach(&mut self, handle: HandleId) {
        self.end_attachment(handle, Ending::Aborted);
    }

    /// Attaches `handle` for `guest` read-only and shared, in place: its
    /// bytes must lie inside `mapping`, a pool mapping ([`Access::Pool`])
    /// that `guest` holds of the same block, and the placement is
    /// [`Placement::InPool`] there, so that nothing needs mapping. The
    /// attachment follows the rules of [`Access::ReadShared`]: while it
    /// lasts no write attachment of those bytes can be made. It ends when
    /// `mapping` does. (A guest may map a block more than once, e.g. as the
    /// topic's publisher and as a subscriber: the caller says which.)
    pub fn attach_in_pool(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        mapping: HandleId,
    ) -> Result<Attached, AttachError> {
        self.in_pool(guest, handle, mapping, Access::ReadShared)
    }

    /// Attaches `handle` for `guest` for writing, in place: as
    /// [`Ledger::attach_in_pool`] (the bytes must lie inside `mapping`, a
    /// pool mapping `guest` holds of the same block; [`Placement::InPool`],
    /// nothing to map), with the rules of [`Access::Write`]: `handle` needs
    /// the write right, no other attachment of those bytes may exist, the
    /// whole handle is shown, and `detach` commits the valid bytes. The
    /// mapping layer makes those bytes writable for `guest` while the
    /// attachment lasts (a publisher's write window onto its pool). Should
    /// `mapping` end first, the write is abandoned (nothing of it is valid).
    pub fn write_in_pool(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        mapping: HandleId,
    ) -> Result<Attached, AttachError> {
        self.in_pool(guest, handle, mapping, Access::Write)
    }

    fn in_pool(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        mapping: HandleId,
        access: Access,
    ) -> Result<Attached, AttachError> {
        let h = self.unattached(guest, handle)?;
        if access == Access::Write && !h.writable {
            return Err(AttachError::ReadOnly);
        }
        let c = &self.contents[&h.content];
        let backing_id = c.backing;
        let (lo, hi) = (c.start, c.start + u64::from(c.size));
        self.check_conflicts(backing_id, lo, hi, access)?;
        // `mapping` must be this guest's pool mapping of the block, covering
        // the bytes.
        let pool = self
            .handles
            .get(&mapping)
            .filter(|m| m.owner == guest && self.contents[&m.content].backing == backing_id)
            .and_then(|m| match m.attachment {
                Some(Attachment {
                    access: Access::Pool,
                    placement:
                        Placement::Mapped {
                            memory,
                            guest_offset,
                            file_offset,
                            ..
                        },
                    lo: mlo,
                    hi: mhi,
                    ..
                }) if mlo <= lo && hi <= mhi => Some((memory, guest_offset, file_offset)),
                _ => None,
            });
        let (memory, guest_offset, file_offset) = pool.ok_or(AttachError::NotMapped)?;
        // A writer sees the whole handle, a reader its unconsumed valid bytes.
        let (first, visible) = match access {
            Access::Write => (c.start, c.size),
            _ => (c.start + u64::from(c.consumed), c.valid - c.consumed),
        };
        let at = u64::from(guest_offset) + (first - file_offset);
        let placement = Placement::InPool {
            memory,
            guest_offset: u32::try_from(at).map_err(|_| AttachError::NotMapped)?,
            len: visible,
        };
        Ok(self.record(
            handle,
            backing_id,
            Attachment {
                access,
                placement,
                visible,
                lo,
                hi,
                pool: Some(mapping),
            },
        ))
    }

    /// Where the host may write `len` bytes at `offset` of `handle`'s block
    /// on behalf of `guest`, which holds it: the backing and the byte
    /// offset in it. The handle must be writable and detached, and no
    /// handle of the block attached for writing, so that no guest writes
    /// the same bytes meanwhile. Nothing changes here: commit the bytes
    /// with [`Ledger::host_commit`].
    pub fn host_write(
        &self,
        guest: GuestId,
        handle: HandleId,
        offset: u32,
        len: u32,
    ) -> Result<(BackingId, u64), HostWriteError> {
        let h = self.handle(handle)?;
        if h.owner != guest {
            return Err(HostWriteError::Unknown);
        }
        if !h.writable {
            return Err(HostWriteError::ReadOnly);
        }
        if h.attachment.is_some() || self.write_attached(handle)? {
            return Err(HostWriteError::Busy);
        }
        let c = &self.contents[&h.content];
        match offset.checked_add(len) {
            Some(end) if end <= c.size => Ok((c.backing, c.start + u64::from(offset))),
            _ => Err(HostWriteError::WrongSize),
        }
    }

    /// Commits `len` bytes the host wrote from the start of `handle`'s
    /// block (see [`Ledger::host_write`]) as its valid bytes, as a write
    /// detach of `len` would. Returns the bytes to zero (the rest of the
    /// last valid page) so that readers mapping whole pages see zeros past
    /// the valid bytes.
    pub fn host_commit(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        len: u32,
    ) -> Result<Option<(BackingId, u64, u64)>, HostWriteError> {
        self.host_write(guest, handle, 0, len)?;
        let content = self.handle(handle)?.content;
        let c = self.contents.get_mut(&content).expect("live");
        c.valid = len;
        c.consumed = 0;
        let shared = matches!(self.backings[&c.backing].bytes, Bytes::Shared(_));
        Ok(tail_to_zero(self.page, c, shared))
    }

    /// Ends the attachment of `handle`. `consumed` is the valid length after
    /// a write, the bytes consumed after an exclusive read.
    pub fn detach(
        &mut self,
        guest: GuestId,
        handle: HandleId,
        consumed: u32,
    ) -> Result<Release, DetachError> {
        let h = self.handle(handle)?;
        if h.owner != guest {
            return Err(DetachError::Unknown);
        }
        let a = h.attachment.ok_or(DetachError::NotAttached)?;
        if consumed > a.visible {
            return Err(DetachError::WrongSize);
        }
        Ok(self
            .end_attachment(handle, Ending::Detached(consumed))
            .expect("attached"))
    }

    /// Ends an attachment (see [`Ending`]).
    fn end_attachment(&mut self, handle: HandleId, ending: Ending) -> Option<Release> {
        let consumed = match ending {
            Ending::Detached(n) => Some(n),
            Ending::Abandoned | Ending::Aborted => None,
        };
        let h = self.handles.get_mut(&handle)?;
        let a = h.attachment.take()?;
        let c = self.contents.get_mut(&h.content).expect("live");
        let mut release = Release {
            access: a.access,
            placement: a.placement,
            copy_out: 0,
            zero_tail: None,
        };
        if let Some(n) = consumed {
            match a.access {
                Access::Write => {
                    c.valid = n;
                    c.consumed = 0;
                    if let Placement::Copied { .. } = a.placement {
                        release.copy_out = n;
                    }
                    let shared = matches!(self.backings[&c.backing].bytes, Bytes::Shared(_));
                    release.zero_tail = tail_to_zero(self.page, c, shared);
                }
                Access::ReadExclusive => c.consumed += n,
                Access::ReadShared | Access::Pool => {}
            }
        }
        let backing = c.backing;
        let owner = h.owner;
        if ending == Ending::Abandoned && a.access == Access::Write && a.hi > a.lo {
            // Abandoned without a commit (mapped or copied alike): whatever
            // was written is not valid for anyone. (An empty attachment
            // wrote nothing.)
            for id in &self.backings[&backing].contents {
                let c = self.contents.get_mut(id).expect("listed");
                if c.start < a.hi.max(a.lo + 1) && a.lo < c.start + u64::from(c.size).max(1) {
                    c.valid = 0;
                    c.consumed = 0;
                }
            }
        }
        if let Placement::Mapped { .. } = a.placement {
            self.mappings -= 1;
            if let Some(g) = self.guests.get_mut(&owner) {
                g.mappings -= 1;
            }
        }
        let b = self.backings.get_mut(&backing).expect("live");
        b.attached.retain(|&x| x != handle);
        if let (Access::Pool, Placement::Mapped { .. }) = (a.access, a.placement) {
            // The in-pool attachments inside this mapping end with it: their
            // bytes are no longer shown.
            let dependents: Vec<HandleId> = b
                .attached
                .iter()
                .copied()
                .filter(|x| self.handles[x].attachment.and_then(|a| a.pool) == Some(handle))
                .collect();
            b.attached.retain(|x| !dependents.contains(x));
            let mut abandoned = Vec::new();
            for x in dependents {
                let ended = self.handles.get_mut(&x).expect("listed").attachment.take();
                if let Some(d) = ended.filter(|d| d.access == Access::Write && d.hi > d.lo) {
                    abandoned.push((d.lo, d.hi));
                }
            }
            // A write in the pool that ends with its mapping was never
            // committed: as for any abandoned write, nothing overlapping it
            // is valid any more.
            for (lo, hi) in abandoned {
                for id in &self.backings[&backing].contents {
                    let c = self.contents.get_mut(id).expect("listed");
                    if c.start < hi && lo < c.start + u64::from(c.size).max(1) {
                        c.valid = 0;
                        c.consumed = 0;
                    }
                }
            }
        }
        match a.placement {
            Placement::Mapped {
                memory,
                guest_offset,
                ..
            }
            | Placement::Copied {
                memory,
                guest_offset,
                ..
            } => {
                if let Some(g) = self.guests.get_mut(&owner) {
                    g.free(memory, guest_offset);
                }
            }
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => {}
        }
        Some(release)
    }

    /// Drops `handle`. An attachment it had is ended (valid bytes unchanged)
    /// and returned; the backing is returned when this was its last handle.
    /// A revoked handle is forgotten (it has nothing left to release).
    pub fn drop_handle(&mut self, handle: HandleId) -> Result<Dropped<B>, UnknownHandle> {
        if let Some(owner) = self.revoked.remove(&handle) {
            if let Some(g) = self.guests.get_mut(&owner) {
                g.handles -= 1;
            }
            return Ok(Dropped {
                release: None,
                freed: None,
            });
        }
        self.handle(handle)?;
        let release = self.end_attachment(handle, Ending::Abandoned);
        let h = self.handles.remove(&handle).expect("checked");
        if let Some(g) = self.guests.get_mut(&h.owner) {
            g.handles -= 1;
        }
        if let Some(loan) = h.loan.and_then(|l| self.loans.get_mut(&l)) {
            loan.handles.remove(&handle);
        }
        let c = self.contents.get_mut(&h.content).expect("live");
        c.handles -= 1;
        let backing = c.backing;
        if h.writable {
            self.backings.get_mut(&backing).expect("live").writers -= 1;
        }
        let mut freed = None;
        if c.handles == 0 {
            self.contents.remove(&h.content);
            let b = self.backings.get_mut(&backing).expect("live");
            b.contents.retain(|&x| x != h.content);
            if b.contents.is_empty() {
                let b = self.backings.remove(&backing).expect("live");
                if let Bytes::Shared(_) = b.bytes {
                    self.shared_blocks -= 1;
                }
                if let Some(g) = self.guests.get_mut(&b.creator) {
                    g.blocks -= 1;
                    match b.bytes {
                        Bytes::Shared(_) => g.bytes -= b.len,
                        Bytes::Local { .. } => g.locals.retain(|l| l.3 != backing),
                    }
                }
                if let Bytes::Shared(bytes) = b.bytes {
                    freed = Some(bytes);
                }
            }
        }
        Ok(Dropped { release, freed })
    }

    /// Checks the ledger's invariants; `Err` names the first one broken.
    /// Used by tests and the fuzzer.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (bid, b) in &self.backings {
            let attached: Vec<Attachment> = b
                .attached
                .iter()
                .map(|h| {
                    self.handles
                        .get(h)
                        .and_then(|h| h.attachment)
                        .ok_or("stale attached entry")
                })
                .collect::<Result<_, _>>()?;
            for (i, a) in attached.iter().enumerate() {
                for x in &attached[i + 1..] {
                    if a.overlaps(x.lo, x.hi) && a.access.conflicts_with(x.access) {
                        return Err(format!("conflicting attachments on {bid:?}"));
                    }
                }
            }
        }
        for (gid, g) in &self.guests {
            // Every mapped or copied placement lies inside one of the
            // guest's regions, and no two placements overlap.
            let mut spans: Vec<(MemoryId, u64, u64)> = Vec::new();
            for h in self.handles.values().filter(|h| h.owner == *gid) {
                let Some(a) = h.attachment else { continue };
                if let Placement::InPool {
                    memory,
                    guest_offset,
                    len,
                } = a.placement
                {
                    let (at, end) = (
                        u64::from(guest_offset),
                        u64::from(guest_offset) + u64::from(len),
                    );
                    // It lies in the pool mapping it names: a live handle
                    // of the same guest, mapping the same block.
                    let backing = self.contents[&h.content].backing;
                    let in_mapping = a.pool.and_then(|p| self.handles.get(&p)).is_some_and(|p| {
                        p.owner == *gid
                            && self.contents[&p.content].backing == backing
                            && matches!(p.attachment, Some(Attachment {
                                access: Access::Pool,
                                placement: Placement::Mapped { memory: m, guest_offset: g, len: l, .. },
                                ..
                            }) if m == memory && u64::from(g) <= at && end <= u64::from(g) + u64::from(l))
                    });
                    if !in_mapping || !matches!(a.access, Access::ReadShared | Access::Write) {
                        return Err(format!(
                            "in-pool attachment of {gid:?} outside its pool mappings"
                        ));
                    }
                    continue;
                }
                if a.access == Access::Pool
                    && !matches!(
                        a.placement,
                        Placement::Mapped {
                            writable: false,
                            ..
                        } | Placement::Empty
                    )
                {
                    return Err("a pool mapping that is not a read-only mapping".into());
                }
                let (memory, at, len) = match a.placement {
                    Placement::Mapped {
                        memory,
                        guest_offset,
                        len,
                        ..
                    }
                    | Placement::Copied {
                        memory,
                        guest_offset,
                        len,
                        ..
                    } => (memory, u64::from(guest_offset), u64::from(len)),
                    _ => continue,
                };
                if let Placement::Mapped { guest_offset, .. } = a.placement {
                    if guest_offset % self.page != 0 {
                        return Err("mapping not page aligned".into());
                    }
                }
                let inside = g
                    .regions
                    .iter()
                    .any(|r| r.memory == memory && u64::from(r.start) <= at && at + len <= r.end());
                if !inside {
                    return Err(format!("placement outside donated storage of {gid:?}"));
                }
                if spans
                    .iter()
                    .any(|&(m, s, l)| m == memory && at < s + l && s < at + len)
                {
                    return Err("overlapping placements".into());
                }
                spans.push((memory, at, len));
            }
        }
        for (id, c) in &self.contents {
            if c.valid > c.size || c.consumed > c.valid {
                return Err(format!("content {id:?} has valid bytes out of range"));
            }
        }
        // Counters agree with what they count.
        for (bid, b) in &self.backings {
            let writers = self
                .handles
                .values()
                .filter(|h| h.writable && self.contents[&h.content].backing == *bid)
                .count();
            if writers != b.writers as usize {
                return Err(format!(
                    "{bid:?} counts {} writers, has {writers}",
                    b.writers
                ));
            }
        }
        let mapped = |h: &&Handle| {
            matches!(
                h.attachment.map(|a| a.placement),
                Some(Placement::Mapped { .. })
            )
        };
        if self.handles.values().filter(mapped).count() as u64 != self.mappings {
            return Err("the process mapping count is off".into());
        }
        for (gid, g) in &self.guests {
            let n = self
                .handles
                .values()
                .filter(|h| h.owner == *gid)
                .filter(mapped)
                .count();
            if n != g.mappings as usize {
                return Err(format!("{gid:?} counts {} mappings, has {n}", g.mappings));
            }
            let held = self.handles.values().filter(|h| h.owner == *gid).count()
                + self.revoked.values().filter(|o| *o == gid).count();
            if held != g.handles as usize {
                return Err(format!(
                    "{gid:?} counts {} handles, holds {held}",
                    g.handles
                ));
            }
        }
        let shared = self
            .backings
            .values()
            .filter(|b| matches!(b.bytes, Bytes::Shared(_)))
            .count();
        if shared as u64 != self.shared_blocks {
            return Err("the process block count is off".into());
        }
        // Every handle of a loan is live and says so; revoked ones are gone.
        for (lid, l) in &self.loans {
            for h in &l.handles {
                if self.handles.get(h).and_then(|h| h.loan) != Some(*lid) {
                    return Err(format!("{lid:?} lists {h:?}, which is not in it"));
                }
            }
        }
        for h in self.handles.values() {
            if let Some(l) = h.loan {
                if !self.loans.contains_key(&l) {
                    return Err(format!("a live handle belongs to ended {l:?}"));
                }
            }
        }
        if self.revoked.keys().any(|h| self.handles.contains_key(h)) {
            return Err("a revoked handle is still live".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
