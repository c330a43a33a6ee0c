use super::*;

const PAGE: u32 = 4096;

fn ledger() -> (Ledger<()>, GuestId) {
    let mut l = Ledger::new(PAGE);
    let g = l.add_guest(Limits::default());
    (l, g)
}

#[test]
fn write_attach_is_exclusive_across_clones() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 100, 64 * 1024).unwrap();
    let b = l.create(g, 8192, || Some(())).unwrap();
    let c = l.clone_handle(b, g).unwrap();
    l.attach(g, b, Access::Write).unwrap();
    assert_eq!(l.attach(g, c, Access::ReadShared), Err(AttachError::Busy));
    assert_eq!(
        l.attach(g, b, Access::Write),
        Err(AttachError::AlreadyAttached)
    );
    l.detach(g, b, 10).unwrap();
    let a = l.attach(g, c, Access::ReadShared).unwrap();
    assert_eq!(a.size, 10);
    assert_eq!(l.attach(g, b, Access::Write), Err(AttachError::Busy));
    l.check_invariants().unwrap();
}

#[test]
fn clones_are_read_only() {
    let (mut l, g) = ledger();
    let b = l.create(g, 10, || Some(())).unwrap();
    let c = l.clone_handle(b, g).unwrap();
    assert_eq!(l.attach(g, c, Access::Write), Err(AttachError::ReadOnly));
    assert_eq!(l.partition(c, 0, 5, true), Err(PartitionError::ReadOnly));
}

#[test]
fn mapped_placement_is_page_aligned_inside_storage() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 100, 3 * PAGE).unwrap();
    let b = l.create(g, 5000, || Some(())).unwrap();
    assert_eq!(l.minimum_size(b).unwrap(), 2 * PAGE + PAGE - 1);
    let a = l.attach(g, b, Access::Write).unwrap();
    match a.placement {
        Placement::Mapped {
            guest_offset,
            len,
            file_offset,
            skew,
            writable,
            ..
        } => {
            assert_eq!(
                (guest_offset, len, file_offset, skew, writable),
                (PAGE, 2 * PAGE, 0, 0, true)
            );
        }
        other => panic!("expected a mapping, got {other:?}"),
    }
    assert_eq!((a.address, a.size), (PAGE, 5000));
}

#[test]
fn small_storage_falls_back_to_copy() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 8, 100).unwrap();
    let b = l.create(g, 64, || Some(())).unwrap();
    let a = l.attach(g, b, Access::Write).unwrap();
    assert!(
        matches!(a.placement, Placement::Copied { len: 64, .. }),
        "{a:?}"
    );
    let r = l.detach(g, b, 40).unwrap();
    assert_eq!(r.copy_out, 40);
    assert_eq!(r.zero_tail, Some((l.backing_of(b).unwrap().0, 40, 24)));
}

#[test]
fn no_storage_and_storage_rules() {
    let (mut l, g) = ledger();
    let b = l.create(g, 64, || Some(())).unwrap();
    assert_eq!(l.attach(g, b, Access::Write), Err(AttachError::NoStorage));
    l.add_storage(g, MemoryId(1), 0, 100).unwrap();
    assert_eq!(
        l.add_storage(g, MemoryId(1), 50, 100),
        Err(StorageError::Overlapping)
    );
    l.add_storage(g, MemoryId(2), 50, 100).unwrap();
    assert_eq!(
        l.attach(g, b, Access::Write),
        Err(AttachError::AmbiguousMemory)
    );
}

#[test]
fn detach_errors() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 0, 1 << 20).unwrap();
    let b = l.create(g, 64, || Some(())).unwrap();
    assert_eq!(l.detach(g, b, 0), Err(DetachError::NotAttached));
    l.attach(g, b, Access::Write).unwrap();
    assert_eq!(l.detach(g, b, 65), Err(DetachError::WrongSize));
    l.detach(g, b, 64).unwrap();
}

#[test]
fn exclusive_reads_consume() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 0, 1 << 20).unwrap();
    let b = l.create(g, 100, || Some(())).unwrap();
    l.attach(g, b, Access::Write).unwrap();
    l.detach(g, b, 100).unwrap();
    let c = l.clone_handle(b, g).unwrap();
    l.attach(g, b, Access::ReadExclusive).unwrap();
    assert_eq!(l.attach(g, c, Access::ReadShared), Err(AttachError::Busy));
    l.detach(g, b, 30).unwrap();
    let a = l.attach(g, c, Access::ReadShared).unwrap();
    assert_eq!(a.size, 70);
    assert_eq!(a.address % PAGE, 30);
}

