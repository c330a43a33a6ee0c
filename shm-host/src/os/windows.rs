//! Write windows: a pooled publisher writes into its pool, mapped once,
//! one block at a time, with no system call per message.
//!
//! Without them a publisher attaches each message's block for writing, which
//! maps the block's pages into its storage and maps fresh pages back at
//! detach: two `mmap`s and a page fault per written page, per message. With
//! them the publisher maps its whole pool once (`publisher.map-pool`); each
//! block of that mapping is read-write in the page tables but tagged with a
//! protection key of its own (`pkeys`), and the thread running the
//! publisher may write only the keys whose window is open. Attaching an
//! allocated block for writing opens that block's window
//! ([`crate::rules::Ledger::write_in_pool`] records it), detaching closes
//! it. Every other block of the pool, published or not, stays read-only for
//! the publisher: a published message still cannot change while it is held.
//!
//! Rights to keys belong to a thread, not to a store, so they are set when
//! the guest's wasm starts or resumes (its store's call hook, installed by
//! [`crate::Watchdog::arm`]): the guest's open windows on entry, none on the
//! way out to the embedder. Another store run on the same thread never
//! inherits a window. A store without the hook never gets keyed mappings.
//!
//! Without protection keys (or with `SHM_HOST_NO_PKEYS` set) a window is a
//! *protection window*: the pool mapping is made again from the block's
//! read-write descriptor, still read-only, and opening a window makes that
//! block's pages writable with one `mprotect`, closing it read-only with
//! another, each in the memory's mapping turn, after the ledger is
//! released. A window is closed before the detach that ends it returns, so
//! before the block can be published. Two system calls per message instead
//! of the two `mmap`s and the page faults of mapping a block per message;
//! the pages stay mapped and warm. A batch of loans published or lent in
//! one call changes its windows together, one call per run of neighbouring
//! blocks. An `mprotect` costs in proportion to the pages it changes: blocks
//! larger than [`PROTECTION_WINDOW_MAX`] are mapped per message instead
//! (all blocks are, with `SHM_HOST_NO_PROTECTION_WINDOWS` set). Unlike a key, the protection is the
//! process's, not the thread's: the publisher's own pages are writable for
//! every thread of the host while the window is open, which only the
//! publisher's own wasm and the host's calls on its behalf ever touch.
//!
//! A window is granted only for a handle that covers its whole block (the
//! key covers the whole block mapping): a partition is attached the usual
//! way. A host write into a keyed page outside a window faults in host code;
//! the mapping is listed with [`crate::os::guard`], which absorbs it as for any
//! read-only attachment.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::os::pkeys;
use crate::rules::{Access, BackingId, HandleId, Placement};
use crate::ShmCtx;

/// One guest's keys and open windows.
#[derive(Debug, Default)]
pub struct Windows {
    /// Its store has the call hook that applies the rights (only then are
    /// mappings keyed for it).
    hooked: AtomicBool,
    /// Bits of the key indices (into [`pkeys::keys`]) its keyed mappings use.
    held: AtomicU32,
    /// Bits of the key indices whose window is open.
    open: AtomicU32,
    /// The keyed pool mapping (its handle) of each block.
    mappings: Mutex<HashMap<BackingId, HandleId>>,
    /// How many of its pool mappings are keyed for protection windows.
    protected: AtomicU32,
}

impl Windows {
    /// A guest's windows: none yet.
    pub(crate) fn new() -> Arc<Windows> {
        Arc::default()
    }

    /// Marks the store as hooked ([`crate::Watchdog::arm`]).
    pub(crate) fn hooked(&self) {
        self.hooked.store(true, Ordering::Release);
    }

    /// May this guest's pool mappings be keyed with protection keys?
    pub(crate) fn available(&self) -> bool {
        self.hooked.load(Ordering::Acquire) && !pkeys::keys().is_empty()
    }

    /// The guest's wasm starts or resumes on this thread: its open windows
    /// become writable, every other key read-only.
    pub(crate) fn enter(&self) {
        if self.held.load(Ordering::Acquire) != 0 {
            pkeys::allow_writes(self.open.load(Ordering::Acquire));
        }
    }

