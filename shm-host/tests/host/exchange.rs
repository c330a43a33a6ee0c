//! End-to-end tests of the `exchange` interface with real wasm components:
//! every function, the attach rules, and hostile guests.

use crate::common;

use common::{pass, World, EXCLUSIVE, SHARED, WRITE};
use shm_host::{Limits, ShmConfig};

const PAGE: u32 = 4096;

#[test]
fn write_then_read_is_backed_by_the_blocks_own_pages() {
    let w = World::shared();
    let mut p = w.probe("aliasing");
    let n = p.optimum_size(2, 3 * PAGE);
    p.storage(n);
    let b = p.create(3 * PAGE).unwrap();
    let (addr, size) = p.attach(b, WRITE).unwrap();
    assert_eq!(size, 3 * PAGE);
    assert_eq!(addr % PAGE, 0, "mapped attachments are page aligned");
    p.write(addr + 10, b"hello pages").unwrap();

    // Proof of aliasing: the guest's page is the block's memfd, shared and
    // writable, at offset 0.
    let backing = p.store.data().shm.page_backing(addr).unwrap();
    let id = backing.block.expect("the page is a block's page");
    assert!(backing.maps.is_shared() && backing.maps.is_writable());
    assert_eq!(backing.maps.offset, 0);
    assert!(
        backing.maps.path.contains("memfd:zero-copy-shm-block"),
        "{:?}",
        backing.maps
    );
    p.detach(b, 21).unwrap();

    // The storage is ordinary zeroed heap again.
    assert_eq!(p.checksum(addr, 3 * PAGE), 0);
    let backing = p.store.data().shm.page_backing(addr).unwrap();
    assert_eq!(backing.block, None);

    // A clone attached read-only sees exactly the valid bytes, in place.
    let c = p.clone_block(b).unwrap();
    let (addr2, size2) = p.attach(c, SHARED).unwrap();
    assert_eq!(size2, 21);
    assert_eq!(&p.read(addr2 + 10, 11), b"hello pages");
    let backing = p.store.data().shm.page_backing(addr2).unwrap();
    assert_eq!(backing.block, Some(id));
    assert!(!backing.maps.is_writable());
    let stats = p.store.data().shm.stats();
    assert_eq!(stats.bytes_copied, 0);
    assert_eq!(stats.maps, 2);
    w.host.check_invariants().unwrap();
}

#[test]
fn new_blocks_and_reused_storage_read_as_zeros() {
    let w = World::shared();
    let mut a = w.probe("zeros-a");
    let mut b = w.probe("zeros-b");
    a.storage(4 * PAGE);
    let x = a.create(2 * PAGE).unwrap();
    let (addr, _) = a.attach(x, WRITE).unwrap();
    a.fill(addr, 2 * PAGE, 0xAB).unwrap();
    a.detach(x, 2 * PAGE).unwrap();
    a.drop_block(x);
    // A new block, maybe in the same storage, reads as zeros.
    let y = a.create(2 * PAGE).unwrap();
    let (addr, _) = a.attach(y, WRITE).unwrap();
    assert_eq!(a.checksum(addr, 2 * PAGE), 0);
    a.detach(y, 0).unwrap();
    // And in another guest.
    b.storage(4 * PAGE);
    let z = b.create(2 * PAGE).unwrap();
    let (addr, _) = b.attach(z, WRITE).unwrap();
    assert_eq!(b.checksum(addr, 2 * PAGE), 0);
}

#[test]
fn attach_rules_are_enforced() {
    let w = World::shared();
    let mut p = w.probe("rules");
    let b = p.create(100).unwrap();
    assert_eq!(p.attach(b, WRITE), Err("no-storage".into()));
    let n = p.optimum_size(4, 100);
    p.storage(n);
    let c = p.clone_block(b).unwrap();
    assert_eq!(p.attach(c, WRITE), Err("read-only".into()));
    p.attach(b, WRITE).unwrap();
    assert_eq!(p.attach(b, WRITE), Err("already-attached".into()));
    assert_eq!(
        p.attach(c, SHARED),
        Err("busy".into()),
        "read during a write"
    );
    assert_eq!(p.detach(b, 101), Err("wrong-size".into()));
    p.detach(b, 100).unwrap();
    assert_eq!(p.detach(b, 0), Err("not-attached".into()));
    let c2 = p.clone_block(b).unwrap();
    p.attach(c, SHARED).unwrap();
    p.attach(c2, SHARED).unwrap();
    assert_eq!(
        p.attach(b, WRITE),
        Err("busy".into()),
        "a second writer while readers read"
    );
    assert_eq!(p.attach(b, EXCLUSIVE), Err("busy".into()));
    assert_eq!(p.detach(c, 101), Err("wrong-size".into()));
    p.detach(c, 0).unwrap();
    p.detach(c2, 0).unwrap();
    p.attach(b, WRITE).unwrap();
    p.detach(b, 50).unwrap();
    assert_eq!(p.size(b), 100);
    w.host.check_invariants().unwrap();
}

