//! Attachments inside a pool mapping: a subscriber's read and a
//! publisher's write window, placed where the guest's pool mapping already
//! shows the bytes.

use super::state::Attachment;
use super::Ledger;
use crate::rights::{self, Operation};
use crate::{Access, AttachError, Attached, GuestId, HandleId, Placement};

impl<B> Ledger<B> {
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
        rights::check(Operation::in_pool(access), h.writable)?;
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
}
