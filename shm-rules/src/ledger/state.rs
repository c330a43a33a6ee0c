//! The ledger's private records: backings, contents, handles, loans,
//! storage regions and guests.

use std::collections::BTreeMap;

use crate::id_hash::IdSet;
use crate::{
    round_up, Access, AttachError, BackingId, ContentId, GuestId, HandleId, Limits, LoanId,
    MemoryId, Placement,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Attachment {
    pub(super) access: Access,
    pub(super) placement: Placement,
    /// Visible bytes (`memory-area.size`).
    pub(super) visible: u32,
    /// Backing range covered, for conflict checks.
    pub(super) lo: u64,
    pub(super) hi: u64,
    /// For an in-pool attachment: the pool mapping it lies in.
    pub(super) pool: Option<HandleId>,
}

impl Attachment {
    /// Does this attachment cover any of the backing bytes `lo .. hi`? An
    /// empty range counts as its first byte, so that empty blocks still
    /// conflict.
    pub(super) fn overlaps(&self, lo: u64, hi: u64) -> bool {
        self.lo < hi.max(lo + 1) && lo < self.hi.max(self.lo + 1)
    }
}

/// After `c`'s valid bytes were written (its `valid` set): the rest of
/// their last page within the content, to zero so that readers mapping
/// whole pages see zeros past them (host-owned bytes only).
pub(super) fn tail_to_zero(page: u32, c: &Content, shared: bool) -> Option<(BackingId, u64, u64)> {
    let from = c.start + u64::from(c.valid);
    let to = round_up(from, u64::from(page)).min(c.start + u64::from(c.size));
    (to > from && shared).then_some((c.backing, from, to - from))
}

/// What a backing is.
#[derive(Debug)]
pub(super) enum Bytes<B> {
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
pub(super) struct Backing<B> {
    pub(super) bytes: Bytes<B>,
    pub(super) len: u64,
    pub(super) creator: GuestId,
    /// Live contents referring to this backing.
    pub(super) contents: Vec<ContentId>,
    /// Live writable handles of this backing (through any content).
    pub(super) writers: u32,
    /// Handles currently attached to this backing.
    pub(super) attached: Vec<HandleId>,
}

#[derive(Debug)]
pub(super) struct Content {
    pub(super) backing: BackingId,
    pub(super) start: u64,
    pub(super) size: u32,
    pub(super) valid: u32,
    pub(super) consumed: u32,
    pub(super) handles: u32,
}

#[derive(Debug)]
pub(super) struct Handle {
    pub(super) content: ContentId,
    pub(super) owner: GuestId,
    pub(super) writable: bool,
    /// The loan this handle was derived from, if any: it is revoked when
    /// the loan ends.
    pub(super) loan: Option<LoanId>,
    pub(super) attachment: Option<Attachment>,
}

/// A loan: the handles derived from it, and the loans made from those.
#[derive(Debug, Default)]
pub(super) struct Loan {
    pub(super) parent: Option<LoanId>,
    pub(super) children: Vec<LoanId>,
    pub(super) handles: IdSet<HandleId>,
}

#[derive(Debug)]
pub(super) struct Region {
    pub(super) memory: MemoryId,
    pub(super) start: u32,
    pub(super) len: u32,
    /// Used ranges (start -> len), in guest offsets.
    pub(super) used: BTreeMap<u32, u32>,
}

impl Region {
    pub(super) fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.len)
    }

    /// First fit for `len` bytes at an offset that is a multiple of `align`.
    pub(super) fn find(&self, len: u32, align: u32) -> Option<u32> {
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
pub(super) struct Guest {
    pub(super) limits: Limits,
    pub(super) regions: Vec<Region>,
    /// Local blocks' regions (memory, start, len), for overlap checks.
    pub(super) locals: Vec<(MemoryId, u32, u32, BackingId)>,
    pub(super) blocks: u32,
    pub(super) bytes: u64,
    pub(super) handles: u32,
    /// Live mapped attachments.
    pub(super) mappings: u32,
}

impl Guest {
    pub(super) fn overlaps(&self, memory: MemoryId, start: u32, len: u32) -> bool {
        let (a0, a1) = (u64::from(start), u64::from(start) + u64::from(len));
        let hit = |m: MemoryId, s: u32, l: u32| {
            m == memory && a0 < u64::from(s) + u64::from(l) && u64::from(s) < a1
        };
        self.regions.iter().any(|r| hit(r.memory, r.start, r.len))
            || self.locals.iter().any(|&(m, s, l, _)| hit(m, s, l))
    }

    /// The one memory this guest's storage lies in.
    pub(super) fn storage_memory(&self) -> Result<Option<MemoryId>, AttachError> {
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
    pub(super) fn allocate(&mut self, len: u32, align: u32) -> Option<(MemoryId, u32)> {
        for region in &mut self.regions {
            if let Some(at) = region.find(len, align) {
                region.used.insert(at, len);
                return Some((region.memory, at));
            }
        }
        None
    }

    pub(super) fn free(&mut self, memory: MemoryId, at: u32) {
        for region in &mut self.regions {
            if region.memory == memory && region.used.remove(&at).is_some() {
                return;
            }
        }
    }
}

/// How an attachment ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// `detach(consumed)`.
    Detached(u32),
    /// Without a detach (the handle dropped, moved or revoked): a write
    /// commits nothing.
    Abandoned,
    /// Its placement was never carried out: nothing happened.
    Aborted,
}
