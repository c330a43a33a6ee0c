//! Host writes into read-only attachments.
//!
//! A guest may hand the host a result pointer (or return a buffer from its
//! allocator) that lies inside one of its own read-only attachments. Lowering
//! a result there makes *host* code write into a read-only page, and a fault
//! in host code is not a wasm trap: it would kill the process.
//!
//! This module closes that hole. Every read-only mapping is listed in a
//! fixed table, read without locks, that a `SIGSEGV` handler reads. The handler is
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
//!
//! The private page is writable only for the one instruction that faulted:
//! the handler sets the processor's trap flag, and the `SIGTRAP` that follows
//! the instruction makes the page read-only again (x86_64), so a later guest
//! store there still traps that guest.
//!
//! The table holds [`CAPACITY`] mappings; the host's process mapping limit
//! keeps all guests together below it, and each guest below its own limit.
//! A listed mapping keeps its block's memfd open through a shared `Arc`: no
//! descriptor is duplicated per mapping.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

/// How many read-only attachments can be listed at once, per process. The
/// host keeps its guests together below this (its process mapping limit,
/// [`crate::rules::ProcessLimits::max_mappings`], is at most this), so no
/// guest can fill the table for the others.
pub const CAPACITY: usize = 16 * 1024;

struct Slot {
    /// First host address; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    /// The block's memfd; kept open by the `Arc` in [`Book`] while listed.
    fd: AtomicI32,
    offset: AtomicU64,
    /// Bumped each time the slot lists a new mapping: what the handler
    /// remembers of a page it made private is keyed by (slot, generation),
    /// never by address alone, since another mapping may later be listed
    /// at the same address.
    generation: AtomicU64,
    /// Handlers working on this slot now: `unprotect` waits for none
    /// before the descriptor may close and the range be mapped anew, so a
    /// handler never maps a page from a closed (or reused) descriptor, nor
    /// over a range that was given back.
    busy: AtomicU32,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fd: AtomicI32::new(-1),
    offset: AtomicU64::new(0),
    generation: AtomicU64::new(0),
    busy: AtomicU32::new(0),
};

/// Read by the handler without locks.
static SLOTS: [Slot; CAPACITY] = [FREE; CAPACITY];

/// The writers' side of `SLOTS` (never touched by the handler): free slots
/// and the listed ranges by start address, each with the descriptor it
/// keeps open.
struct Book {
    free: Vec<usize>,
    /// Slots handed out so far; slots from here up were never used.
    high: usize,
    listed: BTreeMap<usize, (usize, Arc<OwnedFd>)>,
}

static BOOK: Mutex<Book> = Mutex::new(Book {
    free: Vec::new(),
    high: 0,
    listed: BTreeMap::new(),
});
/// Slots below this were handed out at least once (the handler scans no
/// further).
static HIGH: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Pages of this thread made writable for one host write, to make
    /// read-only again once the writing instruction completed.
    static PENDING: std::cell::Cell<[usize; 2]> = const { std::cell::Cell::new([0; 2]) };
    /// The last page this thread made private (it stays private while its
    /// listing lives): a repeated write into it (a string instruction, one
    /// element per step) only needs its protection lifted again, not a fresh
    /// copy. Keyed by the listing (slot index and generation) as well as
    /// the page: once that mapping is unlisted, whatever is mapped at the
    /// same address later is never taken for this private page.
    static LAST: std::cell::Cell<Last> = const { std::cell::Cell::new(Last::NONE) };
}
/// A page made private by the handler, and the listing it belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Last {
    page: usize,
    slot: usize,
    generation: u64,
}

impl Last {
    const NONE: Last = Last {
        page: 0,
        slot: usize::MAX,
        generation: 0,
    };
}

static ABSORBED: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// The handlers that were installed before ours: set once, before ours are
/// installed, and only read afterwards (an atomic load: safe in a signal
/// handler).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static PREVIOUS_TRAP: OnceLock<libc::sigaction> = OnceLock::new();

/// Why a read-only attachment could not be protected.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    /// The table is full.
    #[error("more than {CAPACITY} read-only attachments at once")]
    Full,
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
        // SA_NODEFER as wasmtime uses. The previous disposition is read
        // first (a null new action changes nothing) and kept in PREVIOUS
        // before ours is installed, so our handler always finds it; only
        // `Once` reaches here.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut previous) != 0 {
                tracing::error!("reading the SIGSEGV handler failed: host writes into read-only attachments are unprotected");
                return;
            }
            let _ = PREVIOUS.set(previous);
            if libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()) != 0 {
                tracing::error!("installing the SIGSEGV handler failed: host writes into read-only attachments are unprotected");
                return;
            }
            // The single-step trap that ends an absorbed write (x86_64).
            action.sa_sigaction = trap_handler as *const () as usize;
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTRAP, std::ptr::null(), &mut previous) == 0 {
                let _ = PREVIOUS_TRAP.set(previous);
            }
            if libc::sigaction(libc::SIGTRAP, &action, std::ptr::null_mut()) != 0 {
                tracing::error!("installing the SIGTRAP handler failed: absorbed host writes leave their page writable");
            }
        }
    });
}