#[test]
fn hostile_storage_is_rejected() {
    let w = World::shared();
    let mut p = w.probe("storage");
    let a = p.alloc(3 * PAGE);
    p.donate(a, 2 * PAGE).unwrap();
    assert_eq!(
        p.donate(a + PAGE, 2 * PAGE),
        Err("overlapping-storage".into())
    );
    // Outside the linear memory: wasmtime's bounds check traps the guest.
    let err = p.try_call(
        "donate",
        &[
            wasmtime::component::Val::U32(0xFFFF_0000),
            wasmtime::component::Val::U32(0x20000),
        ],
    );
    assert!(err.is_err(), "storage outside memory must trap");
    // The host and other guests go on.
    let mut q = w.probe("storage-after");
    q.storage(2 * PAGE);
    let b = q.create(PAGE).unwrap();
    q.attach(b, WRITE).unwrap();
    q.detach(b, 1).unwrap();
    w.host.check_invariants().unwrap();
}

#[test]
fn too_small_storage_falls_back_to_a_counted_copy() {
    let w = World::shared();
    let mut p = w.probe("copy");
    let s = p.alloc(200);
    p.donate(s + 1, 150).unwrap();
    let b = p.create(100).unwrap();
    assert_eq!(p.minimum_size(b), 2 * PAGE - 1);
    let (addr, size) = p.attach(b, WRITE).unwrap();
    assert_eq!(size, 100);
    assert!(
        addr > s && addr + 100 <= s + 151,
        "inside the donated bytes"
    );
    p.write(addr, b"copied").unwrap();
    p.detach(b, 6).unwrap();
    let c = p.clone_block(b).unwrap();
    let (addr, size) = p.attach(c, SHARED).unwrap();
    assert_eq!(&p.read(addr, size), b"copied");
    let stats = p.store.data().shm.stats();
    assert_eq!(stats.copies, 2);
    assert_eq!(stats.bytes_copied, 100 + 6 + 6);
    assert_eq!(stats.maps, 0);
    // A block too large for the storage: no-storage.
    let big = p.create(PAGE).unwrap();
    assert_eq!(p.attach(big, WRITE), Err("no-storage".into()));
}

#[test]
fn write_into_a_read_only_attachment_traps_only_that_guest() {
    let w = World::shared();
    let mut writer = w.probe("ro-writer");
    let mut reader = w.probe("ro-reader");
    let mut other = w.probe("ro-other");
    writer.storage(2 * PAGE);
    let b = writer.create(PAGE).unwrap();
    let (addr, _) = writer.attach(b, WRITE).unwrap();
    writer.write(addr, b"intact").unwrap();
    writer.detach(b, 6).unwrap();

    let c = writer.clone_block(b).unwrap();
    let c = pass(&mut writer, c, &mut reader);
    reader.storage(2 * PAGE);
    let (raddr, _) = reader.attach(c, SHARED).unwrap();
    assert_eq!(&reader.read(raddr, 6), b"intact");
    let trap = reader
        .write(raddr, b"EVIL")
        .expect_err("a write into a read-only page must trap");
    assert!(format!("{trap:?}").contains("memory fault"), "{trap:?}");

    // Another guest goes on, and the block's data is intact.
    let c2 = writer.clone_block(b).unwrap();
    let c2 = pass(&mut writer, c2, &mut other);
    other.storage(2 * PAGE);
    let (oaddr, _) = other.attach(c2, SHARED).unwrap();
    assert_eq!(&other.read(oaddr, 6), b"intact");
    other.detach(c2, 0).unwrap();
    // The trapped guest's store goes away: its attachment is released and
    // the writer can write again.
    assert_eq!(writer.attach(b, WRITE), Err("busy".into()));
    drop(reader);
    writer.attach(b, WRITE).unwrap();
    writer.detach(b, 6).unwrap();
    w.host.check_invariants().unwrap();
}

#[test]
fn stale_handles_trap() {
    let w = World::shared();
    let mut p = w.probe("stale");
    p.storage(2 * PAGE);
    let b = p.create(16).unwrap();
    let raw = p.handle_of(b);
    p.drop_block(b);
    let r = p.try_call(
        "attach-raw",
        &[
            wasmtime::component::Val::U32(raw),
            wasmtime::component::Val::Flags(vec!["write".into()]),
        ],
    );
    assert!(r.is_err(), "use after drop must trap, got {r:?}");
}

