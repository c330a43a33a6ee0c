//! What it costs to let a publisher write one block of its pool and then
//! take the right away again: the mechanisms a write window could use,
//! side by side, each a full cycle (grant, write one byte, revoke) on one
//! 4 KiB page of a memfd, as a pooled publisher does per message.
//!
//! - `mmap`: map the block's page read-write into the storage, write, map
//!   fresh anonymous pages back (what a write attach and detach cost
//!   without windows);
//! - `mprotect`: the pool stays mapped; make the page writable, write,
//!   make it read-only again;
//! - `pkey`: the pool stays mapped read-write under a protection key; allow
//!   writes to the key (`wrpkru`), write, disallow (what write windows do;
//!   skipped where the machine has no protection keys);
//! - `plain`: the write alone, for reference.
//!
//! Results are in `shm-host/BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

const PAGE: usize = 4096;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn set_pkru(value: u32) {
    // SAFETY: `wrpkru` with ecx = edx = 0 sets this thread's rights by
    // protection key; only called after `pkey_alloc` succeeded (the OS
    // enabled the register), and the new value only differs in the bits of
    // the key this benchmark allocated for its own page.
    unsafe {
        std::arch::asm!("wrpkru", in("eax") value, in("ecx") 0u32, in("edx") 0u32,
            options(nostack, preserves_flags));
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn read_pkru() -> u32 {
    let pkru: u32;
    // SAFETY: `rdpkru` with ecx = 0 only reads the register (see set_pkru).
    unsafe {
        std::arch::asm!("rdpkru", in("ecx") 0u32, out("eax") pkru, out("edx") _,
            options(nomem, nostack, preserves_flags));
    }
    pkru
}

fn windows(c: &mut Criterion) {
    // The setup: plain system calls on a memfd and on mappings this
    // function makes and owns; every pointer used below points into those
    // mappings, which live until the end.
    // SAFETY: creates a descriptor from a valid C string; touches no memory.
    let fd = unsafe { libc::memfd_create(c"window-bench".as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: sizes the memfd just made.
    assert_eq!(unsafe { libc::ftruncate(fd, PAGE as libc::off_t) }, 0);
    // SAFETY: a fresh mapping at an address the kernel chooses: it
    // overlaps nothing.
    let anon = |prot| unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        p.cast::<u8>()
    };
    // SAFETY: as `anon`, of the memfd, which is one page long.
    let shared = |prot| unsafe {
        let p = libc::mmap(std::ptr::null_mut(), PAGE, prot, libc::MAP_SHARED, fd, 0);
        assert_ne!(p, libc::MAP_FAILED);
        p.cast::<u8>()
    };

    let mut group = c.benchmark_group("window/4 KiB");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));

    let storage = anon(libc::PROT_READ | libc::PROT_WRITE);
    group.bench_function("mmap", |b| {
        let mut i = 0u8;
        b.iter(|| {
            i = i.wrapping_add(1);
            // SAFETY: `storage` is our own one-page mapping; MAP_FIXED
            // replaces only it, first with the block's page, then with
            // fresh anonymous memory, as a write attach and detach do.
            unsafe {
                let p = libc::mmap(
                    storage.cast(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    0,
                );
                assert_eq!(p.cast::<u8>(), storage);
                storage.write_volatile(i);
                let p = libc::mmap(
                    storage.cast(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                );
                assert_eq!(p.cast::<u8>(), storage);
            }
        })
    });

    let pool = shared(libc::PROT_READ);
    // SAFETY: reading our own mapping makes its page present.
    black_box(unsafe { pool.read_volatile() });
    group.bench_function("mprotect", |b| {
        let mut i = 0u8;
        b.iter(|| {
            i = i.wrapping_add(1);
            // SAFETY: `pool` is our own shared one-page mapping; only its
            // protection changes, and it is written while writable.
            unsafe {
                assert_eq!(
                    libc::mprotect(pool.cast(), PAGE, libc::PROT_READ | libc::PROT_WRITE),
                    0
                );
                pool.write_volatile(i);
                assert_eq!(libc::mprotect(pool.cast(), PAGE, libc::PROT_READ), 0);
            }
        })
    });

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: reserves a key number; touches no memory.
        let key = unsafe { libc::syscall(libc::SYS_pkey_alloc, 0, 0) };
        if key > 0 {
            let key = key as u32;
            let keyed = shared(libc::PROT_READ);
            // SAFETY: our own mapping gets read-write protection under
            // `key`; this thread's rights decide what may be done.
            let tagged = unsafe {
                libc::syscall(
                    libc::SYS_pkey_mprotect,
                    keyed,
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    key,
                )
            };
            assert_eq!(tagged, 0);
            let write_disable = 1u32 << (2 * key + 1);
            let closed = read_pkru() | write_disable;
            let open = closed & !write_disable;
            set_pkru(closed);
            group.bench_function("pkey", |b| {
                let mut i = 0u8;
                b.iter(|| {
                    i = i.wrapping_add(1);
                    set_pkru(open);
                    // SAFETY: our own keyed page, writable while `open`.
                    unsafe { keyed.write_volatile(i) };
                    set_pkru(closed);
                })
            });
        } else {
            eprintln!("window: no protection keys here, `pkey` skipped");
        }
    }

    let plain = anon(libc::PROT_READ | libc::PROT_WRITE);
    group.bench_function("plain", |b| {
        let mut i = 0u8;
        b.iter(|| {
            i = i.wrapping_add(1);
            // SAFETY: our own writable page.
            unsafe { plain.write_volatile(i) };
        })
    });
    group.finish();
}

criterion_group!(benches, windows);
criterion_main!(benches);
