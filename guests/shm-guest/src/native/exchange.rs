//! The native `exchange` interface: the same items as the generated
//! bindings of `zero-copy:shm/exchange`.

use shm_rules::{Access, HandleId};

use super::native;

/// Why an operation failed (the WIT `error`): the rules' own mapping.
pub use shm_rules::ExchangeError as Error;

/// How to attach a block (the WIT `attach-flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AttachFlags(u8);

impl AttachFlags {
    /// Read and write, exclusive.
    pub const WRITE: AttachFlags = AttachFlags(1);
    /// Shared with other readers.
    pub const SHARED: AttachFlags = AttachFlags(2);

    /// No flags: an exclusive read.
    pub const fn empty() -> AttachFlags {
        AttachFlags(0)
    }

    /// Are all of `other`'s flags set?
    pub const fn contains(self, other: AttachFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn access(self) -> Access {
        Access::from_flags(
            self.contains(AttachFlags::WRITE),
            self.contains(AttachFlags::SHARED),
        )
    }
}

impl core::ops::BitOr for AttachFlags {
    type Output = AttachFlags;
    fn bitor(self, rhs: AttachFlags) -> AttachFlags {
        AttachFlags(self.0 | rhs.0)
    }
}

/// Where an attachment lies (the WIT `memory-area`). Natively `address`
/// is the rules' virtual address: nothing is at it in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryArea {
    /// The rules' virtual address of the first visible byte.
    pub address: u32,
    /// The visible bytes.
    pub size: u32,
}

/// A handle to a block (the WIT resource `memory-block`).
#[derive(Debug)]
pub struct MemoryBlock {
    pub(crate) handle: HandleId,
}

impl Drop for MemoryBlock {
    fn drop(&mut self) {
        native().drop_handle(self.handle);
    }
}

impl MemoryBlock {
    /// A new block of `size` zero bytes.
    pub fn new(size: u32) -> Result<MemoryBlock, Error> {
        Ok(MemoryBlock {
            handle: native().create(size)?,
        })
    }

    /// A read-only handle to the same bytes. (Named as in the generated
    /// bindings; it is fallible, so not `Clone`.)
    #[allow(clippy::should_implement_trait)]
    pub fn clone(&self) -> Result<MemoryBlock, Error> {
        let n = native();
        let handle = n.ledger().clone_handle(self.handle, n.guest)?;
        Ok(MemoryBlock { handle })
    }

    /// The block's size.
    pub fn size(&self) -> u32 {
        native().ledger().size(self.handle).unwrap_or(0)
    }

    /// Attaches with the rules of the wasm host and says where: natively
    /// the address is virtual (read the bytes through this crate's guards).
    pub fn attach(&self, flags: AttachFlags) -> Result<MemoryArea, Error> {
        let n = native();
        let access = Access::from_flags(
            flags.contains(AttachFlags::WRITE),
            flags.contains(AttachFlags::SHARED),
        );
        let attached = n.ledger().attach(n.guest, self.handle, access)?;
        Ok(MemoryArea {
            address: attached.address,
            size: attached.size,
        })
    }

    /// Ends the attachment.
    pub fn detach(&self, consumed: u32) -> Result<(), Error> {
        let n = native();
        let mut ledger = n.ledger();
        ledger.detach(n.guest, self.handle, consumed)?;
        Ok(())
    }

    /// Storage needed for one attachment (as the wasm host computes it).
    pub fn minimum_size(&self) -> u32 {
        native()
            .ledger()
            .minimum_size(self.handle)
            .unwrap_or(u32::MAX)
    }

    /// Storage for `count` attachments of up to `size` bytes.
    pub fn optimum_size(count: u32, size: u32) -> u32 {
        native().ledger().optimum_size(count, size)
    }

    /// Natively attachments need no storage: accepted and not used.
    pub fn add_storage(_buffer: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    /// A block for `start .. start + size` of this one.
    pub fn create_partition(
        &self,
        start: u32,
        size: u32,
        mode: AttachFlags,
    ) -> Result<MemoryBlock, Error> {
        let handle = native().ledger().partition(
            self.handle,
            start,
            size,
            mode.contains(AttachFlags::WRITE),
        )?;
        Ok(MemoryBlock { handle })
    }

    /// Natively a local block is a new block holding a copy of `buffer`
    /// (all of it valid): a native program's bytes cannot be lent to the
    /// block's owner, the process-wide backend.
    pub fn create_local(buffer: &[u8]) -> Result<MemoryBlock, Error> {
        let len = u32::try_from(buffer.len()).map_err(|_| Error::WrongSize)?;
        let block = MemoryBlock::new(len)?;
        // SAFETY: the slice is used only until the detach below.
        let bytes = unsafe { native().attach(block.handle, Access::Write)? };
        bytes.copy_from_slice(buffer);
        block.detach(len)?;
        Ok(block)
    }

    /// Attaches and returns the visible bytes.
    ///
    /// # Safety
    ///
    /// As [`super::Native::attach`]: the slice must not outlive the
    /// attachment, nor be written through unless `flags` has `WRITE`.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn attach_bytes(&self, flags: AttachFlags) -> Result<&mut [u8], Error> {
        // SAFETY: the caller's obligations are this function's.
        unsafe { native().attach(self.handle, flags.access()) }
    }
}
