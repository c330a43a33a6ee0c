//! Carrying out what the rules decide: a placement (map, copy, zero) drawn
//! under the ledger and run after it is released, and undoing one.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::proof::MapsEntry;
use crate::os::memory::{Locked, MapError, Ticket};
use crate::os::pages::SharedPages;
use crate::rules::{Access, Ledger, Placement, Release};
use crate::{page_size, ShmHost};

/// A mapping system call decided under the ledger, queued in its memory
/// (its ticket drawn under the ledger, so in ledger order) and carried out
/// after the ledger is released ([`Pending::run`]). It needs nothing from
/// the ledger: a map holds its own reference to the block's memfd.
#[must_use = "a pending placement holds its memory's queue until it runs"]
pub(crate) struct Pending {
    ticket: Ticket,
    op: PendingOp,
}

enum PendingOp {
    Map {
        guest_offset: u32,
        len: u32,
        fd: Arc<OwnedFd>,
        inode: u64,
        file_offset: u64,
        writable: bool,
    },
    Restore {
        guest_offset: u32,
        len: u32,
    },
    CopyIn {
        guest_offset: u32,
        len: u32,
        pages: Arc<SharedPages>,
        from: u64,
    },
    Zero {
        guest_offset: u32,
        len: u32,
    },
    /// A protection window opened (`writable`) or closed.
    Protect {
        guest_offset: u32,
        len: u32,
        writable: bool,
    },
}

impl Pending {
    /// Waits for the memory's turn and makes the system call. For a map
    /// with `verify`, also reports whether `/proc/self/maps` lists the
    /// guest's pages as the block's own ([`ShmConfig::verify_sharing`]): a
    /// debug feature, it reads the file in the same turn (holding only this
    /// memory's queue, no process-wide lock).
    pub(crate) fn run(self, verify: bool) -> Result<Option<bool>, MapError> {
        let m = self.ticket.wait()?;
        match self.op {
            PendingOp::Map {
                guest_offset,
                len,
                fd,
                inode,
                file_offset,
                writable,
            } => {
                m.map(guest_offset, len, &fd, file_offset, writable)?;
                Ok(verify.then(|| maps_to(&m, guest_offset, len, inode, file_offset)))
            }
            PendingOp::Restore { guest_offset, len } => m.restore(guest_offset, len).map(|()| None),
            PendingOp::CopyIn {
                guest_offset,
                len,
                pages,
                from,
            } => m.copy_in(guest_offset, len, &pages, from).map(|()| None),
            PendingOp::Zero { guest_offset, len } => m.zero(guest_offset, len).map(|()| None),
            PendingOp::Protect {
                guest_offset,
                len,
                writable,
            } => m
                .protect_windows(&[(guest_offset, len)], writable)
                .map(|()| None),
        }
    }

    /// A protection window of `len` bytes at `guest_offset` of the memory
    /// whose turn `ticket` is, to open (`writable`) or close.
    pub(crate) fn protect(ticket: Ticket, guest_offset: u32, len: u32, writable: bool) -> Pending {
        Pending {
            ticket,
            op: PendingOp::Protect {
                guest_offset,
                len,
                writable,
            },
        }
    }

    /// Runs `pendings` in order, as [`Pending::finish`] each, except that
    /// neighbouring protection-window changes of one memory (a batch of
    /// loans published or lent) are made together, in the first one's turn,
    /// with one system call per run of adjacent windows. That is safe: each
    /// window is checked to be one in that turn, and a window belongs to
    /// the one guest whose call this is.
    pub(crate) fn finish_all(pendings: Vec<Pending>) {
        let mut pendings = pendings.into_iter().peekable();
        while let Some(first) = pendings.next() {
            let PendingOp::Protect {
                guest_offset,
                len,
                writable,
            } = first.op
            else {
                first.finish();
                continue;
            };
            let mut ranges = vec![(guest_offset, len)];
            let mut later = Vec::new();
            while let Some(next) = pendings.peek() {
                let same = matches!(next.op, PendingOp::Protect { writable: w, .. } if w == writable)
                    && next.ticket.same_memory(&first.ticket);
                if !same {
                    break;
                }
                let Some(next) = pendings.next() else { break };
                if let PendingOp::Protect {
                    guest_offset, len, ..
                } = next.op
                {
                    ranges.push((guest_offset, len));
                }
                later.push(next.ticket);
            }
            match first
                .ticket
                .wait()
                .and_then(|m| m.protect_windows(&ranges, writable))
            {
                Ok(()) | Err(MapError::Gone) => {}
                Err(e) => {
                    tracing::error!("changing {} protection windows failed: {e}", ranges.len())
                }
            }
            // The later tickets' turns pass (their work is done).
            drop(later);
        }
    }

    /// Runs an undo (a restore); a memory that is gone needs nothing.
    pub(crate) fn finish(self) {
        match self.run(false) {
            Ok(_) | Err(MapError::Gone) => {}
            Err(e) => tracing::error!("detach could not restore guest storage: {e}"),
        }
    }
}

