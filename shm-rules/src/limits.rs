//! What a guest, and all guests together, may hold at once.

/// Per-guest limits. Exceeding one is reported, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live blocks a guest may have created (partitions and clones excluded).
    pub max_blocks: u32,
    /// Total bytes of the live blocks a guest created.
    pub max_bytes: u64,
    /// Handles a guest may hold at once (clones and partitions included).
    pub max_handles: u32,
    /// Storage regions a guest may donate.
    pub max_storage_regions: u32,
    /// Live mapped attachments a guest may have at once (pool mappings
    /// included): each is a mapping of the process, and the process has a
    /// bounded number of them.
    pub max_mappings: u32,
    /// Bytes one copied attachment may hold (the copy fallback, for a view
    /// that cannot be mapped: an unaligned partition, no aligned storage):
    /// the host copies them on the guest's behalf, so one call's copy work
    /// is bounded. Past it, the attach fails with a limit error.
    pub max_copy: u32,
}

/// Limits of the whole process, shared by every guest. A guest reaches its
/// own [`Limits`] first in normal use; these keep the guests together from
/// exhausting what the process has (file descriptors, mappings), so that an
/// operation fails with a limit error before a system call would fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Live host-owned blocks (each holds a file descriptor in the host).
    pub max_blocks: u64,
    /// Live mapped attachments over all guests.
    pub max_mappings: u64,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            max_blocks: u64::MAX,
            max_mappings: u64::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blocks: 1024,
            max_bytes: 1 << 30,
            max_handles: 16 * 1024,
            max_storage_regions: 64,
            max_mappings: 1024,
            max_copy: 16 << 20,
        }
    }
}
