//! The host writing into a block for the guest that holds it (a host-side
//! publisher filling a pool block).

use super::state::{tail_to_zero, Bytes};
use super::Ledger;
use crate::rights::{self, Operation};
use crate::{BackingId, GuestId, HandleId, HostWriteError};

impl<B> Ledger<B> {
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
        rights::check(Operation::HostWrite, h.writable)?;
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
}
