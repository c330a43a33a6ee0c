//! Loans: a borrow lent to another guest for a call, and revoking what was
//! derived from it when it ends (or everything an evicted guest holds).

use super::state::Loan;
use super::Ledger;
use crate::rights::Operation;
use crate::{Dropped, GuestId, HandleError, HandleId, LoanId};

impl<B> Ledger<B> {
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
        match self.derive(handle, owner, Operation::Lend, Some(loan)) {
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
    ///
    /// [`UnknownHandle::Revoked`]: crate::UnknownHandle::Revoked
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
}
