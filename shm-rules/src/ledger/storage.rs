//! Storage a guest donates for attachments, and how much one needs.

use std::collections::BTreeMap;

use super::state::{Bytes, Content, Region};
use super::Ledger;
use crate::{round_up, GuestId, HandleId, MemoryId, StorageError, UnknownHandle};

impl<B> Ledger<B> {
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
    pub(super) fn mappable(&self, c: &Content, backing_len: u64) -> bool {
        let page = u64::from(self.page);
        let end = c.start + u64::from(c.size);
        c.start.is_multiple_of(page) && (end.is_multiple_of(page) || end == backing_len)
    }
}
