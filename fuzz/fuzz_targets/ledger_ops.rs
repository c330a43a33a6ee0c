//! Drives the attach rules (`shm_rules::Ledger`) with arbitrary operation
//! sequences over a few guests and memories: create, create-local, clone,
//! alias, lend, end-loan, revoke-guest, partition, add-storage, attach,
//! attach-in-pool, write-in-pool, abort-attach, detach, drop, transfer,
//! remove-guest, a publish step and a pooled-write step (map a clone as a
//! pool, maybe consume some bytes, write in the pool, commit), with
//! arbitrary sizes and offsets, under
//! default or tiny per-guest limits, small mapping limits, and small
//! process-wide limits.
//!
//! After every operation the ledger's own `check_invariants()` must hold,
//! and a model kept here, independently of the ledger's internals, checks:
//! - no panic;
//! - an exclusive attach (write, or exclusive read) overlaps no other
//!   attachment of the same block;
//! - every mapped or copied placement lies inside storage its guest donated
//!   in that memory, placements of one guest do not overlap, and mapped
//!   placements are page aligned;
//! - a mapping exposes no backing byte outside the handle's own range (a
//!   partition never sees its siblings), a read attach is never writable,
//!   and a write detach zeroes only bytes of its own range;
//! - what the guest sees (size, valid and consumed bytes) follows the rules;
//!   every accepted operation was allowed and every refusal names a reason
//!   that holds;
//! - rights only attenuate: a clone is read-only, a partition, alias or
//!   loan is never more writable than its source (checked here as such; what
//!   each operation requires and gives, and so which `ReadOnly` refusals are
//!   expected, comes from the rights table, `shm_rules::rights`, that the
//!   ledger asks too); a read-only handle never
//!   gets a write or exclusive-read attachment (in a pool mapping or not),
//!   and a detach, abort, drop or transfer through it leaves the valid
//!   bytes of every handle of its block unchanged (but for its guest's
//!   write windows in a pool mapping it ends, below);
//! - `attached` and `attachment` report every live handle's access and
//!   placement; `other_writers` counts the other live writable handles of
//!   the block (asked of every live handle), `holders` and `handles_of_block` the
//!   live handles that are not pool mappings (asked whenever the model's
//!   answer changed or the operation named the block, and of every block at
//!   the end);
//! - loans: a lent alias and everything derived from any handle of the loan
//!   (clones, partitions, aliases, further loans, wherever transferred)
//!   belongs to it; ending it (or revoking a guest) revokes exactly those
//!   live handles, returns one entry per handle with the right guest, the
//!   release of each attachment (and none of another) and the backings
//!   whose last live handle went; a revoked handle answers every operation
//!   and query with the `Revoked` error (never `Unknown`, never success)
//!   until it is dropped, still counts against its owner's handle limit,
//!   and its drop releases nothing;
//! - a non-empty write attachment that ends without a detach (drop,
//!   transfer, revocation, removal of its guest) leaves every overlapping
//!   handle of its block with no valid bytes; an aborted attach (its
//!   placement never carried out) changes nothing; a write detach commits
//!   its valid bytes and zeroes exactly the rest of the last valid page;
//! - pool mappings: a whole-block read-only mapping that conflicts with
//!   nothing, never a copy. An in-pool read is a shared read of the valid
//!   bytes, a write window (`write_in_pool`) a write attachment of the
//!   whole handle from its first byte: it needs the write right (a
//!   read-only handle is told `ReadOnly` before anything about the state
//!   of its block), a handle the asking guest holds, and no other reader
//!   or writer of its bytes (pool mappings conflict with nothing); either
//!   is an in-pool placement at the address where the pool mapping the
//!   call names (one of the asking guest's, of the same block, covering
//!   the handle, else `NotMapped`) shows those bytes, inside it, and every
//!   refusal is the expected error. Both end exactly with the mapping they
//!   were placed in (not with another mapping of the same guest and
//!   block); a write window that ends so is abandoned (no valid bytes for
//!   any overlapping handle), even when the mapping was held through a
//!   read-only handle (the only way a read-only handle's drop, transfer,
//!   detach or abort may change valid bytes: its own guest's window);
//! - limits: per-guest blocks, bytes and handles (revoked ones included);
//!   live mappings per guest within its `max_mappings`, over all guests
//!   within the process's, live host-owned blocks within the process's
//!   `max_blocks`; past a mapping limit an attach that would map fails with
//!   `LimitExceeded`, never falls back to a copy;
//! - dropping (or revoking) the last live handle of a block returns its
//!   backing, exactly once, and never earlier; at the end every backing has
//!   come back.

#![no_main]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use shm_rules::rights::{self, Operation};
use shm_rules::{
    Access, AttachError, Attached, BackingId, CreateError, DetachError, Dropped, GuestId,
    HandleError, HandleId, Ledger, Limits, LoanId, MemoryId, PartitionError, Placement,
    ProcessLimits, Release, UnknownHandle,
};

/// A size or offset: small, a few pages plus or minus a little, or raw.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Small(u8),
    Pages(u8, i8),
    Raw(u32),
}

