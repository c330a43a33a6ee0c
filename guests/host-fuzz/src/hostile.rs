//! The hostile side of the fuzzer: a guest that makes `steps` calls of
//! every interface function, chosen by a generator seeded with `seed`,
//! with arguments that are sometimes right (its own handles, loans and
//! leases, sizes that fit), sometimes wrong (made up, spent, too large),
//! and result pointers into its own read-only attachments, pool mappings
//! and messages. It never stores into read-only memory itself (that would
//! only trap it and end the run early); the host's writes are the attack.

use shm_guest::raw::pub_sub::{PooledLoan, Publisher, Subscriber};
use shm_guest::raw::{AttachFlags, MemoryBlock};

/// The imports again, as the canonical ABI lowers them, to pass result
/// pointers of our choosing.
mod lowered {
    #[link(wasm_import_module = "zero-copy:shm/exchange@0.1.0")]
    extern "C" {
        #[link_name = "[method]memory-block.attach"]
        pub fn attach(this: i32, flags: i32, ret: *mut u8);
        #[link_name = "[method]memory-block.clone"]
        pub fn clone(this: i32, ret: *mut u8);
        #[link_name = "[method]memory-block.detach"]
        pub fn detach(this: i32, consumed: i32, ret: *mut u8);
    }
    #[link(wasm_import_module = "zero-copy:shm/pub-sub@0.1.0")]
    extern "C" {
        #[link_name = "[method]subscriber.pool-storage"]
        pub fn subscriber_pool_storage(this: i32, ret: *mut u8);
        #[link_name = "[method]publisher.pool-storage"]
        pub fn publisher_pool_storage(this: i32, ret: *mut u8);
        #[link_name = "[method]subscriber.try-next-pooled"]
        pub fn try_next_pooled(this: i32, ret: *mut u8);
        #[link_name = "[method]publisher.loan"]
        pub fn loan(this: i32, ret: *mut u8);
    }
}

/// A small, fast generator (xorshift64*): the same seed makes the same
/// sequence of calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    /// A size: mostly small or page-sized, sometimes odd, large or absurd.
    fn size(&mut self) -> u32 {
        match self.below(10) {
            0 => 0,
            1..=3 => self.below(200) as u32 + 1,
            4..=6 => 4096 * (self.below(4) as u32 + 1),
            7 => 4096 * (self.below(64) as u32 + 1) + self.below(3) as u32,
            8 => self.next() as u32,
            _ => (1 << 20) * (self.below(8) as u32 + 1),
        }
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> Option<&'a T> {
        (!v.is_empty()).then(|| &v[self.below(v.len() as u64) as usize])
    }
}

struct Held {
    block: MemoryBlock,
    /// Where it is attached now (address, size, writable), as far as we know.
    area: Option<(u32, u32, bool)>,
}

struct Pub {
    p: Publisher,
    loans: Vec<PooledLoan>,
}

struct Sub {
    s: Subscriber,
    /// Leases held: (lease, address, size).
    leases: Vec<(u64, u32, u32)>,
    /// Its lease ring, once mapped.
    ring: Option<FuzzRing>,
}

/// A lease ring as the fuzzer drives it: honestly (take, read a byte,
/// return) and not (hostile values written into the returned region,
/// which the host must refuse without harm to anyone else).
struct FuzzRing {
    offered: u32,
    returned: u32,
    capacity: u32,
    blocks: Vec<u32>,
    /// The next sequence number to take.
    taken: u64,
    /// The next returned entry to write.
    written: u64,
    /// Taken and not returned.
    held: Vec<u64>,
}

impl FuzzRing {
    fn load(&self, at: u32) -> u64 {
        // SAFETY: `at` lies in a ring region the host mapped into this
        // component (an 8-aligned offset of the ring's layout); any value
        // read is only a value.
        unsafe { core::ptr::read_volatile(at as usize as *const u64) }
    }

    fn store_returned(&self, offset: usize, value: u64) {
        // SAFETY: the returned region is mapped writable into this
        // component; the offset is inside it (the ring's layout).
        unsafe { core::ptr::write_volatile((self.returned as usize + offset) as *mut u64, value) }
    }

