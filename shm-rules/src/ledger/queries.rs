//! What can be asked of the ledger: a handle's block, rights and attachment,
//! who holds a block, and counts.

use super::state::Bytes;
use super::Ledger;
use crate::{
    Access, AttachError, BackingId, GuestId, HandleId, MemoryId, Placement, ProcessLimits,
    UnknownHandle,
};

impl<B> Ledger<B> {
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

    /// How many writable handles of `handle`'s block exist besides
    /// `handle` itself, through any content (the block, its partitions,
    /// aliases). A driver that needs `handle` to hold the only write right
    /// (publishing a message) checks this.
    pub fn other_writers(&self, handle: HandleId) -> Result<u32, UnknownHandle> {
        let h = self.handle(handle)?;
        let c = &self.contents[&h.content];
        Ok(self.backings[&c.backing].writers - u32::from(h.writable))
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
}
