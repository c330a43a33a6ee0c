//! The ledger's self-check, used by tests and the fuzzer.

use super::state::{Attachment, Bytes, Handle};
use super::Ledger;
use crate::{Access, MemoryId, Placement};

impl<B> Ledger<B> {
    /// Checks the ledger's invariants; `Err` names the first one broken.
    /// Used by tests and the fuzzer.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (bid, b) in &self.backings {
            let attached: Vec<Attachment> = b
                .attached
                .iter()
                .map(|h| {
                    self.handles
                        .get(h)
                        .and_then(|h| h.attachment)
                        .ok_or("stale attached entry")
                })
                .collect::<Result<_, _>>()?;
            for (i, a) in attached.iter().enumerate() {
                for x in &attached[i + 1..] {
                    if a.overlaps(x.lo, x.hi) && a.access.conflicts_with(x.access) {
                        return Err(format!("conflicting attachments on {bid:?}"));
                    }
                }
            }
        }
        for (gid, g) in &self.guests {
            // Every mapped or copied placement lies inside one of the
            // guest's regions, and no two placements overlap.
            let mut spans: Vec<(MemoryId, u64, u64)> = Vec::new();
            for h in self.handles.values().filter(|h| h.owner == *gid) {
                let Some(a) = h.attachment else { continue };
                if let Placement::InPool {
                    memory,
                    guest_offset,
                    len,
                } = a.placement
                {
                    let (at, end) = (
                        u64::from(guest_offset),
                        u64::from(guest_offset) + u64::from(len),
                    );
                    // It lies in the pool mapping it names: a live handle
                    // of the same guest, mapping the same block.
                    let backing = self.contents[&h.content].backing;
                    let in_mapping = a.pool.and_then(|p| self.handles.get(&p)).is_some_and(|p| {
                        p.owner == *gid
                            && self.contents[&p.content].backing == backing
                            && matches!(p.attachment, Some(Attachment {
                                access: Access::Pool,
                                placement: Placement::Mapped { memory: m, guest_offset: g, len: l, .. },
                                ..
                            }) if m == memory && u64::from(g) <= at && end <= u64::from(g) + u64::from(l))
                    });
                    if !in_mapping || !matches!(a.access, Access::ReadShared | Access::Write) {
                        return Err(format!(
                            "in-pool attachment of {gid:?} outside its pool mappings"
                        ));
                    }
                    continue;
                }
                if a.access == Access::Pool
                    && !matches!(
                        a.placement,
                        Placement::Mapped {
                            writable: false,
                            ..
                        } | Placement::Empty
                    )
                {
                    return Err("a pool mapping that is not a read-only mapping".into());
                }
                let (memory, at, len) = match a.placement {
                    Placement::Mapped {
                        memory,
                        guest_offset,
                        len,
                        ..
                    }
                    | Placement::Copied {
                        memory,
                        guest_offset,
                        len,
                        ..
                    } => (memory, u64::from(guest_offset), u64::from(len)),
                    _ => continue,
                };
                if let Placement::Mapped { guest_offset, .. } = a.placement {
                    if guest_offset % self.page != 0 {
                        return Err("mapping not page aligned".into());
                    }
                }
                let inside = g
                    .regions
                    .iter()
                    .any(|r| r.memory == memory && u64::from(r.start) <= at && at + len <= r.end());
                if !inside {
                    return Err(format!("placement outside donated storage of {gid:?}"));
                }
                if spans
                    .iter()
                    .any(|&(m, s, l)| m == memory && at < s + l && s < at + len)
                {
                    return Err("overlapping placements".into());
                }
                spans.push((memory, at, len));
            }
        }
        for (id, c) in &self.contents {
            if c.valid > c.size || c.consumed > c.valid {
                return Err(format!("content {id:?} has valid bytes out of range"));
            }
        }
        // Counters agree with what they count.
        for (bid, b) in &self.backings {
            let writers = self
                .handles
                .values()
                .filter(|h| h.writable && self.contents[&h.content].backing == *bid)
                .count();
            if writers != b.writers as usize {
                return Err(format!(
                    "{bid:?} counts {} writers, has {writers}",
                    b.writers
                ));
            }
        }
        let mapped = |h: &&Handle| {
            matches!(
                h.attachment.map(|a| a.placement),
                Some(Placement::Mapped { .. })
            )
        };
        if self.handles.values().filter(mapped).count() as u64 != self.mappings {
            return Err("the process mapping count is off".into());
        }
        for (gid, g) in &self.guests {
            let n = self
                .handles
                .values()
                .filter(|h| h.owner == *gid)
                .filter(mapped)
                .count();
            if n != g.mappings as usize {
                return Err(format!("{gid:?} counts {} mappings, has {n}", g.mappings));
            }
            let held = self.handles.values().filter(|h| h.owner == *gid).count()
                + self.revoked.values().filter(|o| *o == gid).count();
            if held != g.handles as usize {
                return Err(format!(
                    "{gid:?} counts {} handles, holds {held}",
                    g.handles
                ));
            }
        }
        let shared = self
            .backings
            .values()
            .filter(|b| matches!(b.bytes, Bytes::Shared(_)))
            .count();
        if shared as u64 != self.shared_blocks {
            return Err("the process block count is off".into());
        }
        // Every handle of a loan is live and says so; revoked ones are gone.
        for (lid, l) in &self.loans {
            for h in &l.handles {
                if self.handles.get(h).and_then(|h| h.loan) != Some(*lid) {
                    return Err(format!("{lid:?} lists {h:?}, which is not in it"));
                }
            }
        }
        for h in self.handles.values() {
            if let Some(l) = h.loan {
                if !self.loans.contains_key(&l) {
                    return Err(format!("a live handle belongs to ended {l:?}"));
                }
            }
        }
        if self.revoked.keys().any(|h| self.handles.contains_key(h)) {
            return Err("a revoked handle is still live".into());
        }
        Ok(())
    }
}
