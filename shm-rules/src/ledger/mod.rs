//! The ledger: every block, handle, attachment, loan and storage region.
//!
//! This file holds the record itself and what every operation shares
//! (guests, lookups, new handles and contents); the records it keeps are in
//! `state.rs`, and each group of operations is an `impl` block in a file of
//! its own:
//! - `queries.rs`: what can be asked (a handle's block, rights, attachment,
//!   who holds a block, counts);
//! - `create.rs`: creating blocks and deriving handles (clone, alias,
//!   partition), moving a handle to another guest;
//! - `loans.rs`: lending a handle for a call, revoking what came of it;
//! - `storage.rs`: donated storage and how much an attachment needs;
//! - `attach.rs`: attaching (mapped, copied, local or empty) and aborting;
//! - `pool.rs`: reading and writing inside a pool mapping;
//! - `host_write.rs`: the host writing into a block for a guest;
//! - `detach.rs`: ending attachments, dropping handles;
//! - `invariants.rs`: the self-check of tests and the fuzzer.

mod attach;
mod create;
mod detach;
mod host_write;
mod invariants;
mod loans;
mod pool;
mod queries;
mod state;
mod storage;

use crate::id_hash::IdMap;
use crate::{
    BackingId, ContentId, GuestId, HandleId, Limits, LoanId, ProcessLimits, UnknownHandle,
};
use state::{Backing, Content, Guest, Handle, Loan};

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

    /// The live handles `guest` holds.
    fn handles_held_by(&self, guest: GuestId) -> Vec<HandleId> {
        self.handles
            .iter()
            .filter(|(_, h)| h.owner == guest)
            .map(|(&id, _)| id)
            .collect()
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
}
