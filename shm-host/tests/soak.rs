//! 100,000 attach/detach cycles: open file descriptors and resident memory
//! stay flat. A test binary of its own, so no other test's files or memory
//! move the figures.

mod common;

use common::{World, SHARED, WRITE};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * shm_host::page_size() as u64
}

#[test]
fn attach_detach_cycles_leak_nothing() {
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
    let (fds, rss) = (open_fds(), resident_bytes());
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
    assert_eq!(w.host.live_blocks(), 1);
}