#[test]
fn blocks_move_between_guests_without_copying() {
    let w = World::shared();
    let mut a = w.probe("move-a");
    let mut b = w.probe("move-b");
    let n = a.optimum_size(1, 64 * 1024);
    a.storage(n);
    let n = b.optimum_size(1, 64 * 1024);
    b.storage(n);
    let x = a.create(64 * 1024).unwrap();
    let (addr, _) = a.attach(x, WRITE).unwrap();
    a.fill(addr, 64 * 1024, 7).unwrap();
    a.write(addr, b"from a").unwrap();
    // Moving an attached block ends the sender's attachment first.
    let y = pass(&mut a, x, &mut b);
    assert_eq!(
        a.checksum(addr, 64 * 1024),
        0,
        "the sender's storage is zeroed"
    );
    let (baddr, size) = b.attach(y, EXCLUSIVE).unwrap();
    assert_eq!(size, 0, "the sender never committed: no valid bytes");
    b.detach(y, 0).unwrap();
    let (baddr2, size) = b.attach(y, WRITE).unwrap();
    assert_eq!(size, 64 * 1024);
    assert_eq!(
        &b.read(baddr2, 6),
        b"from a",
        "the bytes moved with the block, in place"
    );
    assert_eq!(b.store.data().shm.stats().bytes_copied, 0);
    let _ = baddr;
    b.detach(y, 6).unwrap();
}

#[test]
fn exclusive_reads_consume_and_pass_ownership_on() {
    let w = World::shared();
    let mut p = w.probe("consume");
    let n = p.optimum_size(2, 2 * PAGE);
    p.storage(n);
    let b = p.create(2 * PAGE).unwrap();
    let (addr, _) = p.attach(b, WRITE).unwrap();
    p.write(addr, b"0123456789").unwrap();
    p.detach(b, 10).unwrap();
    let (addr, size) = p.attach(b, EXCLUSIVE).unwrap();
    assert_eq!((size, &p.read(addr, size)[..]), (10, &b"0123456789"[..]));
    p.detach(b, 4).unwrap();
    let (addr, size) = p.attach(b, SHARED).unwrap();
    assert_eq!(&p.read(addr, size), b"456789");
}

#[test]
fn partitions_map_when_aligned_and_copy_otherwise() {
    let w = World::shared();
    let mut p = w.probe("partition");
    let n = p.optimum_size(4, 4 * PAGE);
    p.storage(n);
    let b = p.create(4 * PAGE).unwrap();
    let low = p.partition(b, 0, 2 * PAGE, WRITE).unwrap();
    let high = p.partition(b, 2 * PAGE, 2 * PAGE, WRITE).unwrap();
    let odd = p.partition(b, 100, 50, WRITE).unwrap();
    let ro = p.partition(b, 0, 10, EXCLUSIVE).unwrap();
    assert_eq!(
        p.partition(b, 3 * PAGE, 2 * PAGE, WRITE),
        Err("wrong-size".into())
    );
    assert_eq!(p.partition(ro, 0, 10, WRITE), Err("read-only".into()));
    assert_eq!(p.attach(ro, WRITE), Err("read-only".into()));
    let (la, _) = p.attach(low, WRITE).unwrap();
    let (ha, _) = p.attach(high, WRITE).unwrap();
    assert_eq!(p.attach(b, SHARED), Err("busy".into()));
    p.write(la + 100, b"low half").unwrap();
    p.write(ha, b"high half").unwrap();
    p.detach(low, 2 * PAGE).unwrap();
    p.detach(high, 9).unwrap();
    let maps = p.store.data().shm.stats().maps;
    // A partition sees the bytes written through an overlapping one: they
    // are the same bytes.
    let (oa, os) = p.attach(odd, WRITE).unwrap();
    assert_eq!(os, 50);
    assert_eq!(&p.read(oa, 8), b"low half");
    assert_eq!(
        p.store.data().shm.stats().maps,
        maps,
        "an unaligned partition is copied"
    );
    p.write(oa, b"LOW").unwrap();
    p.detach(odd, 50).unwrap();
    let (la, _) = p.attach(low, SHARED).unwrap();
    assert_eq!(
        &p.read(la + 100, 8),
        b"LOW half",
        "copied back out at detach"
    );
}

