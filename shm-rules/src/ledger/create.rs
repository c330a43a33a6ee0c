//! Creating blocks and the handles derived from them: create, create a
//! local block, clone, alias, partition, and moving a handle to another
//! guest.

use super::state::{Backing, Bytes, Ending};
use super::Ledger;
use crate::rights::{self, Operation};
use crate::{
    BackingId, CreateError, GuestId, HandleError, HandleId, LoanId, MemoryId, PartitionError,
    Release, StorageError,
};

// A clone, an alias or a loan cannot be refused for the rights of its
// source (`HandleError` has no `ReadOnly`): the table must not require the
// write right of them.
const _: () = {
    let derivations = [Operation::Clone, Operation::Alias, Operation::Lend];
    let mut i = 0;
    while i < derivations.len() {
        assert!(matches!(
            rights::rule(derivations[i]).requires,
            rights::Right::Read
        ));
        i += 1;
    }
};

impl<B> Ledger<B> {
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
        self.derive(handle, owner, Operation::Clone, None)
    }

    /// Another handle to the same content with the same rights, held by
    /// `owner`, for good: what a host hands out of a block it holds (a
    /// publisher's pool block). For a borrow crossing to another guest for
    /// one call, use [`Ledger::lend`].
    pub fn alias(&mut self, handle: HandleId, owner: GuestId) -> Result<HandleId, HandleError> {
        self.derive(handle, owner, Operation::Alias, None)
    }

    /// Another handle to the same content with the rights `op` (a clone,
    /// an alias or a loan) gives it, held by `owner`, in `loan` or else in
    /// `handle`'s loan.
    pub(super) fn derive(
        &mut self,
        handle: HandleId,
        owner: GuestId,
        op: Operation,
        loan: Option<LoanId>,
    ) -> Result<HandleId, HandleError> {
        let h = self.handle(handle)?;
        let writable = rights::derived(op, h.writable, false);
        let (content, loan) = (h.content, loan.or(h.loan));
        if !self.guests.contains_key(&owner) {
            return Err(HandleError::UnknownGuest);
        }
        if !self.charge_handle(owner) {
            return Err(HandleError::LimitExceeded);
        }
        Ok(self.new_handle(content, owner, writable, loan))
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
        let op = Operation::partition(writable);
        rights::check(op, h.writable)?;
        let writable = rights::derived(op, h.writable, writable);
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
}