/// How many pages the handler made private because host code wrote into a
/// read-only attachment.
pub fn absorbed_host_writes() -> u64 {
    ABSORBED.load(Ordering::Relaxed)
}

/// Lists the read-only mapping of `len` bytes at host address `start`,
/// backed by `fd` from `offset`; `fd` stays open while it is listed.
pub fn protect(
    start: usize,
    len: usize,
    fd: Arc<OwnedFd>,
    offset: u64,
) -> Result<(), ProtectError> {
    let mut book = BOOK.lock().unwrap_or_else(|e| e.into_inner());
    let index = match book.free.pop() {
        Some(i) => i,
        None if book.high < CAPACITY => {
            book.high += 1;
            HIGH.store(book.high, Ordering::Release);
            book.high - 1
        }
        None => return Err(ProtectError::Full),
    };
    let slot = &SLOTS[index];
    // A new listing: nothing remembered of the slot's earlier mappings
    // applies (the handler compares generations).
    slot.generation.fetch_add(1, Ordering::Relaxed);
    slot.len.store(len, Ordering::Relaxed);
    slot.fd.store(fd.as_raw_fd(), Ordering::Relaxed);
    slot.offset.store(offset, Ordering::Relaxed);
    // Publish last: the handler reads the other fields after seeing `start`.
    slot.start.store(start, Ordering::Release);
    book.listed.insert(start, (index, fd));
    Ok(())
}

/// Removes every listed mapping that starts inside `start .. start + len`.
pub fn unprotect(start: usize, len: usize) {
    let mut book = BOOK.lock().unwrap_or_else(|e| e.into_inner());
    let gone: Vec<usize> = book
        .listed
        .range(start..start.saturating_add(len))
        .map(|(&s, _)| s)
        .collect();
    for s in gone {
        let (index, fd) = book.listed.remove(&s).expect("listed");
        let slot = &SLOTS[index];
        // Unpublished before the descriptor may close.
        unpublish(slot);
        slot.fd.store(-1, Ordering::Relaxed);
        book.free.push(index);
        drop(fd);
    }
}

/// Takes `slot`'s listing out of the handler's sight and waits until no
/// handler works on it any more: a handler checks `start` again after
/// announcing itself in `busy` (both sequentially consistent), so it
/// either sees the slot gone or is waited for here. A handler runs two
/// system calls and never blocks.
fn unpublish(slot: &Slot) {
    slot.start.store(0, Ordering::SeqCst);
    while slot.busy.load(Ordering::SeqCst) != 0 {
        std::hint::spin_loop();
    }
}

/// Lists the mapping that starts at `start` anew, in place: it now shows
/// `fd`'s file from `offset` (the same pages, mapped again by the caller)
/// and whatever the handler remembers of the old listing (a page it made
/// private) no longer applies. Nothing happens if no mapping starts there.
pub(crate) fn relist(start: usize, fd: Arc<OwnedFd>, offset: u64) {
    let mut book = BOOK.lock().unwrap_or_else(|e| e.into_inner());
    let Some((index, old)) = book.listed.get_mut(&start) else {
        return;
    };
    let slot = &SLOTS[*index];
    unpublish(slot);
    slot.generation.fetch_add(1, Ordering::Relaxed);
    slot.fd.store(fd.as_raw_fd(), Ordering::Relaxed);
    slot.offset.store(offset, Ordering::Relaxed);
    slot.start.store(start, Ordering::Release);
    // The old descriptor closes (if this was its last listing) only now,
    // with no handler using it.
    *old = fd;
}

extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV with SA_SIGINFO.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for (index, slot) in SLOTS[..HIGH.load(Ordering::Acquire)].iter().enumerate() {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + slot.len.load(Ordering::Relaxed) {
            continue;
        }
        // Announce ourselves, then make sure the listing is still the one
        // we found: `unprotect` clears `start` before it waits for `busy`.
        slot.busy.fetch_add(1, Ordering::SeqCst);
        if slot.start.load(Ordering::SeqCst) != start {
            slot.busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let page_start = addr & !(page - 1);
        let offset = slot.offset.load(Ordering::Relaxed) + (page_start - start) as u64;
        let fd = slot.fd.load(Ordering::Relaxed);
        let here = Last {
            page: page_start,
            slot: index,
            generation: slot.generation.load(Ordering::Relaxed),
        };
        let already_private = LAST.with(|l| l.get()) == here;
        // SAFETY: `page_start` is a page of a read-only attachment that the
        // host mapped inside a guest memory reservation of its own (it is
        // listed, and entries are removed before the range is unmapped or
        // restored; the listing keeps `fd` open). Replacing it with a
        // private mapping of the same file page keeps its contents for the
        // guest and makes it writable in this guest's view only; the shared
        // block pages are not touched. A page this thread already made
        // private in this same listing (slot and generation: the listing
        // is the one the page was made private in, so the page is still
        // that private copy) only has its protection lifted again, so that
        // earlier writes into it stay. Were it ever the shared mapping of
        // a read-only attachment instead, `mprotect` could not make it
        // writable: those are mapped from a descriptor opened read-only
        // (`SharedPages::read_only_fd`), and such a shared mapping never
        // gains the write right; the fresh private mapping below is then
        // made instead. (A keyed pool mapping comes from the read-write
        // descriptor, its key deciding who writes; `windows::key` relists
        // it, so nothing remembered of its earlier pages applies.) mmap and
        // mprotect are plain system calls, safe in a signal handler.
        let (lifted, remapped) = unsafe {
            let lifted = already_private
                && libc::mprotect(
                    page_start as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                ) == 0;
            let remapped = !lifted
                && libc::mmap(
                    page_start as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    offset as libc::off_t,
                ) != libc::MAP_FAILED;
            (lifted, remapped)
        };
        slot.busy.fetch_sub(1, Ordering::SeqCst);
        if lifted || remapped {
            if remapped {
                ABSORBED.fetch_add(1, Ordering::Relaxed);
            }
            LAST.with(|l| l.set(here));
            reprotect_after_this_instruction(page_start, context);
            return;
        }
        break;
    }
    // Not ours: hand it to the handler installed before ours.
    // SAFETY: the kernel's own arguments, and what `sigaction` reported
    // before ours was installed.
    unsafe { forward(PREVIOUS.get().copied(), signum, info, context) }
}

/// Hands a signal to the disposition `previous` had before ours, as the
/// kernel would have: call it, or restore the default and return so that the
/// fault repeats and ends the process as it would have.
///
/// # Safety
/// The arguments are those the kernel passed to our SA_SIGINFO handler, and
/// `previous` is what `sigaction` reported before ours was installed.
unsafe fn forward(
    previous: Option<libc::sigaction>,
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let Some(previous) = previous else {
        return;
    };
    // SAFETY: a handler's address from `sigaction` is a function of the
    // signature its flags say; calling it with the kernel's own arguments is
    // what the kernel would have done.
    unsafe {
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

/// Arranges for `page` to become read-only again right after the faulting
/// instruction completes: the trap flag makes the processor stop after one
/// instruction with `SIGTRAP`, where [`trap_handler`] restores the
/// protection. Without it the guest could write into its private copy.
#[cfg(target_arch = "x86_64")]
fn reprotect_after_this_instruction(page: usize, context: *mut libc::c_void) {
    PENDING.with(|p| {
        let mut pending = p.get();
        if let Some(free) = pending.iter_mut().find(|x| **x == 0 || **x == page) {
            *free = page;
        }
        p.set(pending);
    });
    /// The trap flag of RFLAGS.
    const TF: libc::greg_t = 0x100;
    // SAFETY: for a SA_SIGINFO handler the kernel passes a valid ucontext_t
    // that it restores on return; setting the trap flag in its saved RFLAGS
    // only makes the resumed instruction raise a single-step trap.
    unsafe {
        let uc = context.cast::<libc::ucontext_t>();
        (*uc).uc_mcontext.gregs[libc::REG_EFL as usize] |= TF;
    }
}

/// Elsewhere the page stays writable in the guest's private view (the
/// block's shared pages are intact either way).
#[cfg(not(target_arch = "x86_64"))]
fn reprotect_after_this_instruction(_page: usize, _context: *mut libc::c_void) {}

extern "C" fn trap_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let pending = PENDING.with(|p| p.replace([0; 2]));
    if pending != [0; 2] {
        let page = PAGE.load(Ordering::Relaxed);
        for p in pending.into_iter().filter(|&p| p != 0) {
            // SAFETY: `p` is a page this thread made private and writable in
            // `handler` for one instruction, which has now completed;
            // making it read-only again changes only its protection.
            unsafe { libc::mprotect(p as *mut libc::c_void, page, libc::PROT_READ) };
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `reprotect_after_this_instruction`: the kernel's
        // saved context, restored on return; the trap flag is cleared.
        unsafe {
            let uc = context.cast::<libc::ucontext_t>();
            (*uc).uc_mcontext.gregs[libc::REG_EFL as usize] &= !0x100;
        }
        return;
    }
    // SAFETY: as for SIGSEGV in `handler`.
    unsafe { forward(PREVIOUS_TRAP.get().copied(), signum, info, context) }
}