/// Is every page of `len` bytes at `guest_offset` of the memory `m` holds,
/// as `/proc/self/maps` lists it, a shared mapping of the file `inode` from
/// `file_offset`?
fn maps_to(m: &Locked, guest_offset: u32, len: u32, inode: u64, file_offset: u64) -> bool {
    let Some(start) = m.address(guest_offset) else {
        return false;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let entries: Vec<MapsEntry> = maps.lines().filter_map(MapsEntry::parse).collect();
    let page = page_size();
    (0..len as usize / page).all(|i| {
        let addr = start + i * page;
        entries.iter().any(|e| {
            e.start <= addr
                && addr < e.end
                && e.is_shared()
                && e.inode == inode
                && e.offset + (addr - e.start) as u64 == file_offset + (i * page) as u64
        })
    })
}

impl ShmHost {
    /// Carries out a placement, or queues it (with the ledger locked).
    ///
    /// A mapped placement is queued in its memory and returned: the caller
    /// releases the ledger, then runs it ([`Pending::run`]). Because the
    /// ticket is drawn here, under the ledger, the placements of one memory
    /// are carried out in the order the ledger decided them. A copy is
    /// carried out here, under the ledger (the block's host mapping must
    /// stay alive, which only the ledger guarantees; a memcpy, not a system
    /// call), in the memory's turn.
    pub(crate) fn place(
        &self,
        ledger: &Ledger<Arc<SharedPages>>,
        placement: &Placement,
    ) -> Result<Option<Pending>, MapError> {
        match *placement {
            Placement::Empty | Placement::Local { .. } | Placement::InPool { .. } => Ok(None),
            Placement::Mapped {
                memory,
                guest_offset,
                backing,
                file_offset,
                len,
                writable,
                ..
            } => {
                let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                // The memfd's own `Arc`: it stays open until the map is done
                // even if the block is freed meanwhile.
                // A read-only mapping comes from the descriptor opened
                // read-only: no later `mprotect` can make it writable.
                let fd = if writable {
                    pages.shared_fd()
                } else {
                    pages.read_only_fd()?
                };
                let inode = pages.inode();
                let ticket = self.0.registry.enqueue(memory)?;
                Ok(Some(Pending {
                    ticket,
                    op: PendingOp::Map {
                        guest_offset,
                        len,
                        fd,
                        inode,
                        file_offset,
                        writable,
                    },
                }))
            }
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => {
                // Carried out after the ledger is released, like a map: a
                // copy may be long (up to the guest's copy limit), and no
                // other guest may wait for it. The block's pages stay alive
                // through our `Arc`; its bytes cannot change meanwhile (the
                // attachment, recorded now, shuts every writer out), and an
                // undo of this attachment is queued after the copy in the
                // memory's turns.
                let pages = ledger.backing(backing).ok_or(MapError::Gone)?.clone();
                let ticket = self.0.registry.enqueue(memory)?;
                Ok(Some(Pending {
                    ticket,
                    op: PendingOp::CopyIn {
                        guest_offset,
                        len,
                        pages,
                        from: backing_offset,
                    },
                }))
            }
        }
    }

    /// Undoes a placement (with the ledger locked). A copied write is
    /// copied out here, and the tail of a write is zeroed here (the block's
    /// pages must not be seen by a reader before); the restore of a mapping
    /// and the zeroing of a copied placement's storage are queued in its
    /// memory and returned, to run once the ledger is released
    /// ([`Pending::finish`]). A memory that is gone needs nothing undone.
    #[must_use = "a queued restore or zeroing must be run"]
    pub(crate) fn unplace(
        &self,
        ledger: &Ledger<Arc<SharedPages>>,
        release: &Release,
    ) -> Option<Pending> {
        // The tail is block bytes, not guest memory: zeroed before any
        // reader can attach (the ledger is held), while the writer, whose
        // own detach this is, is inside its host call and cannot write.
        if let Some((backing, offset, len)) = release.zero_tail {
            if let Some(pages) = ledger.backing(backing) {
                pages.zero(offset, len as usize);
            }
        }
        let result = match release.placement {
            Placement::InPool {
                memory,
                guest_offset,
                len,
            } => {
                // A write in the pool is a window: close it (a read in the
                // pool has none). A protection window closes with a
                // system call, queued in the memory's turn and run before
                // the detach returns, so before anyone can read the block.
                if release.access == Access::Write {
                    if let Some(at) = self.0.registry.host_address(memory, guest_offset) {
                        if let Some(len) = crate::os::windows::close(at, len as usize) {
                            return self
                                .0
                                .registry
                                .enqueue(memory)
                                .ok()
                                .map(|ticket| Pending::protect(ticket, guest_offset, len, false));
                        }
                    }
                }
                Ok(())
            }
            Placement::Empty | Placement::Local { .. } => Ok(()),
            Placement::Mapped {
                memory,
                guest_offset,
                len,
                ..
            } => {
                return self.0.registry.enqueue(memory).ok().map(|ticket| Pending {
                    ticket,
                    op: PendingOp::Restore { guest_offset, len },
                })
            }
            Placement::Copied {
                memory,
                guest_offset,
                backing,
                backing_offset,
                len,
            } => {
                // The bytes a writer committed are copied out here, under
                // the ledger, before any reader can attach (bounded by the
                // guest's copy limit); zeroing the guest's storage is
                // queued in its memory's turns and runs after the ledger is
                // released, before any later placement there.
                if release.copy_out > 0 {
                    let copied = self.0.registry.lock_memory(memory).and_then(|m| {
                        let pages = ledger.backing(backing).ok_or(MapError::Gone)?;
                        m.copy_out(guest_offset, release.copy_out, pages, backing_offset)
                    });
                    if let Err(e) = copied {
                        if !matches!(e, MapError::Gone) {
                            tracing::error!("detach could not copy the committed bytes out: {e}");
                        }
                    }
                }
                return self.0.registry.enqueue(memory).ok().map(|ticket| Pending {
                    ticket,
                    op: PendingOp::Zero { guest_offset, len },
                });
            }
        };
        match result {
            Ok(()) | Err(MapError::Gone) => {}
            Err(e) => tracing::error!("detach could not restore guest storage: {e}"),
        }
        None
    }
}