    /// Takes the next offered message and reads its first byte.
    fn take(&mut self) -> bool {
        use shm_rules::pubsub::ring::{offered_slot, OFFERED_PUBLISHED};
        if self.taken >= self.load(self.offered + OFFERED_PUBLISHED as u32) {
            return false;
        }
        let at = self.offered + offered_slot(self.taken, self.capacity) as u32;
        if self.load(at) != self.taken {
            return false;
        }
        let word = self.load(at + 8);
        let (block, len) = (word as u32, (word >> 32) as u32);
        if let (Some(&address), true) = (self.blocks.get(block as usize), len > 0) {
            // SAFETY: the host mapped the pool block read-only at
            // `address`; the message is held (offered, not returned).
            let _ = unsafe { core::ptr::read_volatile(address as usize as *const u8) };
        }
        self.held.push(self.taken);
        self.taken += 1;
        true
    }

    /// Returns `seq` (a held message, or anything else): an entry, then
    /// the count, written where the host has read up to (a hostile write
    /// before may have moved it).
    fn give(&mut self, seq: u64) {
        use shm_rules::pubsub::ring::{returned_slot, OFFERED_CONSUMED, RETURNED_COUNT};
        let consumed = self.load(self.offered + OFFERED_CONSUMED as u32);
        self.written = self.written.max(consumed);
        if self.written - consumed >= u64::from(self.capacity) {
            return;
        }
        self.store_returned(returned_slot(self.written, self.capacity), seq);
        self.written += 1;
        self.store_returned(RETURNED_COUNT, self.written);
        self.held.retain(|&h| h != seq);
    }
}

/// Bytes of guest memory given to the host (storage) or leaked to it
/// (local blocks) at most: the fuzzer must not exhaust its own memory.
const MAX_DONATED: usize = 256 << 20;

