//! Memory protection keys: the processor feature behind write windows.
//!
//! A page mapped read-write can carry a protection key (x86_64 PKU, Linux
//! `pkey_mprotect`). Whether a thread may write pages of a key is decided
//! by the thread's PKRU register, which the `wrpkru` instruction changes in
//! a few nanoseconds, without a system call (measured here: 0.04 us, where
//! `mprotect` costs 6.6 us and an `mmap` of a page 13.7 us, see
//! `shm-host/BENCHMARKS.md`). [`crate::os::windows`] uses this to let a pooled
//! publisher write into one block of its mapped pool at a time.
//!
//! This module only allocates keys, tags ranges with them and sets the
//! current thread's rights; it decides nothing. On other targets, or where
//! the kernel or processor has no keys, [`keys`] is empty and nothing here
//! is ever called.

/// The protection keys this process allocated for write windows (at most
/// [`MAX_KEYS`]); empty where keys are unavailable.
pub(crate) fn keys() -> &'static [u32] {
    imp::keys()
}

/// At most this many keys are used (the hardware has 16; key 0 is every
/// ordinary page's).
pub(crate) const MAX_KEYS: usize = 15;

/// Tags the page-aligned `len` bytes at `at` with `key`, read-write. The
/// current thread's rights decide what may be done with them.
///
/// # Safety
/// `at .. at + len` must be a page-aligned range of a mapping the caller
/// owns and may make writable (a guest's mapped pool), and `key` one of
/// [`keys`].
pub(crate) unsafe fn tag(at: *mut u8, len: usize, key: u32) -> std::io::Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { imp::tag(at, len, key) }
}

/// Sets the current thread's rights to the pages of our keys: every key of
/// [`keys`] may be read; the keys whose index (in [`keys`]) has its bit set
/// in `writable` may also be written, all others not. Rights to other keys
/// are left as they are.
pub(crate) fn allow_writes(writable: u32) {
    imp::allow_writes(writable)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use std::sync::OnceLock;

    static KEYS: OnceLock<Vec<u32>> = OnceLock::new();

    /// `pkey_alloc`'s initial right: no writes (reads allowed).
    const DISABLE_WRITE: libc::c_ulong = 2;

    pub(super) fn keys() -> &'static [u32] {
        KEYS.get_or_init(|| {
            if std::env::var_os("SHM_HOST_NO_PKEYS").is_some() {
                return Vec::new();
            }
            let mut keys = Vec::new();
            while keys.len() < super::MAX_KEYS {
                // SAFETY: `pkey_alloc(flags = 0, rights)` only reserves a
                // key number for this process; it touches no memory. It
                // fails (ENOSYS, EINVAL, ENOSPC) where keys are unsupported
                // or used up, and we stop there.
                let key = unsafe { libc::syscall(libc::SYS_pkey_alloc, 0, DISABLE_WRITE) };
                match u32::try_from(key) {
                    Ok(k) if k > 0 && k < 16 => keys.push(k),
                    _ => break,
                }
            }
            if !keys.is_empty() {
                tracing::debug!(
                    keys = keys.len(),
                    "memory protection keys for write windows"
                );
            }
            keys
        })
    }

    pub(super) unsafe fn tag(at: *mut u8, len: usize, key: u32) -> std::io::Result<()> {
        // SAFETY: the caller guarantees a page-aligned range of its own
        // mapping that may be made writable; `pkey_mprotect` changes only
        // that range's protection and key.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pkey_mprotect,
                at,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                key,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    fn read_pkru() -> u32 {
        let pkru: u32;
        // SAFETY: `rdpkru` (ecx = 0) only reads the PKRU register into eax
        // (edx is zeroed). Callers reach here only after `pkey_alloc`
        // succeeded, so the OS enabled the register (CR4.PKE, OSPKE):
        // without it the instruction would fault, but then `keys()` is
        // empty and nothing calls this.
        unsafe {
            std::arch::asm!(
                "rdpkru",
                in("ecx") 0u32,
                out("eax") pkru,
                out("edx") _,
                options(nomem, nostack, preserves_flags),
            );
        }
        pkru
    }

    pub(super) fn allow_writes(writable: u32) {
        let keys = keys();
        if keys.is_empty() {
            return;
        }
        let old = read_pkru();
        let mut new = old;
        for (i, &k) in keys.iter().enumerate() {
            // Two bits per key: access-disable (2k), write-disable (2k + 1).
            let (ad, wd) = (1u32 << (2 * k), 1u32 << (2 * k + 1));
            new &= !ad;
            if writable & (1 << i) != 0 {
                new &= !wd;
            } else {
                new |= wd;
            }
        }
        if new != old {
            // SAFETY: `wrpkru` (ecx = edx = 0) sets this thread's rights to
            // pages by key; the new value differs from the old only in the
            // bits of keys this process allocated for write windows, whose
            // pages are mapped pools (never host data). Reads stay allowed,
            // so host code reading those pages cannot fault; it is not
            // `nomem`, so the compiler does not move memory accesses across
            // it.
            unsafe {
                std::arch::asm!(
                    "wrpkru",
                    in("eax") new,
                    in("ecx") 0u32,
                    in("edx") 0u32,
                    options(nostack, preserves_flags),
                );
            }
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    pub(super) fn keys() -> &'static [u32] {
        &[]
    }

    pub(super) unsafe fn tag(_: *mut u8, _: usize, _: u32) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub(super) fn allow_writes(_: u32) {}
}
