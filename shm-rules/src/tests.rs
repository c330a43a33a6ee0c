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
        max_mappings: 8,
        ..Limits::default()
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
    let a = l.attach_in_pool(sub, msg, map).unwrap();
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
    assert_eq!(l.attach_in_pool(other, c, c), Err(AttachError::NotMapped));
    // A mapping held by another guest does not count.
    let map = l.clone_handle(b, g).unwrap();
    l.attach(g, map, Access::Pool).unwrap();
    assert_eq!(l.attach_in_pool(other, c, map), Err(AttachError::NotMapped));
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
    l.attach_in_pool(sub, msg, map).unwrap();
    l.drop_handle(map).unwrap();
    assert_eq!(l.attached(msg).unwrap(), None);
    l.check_invariants().unwrap();
    assert_eq!(l.attach_in_pool(sub, msg, map), Err(AttachError::NotMapped));
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

/// Two guests with storage: a lender and a borrower.
fn two_guests() -> (Ledger<()>, GuestId, GuestId) {
    let (mut l, a) = ledger();
    let b = l.add_guest(Limits::default());
    l.add_storage(a, MemoryId(1), 0, 64 * PAGE).unwrap();
    l.add_storage(b, MemoryId(2), 0, 64 * PAGE).unwrap();
    (l, a, b)
}

#[test]
fn a_read_only_handle_cannot_consume_or_shut_readers_out() {
    let (mut l, a, b) = two_guests();
    let block = l.create(a, 2 * PAGE, || Some(())).unwrap();
    l.attach(a, block, Access::Write).unwrap();
    l.detach(a, block, 100).unwrap();
    let hostile = l.clone_handle(block, b).unwrap();
    let honest = l.clone_handle(block, a).unwrap();
    // An exclusive read would shut the honest reader out and consume for
    // everyone: it needs the write right.
    assert_eq!(
        l.attach(b, hostile, Access::ReadExclusive),
        Err(AttachError::ReadOnly)
    );
    let r = l.attach(b, hostile, Access::ReadShared).unwrap();
    assert_eq!(r.size, 100);
    // A shared read's detach consumes nothing, whatever it says.
    l.detach(b, hostile, 100).unwrap();
    assert_eq!(l.attach(a, honest, Access::ReadShared).unwrap().size, 100);
    assert_eq!(l.valid_range(honest).unwrap(), (0, 100));
    // A read-only partition is read-only too.
    let part = l.partition(hostile, 0, PAGE, false).unwrap();
    assert_eq!(
        l.attach(b, part, Access::ReadExclusive),
        Err(AttachError::ReadOnly)
    );
    l.check_invariants().unwrap();
}

#[test]
fn other_writers_counts_every_write_right_to_the_bytes() {
    let (mut l, a, b) = two_guests();
    let block = l.create(a, 2 * PAGE, || Some(())).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 0);
    let clone = l.clone_handle(block, a).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 0, "a clone is read-only");
    assert_eq!(l.other_writers(clone).unwrap(), 1);
    let part = l.partition(block, PAGE, PAGE, true).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 1, "a writable partition");
    let alias = l.alias(block, b).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 2);
    l.drop_handle(part).unwrap();
    l.drop_handle(alias).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 0);
    let ro = l.partition(block, 0, PAGE, false).unwrap();
    assert_eq!(l.other_writers(block).unwrap(), 0);
    assert_eq!(l.other_writers(ro).unwrap(), 1);
    l.check_invariants().unwrap();
}

