//! Host writes into read-only attachments.
//!
//! A guest may hand the host a result pointer (or return a buffer from its
//! allocator) that lies inside one of its own read-only attachments. Lowering
//! a result there makes *host* code write into a read-only page, and a fault
//! in host code is not a wasm trap: it would kill the process.
//!
//! This module closes that hole. Every read-only mapping is listed in a
//! fixed, lock-free table that a `SIGSEGV` handler reads. The handler is
//! installed before wasmtime's (see [`install`]), so wasmtime sees every
//! fault first: a fault in wasm code (the guest writing into its read-only
//! attachment) is a trap of that guest, as it must be. Wasmtime passes
//! faults outside wasm code on to the previous handler, ours: if the address
//! is inside a listed read-only attachment, the handler replaces that one
//! page with a private copy-on-write mapping of the same block pages and
//! returns, so the host's write lands in the guest's private copy. The
//! block's shared pages, and every other guest's view, stay intact; only the
//! guest that asked for the write sees it. Any other fault goes on to the
//! handler that was installed before ours.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// How many read-only attachments can be protected at once, per process.
pub const CAPACITY: usize = 4096;

struct Slot {
    /// First host address; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    /// A duplicate of the block's memfd, owned by the slot.
    fd: AtomicI32,
    offset: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fd: AtomicI32::new(-1),
    offset: AtomicU64::new(0),
};

static SLOTS: [Slot; CAPACITY] = [FREE; CAPACITY];
/// Serialises writers of `SLOTS` (never taken in the signal handler).
static WRITERS: Mutex<()> = Mutex::new(());
static PAGE: AtomicUsize = AtomicUsize::new(0);
static ABSORBED: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// The handler that was installed before ours; written once, before ours
/// is installed, and only read afterwards.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// Why a read-only attachment could not be protected.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    /// The table is full.
    #[error("more than {CAPACITY} read-only attachments at once")]
    Full,
    /// Duplicating the block's file descriptor failed.
    #[error("duplicating a block's file descriptor failed: {0}")]
    Dup(std::io::Error),
}

/// Installs the handler, once per process. Must run before wasmtime
/// installs its own (at the first `Engine::new`): [`crate::ShmHost::new`]
/// calls it.
pub fn install() {
    INSTALL.call_once(|| {
        PAGE.store(crate::page_size(), Ordering::Relaxed);
        // SAFETY: `sigaction` with a zeroed struct filled in as the manual
        // asks: SA_SIGINFO for the three-argument handler, SA_ONSTACK so
        // that it runs on the alternate stack Rust and wasmtime set up, and
        // SA_NODEFER as wasmtime uses. The previous disposition is stored in
        // PREVIOUS before our handler can run (it is written by this call,
        // and only `Once` reaches here).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, &action, &mut previous) != 0 {
                tracing::error!("installing the SIGSEGV handler failed: host writes into read-only attachments are unprotected");
                return;
            }
            PREVIOUS = Some(previous);
        }
    });
}

/// How many pages the handler made private because host code wrote into a
/// read-only attachment.
pub fn absorbed_host_writes() -> u64 {
    ABSORBED.load(Ordering::Relaxed)
}

/// Lists the read-only mapping of `len` bytes at host address `start`,
/// backed by `fd` from `offset`.
pub fn protect(
    start: usize,
    len: usize,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> Result<(), ProtectError> {
    let _w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let slot = SLOTS
        .iter()
        .find(|s| s.start.load(Ordering::Relaxed) == 0)
        .ok_or(ProtectError::Full)?;
    let dup = fd.try_clone_to_owned().map_err(ProtectError::Dup)?;
    slot.len.store(len, Ordering::Relaxed);
    slot.fd
        .store(std::os::fd::IntoRawFd::into_raw_fd(dup), Ordering::Relaxed);
    slot.offset.store(offset, Ordering::Relaxed);
    // Publish last: the handler reads the other fields after seeing `start`.
    slot.start.store(start, Ordering::Release);
    Ok(())
}

/// Removes every listed mapping inside `start .. start + len`.
pub fn unprotect(start: usize, len: usize) {
    let _w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    for slot in &SLOTS {
        let s = slot.start.load(Ordering::Relaxed);
        if s != 0 && s >= start && s < start + len {
            slot.start.store(0, Ordering::Release);
            let fd = slot.fd.swap(-1, Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: `fd` was produced by `into_raw_fd` in `protect`
                // and is owned by this slot alone; it is taken out of the
                // slot (swap) before it is closed, once.
                drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            }
        }
    }
}

/// How many mappings are listed (for tests).
pub fn protected() -> usize {
    SLOTS
        .iter()
        .filter(|s| s.start.load(Ordering::Relaxed) != 0)
        .count()
}

extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV with SA_SIGINFO.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for slot in &SLOTS {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + slot.len.load(Ordering::Relaxed) {
            continue;
        }
        let page_start = addr & !(page - 1);
        let offset = slot.offset.load(Ordering::Relaxed) + (page_start - start) as u64;
        let fd = slot.fd.load(Ordering::Relaxed);
        // SAFETY: `page_start` is a page of a read-only attachment that the
        // host mapped inside a guest memory reservation of its own (it is
        // listed, and entries are removed before the range is unmapped or
        // restored). Replacing it with a private mapping of the same file
        // page keeps its contents for the guest and makes it writable for
        // this write only in this guest's view; the shared block pages are
        // not touched. mmap is a plain system call, safe in a signal handler.
        let mapped = unsafe {
            libc::mmap(
                page_start as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd,
                offset as libc::off_t,
            )
        };
        if mapped != libc::MAP_FAILED {
            ABSORBED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        break;
    }
    // Not ours: hand it to the handler installed before ours.
    // SAFETY: PREVIOUS was written before this handler was installed and is
    // never written again. The forwarding mirrors what the kernel would have
    // done with that disposition: call it, or restore the default and return
    // so that the fault repeats and ends the process as it would have.
    unsafe {
        let Some(previous) = *std::ptr::addr_of!(PREVIOUS) else {
            return;
        };
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous.sa_sigaction);
            f(signum, info, context);
        } else if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
            libc::sigaction(signum, &previous, std::ptr::null_mut());
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
            f(signum);
        }
    }
}
