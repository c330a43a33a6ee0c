//! What the whole process has, and how much of it the guests may use
//! together ([`ProcessLimits`]): file descriptors (up to two per block:
//! its memfd, and the same file opened read-only once it is mapped
//! read-only)
//! and mappings (the kernel's `vm.max_map_count`, and the fault handler's
//! table of read-only attachments).

use rustix::process::{getrlimit, setrlimit, Resource};

use crate::rules::ProcessLimits;

/// File descriptors left to the rest of the process (wasmtime, WASI files,
/// sockets of the embedder).
const FDS_KEPT: u64 = 512;

/// Raises the soft limit of open files to the hard limit (as servers do)
/// and returns the limits that keep the guests' blocks and mappings below
/// what the process can hold.
pub fn limits() -> ProcessLimits {
    let mut files = getrlimit(Resource::Nofile);
    if files.current < files.maximum {
        let raised = rustix::process::Rlimit {
            current: files.maximum,
            maximum: files.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => files = raised,
            Err(e) => tracing::debug!("could not raise the open-file limit: {e}"),
        }
    }
    let fds = files.current.unwrap_or(u64::MAX);
    // Each mapped attachment may split the guest's reservation into up to
    // three kernel mappings: leave most of the kernel's limit to that and
    // to the rest of the process.
    let map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(65530);
    ProcessLimits {
        // Two descriptors per block at most (see the module's notes).
        max_blocks: (fds.saturating_sub(FDS_KEPT) / 2).max(64),
        max_mappings: (map_count / 4).min(crate::os::guard::CAPACITY as u64),
    }
}