#[test]
fn everything_derived_from_a_loan_is_revoked_when_it_ends() {
    let (mut l, a, b) = two_guests();
    let third = l.add_guest(Limits::default());
    l.add_storage(third, MemoryId(3), 0, 64 * PAGE).unwrap();
    let block = l.create(a, 2 * PAGE, || Some(())).unwrap();
    l.attach(a, block, Access::Write).unwrap();
    l.detach(a, block, 10).unwrap();
    let (alias, loan) = l.lend(block, b).unwrap();
    assert!(
        l.writable(alias).unwrap(),
        "a loan keeps the lender's rights"
    );
    // During the call the borrower derives what it can, and keeps it.
    let clone = l.partition(alias, 0, PAGE, false).unwrap();
    let part = l.partition(alias, PAGE, PAGE, true).unwrap();
    let moved = l.partition(alias, 0, PAGE, false).unwrap();
    l.transfer(moved, third).unwrap();
    let read = l.attach(b, clone, Access::ReadShared).unwrap();
    let write = l.attach(b, part, Access::Write).unwrap();
    l.attach(third, moved, Access::ReadShared).unwrap();
    // A loan made from the loan (the borrower lends it on) ends with it.
    let (inner, _) = l.lend(alias, third).unwrap();
    let revoked = l.end_loan(loan);
    let releases: Vec<Placement> = revoked
        .iter()
        .filter_map(|(_, d)| d.release.map(|r| r.placement))
        .collect();
    assert!(releases.contains(&read.placement));
    assert!(releases.contains(&write.placement));
    assert_eq!(releases.len(), 3, "{releases:?}");
    for h in [alias, clone, part, moved, inner] {
        assert_eq!(
            l.attach(b, h, Access::ReadShared),
            Err(AttachError::Revoked),
            "{h:?}"
        );
        assert_eq!(l.size(h), Err(UnknownHandle::Revoked));
    }
    // The abandoned write committed nothing where it overlaps.
    assert_eq!(l.valid_range(block).unwrap(), (0, 0));
    // The lender's own handle is untouched, and the only one left.
    assert_eq!(l.handles_of_block(block).unwrap(), 1);
    assert_eq!(l.other_writers(block).unwrap(), 0);
    l.check_invariants().unwrap();
    // Revoked handles count until their holder drops them.
    for h in [alias, clone, part, inner] {
        l.drop_handle(h).unwrap();
    }
    l.drop_handle(moved).unwrap();
    l.check_invariants().unwrap();
    assert_eq!(l.live_handles(), 1);
}

#[test]
fn an_abandoned_write_commits_nothing_mapped_or_copied() {
    for size in [2 * PAGE, 100] {
        let (mut l, a, _) = two_guests();
        let block = l.create(a, 4 * PAGE, || Some(())).unwrap();
        l.attach(a, block, Access::Write).unwrap();
        l.detach(a, block, 3 * PAGE).unwrap();
        let part = l.partition(block, 0, size, true).unwrap();
        let w = l.attach(a, part, Access::Write).unwrap();
        match (size, w.placement) {
            (100, Placement::Copied { .. }) | (_, Placement::Mapped { .. }) => {}
            other => panic!("unexpected placement {other:?}"),
        }
        // Dropped while attached: no detach, no commit.
        let dropped = l.drop_handle(part).unwrap();
        assert!(dropped.release.is_some());
        assert_eq!(l.valid_range(block).unwrap(), (0, 0), "size {size}");
        l.check_invariants().unwrap();
    }
}

#[test]
fn mappings_are_limited_per_guest_and_per_process() {
    let mut l: Ledger<()> = Ledger::with_process_limits(
        PAGE,
        ProcessLimits {
            max_blocks: 5,
            max_mappings: 3,
        },
    );
    let limits = Limits {
        max_mappings: 2,
        ..Limits::default()
    };
    let a = l.add_guest(limits);
    let b = l.add_guest(limits);
    l.add_storage(a, MemoryId(1), 0, 64 * PAGE).unwrap();
    l.add_storage(b, MemoryId(2), 0, 64 * PAGE).unwrap();
    let blocks: Vec<HandleId> = (0..5)
        .map(|_| l.create(a, PAGE, || Some(())).unwrap())
        .collect();
    assert_eq!(
        l.create(b, PAGE, || Some(())),
        Err(CreateError::LimitExceeded),
        "the process's blocks are used up"
    );
    l.attach(a, blocks[0], Access::Write).unwrap();
    l.attach(a, blocks[1], Access::Write).unwrap();
    assert_eq!(
        l.attach(a, blocks[2], Access::Write),
        Err(AttachError::LimitExceeded),
        "the guest's own limit"
    );
    let c = l.clone_handle(blocks[2], b).unwrap();
    l.attach(b, c, Access::Pool).unwrap();
    let d = l.clone_handle(blocks[3], b).unwrap();
    assert_eq!(
        l.attach(b, d, Access::Pool),
        Err(AttachError::LimitExceeded),
        "the process's limit"
    );
    l.detach(a, blocks[0], 0).unwrap();
    l.attach(b, d, Access::Pool).unwrap();
    assert_eq!(l.live_mappings(), 3);
    l.drop_handle(blocks[4]).unwrap();
    l.create(b, PAGE, || Some(())).unwrap();
    l.check_invariants().unwrap();
}

