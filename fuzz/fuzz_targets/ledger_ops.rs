//! Drives the attach rules (`shm_rules::Ledger`) with arbitrary operation
//! sequences over a few guests and memories: create, create-local, clone,
//! alias, partition, add-storage, attach, abort-attach, detach, drop,
//! transfer and remove-guest, with arbitrary sizes and offsets.
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
//! - dropping the last handle of a block returns its backing, exactly once,
//!   and never earlier;
//! - per-guest limits hold.

#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use shm_rules::{
    Access, Attached, BackingId, GuestId, HandleId, Ledger, Limits, MemoryId, Placement,
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
    /// A read in the owner's pool mapping of the block (pooled topics).
    AttachInPool {
        handle: u8,
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
    /// with some bytes valid, clone it to `to`, attach the clone there.
    Publish {
        handle: u8,
        consumed: u8,
        to: u8,
        access: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Setup {
    page_shift: u8,
    /// Small limits, to reach the limit paths.
    tight: Option<(u8, u16, u8, u8)>,
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
}

struct MHandle {
    id: HandleId,
    owner: usize,
    content: usize,
    writable: bool,
    alive: bool,
    att: Option<MAttach>,
}

struct Model {
    page: u32,
    ledger: Ledger<u32>,
    guests: Vec<MGuest>,
    backings: HashMap<BackingId, MBacking>,
    contents: Vec<MContent>,
    handles: Vec<MHandle>,
    next_tag: u32,
    freed_tags: Vec<u32>,
}

fn overlap(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 < b1 && b0 < a1
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

    fn memory(m: u8) -> MemoryId {
        MemoryId(u64::from(m % 3))
    }

    fn guest_handles(&self, g: usize) -> usize {
        self.handles
            .iter()
            .filter(|h| h.alive && h.owner == g)
            .count()
    }

    /// The backing range of a content.
    fn range(&self, c: usize) -> (u64, u64) {
        let c = &self.contents[c];
        (c.start, c.start + u64::from(c.size))
    }

    fn new_handle(&mut self, id: HandleId, owner: usize, content: usize, writable: bool) {
        assert!(
            self.handles.iter().all(|h| h.id != id),
            "handle id {id:?} reused"
        );
        let backing = self.contents[content].backing;
        self.backings.get_mut(&backing).expect("backing").handles += 1;
        self.handles.push(MHandle {
            id,
            owner,
            content,
            writable,
            alive: true,
            att: None,
        });
    }

    /// Ends the model attachment of handle `h`; `consumed` as for detach.
    fn end(&mut self, h: usize, consumed: Option<u32>) -> Option<MAttach> {
        let a = self.handles[h].att.take()?;
        if let Some(n) = consumed {
            let c = &mut self.contents[self.handles[h].content];
            match a.access {
                Access::Write => {
                    c.valid = n;
                    c.consumed = 0;
                }
                Access::ReadExclusive => c.consumed += n,
                Access::ReadShared | Access::Pool => {}
            }
        }
        self.cascade(h, &a);
        Some(a)
    }

    /// When a pool mapping ends, the in-pool reads inside it end too.
    fn cascade(&mut self, h: usize, a: &MAttach) {
        let Placement::Mapped {
            memory,
            guest_offset,
            len,
            ..
        } = a.attached.placement
        else {
            return;
        };
        if a.access != Access::Pool {
            return;
        }
        let owner = self.handles[h].owner;
        let backing = self.contents[self.handles[h].content].backing;
        let (from, to) = (
            u64::from(guest_offset),
            u64::from(guest_offset) + u64::from(len),
        );
        for i in 0..self.handles.len() {
            let o = &self.handles[i];
            let inside = matches!(o.att.map(|x| x.attached.placement),
                Some(Placement::InPool { memory: m, guest_offset: g, .. })
                    if m == memory && from <= u64::from(g) && u64::from(g) <= to);
            if o.alive && o.owner == owner && inside && self.contents[o.content].backing == backing
            {
                self.handles[i].att = None;
            }
        }
    }

    /// The pool mapping (`Access::Pool`) held by `h`'s owner that covers
    /// `h`'s bytes, if any.
    fn pool_mapping(&self, h: usize) -> Option<usize> {
        self.pool_mappings(h).first().copied()
    }

    /// Every pool mapping held by `h`'s owner that covers `h`'s bytes.
    fn pool_mappings(&self, h: usize) -> Vec<usize> {
        let c = self.handles[h].content;
        let (lo, hi) = self.range(c);
        let backing = self.contents[c].backing;
        (0..self.handles.len())
            .filter(|&i| {
                let o = &self.handles[i];
                let (olo, ohi) = self.range(o.content);
                o.alive
                    && o.owner == self.handles[h].owner
                    && o.att.is_some_and(|a| {
                        a.access == Access::Pool
                            && matches!(a.attached.placement, Placement::Mapped { .. })
                    })
                    && self.contents[o.content].backing == backing
                    && olo <= lo
                    && hi <= ohi
            })
            .collect()
    }

    /// Removes handle `h` from the model; returns the tag of the backing
    /// when it was the backing's last handle.
    fn kill(&mut self, h: usize) -> Option<u32> {
        if let Some(a) = self.handles[h].att {
            self.cascade(h, &a);
        }
        self.handles[h].alive = false;
        self.handles[h].att = None;
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

    fn check_release(&self, h: usize, a: &MAttach, r: &shm_rules::Release, consumed: Option<u32>) {
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

    fn apply(&mut self, op: &Op) {
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
                        access: access | 1,
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
                        if self.handles[h].alive && self.handles[h].owner == g {
                            expected.extend(self.kill(h));
                        }
                    }
                    self.guests[g].alive = false;
                    self.guests[g].storage.clear();
                }
                freed.sort_unstable();
                expected.sort_unstable();
                assert_eq!(freed, expected, "remove_guest freed other backings");
                self.freed_tags.extend(freed);
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
                    self.new_handle(id, g, self.contents.len() - 1, true);
                } else {
                    assert!(
                        !self.guests[g].alive || self.at_limit(g, u64::from(size)),
                        "create refused: {r:?}"
                    );
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
                    self.new_handle(id, g, self.contents.len() - 1, true);
                }
            }
            Op::Clone { handle, to } | Op::Alias { handle, to } => {
                let Some(h) = self.handle(handle) else { return };
                let to = self.guest(to);
                let id = self.handles[h].id;
                let alias = matches!(op, Op::Alias { .. });
                let r = if alias {
                    self.ledger.alias(id, self.guests[to].id)
                } else {
                    self.ledger.clone_handle(id, self.guests[to].id)
                };
                match r {
                    Ok(new) => {
                        assert!(self.handles[h].alive && self.guests[to].alive);
                        assert!(
                            self.guest_handles(to) < self.guests[to].limits.max_handles as usize
                        );
                        let writable = alias && self.handles[h].writable;
                        let content = self.handles[h].content;
                        self.new_handle(new, to, content, writable);
                    }
                    Err(e) => assert!(
                        !self.handles[h].alive
                            || !self.guests[to].alive
                            || self.guest_handles(to)
                                >= self.guests[to].limits.max_handles as usize,
                        "clone refused: {e:?}"
                    ),
                }
            }
            Op::Partition {
                handle,
                start,
                size,
                writable,
            } => {
                let Some(h) = self.handle(handle) else { return };
                let (start, size) = (start.get(page), size.get(page));
                let id = self.handles[h].id;
                match self.ledger.partition(id, start, size, writable) {
                    Ok(new) => {
                        let mh = &self.handles[h];
                        assert!(mh.alive);
                        assert!(
                            !writable || mh.writable,
                            "writable partition of a read-only handle"
                        );
                        let parent = self.contents[mh.content];
                        assert!(u64::from(start) + u64::from(size) <= u64::from(parent.size));
                        let owner = mh.owner;
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
                        self.new_handle(new, owner, self.contents.len() - 1, writable);
                    }
                    Err(e) => {
                        let mh = &self.handles[h];
                        let parent = self.contents[mh.content];
                        assert!(
                            !mh.alive
                                || (writable && !mh.writable)
                                || u64::from(start) + u64::from(size) > u64::from(parent.size)
                                || self.guest_handles(mh.owner)
                                    >= self.guests[mh.owner].limits.max_handles as usize,
                            "partition refused: {e:?}"
                        );
                    }
                }
            }
            Op::Attach {
                guest,
                handle,
                access,
            } => {
                let Some(h) = self.handle(handle) else { return };
                let g = guest.map_or(self.handles[h].owner, |g| self.guest(g));
                let access = match access % 4 {
                    0 => Access::Write,
                    1 => Access::ReadExclusive,
                    2 => Access::ReadShared,
                    _ => Access::Pool,
                };
                let id = self.handles[h].id;
                let r = self.ledger.attach(self.guests[g].id, id, access);
                let mh = &self.handles[h];
                let conflict = self.conflicts(h, access);
                match r {
                    Ok(attached) => {
                        assert!(
                            mh.alive && mh.owner == g,
                            "attach by a guest that does not hold the handle"
                        );
                        assert!(mh.att.is_none(), "second attachment of one handle");
                        assert!(
                            access != Access::Write || mh.writable,
                            "write attach of a read-only handle"
                        );
                        assert!(!conflict, "conflicting attach accepted");
                        let c = self.contents[mh.content];
                        let visible = match access {
                            Access::Write | Access::Pool => c.size,
                            _ => c.valid - c.consumed,
                        };
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
                        assert_eq!(attached.size, visible);
                        assert_eq!(attached.address, attached.placement.address());
                        self.handles[h].att = Some(MAttach { access, attached });
                    }
                    Err(e) => {
                        // Storage may legitimately be missing; the other
                        // refusals must have a reason.
                        if e != shm_rules::AttachError::NoStorage
                            && e != shm_rules::AttachError::AmbiguousMemory
                            && e != shm_rules::AttachError::WrongMemory
                        {
                            assert!(
                                !mh.alive
                                    || mh.owner != g
                                    || mh.att.is_some()
                                    || (access == Access::Write && !mh.writable)
                                    || conflict,
                                "attach refused: {e:?}"
                            );
                        }
                    }
                }
            }
            Op::AttachInPool { handle } => {
                let Some(h) = self.handle(handle) else { return };
                let id = self.handles[h].id;
                let g = self.handles[h].owner;
                let r = self.ledger.attach_in_pool(self.guests[g].id, id);
                let mh = &self.handles[h];
                let conflict = self.conflicts(h, Access::ReadShared);
                let pool = mh.alive.then(|| self.pool_mapping(h)).flatten();
                match r {
                    Ok(attached) => {
                        assert!(
                            mh.alive && mh.att.is_none(),
                            "in-pool attach of an attached handle"
                        );
                        assert!(!conflict, "conflicting in-pool attach accepted");
                        assert!(pool.is_some(), "in-pool attach without a pool mapping");
                        let c = self.contents[mh.content];
                        assert_eq!(attached.size, c.valid - c.consumed);
                        // The bytes are where a pool mapping of the owner
                        // (it may hold several of one block) shows them.
                        let first = c.start + u64::from(c.consumed);
                        let shown = self.pool_mappings(h).into_iter().any(|p| {
                            let pa = self.handles[p].att.expect("mapped");
                            let Placement::Mapped {
                                guest_offset,
                                file_offset,
                                ..
                            } = pa.attached.placement
                            else {
                                return false;
                            };
                            u64::from(attached.address)
                                == u64::from(guest_offset) + first - file_offset
                        });
                        assert!(shown, "in-pool bytes at the wrong address: {attached:?}");
                        self.handles[h].att = Some(MAttach {
                            access: Access::ReadShared,
                            attached,
                        });
                    }
                    Err(e) => assert!(
                        !mh.alive || mh.att.is_some() || conflict || pool.is_none(),
                        "in-pool attach refused: {e:?}"
                    ),
                }
            }
            Op::AbortAttach { handle } => {
                let Some(h) = self.handle(handle) else { return };
                if self.handles[h].alive {
                    self.ledger.abort_attach(self.handles[h].id);
                    self.end(h, None);
                }
            }
            Op::Detach {
                guest,
                handle,
                consumed,
            } => {
                let Some(h) = self.handle(handle) else { return };
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
                match self.ledger.detach(self.guests[g].id, id, consumed) {
                    Ok(r) => {
                        let mh = &self.handles[h];
                        assert!(mh.alive && mh.owner == g);
                        let a = mh.att.expect("detach without attach accepted");
                        assert!(consumed <= a.attached.size);
                        self.check_release(h, &a, &r, Some(consumed));
                        self.end(h, Some(consumed));
                    }
                    Err(e) => {
                        let mh = &self.handles[h];
                        assert!(
                            !mh.alive
                                || mh.owner != g
                                || mh.att.is_none_or(|a| consumed > a.attached.size),
                            "detach refused: {e:?}"
                        );
                    }
                }
            }
            Op::Drop { handle } => {
                let Some(h) = self.handle(handle) else { return };
                let id = self.handles[h].id;
                match self.ledger.drop_handle(id) {
                    Ok(d) => {
                        assert!(self.handles[h].alive, "drop of a dead handle accepted");
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
                    Err(_) => assert!(!self.handles[h].alive, "drop of a live handle refused"),
                }
            }
            Op::Transfer { handle, to } => {
                let Some(h) = self.handle(handle) else { return };
                let to = self.guest(to);
                let id = self.handles[h].id;
                match self.ledger.transfer(id, self.guests[to].id) {
                    Ok(r) => {
                        assert!(self.handles[h].alive);
                        if self.handles[h].owner == to {
                            assert!(r.is_none());
                            return;
                        }
                        assert!(self.guests[to].alive);
                        assert!(
                            self.guest_handles(to) < self.guests[to].limits.max_handles as usize
                        );
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
                    Err(e) => assert!(
                        !self.handles[h].alive
                            || !self.guests[to].alive
                            || self.guest_handles(to)
                                >= self.guests[to].limits.max_handles as usize,
                        "transfer refused: {e:?}"
                    ),
                }
            }
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
            || self.guest_handles(g) >= l.max_handles as usize
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
            if i == h || !o.alive || self.contents[oc].backing != backing {
                return false;
            }
            let (olo, ohi) = self.range(oc);
            let both_shared = access == Access::ReadShared && a.access == Access::ReadShared;
            let pool = access == Access::Pool || a.access == Access::Pool;
            !both_shared && !pool && overlap(lo, hi.max(lo + 1), olo, ohi.max(olo + 1))
        })
    }

    /// The independent checks, after every operation.
    fn check(&self) {
        if let Err(e) = self.ledger.check_invariants() {
            panic!("check_invariants: {e}");
        }
        let page = u64::from(self.page);
        let alive = self.handles.iter().filter(|h| h.alive).count();
        assert_eq!(self.ledger.live_handles(), alive);
        let blocks = self.backings.values().filter(|b| b.alive).count();
        assert_eq!(self.ledger.live_blocks(), blocks);
        let mut seen = self.freed_tags.clone();
        seen.sort_unstable();
        let n = seen.len();
        seen.dedup();
        assert_eq!(n, seen.len(), "a backing returned twice");

        let mut held = vec![0usize; self.guests.len()];
        for h in self.handles.iter().filter(|h| h.alive) {
            held[h.owner] += 1;
        }
        for (g, mg) in self.guests.iter().enumerate() {
            if !mg.alive {
                continue;
            }
            let l = mg.limits;
            assert!(held[g] <= l.max_handles as usize, "handle limit exceeded");
            let (blocks, bytes) = self.created(g);
            assert!(blocks <= l.max_blocks as usize, "block limit exceeded");
            assert!(bytes <= l.max_bytes, "byte limit exceeded");
        }

        let attached: Vec<usize> = (0..self.handles.len())
            .filter(|&i| self.handles[i].alive && self.handles[i].att.is_some())
            .collect();
        let mut spans: Vec<(usize, MemoryId, u64, u64)> = Vec::new();
        for (i, h) in self.handles.iter().enumerate() {
            if !h.alive {
                assert!(
                    self.ledger.owner(h.id).is_err(),
                    "a dropped handle is still known"
                );
                continue;
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
            let (backing, start, _) = self.ledger.backing_of(h.id).expect("live");
            assert_eq!((backing, start), (c.backing, c.start));
            let b = &self.backings[&c.backing];
            assert!(b.alive);
            let (lo, hi) = (c.start, c.start + u64::from(c.size));
            assert!(hi <= b.len, "a handle's range lies outside its backing");

            let Some(a) = h.att else { continue };
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
                    assert_eq!(a.access, Access::ReadShared);
                    assert!(
                        self.pool_mapping(i).is_some(),
                        "an in-pool read outlived its pool mapping"
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

    /// Drops every handle: every host-owned backing must come back once.
    fn finish(&mut self) {
        for h in 0..self.handles.len() {
            if self.handles[h].alive {
                let d = self.ledger.drop_handle(self.handles[h].id).expect("live");
                let expected = self.kill(h);
                assert_eq!(d.freed, expected);
                self.freed_tags.extend(d.freed);
            }
        }
        self.check();
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
    let limits = match setup.tight {
        Some((blocks, bytes, handles, regions)) => Limits {
            max_blocks: u32::from(blocks % 8),
            max_bytes: u64::from(bytes) * 16,
            max_handles: u32::from(handles % 16),
            max_storage_regions: u32::from(regions % 4),
        },
        None => Limits::default(),
    };
    let mut ledger = Ledger::new(page);
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
        ledger,
        guests,
        backings: HashMap::new(),
        contents: Vec::new(),
        handles: Vec::new(),
        next_tag: 0,
        freed_tags: Vec::new(),
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
