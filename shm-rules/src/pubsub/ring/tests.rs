use std::cell::RefCell;
use std::collections::HashSet;

use super::*;

/// A region in a buffer.
struct Region(RefCell<Vec<u8>>);

impl Region {
    fn new(len: usize) -> Region {
        Region(RefCell::new(vec![0; len]))
    }
}

impl RingMemory for Region {
    fn load_u64(&self, offset: usize) -> u64 {
        let b = self.0.borrow();
        u64::from_le_bytes(b[offset..offset + 8].try_into().unwrap())
    }
    fn load_u32(&self, offset: usize) -> u32 {
        let b = self.0.borrow();
        u32::from_le_bytes(b[offset..offset + 4].try_into().unwrap())
    }
    fn store_u64(&self, offset: usize, value: u64) {
        self.0.borrow_mut()[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    }
    fn store_u32(&self, offset: usize, value: u32) {
        self.0.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
}

/// A ring of `capacity`: the host's bookkeeping and both regions.
struct Ring {
    leases: RingLeases<u64>,
    offered: Region,
    returned: Region,
}

impl Ring {
    fn new(capacity: u32) -> Ring {
        let offered = Region::new(offered_bytes(capacity));
        offered.store_u64(OFFERED_CAPACITY, capacity.into());
        Ring {
            leases: RingLeases::new(capacity),
            offered,
            returned: Region::new(returned_bytes(capacity)),
        }
    }

    /// Offers block `block` (its hold: the block's number plus 1000).
    fn offer(&mut self, block: u32) -> Result<u64, RingFull> {
        let entry = self
            .leases
            .offer(block, block * 10, u64::from(block) + 1000)
            .map_err(|(e, _)| e)?;
        write_offered(&self.offered, self.leases.capacity(), entry);
        Ok(entry.seq)
    }

    /// Reads the returned region as the host does (each value once).
    fn reconcile(&mut self) -> Reconciled<u64> {
        let count = self.returned.load_u64(RETURNED_COUNT);
        let capacity = self.leases.capacity();
        let returned = &self.returned;
        let r = self
            .leases
            .reconcile(count, |k| returned.load_u64(returned_slot(k, capacity)));
        self.offered
            .store_u64(OFFERED_CONSUMED, self.leases.consumed());
        r
    }
}

#[test]
fn messages_go_round_in_order_and_every_hold_comes_back_once() {
    let mut ring = Ring::new(4);
    let mut reader = RingReader::new(4);
    for block in 0..3 {
        assert_eq!(ring.offer(block), Ok(u64::from(block)));
    }
    let mut got = Vec::new();
    while let Some(e) = reader.next(&ring.offered) {
        got.push(e);
    }
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[1],
        OfferedEntry {
            seq: 1,
            block: 1,
            len: 10
        }
    );
    // Released out of order.
    for seq in [2, 0, 1] {
        reader.release(&ring.offered, &ring.returned, seq).unwrap();
    }
    let r = ring.reconcile();
    assert_eq!(r.refused, 0);
    assert_eq!(r.released, vec![(2, 1002), (0, 1000), (1, 1001)]);
    assert_eq!(ring.leases.held(), 0);
    assert!(ring.reconcile().released.is_empty(), "nothing twice");
}

#[test]
fn a_ring_never_offers_into_the_slot_of_a_held_message() {
    let mut ring = Ring::new(2);
    let mut reader = RingReader::new(2);
    ring.offer(0).unwrap();
    ring.offer(1).unwrap();
    assert_eq!(ring.offer(2), Err(RingFull { held: 2 }));
    let first = reader.next(&ring.offered).unwrap();
    let second = reader.next(&ring.offered).unwrap();
    // Releasing the newer one frees no slot: the oldest held holds the ring.
    reader
        .release(&ring.offered, &ring.returned, second.seq)
        .unwrap();
    ring.reconcile();
    assert_eq!(ring.offer(2), Err(RingFull { held: 1 }));
    reader
        .release(&ring.offered, &ring.returned, first.seq)
        .unwrap();
    ring.reconcile();
    assert_eq!(ring.offer(2), Ok(2));
    assert_eq!(reader.next(&ring.offered).unwrap().block, 2);
}

#[test]
fn hostile_returned_values_are_refused_and_free_nothing_they_should_not() {
    let mut ring = Ring::new(4);
    for block in 0..4 {
        ring.offer(block).unwrap();
    }
    // Never offered, offered but repeated, a future sequence number.
    for (k, seq) in [(0, 1), (1, 1), (2, 99), (3, 4)] {
        ring.returned.store_u64(returned_slot(k, 4), seq);
    }
    ring.returned.store_u64(RETURNED_COUNT, 4);
    let r = ring.reconcile();
    assert_eq!(r.released, vec![(1, 1001)]);
    assert_eq!(r.refused, 3);
    assert_eq!(ring.leases.held(), 3);
    // The count goes backwards: nothing.
    ring.returned.store_u64(RETURNED_COUNT, 1);
    let r = ring.reconcile();
    assert_eq!((r.released.len(), r.refused), (0, 1));
    // It runs far ahead: at most a region's worth is read, once each.
    ring.returned.store_u64(RETURNED_COUNT, u64::MAX);
    let mut reads = Vec::new();
    let count = ring.returned.load_u64(RETURNED_COUNT);
    let r = ring.leases.reconcile(count, |k| {
        reads.push(k);
        0
    });
    assert_eq!(reads, vec![4, 5, 6, 7]);
    assert_eq!(r.released, vec![(0, 1000)]);
    assert_eq!(r.refused, 1 + 3);
    // An eviction returns every hold left, once.
    let drained = ring.leases.drain();
    assert_eq!(drained, vec![(2, 1002), (3, 1003)]);
    assert!(ring.leases.drain().is_empty());
}

#[test]
fn a_subscriber_that_overruns_the_returned_region_is_told_to_wait() {
    let mut ring = Ring::new(2);
    let mut reader = RingReader::new(2);
    ring.offer(0).unwrap();
    ring.offer(1).unwrap();
    let a = reader.next(&ring.offered).unwrap();
    let b = reader.next(&ring.offered).unwrap();
    reader
        .release(&ring.offered, &ring.returned, a.seq)
        .unwrap();
    reader
        .release(&ring.offered, &ring.returned, b.seq)
        .unwrap();
    // The host has read none of them: a third release would overwrite.
    assert_eq!(
        reader.release(&ring.offered, &ring.returned, 7),
        Err(ReleaseError::Full)
    );
    assert_eq!(ring.reconcile().released.len(), 2);
}

/// A seeded generator (xorshift64*), so that the simulation repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// An honest subscriber and a host offering, reconciling and checking, in
/// random interleavings; and a hostile subscriber scribbling over its
/// returned region: every message is taken in order by the honest one,
/// every hold comes back exactly once, none before its message was
/// returned, and the ring never holds more than its capacity.
#[test]
fn random_interleavings_keep_every_rule() {
    for seed in 1..200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let capacity = 1 + rng.below(8) as u32;
        let hostile = seed % 3 == 0;
        let mut ring = Ring::new(capacity);
        let mut reader = RingReader::new(capacity);
        let mut taken: Vec<u64> = Vec::new();
        let mut returned_by_reader: HashSet<u64> = HashSet::new();
        let mut came_back: HashSet<u64> = HashSet::new();
        let mut next_block = 0u32;
        let mut expect_seq = 0u64;
        for _ in 0..400 {
            match rng.below(5) {
                0 | 1 => {
                    if ring.offer(next_block).is_ok() {
                        next_block += 1;
                    }
                }
                2 => {
                    if let Some(e) = reader.next(&ring.offered) {
                        assert_eq!(e.seq, expect_seq, "seed {seed}: in order");
                        assert_eq!(e.block as u64, e.seq, "seed {seed}: its block");
                        expect_seq += 1;
                        taken.push(e.seq);
                    }
                }
                3 => {
                    if hostile && rng.below(2) == 0 {
                        let k = rng.below(u64::from(capacity) * 2);
                        let at = returned_slot(k, capacity);
                        ring.returned.store_u64(at, rng.below(1000));
                        let count = ring.returned.load_u64(RETURNED_COUNT);
                        let jump = rng.below(3 * u64::from(capacity));
                        ring.returned
                            .store_u64(RETURNED_COUNT, count.wrapping_add(jump));
                    } else if !taken.is_empty() {
                        let i = rng.below(taken.len() as u64) as usize;
                        let seq = taken[i];
                        if reader.release(&ring.offered, &ring.returned, seq).is_ok() {
                            taken.swap_remove(i);
                            returned_by_reader.insert(seq);
                        }
                    }
                }
                _ => {
                    let r = ring.reconcile();
                    for (seq, hold) in r.released {
                        assert_eq!(hold, seq + 1000, "seed {seed}: the hold of its message");
                        assert!(came_back.insert(seq), "seed {seed}: {seq} came back twice");
                        if !hostile {
                            assert!(
                                returned_by_reader.contains(&seq),
                                "seed {seed}: {seq} came back before it was returned"
                            );
                            assert_eq!(r.refused, 0, "seed {seed}: an honest ring");
                        }
                    }
                }
            }
            assert!(ring.leases.held() <= capacity as usize, "seed {seed}");
            assert_eq!(
                ring.leases.held() + came_back.len(),
                next_block as usize,
                "seed {seed}: every hold is held or back"
            );
        }
        for (seq, _) in ring.leases.drain() {
            assert!(
                came_back.insert(seq),
                "seed {seed}: {seq} drained after it came back"
            );
        }
        assert_eq!(
            came_back.len(),
            next_block as usize,
            "seed {seed}: all back"
        );
    }
}