pub fn run(who: &str, seed: u64, steps: u64, own_topic: &str) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut blocks: Vec<Held> = Vec::new();
    let mut pubs: Vec<Pub> = Vec::new();
    let mut subs: Vec<Sub> = Vec::new();
    let mut donated = 0usize;
    let mut calls = 0u64;
    // What the run did of what matters most: messages taken, attached
    // read-only, and host writes aimed into read-only memory.
    let (mut taken, mut read_only, mut aimed) = (0u64, 0u64, 0u64);
    // Rings mapped, and messages taken through them.
    let (mut rings, mut ring_taken) = (0u64, 0u64);
    // 8-byte aligned, as every result area must be.
    let mut scratch = vec![0u64; 32];
    // Names granted, not granted, invalid, one byte too long, and huge.
    let too_long = format!("fuzz/{}", "x".repeat(251));
    let huge = "fuzz/".repeat(1 << 16);
    let topics = [
        own_topic,
        "numbers",
        "fuzz/other",
        "",
        "no such topic!",
        "fuzz/*",
        too_long.as_str(),
        huge.as_str(),
    ];
    let donate = |bytes: usize, calls: &mut u64, donated: &mut usize| {
        if bytes == 0 || *donated + bytes > MAX_DONATED {
            return;
        }
        *donated += bytes;
        let buf: &'static mut [u8] = Vec::leak(vec![0u8; bytes]);
        *calls += 1;
        let _ = MemoryBlock::add_storage(buf);
    };
    donate(4 << 20, &mut calls, &mut donated);
    // A reader of the honest topic, as a subscriber would be: the only
    // subscription it ever waits on (its publisher sends until it ends).
    calls += 1;
    let mut reader = Subscriber::new("numbers").ok();
    while calls < steps {
        calls += 1;
        // Hold few blocks, so that messages go back to their publisher
        // before it needs them (holding them past the stall limit is an
        // attack of its own, which the isolation tests cover: the host
        // evicts, and this run would end early).
        if blocks.len() > 6 {
            drop(blocks.remove(0));
        }
        for s in &mut subs {
            if s.leases.len() > 3 {
                let _ = s.s.release(s.leases.remove(0).0);
            }
            if let Some(r) = s.ring.as_mut() {
                // Keep the ring flowing (what it offers is held for this
                // guest until taken and returned): take it all, read it.
                while r.take() {
                    taken += 1;
                    ring_taken += 1;
                }
                while r.held.len() > 2 {
                    r.give(r.held[0]);
                    if r.held.len() > 2 {
                        // The host has not read the region yet.
                        calls += 1;
                        let _ = s.s.wait_ring(r.taken, 0);
                        let first = r.held.remove(0);
                        r.give(first);
                    }
                }
            }
        }
        match rng.below(44) {
            0 | 1 => {
                if let Ok(b) = MemoryBlock::new(rng.size()) {
                    blocks.push(Held {
                        block: b,
                        area: None,
                    });
                }
            }
            2 => {
                if let Some(h) = rng.pick(&blocks) {
                    if let Ok(b) = h.block.clone() {
                        blocks.push(Held {
                            block: b,
                            area: None,
                        });
                    }
                }
            }
            3 => {
                if let Some(h) = rng.pick(&blocks) {
                    let _ = (h.block.size(), h.block.minimum_size());
                }
                let _ = MemoryBlock::optimum_size(rng.next() as u32, rng.size());
            }
            4..=6 => {
                let i = rng.below(blocks.len() as u64) as usize;
                let flags = AttachFlags::from_bits_truncate(rng.below(4) as u8);
                if let Some(h) = blocks.get_mut(i) {
                    if let Ok(a) = h.block.attach(flags) {
                        let w = flags.contains(AttachFlags::WRITE);
                        if w && a.size > 0 {
                            // Its own writable attachment: write it.
                            // SAFETY: the host attached `a.size` bytes at
                            // `a.address` of this component's memory for
                            // writing; nothing else refers to them.
                            unsafe {
                                core::ptr::write_bytes(
                                    a.address as usize as *mut u8,
                                    rng.next() as u8,
                                    a.size.min(64 << 10) as usize,
                                )
                            };
                        }
                        h.area = Some((a.address, a.size, w));
                    }
                }
            }
            7 | 8 => {
                let i = rng.below(blocks.len() as u64) as usize;
                if let Some(h) = blocks.get_mut(i) {
                    let consumed = match rng.below(3) {
                        0 => 0,
                        1 => h.area.map_or(0, |a| a.1),
                        _ => rng.next() as u32,
                    };
                    let _ = h.block.detach(consumed);
                    h.area = None;
                }
            }
            9 => donate(
                4096 * (rng.below(64) as usize + 1) + rng.below(2) as usize * 7,
                &mut calls,
                &mut donated,
            ),
            10 => {
                if let Some(h) = rng.pick(&blocks) {
                    let size = h.block.size();
                    let start = if rng.chance(2) {
                        rng.below(u64::from(size) + 2) as u32
                    } else {
                        rng.next() as u32
                    };
                    let len = if rng.chance(2) {
                        size.saturating_sub(start)
                    } else {
                        rng.size()
                    };
                    let mode = AttachFlags::from_bits_truncate(rng.below(4) as u8);
                    if let Ok(b) = h.block.create_partition(start, len, mode) {
                        blocks.push(Held {
                            block: b,
                            area: None,
                        });
                    }
                }
            }
            11 => {
                let len = rng.below(8192) as usize;
                if donated + len <= MAX_DONATED {
                    donated += len;
                    let buf: &'static mut [u8] = Vec::leak(vec![7u8; len]);
                    if let Ok(b) = MemoryBlock::create_local(buf) {
                        blocks.push(Held {
                            block: b,
                            area: None,
                        });
                    }
                }
            }
            12 => {
                if !blocks.is_empty() {
                    let i = rng.below(blocks.len() as u64) as usize;
                    drop(blocks.swap_remove(i));
                }
            }
            13 => {
                let topic = *rng.pick(&topics).expect("topics");
                let (elements, size) = (rng.below(6) as u32, rng.size() % (1 << 22));
                let made = if rng.chance(2) {
                    Publisher::pooled(topic, elements, size)
                } else {
                    Publisher::new(topic, elements, size)
                };
                if let Ok(p) = made {
                    pubs.push(Pub {
                        p,
                        loans: Vec::new(),
                    });
                }
            }
            14 => {
                if let Some(p) = rng.pick(&pubs) {
                    let got = if rng.chance(2) {
                        p.p.allocate()
                    } else {
                        p.p.allocate_within(rng.below(3) as u32)
                    };
                    if let Ok((b, _)) = got {
                        blocks.push(Held {
                            block: b,
                            area: None,
                        });
                    }
                }
            }
            15 => {
                let pi = rng.below(pubs.len() as u64) as usize;
                if !blocks.is_empty() && pi < pubs.len() {
                    let i = rng.below(blocks.len() as u64) as usize;
                    let h = blocks.swap_remove(i);
                    let _ = pubs[pi].p.publish(h.block);
                }
            }
            16 => {
                let pi = rng.below(pubs.len() as u64) as usize;
                if let Some(p) = pubs.get_mut(pi) {
                    let got = if rng.chance(2) {
                        p.p.loan()
                    } else {
                        p.p.loan_within(rng.below(3) as u32)
                    };
                    if let Ok(l) = got {
                        // Its own loan: write it.
                        // SAFETY: the host attached the loan's block for
                        // writing at `l.address`, `l.size` bytes of this
                        // component's memory, until the loan ends.
                        unsafe {
                            core::ptr::write_bytes(
                                l.address as usize as *mut u8,
                                0xA5,
                                l.size.min(64 << 10) as usize,
                            )
                        };
                        p.loans.push(l);
                    }
                }
            }
            17 => {
                let pi = rng.below(pubs.len() as u64) as usize;
                if let Some(p) = pubs.get_mut(pi) {
                    let (loan, size) = match (rng.below(3), p.loans.is_empty()) {
                        (0, false) => {
                            let l = p
                                .loans
                                .swap_remove(rng.below(p.loans.len() as u64) as usize);
                            (l.loan, if rng.chance(2) { l.size } else { rng.size() })
                        }
                        _ => (rng.next() % 64, rng.size()),
                    };
                    if let Ok(Some(next)) = p.p.publish_loan(loan, size, rng.chance(2)) {
                        p.loans.push(next);
                    }
                }
            }
            18 => {
                let pi = rng.below(pubs.len() as u64) as usize;
                if let Some(p) = pubs.get_mut(pi) {
                    let loan = match p.loans.is_empty() || rng.chance(3) {
                        true => rng.next() % 64,
                        false => {
                            p.loans
                                .swap_remove(rng.below(p.loans.len() as u64) as usize)
                                .loan
                        }
                    };
                    let _ = p.p.drop_loan(loan);
                }
            }
            19 => {
                if let Some(p) = rng.pick(&pubs) {
                    let _ = p.p.subscriber_count();
                    if rng.chance(4) {
                        // A subscription to its own topic, kept like any.
                        if let Ok(s) = p.p.subscribers() {
                            if subs.len() < 8 {
                                subs.push(Sub {
                                    s,
                                    leases: Vec::new(),
                                    ring: None,
                                });
                            }
                        }
                    }
                    if let Ok(need) = p.p.pool_storage() {
                        donate(need as usize, &mut calls, &mut donated);
                    }
                    let _ = p.p.map_pool();
                }
            }
            20 => {
                if !pubs.is_empty() {
                    let i = rng.below(pubs.len() as u64) as usize;
                    drop(pubs.swap_remove(i));
                }
            }
            21 => {
                let topic = *rng.pick(&topics).expect("topics");
                if subs.len() < 8 {
                    if let Ok(s) = Subscriber::new(topic) {
                        subs.push(Sub {
                            s,
                            leases: Vec::new(),
                            ring: None,
                        });
                    }
                }
            }
            22 | 30..=33 => {
                // A message, attached read-only the way a reader would
                // (and, now and then, otherwise).
                // The honest topic's reader (the first) half of the time,
                // waiting for its next message (the publisher sends one
                // every half millisecond until it ends; then `next` ends at
                // once).
                let (s, wait) = match &reader {
                    Some(r) if rng.chance(4) => (Some(r), true),
                    _ => (rng.pick(&subs).map(|s| &s.s), false),
                };
                if let Some(s) = s {
                    calls += 1;
                    let message = if wait { s.next() } else { s.try_next() };
                    if let Some(b) = message {
                        taken += 1;
                        let flags = if rng.chance(4) {
                            AttachFlags::from_bits_truncate(rng.below(4) as u8)
                        } else {
                            AttachFlags::SHARED
                        };
                        let area = b.attach(flags).ok().map(|a| (a.address, a.size, false));
                        read_only += u64::from(area.is_some());
                        blocks.push(Held { block: b, area });
                    }
                    if rng.chance(8) {
                        let _ = s.dropped();
                    }
                }
            }
            34 | 35 => {
                // Let go of a message: detach it, or drop it (the newest
                // attached one half of the time, as a reader would).
                let newest = blocks.iter().rposition(|h| h.area.is_some());
                let i = match newest {
                    Some(n) if rng.chance(2) => n,
                    _ => rng.below(blocks.len() as u64) as usize,
                };
                if i < blocks.len() {
                    if rng.chance(2) {
                        let _ = blocks[i].block.detach(0);
                        blocks[i].area = None;
                    } else {
                        drop(blocks.swap_remove(i));
                    }
                }
            }
            23 | 24 => {
                let si = rng.below(subs.len() as u64) as usize;
                if let Some(s) = subs.get_mut(si) {
                    let got = match s.leases.is_empty() || rng.chance(2) {
                        true => s.s.try_next_pooled(),
                        false => {
                            let (lease, ..) = s
                                .leases
                                .swap_remove(rng.below(s.leases.len() as u64) as usize);
                            s.s.try_next_pooled_after(lease)
                        }
                    };
                    if let Ok(Some(m)) = got {
                        // Messages are read in place: read one byte.
                        if m.size > 0 {
                            // SAFETY: the lease keeps `m.size` bytes at
                            // `m.address` mapped read-only until released.
                            let _ = unsafe {
                                core::ptr::read_volatile(m.address as usize as *const u8)
                            };
                        }
                        s.leases.push((m.lease, m.address, m.size));
                    }
                }
            }
            25 => {
                let si = rng.below(subs.len() as u64) as usize;
                if let Some(s) = subs.get_mut(si) {
                    let lease = match s.leases.is_empty() || rng.chance(3) {
                        true => rng.next() % 64,
                        false => {
                            s.leases
                                .swap_remove(rng.below(s.leases.len() as u64) as usize)
                                .0
                        }
                    };
                    let _ = s.s.release(lease);
                }
            }
            26 => {
                if let Some(s) = rng.pick(&subs) {
                    if let Ok(need) = s.s.pool_storage() {
                        donate(need as usize, &mut calls, &mut donated);
                    }
                    let _ = s.s.map_pool();
                }
            }
            27 => {
                if rng.chance(200) {
                    reader = None;
                }
                if !subs.is_empty() {
                    let i = rng.below(subs.len() as u64) as usize;
                    drop(subs.swap_remove(i));
                }
            }
            40 => {
                // A ring, of a capacity right or wrong.
                let si = rng.below(subs.len() as u64) as usize;
                if let Some(s) = subs.get_mut(si).filter(|s| s.ring.is_none()) {
                    let capacity = match rng.below(6) {
                        0 => 0,
                        1 => rng.next() as u32,
                        2 => 64,
                        _ => rng.below(12) as u32 + 1,
                    };
                    calls += 2;
                    if let Ok(need) = s.s.ring_storage(capacity) {
                        donate(need as usize, &mut calls, &mut donated);
                    }
                    if let Ok(area) = s.s.map_ring(capacity) {
                        rings += 1;
                        s.ring = Some(FuzzRing {
                            offered: area.offered,
                            returned: area.returned,
                            capacity: area.capacity,
                            blocks: area.blocks,
                            taken: 0,
                            written: 0,
                            held: Vec::new(),
                        });
                    }
                }
            }
            41 => {
                // Wait, for nothing or with what was seen, never long.
                if let Some(s) = rng.pick(&subs) {
                    let seen = match (&s.ring, rng.below(3)) {
                        (Some(r), 0 | 1) => r.taken,
                        _ => rng.next(),
                    };
                    let _ = s.s.wait_ring(seen, rng.below(2) as u32);
                }
            }
            42 => {
                // Hostile values in the returned region: never offered,
                // from the future, twice, a count backwards or far ahead.
                let si = rng.below(subs.len() as u64) as usize;
                if let Some(r) = subs.get_mut(si).and_then(|s| s.ring.as_mut()) {
                    use shm_rules::pubsub::ring::{returned_slot, RETURNED_COUNT};
                    match rng.below(4) {
                        0 => r.give(rng.next()),
                        1 => r.give(r.taken + rng.below(100)),
                        2 => {
                            let k = rng.below(u64::from(r.capacity) * 2);
                            r.store_returned(returned_slot(k, r.capacity), rng.next());
                        }
                        _ => r.store_returned(RETURNED_COUNT, rng.next() % (r.written + 64)),
                    }
                }
            }
            43 => {
                // Take what the ring offers, return some of it.
                let si = rng.below(subs.len() as u64) as usize;
                if let Some(r) = subs.get_mut(si).and_then(|s| s.ring.as_mut()) {
                    let mut n = rng.below(4);
                    while n > 0 && r.take() {
                        taken += 1;
                        ring_taken += 1;
                        n -= 1;
                    }
                    if let Some(&seq) = rng.pick(&r.held) {
                        r.give(seq);
                    }
                }
            }
            _ => {
                // The attack: a host call whose result the host writes at
                // a place we name, inside a read-only attachment, a
                // message held under a lease, or a scratch buffer.
                let mut places: Vec<u32> = blocks
                    .iter()
                    .filter_map(|h| {
                        h.area
                            .filter(|a| !a.2 && a.1 >= 40 && a.0 % 8 == 0)
                            .map(|a| a.0 + (rng.below(u64::from(a.1 - 39)) as u32) / 8 * 8)
                    })
                    .collect();
                places.extend(
                    subs.iter()
                        .flat_map(|s| s.leases.iter())
                        .filter(|l| l.2 >= 40 && l.1 % 8 == 0)
                        .map(|l| l.1),
                );
                // Half of the time the newest read-only attachment (what
                // was just received), at its start.
                let newest = blocks
                    .iter()
                    .rev()
                    .find_map(|h| h.area.filter(|a| !a.2 && a.1 >= 40 && a.0 % 8 == 0));
                let at = match (newest, rng.pick(&places)) {
                    (Some(a), _) if rng.chance(2) => a.0 as usize as *mut u8,
                    (_, Some(&a)) if !rng.chance(8) => a as usize as *mut u8,
                    _ => scratch.as_mut_ptr().cast::<u8>(),
                };
                aimed += u64::from(at != scratch.as_mut_ptr().cast::<u8>());
                // SAFETY: none, on purpose: this is the attack. Each import
                // writes its result (at most 32 bytes) at `at`, inside this
                // component's own memory: a read-only attachment or message
                // (the host must absorb the write privately) or `scratch`.
                unsafe {
                    // What the host wrote at `at` is read back (this
                    // guest's private copy of the page shows it) and
                    // whatever it handed over is kept, so that it is given
                    // back like anything else: leaking clones and leases
                    // would only get this guest evicted and end the run.
                    let word = |off: usize| core::ptr::read_volatile(at.add(off).cast::<u32>());
                    let wide = |off: usize| core::ptr::read_volatile(at.add(off).cast::<u64>());
                    let ok = || core::ptr::read_volatile(at) == 0;
                    let bi = rng.below(blocks.len() as u64) as usize;
                    match rng.below(7) {
                        0 => {
                            if let Some(h) = blocks.get_mut(bi) {
                                lowered::attach(h.block.handle() as i32, rng.below(4) as i32, at);
                                if ok() {
                                    h.area = Some((word(4), word(8), false));
                                }
                            }
                        }
                        1 => {
                            if let Some(h) = blocks.get(bi) {
                                lowered::clone(h.block.handle() as i32, at);
                                if ok() {
                                    let block = MemoryBlock::from_handle(word(4));
                                    blocks.push(Held { block, area: None });
                                }
                            }
                        }
                        2 => {
                            if let Some(h) = blocks.get_mut(bi) {
                                lowered::detach(h.block.handle() as i32, rng.next() as i32, at);
                                if ok() {
                                    h.area = None;
                                }
                            }
                        }
                        3 => {
                            if let Some(s) = rng.pick(&subs) {
                                lowered::subscriber_pool_storage(s.s.handle() as i32, at)
                            }
                        }
                        4 => {
                            if let Some(p) = rng.pick(&pubs) {
                                lowered::publisher_pool_storage(p.p.handle() as i32, at)
                            }
                        }
                        5 => {
                            let si = rng.below(subs.len() as u64) as usize;
                            if let Some(s) = subs.get_mut(si) {
                                lowered::try_next_pooled(s.s.handle() as i32, at);
                                // result<option<pooled-message>>: the option
                                // at 8, the message at 16.
                                if ok() && core::ptr::read_volatile(at.add(8)) == 1 {
                                    s.leases.push((wide(16), word(24), word(28)));
                                }
                            }
                        }
                        _ => {
                            let pi = rng.below(pubs.len() as u64) as usize;
                            if let Some(p) = pubs.get_mut(pi) {
                                lowered::loan(p.p.handle() as i32, at);
                                if ok() {
                                    p.loans.push(PooledLoan {
                                        loan: wide(8),
                                        address: word(16),
                                        size: word(20),
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // Odd orders of drops: subscribers, then publishers, then blocks.
    drop(subs);
    drop(reader);
    drop(pubs);
    drop(blocks);
    std::hint::black_box(&scratch);
    println!(
        "{who}: seed {seed} made {calls} calls ({taken} messages taken, {ring_taken} of them through {rings} lease rings, {read_only} attached read-only, {aimed} host writes aimed at read-only memory)"
    );
    Ok(())
}