#[test]
fn an_evicted_guest_loses_every_handle_it_held() {
    let (mut l, a, b) = two_guests();
    let block = l.create(a, PAGE, || Some(())).unwrap();
    let c1 = l.clone_handle(block, b).unwrap();
    let c2 = l.clone_handle(block, b).unwrap();
    let r = l.attach(b, c1, Access::ReadShared).unwrap();
    let revoked = l.revoke_guest(b);
    assert_eq!(revoked.len(), 2);
    assert!(revoked
        .iter()
        .any(|(g, d)| *g == b && d.release.map(|r| r.placement) == Some(r.placement)));
    assert_eq!(l.handles_of_block(block).unwrap(), 1);
    assert_eq!(l.detach(b, c2, 0), Err(DetachError::Revoked));
    l.check_invariants().unwrap();
}

#[test]
fn an_aborted_or_empty_write_leaves_the_valid_bytes() {
    let (mut l, a, _) = two_guests();
    let block = l.create(a, 2 * PAGE, || Some(())).unwrap();
    l.attach(a, block, Access::Write).unwrap();
    l.detach(a, block, 100).unwrap();
    // A placement that could not be carried out wrote nothing.
    l.attach(a, block, Access::Write).unwrap();
    l.abort_attach(block);
    assert_eq!(l.valid_range(block).unwrap(), (0, 100));
    // An empty writable partition, abandoned, wrote nothing either.
    let empty = l.partition(block, 50, 0, true).unwrap();
    l.attach(a, empty, Access::Write).unwrap();
    l.drop_handle(empty).unwrap();
    assert_eq!(l.valid_range(block).unwrap(), (0, 100));
    l.check_invariants().unwrap();
}

#[test]
fn a_publisher_writes_in_its_own_pool_mapping() {
    let (mut l, publisher) = ledger();
    let sub = l.add_guest(Limits::default());
    l.add_storage(publisher, MemoryId(1), 0, 4 * PAGE).unwrap();
    l.add_storage(sub, MemoryId(2), 0, 4 * PAGE).unwrap();
    let b = l.create(publisher, 5000, || Some(())).unwrap();
    // The publisher maps its own block once (through a read-only clone: a
    // pool mapping grants nothing).
    let own = l.clone_handle(b, publisher).unwrap();
    let mapped = l.attach(publisher, own, Access::Pool).unwrap();
    // A read-only handle gets no write window.
    let ro = l.clone_handle(b, publisher).unwrap();
    assert_eq!(
        l.write_in_pool(publisher, ro, own),
        Err(AttachError::ReadOnly)
    );
    // The writable handle does: the whole block, where the pool shows it.
    let w = l.write_in_pool(publisher, b, own).unwrap();
    assert_eq!((w.address, w.size), (mapped.address, 5000));
    assert!(matches!(w.placement, Placement::InPool { .. }));
    l.check_invariants().unwrap();
    // No reader while it is written, in the pool or mapped.
    let msg = l.clone_handle(b, sub).unwrap();
    let map = l.clone_handle(b, sub).unwrap();
    l.attach(sub, map, Access::Pool).unwrap();
    assert_eq!(l.attach_in_pool(sub, msg, map), Err(AttachError::Busy));
    assert_eq!(
        l.attach(sub, msg, Access::ReadShared).map(|_| ()),
        Err(AttachError::Busy)
    );
    // The detach commits, then readers see the valid bytes.
    let release = l.detach(publisher, b, 4500).unwrap();
    assert!(matches!(release.placement, Placement::InPool { .. }));
    assert_eq!(
        release.zero_tail.map(|(_, from, len)| (from, len)),
        Some((4500, 500))
    );
    assert_eq!(l.attach_in_pool(sub, msg, map).unwrap().size, 4500);
    // While it is read, no write window.
    assert_eq!(l.write_in_pool(publisher, b, own), Err(AttachError::Busy));
    l.check_invariants().unwrap();
}

