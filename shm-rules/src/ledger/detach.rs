//! Ending attachments (a detach, an abandoned or aborted attach) and
//! dropping handles.

use super::state::{tail_to_zero, Bytes, Ending};
use super::Ledger;
use crate::{Access, DetachError, Dropped, GuestId, HandleId, Placement, Release, UnknownHandle};

impl<B> Ledger<B> {
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
    pub(super) fn end_attachment(&mut self, handle: HandleId, ending: Ending) -> Option<Release> {
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
}
