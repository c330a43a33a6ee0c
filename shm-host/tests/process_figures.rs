//! Tests that measure figures of the whole process (open file descriptors,
//! resident and private memory): a test binary of their own, so no test of
//! another subject moves the figures, and one test at a time (`FIGURES`).

mod common;

use std::sync::Mutex;

use common::{World, SHARED, WRITE};

/// Held by each test here: the figures are the process's, so two of these
/// tests must not run at once.
static FIGURES: Mutex<()> = Mutex::new(());

fn measure_alone() -> std::sync::MutexGuard<'static, ()> {
    FIGURES.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * shm_host::page_size() as u64
}

/// 100,000 attach/detach cycles: open file descriptors and resident memory
/// stay flat.
#[test]
fn attach_detach_cycles_leak_nothing() {
    let _alone = measure_alone();
    let w = World::shared();
    let mut p = w.probe("soak");
    let n = p.optimum_size(2, 64 * 1024);
    p.storage(n);
    let b = p.create(64 * 1024).unwrap();
    let c = p.clone_block(b).unwrap();
    let cycle = |p: &mut common::Probe, i: u32| {
        let (addr, _) = p.attach(b, WRITE).unwrap();
        p.fill(addr + (i % 16) * 4096, 4096, i as u8).unwrap();
        p.detach(b, 64 * 1024).unwrap();
        p.attach(c, SHARED).unwrap();
        p.detach(c, 0).unwrap();
    };
    for i in 0..1_000 {
        cycle(&mut p, i);
    }
    let (fds, rss, live) = (open_fds(), resident_bytes(), w.host.live_blocks());
    for i in 0..50_000 {
        cycle(&mut p, i);
    }
    let stats = p.store.data().shm.stats();
    assert_eq!(stats.attaches, 2 * 51_000);
    assert_eq!(stats.detaches, 2 * 51_000);
    assert_eq!(stats.bytes_copied, 0);
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    let grown = resident_bytes().saturating_sub(rss);
    assert!(
        grown < 16 << 20,
        "resident memory grew by {grown} bytes over 100,000 attach/detach"
    );
    assert_eq!(w.host.live_blocks(), live, "blocks leaked");
}

fn anonymous_bytes() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let kb: u64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn eight_subscribers_of_a_16_mib_message_share_one_copy() {
    let _alone = measure_alone();
    const SIZE: u32 = 16 << 20;
    let w = World::shared();
    let mut publisher = w.probe("big-pub");
    let mut subs: Vec<_> = (0..8).map(|i| w.probe(&format!("big-sub{i}"))).collect();
    let queues: Vec<u32> = subs
        .iter_mut()
        .map(|s| s.subscribe("big").unwrap())
        .collect();
    for s in subs.iter_mut() {
        let n = s.optimum_size(1, SIZE);
        s.storage(n);
    }
    let n = publisher.optimum_size(1, SIZE);
    publisher.storage(n);
    let p = publisher.publisher("big", 1, SIZE).unwrap();
    let (slot, _) = publisher.allocate(p).unwrap();
    let (addr, _) = publisher.attach(slot, WRITE).unwrap();
    publisher.fill(addr, SIZE, 3).unwrap();
    publisher.detach(slot, SIZE).unwrap();
    publisher.publish(p, slot).unwrap();

    let before = anonymous_bytes();
    let mut held = Vec::new();
    for (s, &q) in subs.iter_mut().zip(&queues) {
        let m = s.next(q, true).unwrap();
        let (a, size) = s.attach(m, SHARED).unwrap();
        // Touch every page: each subscriber reads the whole message.
        assert_eq!(s.checksum(a, size), 3 * u64::from(SIZE));
        held.push(m);
    }
    let grown = anonymous_bytes().saturating_sub(before);
    // Eight copies would be 128 MiB of private memory; the shared pages are
    // the one message, in the block's memfd.
    assert!(
        grown < u64::from(SIZE),
        "private memory grew by {grown} bytes for 8 readers"
    );
    let total_copied: u64 = subs
        .iter()
        .map(|s| s.store.data().shm.stats().bytes_copied)
        .sum();
    assert_eq!(total_copied, 0);
}