#[test]
fn partitions_conflict_only_when_overlapping() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 0, 1 << 20).unwrap();
    let b = l.create(g, 4 * PAGE, || Some(())).unwrap();
    let p1 = l.partition(b, 0, 2 * PAGE, true).unwrap();
    let p2 = l.partition(b, 2 * PAGE, 2 * PAGE, true).unwrap();
    let p3 = l.partition(b, PAGE, 10, true).unwrap();
    assert_eq!(
        l.partition(b, 3 * PAGE, 2 * PAGE, true),
        Err(PartitionError::WrongSize)
    );
    l.attach(g, p1, Access::Write).unwrap();
    l.attach(g, p2, Access::Write).unwrap();
    assert_eq!(l.attach(g, p3, Access::ReadShared), Err(AttachError::Busy));
    assert_eq!(l.attach(g, b, Access::ReadShared), Err(AttachError::Busy));
    l.detach(g, p1, 0).unwrap();
    // An unaligned partition is copied, never mapped.
    let a = l.attach(g, p3, Access::Write).unwrap();
    assert!(matches!(a.placement, Placement::Copied { .. }), "{a:?}");
    l.check_invariants().unwrap();
}

#[test]
fn drop_releases_and_frees_last() {
    let mut l: Ledger<u8> = Ledger::new(PAGE);
    let g = l.add_guest(Limits::default());
    l.add_storage(g, MemoryId(1), 0, 1 << 20).unwrap();
    let b = l.create(g, 64, || Some(7u8)).unwrap();
    let c = l.clone_handle(b, g).unwrap();
    l.attach(g, b, Access::Write).unwrap();
    let d = l.drop_handle(b).unwrap();
    assert!(d.release.is_some());
    assert!(d.freed.is_none());
    let d = l.drop_handle(c).unwrap();
    assert_eq!(d.freed, Some(7));
    assert_eq!(l.live_blocks(), 0);
    assert_eq!(l.attach(g, b, Access::Write), Err(AttachError::Unknown));
}

#[test]
fn limits_are_reported() {
    let mut l: Ledger<()> = Ledger::new(PAGE);
    let g = l.add_guest(Limits {
        max_blocks: 2,
        max_bytes: 100,
        max_handles: 3,
        max_storage_regions: 1,
    });
    let a = l.create(g, 60, || Some(())).unwrap();
    assert_eq!(
        l.create(g, 60, || Some(())),
        Err(CreateError::LimitExceeded)
    );
    l.create(g, 40, || Some(())).unwrap();
    l.clone_handle(a, g).unwrap();
    assert_eq!(l.clone_handle(a, g), Err(HandleError::LimitExceeded));
    l.add_storage(g, MemoryId(1), 0, 10).unwrap();
    assert_eq!(
        l.add_storage(g, MemoryId(1), 20, 10),
        Err(StorageError::LimitExceeded)
    );
    l.drop_handle(a).unwrap();
    // The clone still holds the block: its bytes stay charged.
    assert_eq!(
        l.create(g, 60, || Some(())),
        Err(CreateError::LimitExceeded)
    );
}

#[test]
fn transfer_moves_and_releases() {
    let (mut l, g) = ledger();
    let h = l.add_guest(Limits::default());
    l.add_storage(g, MemoryId(1), 0, 1 << 20).unwrap();
    let b = l.create(g, 64, || Some(())).unwrap();
    l.attach(g, b, Access::Write).unwrap();
    let r = l.transfer(b, h).unwrap();
    assert!(r.is_some());
    assert_eq!(l.owner(b).unwrap(), h);
    assert_eq!(
        l.attach(g, b, Access::ReadShared),
        Err(AttachError::Unknown)
    );
    let freed = l.remove_guest(h);
    assert_eq!(freed.len(), 1);
    assert_eq!(l.live_handles(), 0);
}

#[test]
fn local_blocks_stay_with_their_memory() {
    let (mut l, g) = ledger();
    let h = l.add_guest(Limits::default());
    let b = l.create_local(g, MemoryId(1), 1000, 50).unwrap();
    assert_eq!(
        l.add_storage(g, MemoryId(1), 1040, 10),
        Err(StorageError::Overlapping)
    );
    let a = l.attach(g, b, Access::ReadShared).unwrap();
    assert_eq!((a.address, a.size), (1000, 50));
    l.detach(g, b, 0).unwrap();
    l.transfer(b, h).unwrap();
    assert_eq!(
        l.attach(h, b, Access::ReadShared),
        Err(AttachError::WrongMemory)
    );
}

#[test]
fn optimum_size_saturates() {
    let (l, _) = ledger();
    assert_eq!(l.optimum_size(2, 5000), 4 * PAGE + PAGE - 1);
    assert_eq!(l.optimum_size(0, 5000), 0);
    assert_eq!(l.optimum_size(u32::MAX, u32::MAX), u32::MAX);
}