#[test]
fn a_write_window_that_ends_with_its_pool_mapping_is_abandoned() {
    let (mut l, publisher) = ledger();
    l.add_storage(publisher, MemoryId(1), 0, 4 * PAGE).unwrap();
    let b = l.create(publisher, 100, || Some(())).unwrap();
    l.attach(publisher, b, Access::Write).unwrap();
    l.detach(publisher, b, 100).unwrap();
    let own = l.clone_handle(b, publisher).unwrap();
    l.attach(publisher, own, Access::Pool).unwrap();
    l.write_in_pool(publisher, b, own).unwrap();
    // The mapping goes first: the window ends uncommitted.
    l.drop_handle(own).unwrap();
    assert_eq!(l.attached(b).unwrap(), None);
    assert_eq!(
        l.valid_range(b).unwrap().1,
        0,
        "nothing of an uncommitted write is valid"
    );
    l.check_invariants().unwrap();
}

#[test]
fn a_read_in_the_pool_lies_in_the_mapping_named() {
    // One guest maps a block twice (as its topic's publisher and as a
    // subscriber): a read placed in one mapping survives the other's end.
    let (mut l, g) = ledger();
    l.add_storage(g, MemoryId(1), 0, 8 * PAGE).unwrap();
    let b = l.create(g, 100, || Some(())).unwrap();
    l.attach(g, b, Access::Write).unwrap();
    l.detach(g, b, 100).unwrap();
    let first = l.clone_handle(b, g).unwrap();
    let at_first = l.attach(g, first, Access::Pool).unwrap().address;
    let second = l.clone_handle(b, g).unwrap();
    let at_second = l.attach(g, second, Access::Pool).unwrap().address;
    assert_ne!(at_first, at_second);
    let msg = l.clone_handle(b, g).unwrap();
    assert_eq!(l.attach_in_pool(g, msg, second).unwrap().address, at_second);
    l.drop_handle(first).unwrap();
    assert_eq!(l.attached(msg).unwrap(), Some(Access::ReadShared));
    // A handle that is no pool mapping of this block is refused.
    let other = l.create(g, 100, || Some(())).unwrap();
    let other_map = l.clone_handle(other, g).unwrap();
    l.attach(g, other_map, Access::Pool).unwrap();
    l.drop_handle(msg).unwrap();
    let msg = l.clone_handle(b, g).unwrap();
    assert_eq!(
        l.attach_in_pool(g, msg, other_map),
        Err(AttachError::NotMapped)
    );
    assert_eq!(l.attach_in_pool(g, msg, b), Err(AttachError::NotMapped));
    l.check_invariants().unwrap();
}

#[test]
fn host_writes_need_a_detached_writable_handle_and_fit() {
    let (mut l, g) = ledger();
    let other = l.add_guest(Limits::default());
    l.add_storage(g, MemoryId(1), 0, 64 * 1024).unwrap();
    let b = l.create(g, 5000, || Some(())).unwrap();
    let c = l.clone_handle(b, g).unwrap();
    assert_eq!(l.host_write(g, c, 0, 1), Err(HostWriteError::ReadOnly));
    assert_eq!(l.host_write(other, b, 0, 1), Err(HostWriteError::Unknown));
    assert_eq!(
        l.host_write(g, b, 4000, 1001),
        Err(HostWriteError::WrongSize)
    );
    assert_eq!(
        l.host_write(g, b, u32::MAX, 2),
        Err(HostWriteError::WrongSize)
    );
    let (backing, at) = l.host_write(g, b, 4000, 1000).unwrap();
    assert_eq!(at, 4000);
    // Attached for writing (by this handle or a partition): no host write.
    l.attach(g, b, Access::Write).unwrap();
    assert_eq!(l.host_write(g, b, 0, 1), Err(HostWriteError::Busy));
    l.detach(g, b, 0).unwrap();
    let p = l.partition(b, 4096, 904, true).unwrap();
    l.attach(g, p, Access::Write).unwrap();
    assert_eq!(l.host_write(g, b, 0, 1), Err(HostWriteError::Busy));
    l.detach(g, p, 0).unwrap();
    // The commit makes the bytes valid and names the tail of their page.
    assert_eq!(
        l.host_commit(g, b, 10).unwrap(),
        Some((backing, 10, u64::from(PAGE) - 10))
    );
    assert_eq!(l.valid_range(c).unwrap(), (0, 10));
    assert_eq!(l.host_commit(g, b, 5000).unwrap(), None);
    assert_eq!(l.valid_range(c).unwrap(), (0, 5000));
    l.drop_handle(b).unwrap();
    assert_eq!(l.host_write(g, b, 0, 1), Err(HostWriteError::Unknown));
    l.check_invariants().unwrap();
}