impl Num {
    fn get(self, page: u32) -> u32 {
        match self {
            Num::Small(n) => u32::from(n),
            Num::Pages(p, d) => (u32::from(p % 32) * page).saturating_add_signed(i32::from(d)),
            Num::Raw(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    AddGuest,
    RemoveGuest {
        guest: u8,
    },
    AddStorage {
        guest: u8,
        memory: u8,
        offset: Num,
        len: Num,
    },
    Create {
        guest: u8,
        size: Num,
    },
    CreateLocal {
        guest: u8,
        memory: u8,
        offset: Num,
        len: Num,
    },
    Clone {
        handle: u8,
        to: u8,
    },
    Alias {
        handle: u8,
        to: u8,
    },
    /// A borrow crossing to `to` for a call: an alias in a new loan.
    Lend {
        handle: u8,
        to: u8,
    },
    /// The call of a loan returned (counted from the newest loan).
    EndLoan {
        loan: u8,
    },
    /// A guest evicted: every handle it holds is revoked.
    RevokeGuest {
        guest: u8,
    },
    Partition {
        handle: u8,
        start: Num,
        size: Num,
        writable: bool,
    },
    /// `guest: None` is the handle's owner.
    Attach {
        guest: Option<u8>,
        handle: u8,
        access: u8,
    },
    AbortAttach {
        handle: u8,
    },
    /// A read in a pool mapping of the block its owner holds (pooled
    /// topics); `mapping` names the pool mapping (see [`Model::mapping`]).
    AttachInPool {
        handle: u8,
        mapping: u8,
    },
    /// A write window in a pool mapping of the block (a publisher writing
    /// its message in place); `guest: None` is the handle's owner,
    /// `mapping` as for `AttachInPool`.
    WriteInPool {
        guest: Option<u8>,
        handle: u8,
        mapping: u8,
    },
    /// `consumed`: a share of the visible bytes in 254ths; 255 is one too many.
    Detach {
        guest: Option<u8>,
        handle: u8,
        consumed: u8,
    },
    Drop {
        handle: u8,
    },
    Transfer {
        handle: u8,
        to: u8,
    },
    /// The publish pattern in one step: attach `handle` for writing, detach
    /// with some bytes valid, clone it to `to`, attach the clone there
    /// (a shared read or a pool mapping: a clone is read-only).
    Publish {
        handle: u8,
        consumed: u8,
        to: u8,
        access: u8,
    },
    /// The pooled publish pattern in one step: a read-only clone of
    /// `handle` for its owner, mapped as a pool; with `read`, an exclusive
    /// read of `handle` that consumes some of its valid bytes (so that the
    /// window that follows starts at a consumed offset); a write window on
    /// `handle` in the pool; a detach with some bytes valid.
    WriteThroughPool {
        handle: u8,
        read: Option<u8>,
        consumed: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Setup {
    page_shift: u8,
    /// Small limits, to reach the limit paths: (blocks, bytes in 16ths,
    /// handles, storage regions, mappings).
    tight: Option<(u8, u16, u8, u8, u8)>,
    /// A small per-guest mapping limit (with the other limits as above).
    mappings: Option<u8>,
    /// Small process-wide limits: (host-owned blocks, mappings).
    process: Option<(u8, u8)>,
    guests: u8,
    /// Storage every guest donates first: (pages, offset in bytes).
    storage: Option<(u8, u16)>,
}

struct MGuest {
    id: GuestId,
    alive: bool,
    limits: Limits,
    storage: Vec<(MemoryId, u32, u32)>,
}

struct MBacking {
    len: u64,
    /// The tag given to a host-owned backing; `None` for a local block.
    tag: Option<u32>,
    /// (memory, offset, len) of a local block.
    local: Option<(MemoryId, u32, u32)>,
    creator: usize,
    /// Live handles (revoked ones no longer hold the backing).
    handles: usize,
    alive: bool,
}

#[derive(Clone, Copy)]
struct MContent {
    backing: BackingId,
    start: u64,
    size: u32,
    valid: u32,
    consumed: u32,
}

#[derive(Clone, Copy)]
struct MAttach {
    access: Access,
    attached: Attached,
    /// An in-pool attachment: the model handle of the pool mapping it was
    /// placed in (and ends with).
    pool: Option<usize>,
}

/// What the owner of a handle id has in its hands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Live,
    /// Revoked (its loan ended, or its guest was evicted), not yet dropped.
    Revoked,
    /// Dropped, moved out with its removed guest, or forgotten after a
    /// revocation: unknown to the ledger.
    Gone,
}

struct MHandle {
    id: HandleId,
    owner: usize,
    content: usize,
    writable: bool,
    state: St,
    /// The model loan the handle belongs to.
    loan: Option<usize>,
    att: Option<MAttach>,
}

struct MLoan {
    id: LoanId,
    /// The loan of the handle it was lent from.
    parent: Option<usize>,
    ended: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Derive {
    Clone,
    Alias,
    Lend,
}

impl Derive {
    /// Its row in the rights table.
    fn op(self) -> Operation {
        match self {
            Derive::Clone => Operation::Clone,
            Derive::Alias => Operation::Alias,
            Derive::Lend => Operation::Lend,
        }
    }
}

struct Model {
    page: u32,
    process: ProcessLimits,
    ledger: Ledger<u32>,
    guests: Vec<MGuest>,
    backings: Map<BackingId, MBacking>,
    contents: Vec<MContent>,
    handles: Vec<MHandle>,
    loans: Vec<MLoan>,
    next_tag: u32,
    freed_tags: Vec<u32>,
    /// Write attachments that ended without a detach during the current
    /// operation.
    abandoned: Vec<Abandoned>,
    /// Blocks the current operation named a handle of.
    focus: Vec<BackingId>,
    /// The block views checked last: a block's `holders` and
    /// `handles_of_block` are asked again when its view changed or the
    /// operation named it (and for every block at the end).
    seen: Map<BackingId, BlockView>,
}

/// A hash map keyed by ids: they need no SipHash, which the coverage
/// instrumentation makes slow (the ledger's own maps already take a large
/// share of each run).
type Map<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A non-empty write attachment that ended without a detach.
struct Abandoned {
    backing: BackingId,
    lo: u64,
    hi: u64,
    /// A write window that ended with the pool mapping it was in.
    cascade: bool,
}

/// Model handles and what the ledger says their valid range is.
type ValidRanges = Vec<(usize, Result<(u32, u32), UnknownHandle>)>;

/// What the ledger must say of a block: live handles that are not pool
/// mappings (`handles_of_block`), and the guests holding them (`holders`).
type BlockView = (usize, Vec<GuestId>);

fn overlap(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 < b1 && b0 < a1
}

/// Do the backing ranges overlap, an empty range counting as its first
/// byte (the ledger's convention: an empty block still conflicts)?
fn touches(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    overlap(a0, a1.max(a0 + 1), b0, b1.max(b0 + 1))
}

fn round_up(n: u64, page: u64) -> u64 {
    n.div_ceil(page) * page
}

impl Model {
    fn guest(&self, g: u8) -> usize {
        usize::from(g) % self.guests.len()
    }

    /// Handle `h` counted from the newest, so that short inputs name the
    /// handles they just made.
    fn handle(&self, h: u8) -> Option<usize> {
        let n = self.handles.len();
        (n > 0).then(|| n - 1 - usize::from(h) % n)
    }

    /// Handle `h` (as [`Model::handle`]) named by the current operation.
    fn pick(&mut self, h: u8) -> Option<usize> {
        let h = self.handle(h)?;
        let backing = self.contents[self.handles[h].content].backing;
        self.focus.push(backing);
        Some(h)
    }

    fn memory(m: u8) -> MemoryId {
        MemoryId(u64::from(m % 3))
    }

    fn live(&self, h: usize) -> bool {
        self.handles[h].state == St::Live
    }

    /// Handles `g` holds in the ledger's count: live and revoked ones.
    fn guest_handles(&self, g: usize) -> usize {
        self.handles
            .iter()
            .filter(|h| h.state != St::Gone && h.owner == g)
            .count()
    }

    /// Is `e` a right refusal of a new handle for guest `to` derived from
    /// handle `h` (a clone, alias, partition or transfer)?
    fn handle_refusal_expected(&self, h: usize, to: usize, e: HandleError) -> bool {
        match self.handles[h].state {
            St::Revoked => e == HandleError::Revoked,
            St::Gone => e == HandleError::Unknown,
            St::Live => match e {
                HandleError::UnknownGuest => !self.guests[to].alive,
                HandleError::LimitExceeded => {
                    self.guests[to].alive && self.handle_limit_reached(to)
                }
                HandleError::Revoked | HandleError::Unknown => false,
            },
        }
    }

    fn handle_limit_reached(&self, g: usize) -> bool {
        self.guest_handles(g) >= self.guests[g].limits.max_handles as usize
    }

    /// Live mapped attachments of guest `g`, and of all guests.
    fn mappings(&self, g: usize) -> (usize, usize) {
        let mut mine = 0;
        let mut all = 0;
        for h in self.handles.iter().filter(|h| h.state == St::Live) {
            if matches!(
                h.att.map(|a| a.attached.placement),
                Some(Placement::Mapped { .. })
            ) {
                all += 1;
                if h.owner == g {
                    mine += 1;
                }
            }
        }
        (mine, all)
    }

    /// Has `g` (or the process) used up its mappings?
    fn mapping_limit_reached(&self, g: usize) -> bool {
        let (mine, all) = self.mappings(g);
        mine >= self.guests[g].limits.max_mappings as usize
            || all as u64 >= self.process.max_mappings
    }

    /// Live host-owned blocks.
    fn shared_blocks(&self) -> usize {
        self.backings
            .values()
            .filter(|b| b.alive && b.tag.is_some())
            .count()
    }

    /// The backing range of a content.
    fn range(&self, c: usize) -> (u64, u64) {
        let c = &self.contents[c];
        (c.start, c.start + u64::from(c.size))
    }

    /// The bytes an attach of `h` with `access` shows.
    fn visible(&self, h: usize, access: Access) -> u32 {
        let c = self.contents[self.handles[h].content];
        match access {
            Access::Write | Access::Pool => c.size,
            _ => c.valid - c.consumed,
        }
    }

    /// Would an attach of `h` with `access` be a mapping: a host-owned
    /// block, bytes to show, and whole pages that show nothing outside the
    /// handle's range (the block's end may end a page early)?
    fn would_map(&self, h: usize, access: Access) -> bool {
        let c = self.contents[self.handles[h].content];
        let b = &self.backings[&c.backing];
        let page = u64::from(self.page);
        let end = c.start + u64::from(c.size);
        b.tag.is_some()
            && self.visible(h, access) > 0
            && c.start.is_multiple_of(page)
            && (end.is_multiple_of(page) || end == b.len)
    }

    fn new_handle(
        &mut self,
        id: HandleId,
        owner: usize,
        content: usize,
        writable: bool,
        loan: Option<usize>,
    ) {
        assert!(
            self.handles.iter().all(|h| h.id != id),
            "handle id {id:?} reused"
        );
        if let Some(l) = loan {
            assert!(!self.loans[l].ended, "a new handle in an ended loan");
        }
        let backing = self.contents[content].backing;
        self.backings.get_mut(&backing).expect("backing").handles += 1;
        self.handles.push(MHandle {
            id,
            owner,
            content,
            writable,
            state: St::Live,
            loan,
            att: None,
        });
    }

    /// Ends the model attachment of handle `h`; `consumed` as for detach,
    /// `None` when it ends without a detach.
    fn end(&mut self, h: usize, consumed: Option<u32>) -> Option<MAttach> {
        self.end_as(h, consumed, false)
    }

    /// As [`Self::end`]; `aborted`: the placement was never carried out, so
    /// nothing was written and nothing is abandoned.
    fn end_as(&mut self, h: usize, consumed: Option<u32>, aborted: bool) -> Option<MAttach> {
        let a = self.handles[h].att.take()?;
        let ci = self.handles[h].content;
        match consumed {
            Some(n) => {
                let c = &mut self.contents[ci];
                match a.access {
                    Access::Write => {
                        c.valid = n;
                        c.consumed = 0;
                    }
                    Access::ReadExclusive => c.consumed += n,
                    Access::ReadShared | Access::Pool => {}
                }
            }
            None if a.access == Access::Write && !aborted => self.abandon(h, false),
            None => {}
        }
        self.cascade(h, &a);
        Some(a)
    }

    /// The write attachment of `h` ended without a detach (`cascade`: with
    /// the pool mapping it was in): nothing written is valid, for any
    /// content of the block that overlaps it (an empty attachment wrote
    /// nothing).
    fn abandon(&mut self, h: usize, cascade: bool) {
        let ci = self.handles[h].content;
        let (lo, hi) = self.range(ci);
        if hi == lo {
            return;
        }
        let backing = self.contents[ci].backing;
        for c in self.contents.iter_mut().filter(|c| c.backing == backing) {
            if touches(lo, hi, c.start, c.start + u64::from(c.size)) {
                c.valid = 0;
                c.consumed = 0;
            }
        }
        self.abandoned.push(Abandoned {
            backing,
            lo,
            hi,
            cascade,
        });
    }

    /// Does the end of `p`'s attachment `a` (a pool mapping) end the
    /// in-pool attachment (a read or a write window) of `o`? Exactly when
    /// `o` was placed in that mapping (not in another mapping of the block,
    /// even one of the same guest).
    fn ends_with(&self, p: usize, a: &MAttach, o: usize) -> bool {
        let oh = &self.handles[o];
        a.access == Access::Pool
            && matches!(a.attached.placement, Placement::Mapped { .. })
            && oh.state == St::Live
            && oh.att.is_some_and(|x| x.pool == Some(p))
    }

    /// When a pool mapping ends, the in-pool attachments inside it end
    /// too; a write window among them ends uncommitted (abandoned).
    fn cascade(&mut self, h: usize, a: &MAttach) {
        for i in 0..self.handles.len() {
            if self.ends_with(h, a, i) {
                let ended = self.handles[i].att.take().expect("in pool");
                if ended.access == Access::Write {
                    self.abandon(i, true);
                }
            }
        }
    }

    /// Is `m` a pool mapping guest `g` may place `h`'s bytes in: a live
    /// handle `g` holds, of the same block, attached as a pool and mapped,
    /// whose range covers `h`'s?
    fn is_pool_for(&self, g: usize, h: usize, m: usize) -> bool {
        let c = self.handles[h].content;
        let (lo, hi) = self.range(c);
        let o = &self.handles[m];
        let (olo, ohi) = self.range(o.content);
        o.state == St::Live
            && o.owner == g
            && o.att.is_some_and(|a| {
                a.access == Access::Pool && matches!(a.attached.placement, Placement::Mapped { .. })
            })
            && self.contents[o.content].backing == self.contents[c].backing
            && olo <= lo
            && hi <= ohi
    }

    /// Every pool mapping guest `g` may place `h`'s bytes in.
    fn pool_mappings(&self, g: usize, h: usize) -> Vec<usize> {
        (0..self.handles.len())
            .filter(|&m| self.is_pool_for(g, h, m))
            .collect()
    }

    /// The mapping an in-pool operation of guest `g` on `h` names: below
    /// 128, one of the pool mappings `g` may use (the caller that knows
    /// its mappings; `h` itself when there is none), else any handle
    /// (counted from the newest, as [`Model::handle`]): another guest's, of
    /// another block, not attached, revoked or dropped.
    fn mapping(&self, g: usize, h: usize, m: u8) -> usize {
        if m < 128 {
            let pools = self.pool_mappings(g, h);
            if pools.is_empty() {
                h
            } else {
                pools[usize::from(m) % pools.len()]
            }
        } else {
            self.handle(m - 128).expect("h exists")
        }
    }

    /// Is `placement` (`len` bytes from backing offset `first` of `h`'s
    /// block) an in-pool placement at the address where pool mapping `p`
    /// shows `first`, inside that mapping, which still is a pool mapping
    /// `g` may place `h`'s bytes in?
    fn shown_in_pool(
        &self,
        g: usize,
        h: usize,
        p: usize,
        placement: Placement,
        first: u64,
    ) -> bool {
        let Placement::InPool {
            memory,
            guest_offset,
            len,
        } = placement
        else {
            return false;
        };
        if !self.is_pool_for(g, h, p) {
            return false;
        }
        let (at, end) = (
            u64::from(guest_offset),
            u64::from(guest_offset) + u64::from(len),
        );
        let Some(MAttach {
            attached:
                Attached {
                    placement:
                        Placement::Mapped {
                            memory: m,
                            guest_offset: pg,
                            file_offset,
                            len: pl,
                            ..
                        },
                    ..
                },
            ..
        }) = self.handles[p].att
        else {
            return false;
        };
        m == memory
            && first >= file_offset
            && at == u64::from(pg) + first - file_offset
            && end <= u64::from(pg) + u64::from(pl)
    }

    /// Removes live handle `h` from the model (its attachment ends without
    /// a detach); returns the tag of the backing when it was the backing's
    /// last live handle.
    fn kill(&mut self, h: usize) -> Option<u32> {
        assert_eq!(self.handles[h].state, St::Live);
        self.end(h, None);
        self.handles[h].state = St::Gone;
        let backing = self.contents[self.handles[h].content].backing;
        let b = self.backings.get_mut(&backing).expect("backing");
        b.handles -= 1;
        if b.handles == 0 {
            b.alive = false;
            b.tag
        } else {
            None
        }
    }

    fn check_release(&self, h: usize, a: &MAttach, r: &Release, consumed: Option<u32>) {
        assert_eq!(
            r.placement, a.attached.placement,
            "release of another placement"
        );
        let (lo, hi) = self.range(self.handles[h].content);
        let backing = self.contents[self.handles[h].content].backing;
        match (consumed, a.access) {
            (Some(n), Access::Write) => {
                if matches!(a.attached.placement, Placement::Copied { .. }) {
                    assert_eq!(r.copy_out, n);
                } else {
                    assert_eq!(r.copy_out, 0);
                }
                // The commit zeroes the rest of the last valid page (inside
                // the handle's range) of a host-owned block, however the
                // bytes were shown (mapped, copied or in a pool mapping).
                let page = u64::from(self.page);
                let from = lo + u64::from(n);
                let to = round_up(from, page).min(hi);
                let tail = (to > from && self.backings[&backing].tag.is_some()).then_some((
                    backing,
                    from,
                    to - from,
                ));
                assert_eq!(
                    r.zero_tail, tail,
                    "a write detach of {n} bytes zeroed the wrong tail"
                );
            }
            _ => {
                assert_eq!(r.copy_out, 0, "copy out without a write detach");
                assert_eq!(r.zero_tail, None, "zeroing without a write detach");
            }
        }
        if let Some((b, from, len)) = r.zero_tail {
            assert_eq!(b, backing);
            assert!(
                lo <= from && from + len <= hi,
                "zeroing {from}+{len} outside the handle's range {lo}..{hi}"
            );
        }
    }

    /// The ledger's valid range of every other live handle of `h`'s block,
    /// when `h` is a live read-only handle (which must change none of them).
    fn read_only_snapshot(&self, h: usize) -> ValidRanges {
        let mh = &self.handles[h];
        if mh.state != St::Live || mh.writable {
            return Vec::new();
        }
        let backing = self.contents[mh.content].backing;
        (0..self.handles.len())
            .filter(|&i| {
                i != h && self.live(i) && self.contents[self.handles[i].content].backing == backing
            })
            .map(|i| (i, self.ledger.valid_range(self.handles[i].id)))
            .collect()
    }

    fn check_unchanged(&self, before: &ValidRanges, what: &str) {
        if before.is_empty() {
            return;
        }
        // The one exception: a pool mapping held through a read-only handle
        // takes its guest's write windows inside it along when it ends, and
        // those are abandoned (their guest holds the write right; `check_abandoned`
        // checks the bytes they cover).
        for ab in &self.abandoned {
            assert!(
                ab.cascade,
                "{what} through a read-only handle abandoned a write of its own"
            );
        }
        for (i, v) in before {
            if self.live(*i) && !self.overlaps_abandoned(*i) {
                assert_eq!(
                    &self.ledger.valid_range(self.handles[*i].id),
                    v,
                    "{what} through a read-only handle changed a valid range of its block"
                );
            }
        }
    }

    /// Does loan `m` descend from loan `l` (or is it `l`)?
    fn descends(&self, mut m: usize, l: usize) -> bool {
        loop {
            if m == l {
                return true;
            }
            match self.loans[m].parent {
                Some(p) => m = p,
                None => return false,
            }
        }
    }

    /// Checks what `end_loan` or `revoke_guest` returned against the live
    /// handles `victims` it had to revoke, and revokes them in the model.
    fn revoked(&mut self, victims: Vec<usize>, out: Vec<(GuestId, Dropped<u32>)>, what: &str) {
        assert_eq!(
            out.len(),
            victims.len(),
            "{what}: {} entries for {} live handles",
            out.len(),
            victims.len()
        );
        // One entry per revoked handle, with the guest that held it.
        let mut per_guest: Map<GuestId, isize> = Map::default();
        for &v in &victims {
            *per_guest
                .entry(self.guests[self.handles[v].owner].id)
                .or_default() += 1;
        }
        for (g, _) in &out {
            *per_guest.entry(*g).or_default() -= 1;
        }
        assert!(
            per_guest.values().all(|&n| n == 0),
            "{what}: entries for the wrong guests"
        );
        // Every release is the attachment of a revoked handle. An in-pool
        // read inside a pool mapping revoked at the same time may already
        // have ended with it (the order is the ledger's).
        let mut expected: Vec<(GuestId, Placement, bool)> = victims
            .iter()
            .filter_map(|&v| {
                let a = self.handles[v].att?;
                let optional = matches!(a.attached.placement, Placement::InPool { .. })
                    && victims.iter().any(|&p| {
                        self.handles[p]
                            .att
                            .is_some_and(|pa| self.ends_with(p, &pa, v))
                    });
                Some((
                    self.guests[self.handles[v].owner].id,
                    a.attached.placement,
                    optional,
                ))
            })
            .collect();
        for (g, d) in &out {
            let Some(r) = d.release else { continue };
            let i = expected
                .iter()
                .position(|&(eg, p, _)| eg == *g && p == r.placement)
                .unwrap_or_else(|| {
                    panic!("{what} released {r:?} for {g:?}: no revoked handle has it")
                });
            expected.swap_remove(i);
            assert_eq!(r.copy_out, 0, "{what}: copy out without a detach");
            assert_eq!(r.zero_tail, None, "{what}: zeroing without a detach");
        }
        assert!(
            expected.iter().all(|e| e.2),
            "{what} did not release {:?}",
            expected.iter().map(|e| e.1).collect::<Vec<_>>()
        );
        let mut freed: Vec<u32> = out.into_iter().filter_map(|(_, d)| d.freed).collect();
        let mut expect = Vec::new();
        for &v in &victims {
            expect.extend(self.kill(v));
            self.handles[v].state = St::Revoked;
        }
        freed.sort_unstable();
        expect.sort_unstable();
        assert_eq!(freed, expect, "{what} returned the wrong backings");
        self.freed_tags.extend(freed);
    }

    /// Does handle `h` overlap a write abandoned during this operation?
    fn overlaps_abandoned(&self, h: usize) -> bool {
        let c = self.contents[self.handles[h].content];
        self.abandoned.iter().any(|ab| {
            c.backing == ab.backing && touches(ab.lo, ab.hi, c.start, c.start + u64::from(c.size))
        })
    }

    /// (f): every live handle overlapping a write abandoned during this
    /// operation has no valid bytes.
    fn check_abandoned(&self) {
        for h in (0..self.handles.len()).filter(|&h| self.live(h)) {
            if self.overlaps_abandoned(h) {
                let what = if self.abandoned.iter().any(|ab| ab.cascade) {
                    "an abandoned write (or a write window that ended with its pool mapping)"
                } else {
                    "an abandoned write"
                };
                assert_eq!(
                    self.ledger.valid_range(self.handles[h].id),
                    Ok((0, 0)),
                    "{what} left valid bytes"
                );
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        self.abandoned.clear();
        self.focus.clear();
        self.apply_op(op);
        self.check_abandoned();
    }

    fn apply_op(&mut self, op: &Op) {
        let page = self.page;
        match *op {
            Op::Publish {
                handle,
                consumed,
                to,
                access,
            } => {
                let steps = [
                    Op::Attach {
                        guest: None,
                        handle,
                        access: 0,
                    },
                    Op::Detach {
                        guest: None,
                        handle,
                        consumed,
                    },
                    Op::Clone { handle, to },
                    Op::Attach {
                        guest: None,
                        handle: 0,
                        access: 2 + access % 2,
                    },
                ];
                for step in &steps {
                    self.apply(step);
                    self.check();
                }
            }
            Op::AddGuest => {
                if self.guests.len() < 8 {
                    let limits = self.guests[0].limits;
                    let id = self.ledger.add_guest(limits);
                    self.guests.push(MGuest {
                        id,
                        alive: true,
                        limits,
                        storage: Vec::new(),
                    });
                }
            }
            Op::RemoveGuest { guest } => {
                let g = self.guest(guest);
                let id = self.guests[g].id;
                let mut freed = self.ledger.remove_guest(id);
                let mut expected = Vec::new();
                if self.guests[g].alive {
                    for h in 0..self.handles.len() {
                        if self.handles[h].owner != g {
                            continue;
                        }
                        match self.handles[h].state {
                            St::Live => expected.extend(self.kill(h)),
                            // Forgotten with the guest.
                            St::Revoked => self.handles[h].state = St::Gone,
                            St::Gone => continue,
                        }
                        assert_eq!(
                            self.ledger.owner(self.handles[h].id),
                            Err(UnknownHandle::Unknown),
                            "a handle of a removed guest is still known"
                        );
                    }
                    self.guests[g].alive = false;
                    self.guests[g].storage.clear();
                }
                freed.sort_unstable();
                expected.sort_unstable();
                assert_eq!(freed, expected, "remove_guest freed other backings");
                self.freed_tags.extend(freed);
            }
            Op::RevokeGuest { guest } => {
                let g = self.guest(guest);
                let victims: Vec<usize> = (0..self.handles.len())
                    .filter(|&h| self.live(h) && self.handles[h].owner == g)
                    .collect();
                let out = self.ledger.revoke_guest(self.guests[g].id);
                self.revoked(victims, out, "revoke_guest");
            }
            Op::EndLoan { loan } => {
                let n = self.loans.len();
                if n == 0 {
                    return;
                }
                let l = n - 1 - usize::from(loan) % n;
                // The loan and the loans lent from its handles, unless it
                // ended already (then nothing happens).
                let ending: Vec<usize> = if self.loans[l].ended {
                    Vec::new()
                } else {
                    (0..n)
                        .filter(|&m| !self.loans[m].ended && self.descends(m, l))
                        .collect()
                };
                let victims: Vec<usize> = (0..self.handles.len())
                    .filter(|&h| {
                        self.live(h) && self.handles[h].loan.is_some_and(|x| ending.contains(&x))
                    })
                    .collect();
                let out = self.ledger.end_loan(self.loans[l].id);
                for m in ending {
                    self.loans[m].ended = true;
                }
                self.revoked(victims, out, "end_loan");
            }
            Op::AddStorage {
                guest,
                memory,
                offset,
                len,
            } => {
                let g = self.guest(guest);
                let (memory, offset, len) = (Self::memory(memory), offset.get(page), len.get(page));
                let r = self
                    .ledger
                    .add_storage(self.guests[g].id, memory, offset, len);
                let mg = &self.guests[g];
                let (a0, a1) = (u64::from(offset), u64::from(offset) + u64::from(len));
                let clash = mg
                    .storage
                    .iter()
                    .copied()
                    .chain(self.locals_of(g))
                    .any(|(m, s, l)| {
                        m == memory && overlap(a0, a1, u64::from(s), u64::from(s) + u64::from(l))
                    });
                // A region that continues an earlier one extends it (the
                // first such region, in donation order).
                let continues = mg.storage.iter().position(|&(m, s, l)| {
                    m == memory
                        && u64::from(s) + u64::from(l) == u64::from(offset)
                        && l.checked_add(len).is_some()
                });
                if r.is_ok() {
                    assert!(mg.alive, "storage of a removed guest");
                    assert!(!clash, "overlapping storage accepted");
                    match continues {
                        Some(i) => self.guests[g].storage[i].2 += len,
                        None => {
                            assert!(mg.storage.len() < mg.limits.max_storage_regions as usize);
                            self.guests[g].storage.push((memory, offset, len));
                        }
                    }
                } else {
                    assert!(
                        !mg.alive
                            || clash
                            || (continues.is_none()
                                && mg.storage.len() >= mg.limits.max_storage_regions as usize),
                        "add_storage refused: {r:?}"
                    );
                }
            }
            Op::Create { guest, size } => {
                let g = self.guest(guest);
                let size = size.get(page);
                let tag = self.next_tag;
                let r = self.ledger.create(self.guests[g].id, size, || Some(tag));
                if let Ok(id) = r {
                    self.next_tag += 1;
                    assert!(self.guests[g].alive);
                    assert!(
                        !self.at_limit(g, u64::from(size)),
                        "create past a limit accepted"
                    );
                    let (backing, start, bytes) = self.ledger.backing_of(id).expect("new handle");
                    assert_eq!((start, bytes), (0, Some(&tag)));
                    assert!(!self.backings.contains_key(&backing), "backing id reused");
                    self.backings.insert(
                        backing,
                        MBacking {
                            len: u64::from(size),
                            tag: Some(tag),
                            local: None,
                            creator: g,
                            handles: 0,
                            alive: true,
                        },
                    );
                    self.contents.push(MContent {
                        backing,
                        start: 0,
                        size,
                        valid: 0,
                        consumed: 0,
                    });
                    self.new_handle(id, g, self.contents.len() - 1, true, None);
                } else {
                    let ok = match r {
                        Err(CreateError::UnknownGuest) => !self.guests[g].alive,
                        Err(CreateError::LimitExceeded) => {
                            self.guests[g].alive && self.at_limit(g, u64::from(size))
                        }
                        _ => false,
                    };
                    assert!(ok, "create refused: {r:?}");
                }
            }
            Op::CreateLocal {
                guest,
                memory,
                offset,
                len,
            } => {
                let g = self.guest(guest);
                let (memory, offset, len) = (Self::memory(memory), offset.get(page), len.get(page));
                let r = self
                    .ledger
                    .create_local(self.guests[g].id, memory, offset, len);
                if let Ok(id) = r {
                    let (a0, a1) = (u64::from(offset), u64::from(offset) + u64::from(len));
                    let clash = self.guests[g]
                        .storage
                        .iter()
                        .copied()
                        .chain(self.locals_of(g))
                        .any(|(m, s, l)| {
                            m == memory
                                && overlap(a0, a1, u64::from(s), u64::from(s) + u64::from(l))
                        });
                    assert!(!clash, "a local block over storage or another local block");
                    let (backing, start, bytes) = self.ledger.backing_of(id).expect("new handle");
                    assert_eq!((start, bytes), (0, None));
                    self.backings.insert(
                        backing,
                        MBacking {
                            len: u64::from(len),
                            tag: None,
                            local: Some((memory, offset, len)),
                            creator: g,
                            handles: 0,
                            alive: true,
                        },
                    );
                    self.contents.push(MContent {
                        backing,
                        start: 0,
                        size: len,
                        valid: len,
                        consumed: 0,
                    });
                    self.new_handle(id, g, self.contents.len() - 1, true, None);
                }
            }
            Op::Clone { handle, to } | Op::Alias { handle, to } | Op::Lend { handle, to } => {
                let Some(h) = self.pick(handle) else { return };
                let to = self.guest(to);
                let id = self.handles[h].id;
                let kind = match op {
                    Op::Clone { .. } => Derive::Clone,
                    Op::Alias { .. } => Derive::Alias,
                    _ => Derive::Lend,
                };
                let tid = self.guests[to].id;
                let r = match kind {
                    Derive::Clone => self.ledger.clone_handle(id, tid).map(|n| (n, None)),
                    Derive::Alias => self.ledger.alias(id, tid).map(|n| (n, None)),
                    Derive::Lend => self.ledger.lend(id, tid).map(|(n, l)| (n, Some(l))),
                };
                match r {
                    Ok((new, loan_id)) => {
                        let src = &self.handles[h];
                        assert_eq!(src.state, St::Live, "{kind:?} of a {:?} handle", src.state);
                        assert!(self.guests[to].alive, "{kind:?} to a removed guest");
                        assert!(
                            !self.handle_limit_reached(to),
                            "{kind:?} past the handle limit"
                        );
                        // The rights table says what it gets (a clone is
                        // read-only, an alias or a loan has its source's
                        // rights); never more than its source, whatever the
                        // table says.
                        let writable = rights::derived(kind.op(), src.writable, false);
                        let lw = self.ledger.writable(new);
                        assert!(
                            src.writable || lw == Ok(false),
                            "a {kind:?} of a read-only handle is writable"
                        );
                        assert_eq!(lw, Ok(writable), "{kind:?} rights");
                        let (content, src_loan) = (src.content, src.loan);
                        let loan = match loan_id {
                            Some(l) => {
                                assert!(
                                    self.loans.iter().all(|x| x.id != l),
                                    "loan id {l:?} reused"
                                );
                                self.loans.push(MLoan {
                                    id: l,
                                    parent: src_loan,
                                    ended: false,
                                });
                                Some(self.loans.len() - 1)
                            }
                            // Derived from a loan's handle: in that loan.
                            None => src_loan,
                        };
                        self.new_handle(new, to, content, writable, loan);
                    }
                    Err(e) => {
                        let ok = self.handle_refusal_expected(h, to, e);
                        assert!(
                            ok,
                            "{kind:?} of a {:?} handle refused: {e:?}",
                            self.handles[h].state
                        );
                    }
                }
            }
            Op::Partition {
                handle,
                start,
                size,
                writable,
            } => {
                let Some(h) = self.pick(handle) else { return };
                let (start, size) = (start.get(page), size.get(page));
                let id = self.handles[h].id;
                let op = Operation::partition(writable);
                match self.ledger.partition(id, start, size, writable) {
                    Ok(new) => {
                        let mh = &self.handles[h];
                        assert_eq!(mh.state, St::Live, "partition of a {:?} handle", mh.state);
                        assert!(
                            rights::check(op, mh.writable).is_ok(),
                            "{op:?} of a read-only handle"
                        );
                        let lw = self.ledger.writable(new);
                        assert!(
                            mh.writable || lw == Ok(false),
                            "a partition of a read-only handle is writable"
                        );
                        assert_eq!(lw, Ok(rights::derived(op, mh.writable, writable)));
                        let parent = self.contents[mh.content];
                        assert!(u64::from(start) + u64::from(size) <= u64::from(parent.size));
                        assert!(
                            !self.handle_limit_reached(mh.owner),
                            "partition past the handle limit"
                        );
                        let (owner, loan) = (mh.owner, mh.loan);
                        let (consumed, valid) = self.ledger.valid_range(new).expect("new");
                        assert_eq!(consumed, 0);
                        assert!(valid <= size);
                        self.contents.push(MContent {
                            backing: parent.backing,
                            start: parent.start + u64::from(start),
                            size,
                            valid,
                            consumed: 0,
                        });
                        self.new_handle(new, owner, self.contents.len() - 1, writable, loan);
                    }
                    Err(e) => {
                        let mh = &self.handles[h];
                        let parent = self.contents[mh.content];
                        let ok = match mh.state {
                            St::Revoked => e == PartitionError::Revoked,
                            St::Gone => e == PartitionError::Unknown,
                            St::Live => match e {
                                PartitionError::ReadOnly => rights::check(op, mh.writable).is_err(),
                                PartitionError::WrongSize => {
                                    u64::from(start) + u64::from(size) > u64::from(parent.size)
                                }
                                PartitionError::LimitExceeded => {
                                    self.handle_limit_reached(mh.owner)
                                }
                                PartitionError::Revoked | PartitionError::Unknown => false,
                            },
                        };
                        assert!(ok, "partition of a {:?} handle refused: {e:?}", mh.state);
                    }
                }
            }
            Op::Attach {
                guest,
                handle,
                access,
            } => {
                let Some(h) = self.pick(handle) else { return };
                let g = guest.map_or(self.handles[h].owner, |g| self.guest(g));
                let access = match access % 4 {
                    0 => Access::Write,
                    1 => Access::ReadExclusive,
                    2 => Access::ReadShared,
                    _ => Access::Pool,
                };
                let id = self.handles[h].id;
                // Computed before the attach: they describe the state it
                // was asked in.
                let conflict = self.live(h) && self.conflicts(h, access);
                let would_map = self.live(h) && self.would_map(h, access);
                let limit = self.mapping_limit_reached(g);
                let r = self.ledger.attach(self.guests[g].id, id, access);
                let mh = &self.handles[h];
                // What the rights table allows this handle.
                let allowed = rights::check(Operation::attach(access), mh.writable).is_ok();
                match r {
                    Ok(attached) => {
                        assert_eq!(mh.state, St::Live, "attach of a {:?} handle", mh.state);
                        assert!(
                            mh.owner == g,
                            "attach by a guest that does not hold the handle"
                        );
                        assert!(mh.att.is_none(), "second attachment of one handle");
                        assert!(allowed, "{access:?} attach of a read-only handle");
                        assert!(!conflict, "conflicting attach accepted");
                        assert_eq!(attached.size, self.visible(h, access));
                        if access == Access::Pool {
                            assert!(
                                matches!(
                                    attached.placement,
                                    Placement::Mapped {
                                        writable: false,
                                        ..
                                    } | Placement::Empty
                                ),
                                "a pool mapping that is not a read-only mapping: {:?}",
                                attached.placement
                            );
                        }
                        match attached.placement {
                            Placement::Mapped { .. } => {
                                assert!(would_map, "a mapping of bytes that cannot be mapped");
                                assert!(!limit, "a mapping past the mapping limit");
                            }
                            Placement::Copied { .. } => assert!(
                                !(would_map && limit),
                                "a copy past the mapping limit (the refusal hidden)"
                            ),
                            _ => {}
                        }
                        assert_eq!(attached.address, attached.placement.address());
                        self.handles[h].att = Some(MAttach {
                            access,
                            attached,
                            pool: None,
                        });
                    }
                    Err(e) => {
                        let c = self.contents[mh.content];
                        let b = &self.backings[&c.backing];
                        let shows = b.tag.is_some() && self.visible(h, access) > 0;
                        let memories = {
                            let s = &self.guests[g].storage;
                            s.iter().any(|x| x.0 != s[0].0)
                        };
                        let ok = match mh.state {
                            St::Revoked => e == AttachError::Revoked,
                            St::Gone => e == AttachError::Unknown,
                            St::Live => match e {
                                AttachError::Unknown => mh.owner != g,
                                AttachError::AlreadyAttached => mh.att.is_some(),
                                AttachError::ReadOnly => !allowed,
                                AttachError::Busy => conflict,
                                AttachError::LimitExceeded => would_map && limit,
                                // Storage may legitimately be short.
                                AttachError::NoStorage => shows,
                                AttachError::AmbiguousMemory => shows && memories,
                                AttachError::WrongMemory => b.local.is_some(),
                                AttachError::NotMapped | AttachError::Revoked => false,
                            },
                        };
                        assert!(
                            ok,
                            "{access:?} attach of a {:?} handle refused: {e:?}",
                            mh.state
                        );
                    }
                }
            }
            Op::AttachInPool { handle, mapping }
            | Op::WriteInPool {
                handle, mapping, ..
            } => {
                let Some(h) = self.pick(handle) else { return };
                let (access, g) = match *op {
                    Op::WriteInPool { guest: Some(g), .. } => (Access::Write, self.guest(g)),
                    Op::WriteInPool { .. } => (Access::Write, self.handles[h].owner),
                    _ => (Access::ReadShared, self.handles[h].owner),
                };
                let what = match access {
                    Access::Write => "write window",
                    _ => "in-pool read",
                };
                let p = self.mapping(g, h, mapping);
                let (id, pid) = (self.handles[h].id, self.handles[p].id);
                // Computed before: the state it was asked in.
                let live = self.live(h);
                let conflict = live && self.conflicts(h, access);
                let pooled = live && self.is_pool_for(g, h, p);
                let r = match access {
                    Access::Write => self.ledger.write_in_pool(self.guests[g].id, id, pid),
                    _ => self.ledger.attach_in_pool(self.guests[g].id, id, pid),
                };
                let mh = &self.handles[h];
                // What the ledger must answer: who asks and through what
                // first, then the write right (a read-only handle learns
                // nothing else), then the state of the block.
                let expected: Result<(), &[AttachError]> = match mh.state {
                    St::Revoked => Err(&[AttachError::Revoked]),
                    St::Gone => Err(&[AttachError::Unknown]),
                    St::Live if mh.owner != g => Err(&[AttachError::Unknown]),
                    St::Live if mh.att.is_some() => Err(&[AttachError::AlreadyAttached]),
                    St::Live if rights::check(Operation::in_pool(access), mh.writable).is_err() => {
                        Err(&[AttachError::ReadOnly])
                    }
                    // (Either reason may come first.)
                    St::Live if conflict && !pooled => {
                        Err(&[AttachError::Busy, AttachError::NotMapped])
                    }
                    St::Live if conflict => Err(&[AttachError::Busy]),
                    // (An address past 4 GiB would be refused too; storage
                    // never reaches that far here.)
                    St::Live if !pooled => Err(&[AttachError::NotMapped]),
                    St::Live => Ok(()),
                };
                match (r, expected) {
                    (Ok(attached), Ok(())) => {
                        // Rights only attenuate: a window needs the write
                        // right, which the handle still has.
                        if access == Access::Write {
                            assert_eq!(self.ledger.writable(id), Ok(true));
                        }
                        let c = self.contents[mh.content];
                        // A window shows the whole handle from its first
                        // byte (not from its consumed offset), a read its
                        // unconsumed valid bytes.
                        let (first, size) = match access {
                            Access::Write => (c.start, c.size),
                            _ => (c.start + u64::from(c.consumed), c.valid - c.consumed),
                        };
                        assert_eq!(attached.size, size, "{what} of the wrong size");
                        assert_eq!(attached.address, attached.placement.address());
                        assert_eq!(
                            attached.placement,
                            Placement::InPool {
                                memory: Self::in_pool_memory(attached.placement),
                                guest_offset: attached.address,
                                len: attached.size,
                            },
                            "{what} that is not an in-pool placement of its bytes"
                        );
                        // Where the mapping named (the guest may hold
                        // several of one block) shows those bytes.
                        assert!(
                            self.shown_in_pool(g, h, p, attached.placement, first),
                            "{what} at the wrong address: {attached:?}"
                        );
                        self.handles[h].att = Some(MAttach {
                            access,
                            attached,
                            pool: Some(p),
                        });
                    }
                    (Ok(attached), Err(e)) => panic!(
                        "{what} of a {:?} handle accepted ({attached:?}), expected {e:?}",
                        mh.state
                    ),
                    (Err(e), expected) => assert!(
                        expected.is_err_and(|x| x.contains(&e)),
                        "{what} of a {:?} handle refused: {e:?}, expected {expected:?}",
                        mh.state
                    ),
                }
            }
            Op::WriteThroughPool {
                handle,
                read,
                consumed,
            } => {
                let Some(h) = self.handle(handle) else { return };
                let owner = self.handles[h].owner as u8;
                self.apply(&Op::Clone { handle, to: owner });
                self.check();
                // `h` counted from the newest again, and the clone (the
                // newest) mapped as a pool.
                let Ok(again) = u8::try_from(self.handles.len() - 1 - h) else {
                    return;
                };
                let mut steps = vec![Op::Attach {
                    guest: None,
                    handle: 0,
                    access: 3,
                }];
                if let Some(share) = read {
                    steps.push(Op::Attach {
                        guest: None,
                        handle: again,
                        access: 1,
                    });
                    steps.push(Op::Detach {
                        guest: None,
                        handle: again,
                        consumed: share,
                    });
                }
                // (The window in the mapping just made: the newest handle.)
                steps.push(Op::WriteInPool {
                    guest: None,
                    handle: again,
                    mapping: 128,
                });
                steps.push(Op::Detach {
                    guest: None,
                    handle: again,
                    consumed,
                });
                for step in &steps {
                    self.apply(step);
                    self.check();
                }
            }
            Op::AbortAttach { handle } => {
                let Some(h) = self.pick(handle) else { return };
                let before = self.read_only_snapshot(h);
                // A revoked or unknown handle has nothing to abort.
                self.ledger.abort_attach(self.handles[h].id);
                if self.live(h) {
                    self.end_as(h, None, true);
                }
                self.check_unchanged(&before, "an abort");
            }
            Op::Detach {
                guest,
                handle,
                consumed,
            } => {
                let Some(h) = self.pick(handle) else { return };
                let g = guest.map_or(self.handles[h].owner, |g| self.guest(g));
                let visible = self.handles[h]
                    .att
                    .map_or(0, |a| u64::from(a.attached.size));
                let consumed = match consumed {
                    255 => visible + 1,
                    n => visible * u64::from(n) / 254,
                };
                let consumed = u32::try_from(consumed).unwrap_or(u32::MAX);
                let id = self.handles[h].id;
                let before = self.read_only_snapshot(h);
                match self.ledger.detach(self.guests[g].id, id, consumed) {
                    Ok(r) => {
                        let mh = &self.handles[h];
                        assert_eq!(mh.state, St::Live, "detach of a {:?} handle", mh.state);
                        assert!(mh.owner == g, "detach by another guest");
                        let a = mh.att.expect("detach without attach accepted");
                        assert!(consumed <= a.attached.size);
                        self.check_release(h, &a, &r, Some(consumed));
                        self.end(h, Some(consumed));
                    }
                    Err(e) => {
                        let mh = &self.handles[h];
                        let ok = match mh.state {
                            St::Revoked => e == DetachError::Revoked,
                            St::Gone => e == DetachError::Unknown,
                            St::Live => match e {
                                DetachError::Unknown => mh.owner != g,
                                DetachError::NotAttached => mh.att.is_none(),
                                DetachError::WrongSize => {
                                    mh.att.is_some_and(|a| consumed > a.attached.size)
                                }
                                DetachError::Revoked => false,
                            },
                        };
                        assert!(ok, "detach of a {:?} handle refused: {e:?}", mh.state);
                    }
                }
                self.check_unchanged(&before, "a detach");
            }
            Op::Drop { handle } => {
                let Some(h) = self.pick(handle) else { return };
                let id = self.handles[h].id;
                let before = self.read_only_snapshot(h);
                match self.ledger.drop_handle(id) {
                    Ok(d) => match self.handles[h].state {
                        St::Live => {
                            match (self.handles[h].att, d.release) {
                                (Some(a), Some(r)) => self.check_release(h, &a, &r, None),
                                (None, None) => {}
                                (a, r) => panic!(
                                    "drop released {r:?}, attachment was {:?}",
                                    a.map(|a| a.attached)
                                ),
                            }
                            let expected = self.kill(h);
                            assert_eq!(d.freed, expected, "backing returned at the wrong drop");
                            self.freed_tags.extend(d.freed);
                        }
                        St::Revoked => {
                            // Released when it was revoked: nothing left.
                            assert!(
                                d.release.is_none() && d.freed.is_none(),
                                "the drop of a revoked handle released {:?}",
                                d.release
                            );
                            self.handles[h].state = St::Gone;
                        }
                        St::Gone => panic!("drop of an unknown handle accepted"),
                    },
                    Err(e) => assert!(
                        self.handles[h].state == St::Gone && e == UnknownHandle::Unknown,
                        "drop of a {:?} handle refused: {e:?}",
                        self.handles[h].state
                    ),
                }
                assert_eq!(
                    self.ledger.owner(id),
                    Err(UnknownHandle::Unknown),
                    "a dropped handle is still known"
                );
                self.check_unchanged(&before, "a drop");
            }
            Op::Transfer { handle, to } => {
                let Some(h) = self.pick(handle) else { return };
                let to = self.guest(to);
                let id = self.handles[h].id;
                let before = self.read_only_snapshot(h);
                match self.ledger.transfer(id, self.guests[to].id) {
                    Ok(r) => {
                        let mh = &self.handles[h];
                        assert_eq!(mh.state, St::Live, "transfer of a {:?} handle", mh.state);
                        if mh.owner == to {
                            assert!(r.is_none());
                            return;
                        }
                        assert!(self.guests[to].alive);
                        assert!(!self.handle_limit_reached(to));
                        match (self.handles[h].att, r) {
                            (Some(a), Some(r)) => self.check_release(h, &a, &r, None),
                            (None, None) => {}
                            (a, r) => panic!(
                                "transfer released {r:?}, attachment was {:?}",
                                a.map(|a| a.attached)
                            ),
                        }
                        self.end(h, None);
                        self.handles[h].owner = to;
                    }
                    Err(e) => {
                        let ok = self.handle_refusal_expected(h, to, e);
                        assert!(
                            ok,
                            "transfer of a {:?} handle refused: {e:?}",
                            self.handles[h].state
                        );
                    }
                }
                self.check_unchanged(&before, "a transfer");
            }
        }
    }

    fn in_pool_memory(placement: Placement) -> MemoryId {
        match placement {
            Placement::InPool { memory, .. } => memory,
            _ => MemoryId(u64::MAX),
        }
    }

    fn locals_of(&self, g: usize) -> Vec<(MemoryId, u32, u32)> {
        self.backings
            .values()
            .filter(|b| b.alive && b.creator == g)
            .filter_map(|b| b.local)
            .collect()
    }

    fn at_limit(&self, g: usize, size: u64) -> bool {
        let l = self.guests[g].limits;
        let (blocks, bytes) = self.created(g);
        blocks >= l.max_blocks as usize
            || bytes + size > l.max_bytes
            || self.handle_limit_reached(g)
            || self.shared_blocks() as u64 >= self.process.max_blocks
    }

    /// Live blocks created by `g` (local ones included) and their bytes
    /// (host-owned ones only).
    fn created(&self, g: usize) -> (usize, u64) {
        let mine = self.backings.values().filter(|b| b.alive && b.creator == g);
        let blocks = mine.clone().count();
        let bytes = mine.filter(|b| b.tag.is_some()).map(|b| b.len).sum();
        (blocks, bytes)
    }

    /// Would attaching `h` with `access` conflict with a live attachment?
    fn conflicts(&self, h: usize, access: Access) -> bool {
        let c = self.handles[h].content;
        let (lo, hi) = self.range(c);
        let backing = self.contents[c].backing;
        self.handles.iter().enumerate().any(|(i, o)| {
            let Some(a) = o.att else { return false };
            let oc = o.content;
            if i == h || o.state != St::Live || self.contents[oc].backing != backing {
                return false;
            }
            let (olo, ohi) = self.range(oc);
            let both_shared = access == Access::ReadShared && a.access == Access::ReadShared;
            let pool = access == Access::Pool || a.access == Access::Pool;
            !both_shared && !pool && touches(lo, hi, olo, ohi)
        })
    }

    /// The independent checks, after every operation.
    fn check(&mut self) {
        self.check_with(false);
    }

    /// The checks; `full` also asks the ledger about every block's
    /// holders and every dropped handle, not only those that changed.
    fn check_with(&mut self, full: bool) {
        if let Err(e) = self.ledger.check_invariants() {
            panic!("check_invariants: {e}");
        }
        let page = u64::from(self.page);
        let alive = self.handles.iter().filter(|h| h.state == St::Live).count();
        assert_eq!(self.ledger.live_handles(), alive);
        let blocks = self.backings.values().filter(|b| b.alive).count();
        assert_eq!(self.ledger.live_blocks(), blocks);
        let mut returned = self.freed_tags.clone();
        returned.sort_unstable();
        let n = returned.len();
        returned.dedup();
        assert_eq!(n, returned.len(), "a backing returned twice");

        // Limits: handles (revoked ones included), blocks, bytes, mappings.
        let mut held = vec![0usize; self.guests.len()];
        let mut mapped = vec![0usize; self.guests.len()];
        for h in self.handles.iter() {
            if h.state != St::Gone {
                held[h.owner] += 1;
            }
            if h.state == St::Live
                && matches!(
                    h.att.map(|a| a.attached.placement),
                    Some(Placement::Mapped { .. })
                )
            {
                mapped[h.owner] += 1;
            }
        }
        for (g, mg) in self.guests.iter().enumerate() {
            if !mg.alive {
                assert_eq!(held[g], 0, "handles of a removed guest");
                continue;
            }
            let l = mg.limits;
            assert!(held[g] <= l.max_handles as usize, "handle limit exceeded");
            let (blocks, bytes) = self.created(g);
            assert!(blocks <= l.max_blocks as usize, "block limit exceeded");
            assert!(bytes <= l.max_bytes, "byte limit exceeded");
            assert!(
                mapped[g] <= l.max_mappings as usize,
                "{g}: {} mappings, limit {}",
                mapped[g],
                l.max_mappings
            );
        }
        let all_mapped: usize = mapped.iter().sum();
        assert_eq!(self.ledger.live_mappings(), all_mapped as u64);
        assert!(
            all_mapped as u64 <= self.process.max_mappings,
            "process mapping limit exceeded"
        );
        assert!(
            self.shared_blocks() as u64 <= self.process.max_blocks,
            "process block limit exceeded"
        );
        for l in &self.loans {
            if let Some(p) = l.parent {
                assert!(
                    !(self.loans[p].ended && !l.ended),
                    "a loan outlived its parent"
                );
            }
        }

        // Per block: its writable handles, one live handle (to ask the
        // ledger through) and its view (handles that are not pool mappings,
        // and the guests holding those).
        let mut per_block: Map<BackingId, (u32, HandleId, BlockView)> = Map::default();
        for h in self.handles.iter().filter(|h| h.state == St::Live) {
            let e = per_block
                .entry(self.contents[h.content].backing)
                .or_insert((0, h.id, (0, Vec::new())));
            e.0 += u32::from(h.writable);
            if h.att.is_none_or(|a| a.access != Access::Pool) {
                e.2 .0 += 1;
                e.2 .1.push(self.guests[h.owner].id);
            }
        }
        for (backing, (_, id, view)) in per_block.iter_mut() {
            view.1.sort();
            view.1.dedup();
            if full || self.focus.contains(backing) || self.seen.get(backing) != Some(view) {
                assert_eq!(
                    self.ledger.handles_of_block(*id),
                    Ok(view.0),
                    "handles_of_block"
                );
                assert_eq!(self.ledger.holders(*id).as_ref(), Ok(&view.1), "holders");
            }
        }
        self.seen = per_block
            .iter()
            .map(|(&b, (_, _, view))| (b, view.clone()))
            .collect();

        let attached: Vec<usize> = (0..self.handles.len())
            .filter(|&i| self.live(i) && self.handles[i].att.is_some())
            .collect();
        let mut spans: Vec<(usize, MemoryId, u64, u64)> = Vec::new();
        for (i, h) in self.handles.iter().enumerate() {
            match h.state {
                St::Live => {}
                // (Each one when it goes, and at the end: `live_handles`
                // above catches any that comes back.)
                St::Gone if !full => continue,
                St::Gone => {
                    assert_eq!(
                        self.ledger.owner(h.id),
                        Err(UnknownHandle::Unknown),
                        "a dropped handle is still known"
                    );
                    continue;
                }
                St::Revoked => {
                    // Revoked and dead: every query says so.
                    let r = Err(UnknownHandle::Revoked);
                    let l = &self.ledger;
                    assert_eq!(l.owner(h.id), r.map(|()| GuestId(0)), "owner");
                    assert_eq!(l.size(h.id), r.map(|()| 0), "size");
                    assert_eq!(l.valid_range(h.id), r.map(|()| (0, 0)), "valid_range");
                    assert_eq!(l.writable(h.id), r.map(|()| false), "writable");
                    assert_eq!(l.attached(h.id), r.map(|()| None), "attached");
                    assert_eq!(l.attachment(h.id), r.map(|()| None), "attachment");
                    assert_eq!(l.write_attached(h.id), r.map(|()| false), "write_attached");
                    assert_eq!(l.backing_of(h.id).err(), Some(UnknownHandle::Revoked));
                    assert_eq!(l.minimum_size(h.id), r.map(|()| 0), "minimum_size");
                    assert_eq!(l.handles_of_block(h.id), r.map(|()| 0), "handles_of_block");
                    assert_eq!(l.holders(h.id), r.map(|()| Vec::new()), "holders");
                    assert_eq!(l.other_writers(h.id), r.map(|()| 0), "other_writers");
                    continue;
                }
            }
            if let Some(l) = h.loan {
                assert!(!self.loans[l].ended, "a live handle of an ended loan");
            }
            let c = self.contents[h.content];
            assert_eq!(self.ledger.owner(h.id), Ok(self.guests[h.owner].id));
            assert_eq!(self.ledger.size(h.id), Ok(c.size));
            assert_eq!(self.ledger.writable(h.id), Ok(h.writable));
            assert_eq!(
                self.ledger.valid_range(h.id),
                Ok((c.consumed, c.valid - c.consumed))
            );
            assert_eq!(self.ledger.attached(h.id), Ok(h.att.map(|a| a.access)));
            assert_eq!(
                self.ledger.attachment(h.id),
                Ok(h.att.map(|a| (a.access, a.attached.placement))),
                "attachment"
            );
            let (backing, start, _) = self.ledger.backing_of(h.id).expect("live");
            assert_eq!((backing, start), (c.backing, c.start));
            let writers = per_block[&c.backing].0;
            assert_eq!(
                self.ledger.other_writers(h.id),
                Ok(writers - u32::from(h.writable)),
                "other_writers"
            );
            let b = &self.backings[&c.backing];
            assert!(b.alive);
            let (lo, hi) = (c.start, c.start + u64::from(c.size));
            assert!(hi <= b.len, "a handle's range lies outside its backing");

            let Some(a) = h.att else { continue };
            // Independent of the rights table (which the expectations above
            // follow): whatever it says, a read-only handle never holds a
            // write or an exclusive read.
            assert!(
                h.writable || !matches!(a.access, Access::Write | Access::ReadExclusive),
                "a read-only handle holds an exclusive attachment"
            );
            // An exclusive attachment overlaps no other attachment (pool
            // mappings aside: they grant nothing by themselves).
            if a.access == Access::Write || a.access == Access::ReadExclusive {
                for &j in &attached {
                    let oc = self.contents[self.handles[j].content];
                    let pool = self.handles[j]
                        .att
                        .is_some_and(|x| x.access == Access::Pool);
                    if j == i || oc.backing != c.backing || pool {
                        continue;
                    }
                    let (olo, ohi) = (oc.start, oc.start + u64::from(oc.size));
                    assert!(
                        !overlap(lo, hi, olo, ohi),
                        "an exclusive attachment is shared"
                    );
                }
            }
            let (memory, at, len) = match a.attached.placement {
                Placement::InPool { .. } => {
                    // A shared read (its valid bytes: nothing can change
                    // them while it lasts), or a write window (the whole
                    // handle from its first byte), inside the pool mapping
                    // it was placed in, which its guest still holds
                    // (it ends with that mapping), where it shows them.
                    let (first, size, what) = match a.access {
                        Access::ReadShared => (
                            c.start + u64::from(c.consumed),
                            c.valid - c.consumed,
                            "an in-pool read",
                        ),
                        Access::Write => (c.start, c.size, "a write window"),
                        x => panic!("an in-pool attachment with {x:?} access"),
                    };
                    let p = a.pool.expect("an in-pool attachment names its mapping");
                    assert!(
                        self.is_pool_for(h.owner, i, p),
                        "{what} outlived its pool mapping"
                    );
                    assert_eq!(a.attached.size, size, "{what} changed size");
                    assert!(
                        self.shown_in_pool(h.owner, i, p, a.attached.placement, first),
                        "{what} outside the pool mapping that showed it"
                    );
                    continue;
                }
                Placement::Empty => {
                    assert_eq!(a.attached.size, 0);
                    continue;
                }
                Placement::Local {
                    memory,
                    guest_offset,
                    len,
                } => {
                    let (m, off, blen) = b.local.expect("a local placement of a host-owned block");
                    assert_eq!(m, memory);
                    assert!(
                        u64::from(off) + lo <= u64::from(guest_offset)
                            && u64::from(guest_offset) + u64::from(len)
                                <= u64::from(off) + hi.min(u64::from(blen)),
                        "a local placement outside the local block's range"
                    );
                    continue;
                }
                Placement::Mapped {
                    memory,
                    guest_offset,
                    backing,
                    file_offset,
                    len,
                    skew,
                    writable,
                } => {
                    assert_eq!(backing, c.backing);
                    assert_eq!(
                        writable,
                        a.access == Access::Write,
                        "mapping rights differ from access"
                    );
                    assert!(
                        u64::from(guest_offset) % page == 0
                            && file_offset % page == 0
                            && u64::from(len) % page == 0,
                        "a mapping that is not page aligned"
                    );
                    // Every backing byte the mapping shows belongs to this
                    // handle's range.
                    let shown_end = (file_offset + u64::from(len)).min(b.len);
                    assert!(
                        file_offset >= lo && shown_end <= hi,
                        "mapping {file_offset}+{len} shows bytes outside {lo}..{hi} (backing {})",
                        b.len
                    );
                    assert!(file_offset + u64::from(len) <= round_up(b.len, page));
                    // The visible bytes lie inside the mapping.
                    assert!(u64::from(skew) + u64::from(a.attached.size) <= u64::from(len));
                    (memory, u64::from(guest_offset), u64::from(len))
                }
                Placement::Copied {
                    memory,
                    guest_offset,
                    backing,
                    backing_offset,
                    len,
                } => {
                    assert_eq!(backing, c.backing);
                    assert_eq!(len, a.attached.size);
                    assert!(
                        lo <= backing_offset && backing_offset + u64::from(len) <= hi,
                        "a copy of bytes outside the handle's range"
                    );
                    (memory, u64::from(guest_offset), u64::from(len))
                }
            };
            // Inside storage donated by the holder, in that memory.
            let inside = self.guests[h.owner].storage.iter().any(|&(m, s, l)| {
                m == memory && u64::from(s) <= at && at + len <= u64::from(s) + u64::from(l)
            });
            assert!(
                inside,
                "placement {:?} outside donated storage",
                a.attached.placement
            );
            for &(g2, m2, s2, e2) in &spans {
                assert!(
                    !(g2 == h.owner && m2 == memory && overlap(at, at + len, s2, e2)),
                    "two placements of one guest overlap"
                );
            }
            spans.push((h.owner, memory, at, at + len));
        }
    }

    /// Drops every handle, revoked ones included: every host-owned backing
    /// must come back once.
    fn finish(&mut self) {
        self.check_with(true);
        for h in 0..self.handles.len() {
            match self.handles[h].state {
                St::Live => {
                    self.abandoned.clear();
                    let d = self.ledger.drop_handle(self.handles[h].id).expect("live");
                    let expected = self.kill(h);
                    assert_eq!(d.freed, expected);
                    self.freed_tags.extend(d.freed);
                    self.check_abandoned();
                }
                St::Revoked => {
                    let d = self
                        .ledger
                        .drop_handle(self.handles[h].id)
                        .expect("revoked");
                    assert!(d.release.is_none() && d.freed.is_none());
                    self.handles[h].state = St::Gone;
                }
                St::Gone => {}
            }
        }
        self.check_with(true);
        assert_eq!(self.ledger.live_blocks(), 0);
        let created: usize = self.backings.values().filter(|b| b.tag.is_some()).count();
        assert_eq!(
            self.freed_tags.len(),
            created,
            "a backing was never returned"
        );
    }
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut u)?;
    let page = 1u32 << (4 + setup.page_shift % 13);
    let mut limits = match setup.tight {
        Some((blocks, bytes, handles, regions, mappings)) => Limits {
            max_blocks: u32::from(blocks % 8),
            max_bytes: u64::from(bytes) * 16,
            max_handles: u32::from(handles % 16),
            max_storage_regions: u32::from(regions % 4),
            max_mappings: u32::from(mappings % 6),
            ..Limits::default()
        },
        None => Limits::default(),
    };
    if let Some(n) = setup.mappings {
        limits.max_mappings = u32::from(n % 6);
    }
    let process = match setup.process {
        Some((blocks, mappings)) => ProcessLimits {
            max_blocks: u64::from(blocks % 10),
            max_mappings: u64::from(mappings % 8),
        },
        None => ProcessLimits::default(),
    };
    let mut ledger = Ledger::with_process_limits(page, process);
    assert_eq!(ledger.process_limits(), process);
    let guests = (0..1 + setup.guests % 3)
        .map(|_| MGuest {
            id: ledger.add_guest(limits),
            alive: true,
            limits,
            storage: Vec::new(),
        })
        .collect();
    let mut m = Model {
        page,
        process,
        ledger,
        guests,
        backings: Map::default(),
        contents: Vec::new(),
        handles: Vec::new(),
        loans: Vec::new(),
        next_tag: 0,
        freed_tags: Vec::new(),
        abandoned: Vec::new(),
        focus: Vec::new(),
        seen: Map::default(),
    };
    if let Some((pages, offset)) = setup.storage {
        for g in 0..m.guests.len() {
            let len = (u32::from(pages % 64) + 1) * page + u32::from(offset % 64);
            m.apply(&Op::AddStorage {
                guest: g as u8,
                memory: 0,
                offset: Num::Raw(u32::from(offset)),
                len: Num::Raw(len),
            });
        }
    }
    m.check();
    let mut steps = 0;
    while !u.is_empty() && steps < 64 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        m.apply(&op);
        m.check();
        steps += 1;
    }
    m.finish();
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