/// A pool mapping conflicts with nothing; reads in it follow the rules.
#[test]
fn pool_mapping_and_in_pool_reads() {
    let (mut l, publisher) = ledger();
    let sub = l.add_guest(Limits::default());
    l.add_storage(publisher, MemoryId(1), 0, 64 * 1024).unwrap();
    l.add_storage(sub, MemoryId(2), 100, 3 * PAGE).unwrap();
    let b = l.create(publisher, 5000, || Some(())).unwrap();
    // The subscriber maps the whole block once, read-only.
    let map = l.clone_handle(b, sub).unwrap();
    let mapped = l.attach(sub, map, Access::Pool).unwrap();
    let Placement::Mapped {
        guest_offset,
        len,
        writable,
        ..
    } = mapped.placement
    else {
        panic!("a pool is mapped, got {:?}", mapped.placement)
    };
    assert_eq!((guest_offset, len, writable), (PAGE, 2 * PAGE, false));
    assert_eq!(
        l.handles_of_block(b).unwrap(),
        1,
        "a pool mapping is not a use"
    );
    // The publisher writes while the pool is mapped.
    l.attach(publisher, b, Access::Write).unwrap();
    l.detach(publisher, b, 4500).unwrap();
    // A message: another clone, attached in the pool.
    let msg = l.clone_handle(b, sub).unwrap();
    let a = l.attach_in_pool(sub, msg).unwrap();
    assert_eq!((a.address, a.size), (PAGE, 4500));
    assert!(matches!(a.placement, Placement::InPool { .. }));
    assert_eq!(l.handles_of_block(b).unwrap(), 2);
    // While it is read, the publisher cannot write.
    assert_eq!(
        l.attach(publisher, b, Access::Write),
        Err(AttachError::Busy)
    );
    l.check_invariants().unwrap();
    // Released: writable again, the mapping stays.
    let release = l.drop_handle(msg).unwrap().release.unwrap();
    assert!(matches!(release.placement, Placement::InPool { .. }));
    l.attach(publisher, b, Access::Write).unwrap();
    l.check_invariants().unwrap();
}

#[test]
fn in_pool_needs_a_pool_mapping_of_the_same_guest() {
    let (mut l, g) = ledger();
    let other = l.add_guest(Limits::default());
    l.add_storage(g, MemoryId(1), 0, 4 * PAGE).unwrap();
    l.add_storage(other, MemoryId(2), 0, 4 * PAGE).unwrap();
    let b = l.create(g, 100, || Some(())).unwrap();
    let c = l.clone_handle(b, other).unwrap();
    assert_eq!(l.attach_in_pool(other, c), Err(AttachError::NotMapped));
    // A mapping held by another guest does not count.
    let map = l.clone_handle(b, g).unwrap();
    l.attach(g, map, Access::Pool).unwrap();
    assert_eq!(l.attach_in_pool(other, c), Err(AttachError::NotMapped));
    // A pool mapping is never a copy.
    let small = l.add_guest(Limits::default());
    l.add_storage(small, MemoryId(3), 0, 100).unwrap();
    let s = l.clone_handle(b, small).unwrap();
    assert_eq!(
        l.attach(small, s, Access::Pool),
        Err(AttachError::NoStorage)
    );
    l.check_invariants().unwrap();
}

#[test]
fn ending_a_pool_mapping_ends_the_reads_in_it() {
    let (mut l, g) = ledger();
    let sub = l.add_guest(Limits::default());
    l.add_storage(sub, MemoryId(2), 0, 4 * PAGE).unwrap();
    let b = l.create(g, 100, || Some(())).unwrap();
    let map = l.clone_handle(b, sub).unwrap();
    l.attach(sub, map, Access::Pool).unwrap();
    let msg = l.clone_handle(b, sub).unwrap();
    l.attach_in_pool(sub, msg).unwrap();
    l.drop_handle(map).unwrap();
    assert_eq!(l.attached(msg).unwrap(), None);
    l.check_invariants().unwrap();
    assert_eq!(l.attach_in_pool(sub, msg), Err(AttachError::NotMapped));
}

#[test]
fn storage_donated_in_pieces_is_one_region() {
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 0, 2 * PAGE).unwrap();
    l.add_storage(g, MemoryId(1), 2 * PAGE, 2 * PAGE).unwrap();
    // Another memory does not continue it.
    l.add_storage(g, MemoryId(2), 4 * PAGE, PAGE).unwrap();
    let b = l.create(g, 4 * PAGE, || Some(())).unwrap();
    // Four pages fit only across both pieces (storage in two memories is
    // ambiguous, so drop the other memory's guest first: use a fresh one).
    let (mut l2, g2) = ledger();
    l2.add_storage(g2, MemoryId(1), 0, 2 * PAGE).unwrap();
    l2.add_storage(g2, MemoryId(1), 2 * PAGE, 2 * PAGE).unwrap();
    let b2 = l2.create(g2, 4 * PAGE, || Some(())).unwrap();
    let a = l2.attach(g2, b2, Access::Write).unwrap();
    assert!(
        matches!(a.placement, Placement::Mapped { guest_offset: 0, len, .. } if len == 4 * PAGE)
    );
    l2.check_invariants().unwrap();
    assert_eq!(
        l.attach(g, b, Access::Write),
        Err(AttachError::AmbiguousMemory)
    );
}