    /// The guest's wasm returned to the embedder: no window stays writable
    /// on this thread.
    pub(crate) fn leave(&self) {
        if self.held.load(Ordering::Acquire) != 0 {
            pkeys::allow_writes(0);
        }
    }

    /// The guest's keyed pool mapping of `backing`, if it made one (the
    /// ledger checks that it is still one).
    pub(crate) fn mapping(&self, backing: BackingId) -> Option<HandleId> {
        self.mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&backing)
            .copied()
    }

    /// Does the guest hold keyed mappings (protection keys or windows)?
    pub(crate) fn keyed(&self) -> bool {
        self.held.load(Ordering::Acquire) != 0 || self.protected.load(Ordering::Acquire) != 0
    }
}

/// A keyed pool mapping.
struct Keyed {
    len: usize,
    /// The block it shows.
    backing: BackingId,
    /// Index into [`pkeys::keys`], or [`PROTECTION`] for a protection
    /// window.
    index: u32,
    windows: Weak<Windows>,
}

/// Are protection windows used where keys are not? Yes, unless
/// `SHM_HOST_NO_PROTECTION_WINDOWS` is set (blocks are then mapped per
/// message, as before them: for comparisons).
fn protection_windows() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SHM_HOST_NO_PROTECTION_WINDOWS").is_none())
}

/// [`Keyed::index`] of a mapping keyed for protection windows.
const PROTECTION: u32 = u32::MAX;

/// The largest block written through protection windows: an `mprotect`
/// costs in proportion to the pages it changes (measured on this project's
/// machine: 1 MiB blocks cost 35 us per message that way, against 8 us
/// mapped per message, while 4 KiB blocks cost half as much as mapped:
/// `shm-host/BENCHMARKS.md`); larger blocks are mapped per message.
pub(crate) const PROTECTION_WINDOW_MAX: usize = 64 * 1024;

/// How a window was opened ([`open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Its key's bit is set: the guest's thread may write at its next
    /// entry into wasm.
    Key,
    /// A protection window: the caller makes the pages (`len` bytes, the
    /// whole block mapping) writable in the memory's turn.
    Protection { len: u32 },
}

/// Is `at .. at + len` exactly a pool mapping keyed for protection windows?
pub(crate) fn is_protection_window(at: usize, len: usize) -> bool {
    keyed()
        .get(&at)
        .is_some_and(|k| k.index == PROTECTION && k.len == len)
}

/// Keyed mappings of every guest, by first host address.
static KEYED: Mutex<BTreeMap<usize, Keyed>> = Mutex::new(BTreeMap::new());

fn keyed() -> std::sync::MutexGuard<'static, BTreeMap<usize, Keyed>> {
    KEYED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys `mapping`, a pool mapping of one block that `ctx`'s guest holds,
/// for write windows (see [`key`]). Returns false if it is no such mapping,
/// or no key is left: the block is then written the usual way, mapped per
/// message.
pub(crate) fn key_mapping(ctx: &ShmCtx, mapping: HandleId) -> bool {
    let (host, guest, windows) = (ctx.host(), ctx.guest(), ctx.watchdog().windows());
    let ledger = host.ledger();
    let Ok(Some((
        Access::Pool,
        Placement::Mapped {
            memory,
            guest_offset,
            backing,
            file_offset,
            len,
            writable: false,
            ..
        },
    ))) = ledger.attachment(mapping)
    else {
        return false;
    };
    if ledger.owner(mapping) != Ok(guest) {
        return false;
    }
    // The read-only pool mapping came from the block's read-only
    // descriptor, which no protection change can make writable: a keyed
    // mapping is made again from the read-write one (its key, not its
    // protection, then decides who writes).
    let Some(pages) = ledger.backing(backing) else {
        return false;
    };
    let (fd, read_only) = (pages.shared_fd(), pages.read_only_fd());
    let Ok(read_only) = read_only else {
        return false;
    };
    // The memory's turn, drawn under the ledger: the map that placed
    // `mapping` (queued before, in ledger order) has run, and no restore
    // or unmapping of this memory runs until the turn ends. The ledger is
    // then released: keying makes a system call.
    let Ok(turn) = host.0.registry.lock_memory(memory) else {
        return false;
    };
    drop(ledger);
    let Some(at) = turn.address(guest_offset) else {
        return false;
    };
    // SAFETY: the ledger said (when we drew our turn, under it) that
    // `mapping` is `guest`'s pool mapping placed at `guest_offset .. + len`
    // of `memory`: the host mapped those pages read-only when it was
    // attached (page aligned: the ledger places mappings on pages; listed
    // with the guard by `Locked::map`), in an earlier turn of this memory.
    // They stay that mapping while we hold `turn`: undoing it (a restore,
    // which also forgets the keyed mapping) or unmapping the memory is
    // decided in the ledger after our ticket was drawn, so it runs in a
    // later turn. They show the block's own pages to this guest only, which
    // may write them in a window.
    let keyed = unsafe {
        key(
            windows,
            Keying {
                at,
                len: len as usize,
                backing,
                mapping,
                fd: &fd,
                read_only,
                file_offset,
            },
        )
    };
    drop(turn);
    keyed
}

