//! The native backend: memory blocks and publish/subscribe in-process, for
//! running guest code as an ordinary program (development, debugging).
//!
//! It keeps the wasm host's rules by driving the same [`shm_rules::Ledger`]
//! (exclusive writers, shared or consuming readers, valid and consumed
//! bytes, clones, partitions, limits); only the placement differs. A native
//! program has one address space, so an attach hands out the block's own
//! bytes directly: zero copy without any mapping. Donated storage is
//! accepted and not needed (`add-storage` records one virtual region for the
//! rules' bookkeeping).
//!
//! The items mirror the generated bindings of `wit/` (same names, same
//! signatures) so that guest source compiles unchanged for both targets.

use std::cell::UnsafeCell;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use shm_rules::{Access, GuestId, HandleId, Ledger, Limits, MemoryId};

pub mod exchange;
pub mod pub_sub;

/// A block's bytes on the heap.
pub(crate) struct Bytes {
    cells: Box<[UnsafeCell<u8>]>,
}

// SAFETY: the bytes are only reached through `Native::slice`, which the
// ledger's rules gate: a write attachment is exclusive (no other attachment
// of overlapping bytes exists while it lives), read attachments only exist
// while no write attachment does. So no byte is written while another
// thread reads or writes it.
unsafe impl Sync for Bytes {}

impl Bytes {
    fn new(len: usize) -> Arc<Bytes> {
        Arc::new(Bytes {
            cells: (0..len).map(|_| UnsafeCell::new(0)).collect(),
        })
    }
}

/// The process-wide state of the native backend.
pub(crate) struct Native {
    pub(crate) ledger: Mutex<Ledger<Arc<Bytes>>>,
    /// The one guest a native program is.
    pub(crate) guest: GuestId,
    /// The guest that holds pool blocks and queued messages.
    pub(crate) broker: GuestId,
    pub(crate) pubsub: pub_sub::Broker,
    /// The publish/subscribe settings (see [`pub_sub`]).
    pub(crate) config: shm_rules::pubsub::PubSubConfig,
    /// Wakes publishers waiting for a block to come free.
    pub(crate) released: shm_rules::pubsub::Released,
}

/// The virtual memory the rules place attachments in.
const MEMORY: MemoryId = MemoryId(1);

pub(crate) fn native() -> &'static Native {
    static NATIVE: OnceLock<Native> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let mut ledger = Ledger::new(4096);
        let limits = Limits::default();
        let guest = ledger.add_guest(Limits {
            max_storage_regions: 1,
            ..limits
        });
        // All of a 32-bit address space, virtually: natively attachments
        // need no storage, but the rules keep their bookkeeping.
        ledger
            .add_storage(guest, MEMORY, 0, u32::MAX)
            .expect("a fresh guest accepts storage");
        let broker = ledger.add_guest(Limits {
            max_blocks: u32::MAX,
            max_bytes: u64::MAX,
            max_handles: u32::MAX,
            max_storage_regions: 0,
            max_mappings: u32::MAX,
            max_copy: u32::MAX,
        });
        Native {
            ledger: Mutex::new(ledger),
            guest,
            broker,
            pubsub: pub_sub::Broker::default(),
            config: pub_sub::config_from_env(),
            released: Default::default(),
        }
    })
}

impl Native {
    pub(crate) fn ledger(&self) -> MutexGuard<'_, Ledger<Arc<Bytes>>> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops `handle` (natively nothing is mapped: ending an attachment
    /// needs no undoing) and wakes publishers waiting for a free block.
    pub(crate) fn drop_handle(&self, handle: HandleId) {
        let _ = self.ledger().drop_handle(handle);
        self.released.notify();
    }

    /// Creates a zeroed block for the native guest.
    pub(crate) fn create(&self, size: u32) -> Result<HandleId, exchange::Error> {
        self.ledger()
            .create(self.guest, size, || Some(Bytes::new(size as usize)))
            .map_err(exchange::Error::from)
    }

    /// Attaches `handle` and returns its visible bytes.
    ///
    /// # Safety
    ///
    /// The caller must not use the slice after detaching `handle` (the
    /// guards of this crate borrow the handle for the slice's lifetime and
    /// detach on drop), and must not write through it unless `access` is
    /// `Write`.
    pub(crate) unsafe fn attach<'a>(
        &self,
        handle: HandleId,
        access: Access,
    ) -> Result<&'a mut [u8], exchange::Error> {
        let mut ledger = self.ledger();
        let attached = ledger
            .attach(self.guest, handle, access)
            .map_err(exchange::Error::from)?;
        let (offset, len) = match access {
            Access::Write => (0, attached.size),
            _ => ledger
                .valid_range(handle)
                .map_err(|_| exchange::Error::Internal)?,
        };
        // SAFETY: forwarded: the ledger just granted `access` to `handle`,
        // and the caller keeps this function's contract.
        unsafe { Self::bytes(&ledger, handle, offset, len) }
    }

    /// Attaches `handle` read-only in `mapping`, a pool mapping the native
    /// guest holds of its block (pooled topics), and returns its valid bytes and the
    /// virtual address the rules placed them at.
    ///
    /// # Safety
    ///
    /// The caller must not use the slice after the handle is dropped (the
    /// pooled messages of this crate borrow their subscription and release
    /// on drop).
    pub(crate) unsafe fn attach_in_pool<'a>(
        &self,
        handle: HandleId,
        mapping: HandleId,
    ) -> Result<(&'a [u8], u32), shm_rules::AttachError> {
        let mut ledger = self.ledger();
        let attached = ledger.attach_in_pool(self.guest, handle, mapping)?;
        let (offset, len) = ledger
            .valid_range(handle)
            .map_err(|_| shm_rules::AttachError::Unknown)?;
        // SAFETY: the ledger just granted a shared read of `handle`, which
        // lasts until the handle is dropped; the caller keeps the slice no
        // longer and only reads through it.
        let bytes = unsafe { Self::bytes(&ledger, handle, offset, len) }
            .map_err(|_| shm_rules::AttachError::Unknown)?;
        Ok((bytes, attached.address))
    }

    /// The bytes `offset .. offset + len` of `handle`'s content.
    ///
    /// # Safety
    ///
    /// `handle` must be attached with an access that covers the range (a
    /// write for `&mut` use), and the slice must not outlive the attachment.
    unsafe fn bytes<'a>(
        ledger: &Ledger<Arc<Bytes>>,
        handle: HandleId,
        offset: u32,
        len: u32,
    ) -> Result<&'a mut [u8], exchange::Error> {
        let (_, start, bytes) = ledger
            .backing_of(handle)
            .map_err(|_| exchange::Error::Internal)?;
        let Some(bytes) = bytes else {
            return Err(exchange::Error::WrongMemory);
        };
        let from = start as usize + offset as usize;
        let cells = &bytes.cells[from..from + len as usize];
        // SAFETY: `cells` lies inside the block's bytes, which live as long
        // as any handle of the block, hence at least as long as the caller
        // holds `handle` attached. The ledger just granted this attachment:
        // for a write no other attachment of these bytes exists, for a read
        // no write attachment does, so the slice aliases no live mutable
        // access. `UnsafeCell<u8>` has the layout of `u8`.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(UnsafeCell::raw_get(cells.as_ptr()), cells.len())
        })
    }
}

/// Runs a future to completion on this thread (the native stand-in for
/// wit-bindgen's `block_on`).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
