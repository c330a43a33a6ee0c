//! Counters of block operations, per guest and in total, and the table the
//! runner prints.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters, per guest and in total. All are monotonic.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) blocks_created: AtomicU64,
    pub(crate) attaches: AtomicU64,
    pub(crate) detaches: AtomicU64,
    pub(crate) maps: AtomicU64,
    pub(crate) bytes_mapped: AtomicU64,
    pub(crate) copies: AtomicU64,
    pub(crate) bytes_copied: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) verified: AtomicU64,
    pub(crate) verify_failures: AtomicU64,
    pub(crate) in_pool: AtomicU64,
    pub(crate) revoked: AtomicU64,
    pub(crate) remote: AtomicU64,
    pub(crate) bytes_remote: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Blocks created (constructor and create-local).
    pub blocks_created: u64,
    /// Successful attaches.
    pub attaches: u64,
    /// Successful detaches (including those implied by drop).
    pub detaches: u64,
    /// Attaches carried out by mapping pages.
    pub maps: u64,
    /// Bytes of block pages mapped into guests.
    pub bytes_mapped: u64,
    /// Attaches carried out by the copy fallback.
    pub copies: u64,
    /// Bytes copied in or out by the copy fallback.
    pub bytes_copied: u64,
    /// Operations that returned an error to the guest.
    pub errors: u64,
    /// Mapped attachments checked against `/proc/self/maps` (with
    /// [`ShmConfig::verify_sharing`](crate::ShmConfig::verify_sharing)) and found to be the block's own pages.
    pub verified: u64,
    /// Mapped attachments whose check failed (never expected).
    pub verify_failures: u64,
    /// Messages of pooled topics read in place in a pool mapped earlier:
    /// attaches that needed no mapping (and no system call).
    pub in_pool: u64,
    /// Handles of this guest revoked: derived from a loan that ended, or
    /// taken from it when it was evicted.
    pub revoked: u64,
    /// Messages that crossed the host's boundary for this guest, one copy
    /// each: written into a block by the host (an imported Zenoh sample, a
    /// native publisher), or read out of one (an exported message).
    pub remote: u64,
    /// Bytes of those messages.
    pub bytes_remote: u64,
}

impl Stats {
    /// Reads the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            blocks_created: r(&self.blocks_created),
            attaches: r(&self.attaches),
            detaches: r(&self.detaches),
            maps: r(&self.maps),
            bytes_mapped: r(&self.bytes_mapped),
            copies: r(&self.copies),
            bytes_copied: r(&self.bytes_copied),
            errors: r(&self.errors),
            verified: r(&self.verified),
            verify_failures: r(&self.verify_failures),
            in_pool: r(&self.in_pool),
            revoked: r(&self.revoked),
            remote: r(&self.remote),
            bytes_remote: r(&self.bytes_remote),
        }
    }
}

pub(crate) fn bump(guest: &Stats, total: &Stats, field: fn(&Stats) -> &AtomicU64, n: u64) {
    field(guest).fetch_add(n, Ordering::Relaxed);
    field(total).fetch_add(n, Ordering::Relaxed);
}

/// Every guest's counters and the totals, as [`crate::ShmHost::statistics`]
/// gives them; `Display` prints the runner's table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Each guest's name and counters, in the order the guests were made.
    pub guests: Vec<(String, StatsSnapshot)>,
    /// The totals over all guests.
    pub total: StatsSnapshot,
}

impl Statistics {
    /// The counters of the first guest called `name`.
    pub fn guest(&self, name: &str) -> Option<&StatsSnapshot> {
        self.guests.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, s: &StatsSnapshot) -> fmt::Result {
    writeln!(
        f,
        "  {name:<20} blocks {:>6}  attaches {:>8}  mapped {:>8} ({:>12} bytes)  copied {:>6} ({:>10} bytes)  errors {:>4}  in-pool {:>8}  revoked {:>4}  remote {:>6} ({:>10} bytes)",
        s.blocks_created, s.attaches, s.maps, s.bytes_mapped, s.copies, s.bytes_copied, s.errors, s.in_pool, s.revoked,
        s.remote, s.bytes_remote
    )
}

impl fmt::Display for Statistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shm-host statistics:")?;
        for (name, s) in &self.guests {
            row(f, name, s)?;
        }
        row(f, "total", &self.total)?;
        let t = &self.total;
        if t.verified + t.verify_failures > 0 {
            writeln!(
                f,
                "proof of sharing: {} of {} mapped attaches checked in /proc/self/maps are the block's own memfd pages; bytes copied: {}",
                t.verified,
                t.verified + t.verify_failures,
                t.bytes_copied
            )?;
        }
        Ok(())
    }
}