/// Maps `len` bytes of `fd`'s file from `offset` at `at`, shared and
/// read-only, over what was there.
///
/// # Safety
/// `at .. at + len` must be a page-aligned range of a guest memory
/// reservation of this host, in that memory's mapping turn, whose current
/// contents may be replaced by that file's pages (the same block's pages).
unsafe fn map_shared(
    at: usize,
    len: usize,
    fd: &std::os::fd::OwnedFd,
    offset: u64,
) -> rustix::io::Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe {
        rustix::mm::mmap(
            at as *mut std::ffi::c_void,
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::FIXED,
            fd,
            offset,
        )
    }
    .map(drop)
}

/// What [`key`] keys: a guest's pool mapping of one block (`len`
/// page-aligned bytes at host address `at`, the block `backing` from
/// `file_offset` of its file, the mapping's handle `mapping`), the block's
/// read-write descriptor `fd` and its read-only one.
struct Keying<'a> {
    at: usize,
    len: usize,
    backing: BackingId,
    mapping: HandleId,
    fd: &'a Arc<std::os::fd::OwnedFd>,
    read_only: Arc<std::os::fd::OwnedFd>,
    file_offset: u64,
}

/// Tags a guest's pool mapping of one block with a key the guest does not
/// use yet. Returns false when it has none left (or keys are unavailable):
/// the block is then written the usual way, mapped per message.
///
/// # Safety
/// `k.at .. k.at + k.len` must be a read-only pool mapping the host made in
/// the guest's linear memory (live, page aligned, listed with
/// [`crate::os::guard`]) of `k.fd`'s file from `k.file_offset`, which may be
/// made writable for that guest, and no other mapping operation may run
/// on that memory meanwhile (its mapping turn is held).
unsafe fn key(windows: &Arc<Windows>, k: Keying<'_>) -> bool {
    let Keying {
        at,
        len,
        backing,
        mapping,
        fd,
        read_only,
        file_offset,
    } = k;
    let keys = pkeys::keys();
    let mut map = keyed();
    let index = if windows.available() {
        let held = windows.held.load(Ordering::Acquire);
        let Some(index) = (0..keys.len() as u32).find(|i| held & (1 << i) == 0) else {
            return false;
        };
        // Closed before the pages become writable in the page tables: the
        // thread's rights to this key are "read only" unless a window opens.
        windows.open.fetch_and(!(1 << index), Ordering::AcqRel);
        pkeys::allow_writes(windows.open.load(Ordering::Acquire));
        index
    } else if len <= PROTECTION_WINDOW_MAX && protection_windows() {
        // No keys: a protection window (see the module's notes).
        PROTECTION
    } else {
        return false;
    };
    // SAFETY: forwarded from the caller: the same pages of the guest's
    // memory, in its mapping turn, mapped again read-only from the same
    // file and offset (same contents), now through the read-write
    // descriptor so that the key can grant writes.
    let remapped = unsafe { map_shared(at, len, fd, file_offset) };
    // Listed anew in place (same slot, a new generation): whatever the
    // fault handler remembers of the old pages (a page it made private) no
    // longer applies. The listing stays in the table throughout.
    crate::os::guard::relist(at, read_only.clone(), file_offset);
    if let Err(e) = remapped {
        // A failed MAP_FIXED may have left the range unmapped: a guest
        // access there traps the guest; the ledger undoes the mapping at
        // its end as for any other.
        tracing::error!("remapping a pool mapping for keying failed: {e}");
        return false;
    }
    let keyed = Keyed {
        len,
        backing,
        index,
        windows: Arc::downgrade(windows),
    };
    if index == PROTECTION {
        windows.protected.fetch_add(1, Ordering::AcqRel);
        register(&mut map, at, keyed, mapping, windows);
        return true;
    }
    // SAFETY: forwarded from the caller; the key is one of `keys`.
    if let Err(e) = unsafe { pkeys::tag(at as *mut u8, len, keys[index as usize]) } {
        tracing::warn!("keying a pool mapping failed, it is written the usual way: {e}");
        // Back to the read-only descriptor: the defense in depth holds
        // again for this read-only mapping.
        // SAFETY: as for the remap above.
        if unsafe { map_shared(at, len, &read_only, file_offset) }.is_ok() {
            crate::os::guard::relist(at, read_only, file_offset);
        }
        return false;
    }
    windows.held.fetch_or(1 << index, Ordering::AcqRel);
    register(&mut map, at, keyed, mapping, windows);
    true
}