#[test]
fn local_blocks_attach_in_place() {
    let w = World::shared();
    let mut p = w.probe("local");
    let a = p.alloc(64);
    p.write(a, b"local bytes").unwrap();
    let b = p.create_local(a, 11).unwrap();
    let (addr, size) = p.attach(b, SHARED).unwrap();
    assert_eq!((addr, size), (a, 11));
    p.detach(b, 0).unwrap();
    assert_eq!(p.donate(a, 8), Err("overlapping-storage".into()));
    let mut q = w.probe("local-other");
    let c = pass(&mut p, b, &mut q);
    assert_eq!(q.attach(c, SHARED), Err("wrong-memory".into()));
}

#[test]
fn limits_are_reported_as_errors() {
    let w = World::new(ShmConfig::default().limits(Limits {
        max_blocks: 2,
        max_bytes: 10_000,
        max_handles: 4,
        max_storage_regions: 2,
        max_mappings: 8,
        ..Limits::default()
    }));
    let mut p = w.probe("limits");
    let a = p.create(6000).unwrap();
    assert_eq!(p.create(6000), Err("limit-exceeded".into()));
    p.create(100).unwrap();
    assert_eq!(p.create(1), Err("limit-exceeded".into()));
    p.clone_block(a).unwrap();
    p.clone_block(a).unwrap();
    assert_eq!(p.clone_block(a), Err("limit-exceeded".into()));
    p.storage(100);
    p.storage(100);
    let x = p.alloc(100);
    assert_eq!(p.donate(x, 100), Err("limit-exceeded".into()));
    assert_eq!(p.create(u32::MAX), Err("wrong-size".into()));
}

#[test]
fn dropping_an_attached_block_detaches_it() {
    let w = World::shared();
    let mut p = w.probe("drop");
    let n = p.optimum_size(1, PAGE);
    p.storage(n);
    let b = p.create(PAGE).unwrap();
    let c = p.clone_block(b).unwrap();
    let (addr, _) = p.attach(b, WRITE).unwrap();
    p.fill(addr, PAGE, 9).unwrap();
    p.drop_block(b);
    assert_eq!(p.checksum(addr, PAGE), 0, "storage is zeroed again");
    // The clone keeps the block alive and attachable; the storage is free.
    let (addr2, size) = p.attach(c, SHARED).unwrap();
    assert_eq!(
        (addr2, size),
        (0, 0),
        "an uncommitted write leaves no valid bytes"
    );
    p.detach(c, 0).unwrap();
    let d = p.create(PAGE).unwrap();
    let (addr3, _) = p.attach(d, WRITE).unwrap();
    assert_eq!(addr3, addr, "the storage was freed for reuse");
}

#[test]
fn host_writes_into_a_read_only_attachment_stay_private() {
    let w = World::shared();
    let mut writer = w.probe("hostwrite-writer");
    let mut reader = w.probe("hostwrite-reader");
    let mut other = w.probe("hostwrite-other");
    writer.storage(2 * PAGE);
    let b = writer.create(PAGE).unwrap();
    let (addr, _) = writer.attach(b, WRITE).unwrap();
    writer.write(addr, b"original").unwrap();
    writer.detach(b, 8).unwrap();
    let c = writer.clone_block(b).unwrap();
    let c = pass(&mut writer, c, &mut reader);
    reader.storage(2 * PAGE);
    let (raddr, _) = reader.attach(c, SHARED).unwrap();
    let host = reader.store.data().shm.host_address(raddr).unwrap();
    let before = shm_host::absorbed_host_writes();
    // What wasmtime's lowering does when a hostile guest passes a result
    // pointer inside its read-only attachment: host code writes there.
    // SAFETY: `host` is the first byte of the reader's attachment, inside
    // its linear memory, which lives as long as `reader`; nothing else
    // holds a reference to it. The page is read-only: the write faults and
    // the host's handler must turn it into a private copy.
    unsafe { std::ptr::write_volatile(host as *mut u8, b'X') };
    assert_eq!(shm_host::absorbed_host_writes(), before + 1);
    assert_eq!(
        &reader.read(raddr, 8),
        b"Xriginal",
        "the guest sees what it asked for"
    );
    // The block itself is intact for everyone else.
    let c2 = writer.clone_block(b).unwrap();
    let c2 = pass(&mut writer, c2, &mut other);
    other.storage(2 * PAGE);
    let (oaddr, _) = other.attach(c2, SHARED).unwrap();
    assert_eq!(&other.read(oaddr, 8), b"original");
    // The absorbed write left the guest's page read-only: its own store
    // there still traps it (and only it).
    assert!(
        reader.write(raddr + 1, b"Y").is_err(),
        "the private page stayed writable"
    );
    assert_eq!(&other.read(oaddr, 8), b"original");
}
