//! Attaching a handle: the access it asks for, the conflicts it must not
//! have, and where its bytes go (mapped, copied, local or empty).

use super::state::{Attachment, Bytes, Ending, Handle};
use super::Ledger;
use crate::rights::{self, Operation};
use crate::{round_up, Access, AttachError, Attached, BackingId, GuestId, HandleId, Placement};

impl<B> Ledger<B> {
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
        rights::check(Operation::attach(access), h.writable)?;
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

    /// Undoes an attach whose placement could not be carried out (nothing
    /// was written: the valid bytes stay).
    pub fn abort_attach(&mut self, handle: HandleId) {
        self.end_attachment(handle, Ending::Aborted);
    }

    /// `handle`, if `guest` holds it and it is not attached.
    pub(super) fn unattached(
        &self,
        guest: GuestId,
        handle: HandleId,
    ) -> Result<&Handle, AttachError> {
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
    pub(super) fn check_conflicts(
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
    pub(super) fn record(
        &mut self,
        handle: HandleId,
        backing: BackingId,
        attachment: Attachment,
    ) -> Attached {
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
}