/// Lists a keyed mapping (at host address `at`, its handle `mapping`) in
/// the process's table and its guest's.
fn register(
    map: &mut BTreeMap<usize, Keyed>,
    at: usize,
    keyed: Keyed,
    mapping: HandleId,
    windows: &Windows,
) {
    windows
        .mappings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(keyed.backing, mapping);
    map.insert(at, keyed);
}

/// Opens the window onto the keyed mapping of `windows`' guest that starts
/// at host address `at` and is `len` bytes long once rounded to pages (a
/// handle of the whole block); false if there is no such mapping.
pub(crate) fn open(windows: &Arc<Windows>, at: usize, len: usize) -> Option<Opened> {
    let page = crate::page_size();
    let map = keyed();
    match map.get(&at) {
        Some(k)
            if k.len == len.div_ceil(page) * page
                && std::ptr::eq(k.windows.as_ptr(), Arc::as_ptr(windows)) =>
        {
            if k.index == PROTECTION {
                let len = u32::try_from(k.len).ok()?;
                return Some(Opened::Protection { len });
            }
            windows.open.fetch_or(1 << k.index, Ordering::AcqRel);
            Some(Opened::Key)
        }
        _ => None,
    }
}

/// Closes the window, if any, of the keyed mapping containing host address
/// `at` (an in-pool attachment there ended). A key's: the thread's rights
/// follow at the guest's next entry into wasm. A protection window's: its
/// length (the whole block mapping, from `at`) is returned, for the caller
/// to make read-only in the memory's turn before anyone can read the block.
pub(crate) fn close(at: usize, _len: usize) -> Option<u32> {
    let map = keyed();
    let (&start, k) = map.range(..=at).next_back()?;
    if at >= start + k.len {
        return None;
    }
    if k.index == PROTECTION {
        return (start == at).then(|| u32::try_from(k.len).ok()).flatten();
    }
    if let Some(w) = k.windows.upgrade() {
        w.open.fetch_and(!(1 << k.index), Ordering::AcqRel);
    }
    None
}

/// Forgets the keyed mappings that start inside `at .. at + len`: their
/// pages are being replaced or unmapped (and lose their key with them).
pub(crate) fn forget(at: usize, len: usize) {
    let mut map = keyed();
    let gone: Vec<usize> = map
        .range(at..at.saturating_add(len))
        .map(|(&s, _)| s)
        .collect();
    for s in gone {
        if let Some(k) = map.remove(&s) {
            if let Some(w) = k.windows.upgrade() {
                if k.index == PROTECTION {
                    w.protected.fetch_sub(1, Ordering::AcqRel);
                } else {
                    w.open.fetch_and(!(1 << k.index), Ordering::AcqRel);
                    w.held.fetch_and(!(1 << k.index), Ordering::AcqRel);
                }
                w.mappings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&k.backing);
            }
        }
    }
}
