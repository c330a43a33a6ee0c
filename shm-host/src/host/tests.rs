//! The ledger is free while a map runs, and the operations on one memory
//! run in ledger order. A test-only hook ([`crate::os::memory::BEFORE_MAP`])
//! holds a map "in flight" until the test lets it go: no timing involved.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::*;
use crate::host::proof::MapsEntry;
use crate::os::memory::{MapError, BEFORE_MAP};
use crate::rules::Access;
use crate::rules::MemoryId;

const MIB: usize = 1 << 20;

/// A linear memory of this host (1 MiB), its id, and a context whose
/// guest donated all of it.
fn guest(host: &ShmHost, name: &str) -> (Box<dyn LinearMemory>, MemoryId, ShmCtx) {
    let creator = ShmMemoryCreator::new(host.0.registry.clone());
    let memory = creator
        .new_memory(MemoryType::new(16, Some(16)), MIB, Some(MIB), None, 0)
        .expect("memory");
    let (id, _) = host
        .0
        .registry
        .find(memory.as_ptr(), MIB)
        .expect("registered");
    let ctx = host.new_ctx(name);
    ctx.add_storage(memory.as_ptr(), MIB).expect("storage");
    (memory, id, ctx)
}

/// Holds the next map into `memory` until `go` receives; `entered`
/// receives once that map is inside (its ledger work done).
fn hold_next_map(memory: MemoryId) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    BEFORE_MAP.lock().unwrap().push((
        memory,
        Box::new(move || {
            entered_tx.send(()).unwrap();
            let _ = go_rx.recv();
        }),
    ));
    (entered_rx, go_tx)
}

#[test]
fn attach_in_one_memory_does_not_wait_for_a_map_in_another() {
    let host = ShmHost::default();
    let (_mem_a, a, ctx_a) = guest(&host, "a");
    let (_mem_b, _, ctx_b) = guest(&host, "b");
    let block_a = ctx_a.create(4096).unwrap();
    let block_b = ctx_b.create(4096).unwrap();
    let (entered, go) = hold_next_map(a);
    std::thread::scope(|s| {
        let slow = s.spawn(|| ctx_a.attach(block_a, Access::Write));
        entered.recv().unwrap();
        // A's mmap is in flight: the ledger must be free.
        let ledger_free = host.0.ledger.try_lock().is_ok();
        if !ledger_free {
            go.send(()).unwrap();
            slow.join().unwrap().unwrap();
            panic!("the ledger is held across a map");
        }
        // B attaches (and maps) and detaches meanwhile.
        let area = ctx_b.attach(block_b, Access::Write).unwrap();
        assert_eq!(area.size, 4096);
        ctx_b.detach(block_b, 0).unwrap();
        assert_eq!(ctx_b.stats().maps, 1);
        assert_eq!(ctx_a.stats().maps, 0, "A's map is still held");
        go.send(()).unwrap();
        slow.join().unwrap().unwrap();
    });
    assert_eq!(ctx_a.stats().maps, 1);
    ctx_a.detach(block_a, 0).unwrap();
    host.check_invariants().unwrap();
}

#[test]
fn a_drop_queued_behind_a_map_in_flight_runs_after_it() {
    let host = ShmHost::default();
    let (mem_a, a, ctx_a) = guest(&host, "a");
    let block = ctx_a.create(4096).unwrap();
    // Block bytes the guest must not see once the handle is dropped.
    {
        let ledger = host.ledger();
        let (_, start, pages) = ledger.backing_of(block).unwrap();
        assert!(pages.unwrap().write(start, b"secret"));
    }
    let (entered, go) = hold_next_map(a);
    let area = std::thread::scope(|s| {
        let slow = s.spawn(|| ctx_a.attach(block, Access::Write));
        entered.recv().unwrap();
        // Another thread drops the handle while its map is in flight:
        // the ledger ends the attachment and queues the restore.
        let dropper = s.spawn(|| host.drop_anywhere(block));
        let deadline = Instant::now() + Duration::from_secs(60);
        while host
            .0
            .ledger
            .try_lock()
            .map(|l| l.owner(block).is_ok())
            .ok()
            != Some(false)
        {
            if Instant::now() > deadline {
                go.send(()).unwrap();
                panic!("the drop never got the ledger");
            }
            std::thread::yield_now();
        }
        // Its restore waits for the map's turn.
        go.send(()).unwrap();
        let area = slow.join().unwrap().unwrap();
        dropper.join().unwrap();
        area
    });
    // The map ran first, then the restore: zero pages, not the block's.
    let at = mem_a.as_ptr() as usize + area.address as usize;
    // SAFETY: inside the accessible part of `mem_a`, which lives.
    let seen = unsafe { std::slice::from_raw_parts(at as *const u8, 6) };
    assert_eq!(seen, [0; 6]);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let entry = maps
        .lines()
        .filter_map(MapsEntry::parse)
        .find(|e| e.start <= at && at < e.end)
        .unwrap();
    assert!(!entry.is_shared(), "the block is still mapped: {entry:?}");
    assert_eq!(host.live_blocks(), 0);
    host.check_invariants().unwrap();
    // The storage is free again: the next attach maps there.
    let again = ctx_a.create(4096).unwrap();
    assert_eq!(
        ctx_a.attach(again, Access::Write).unwrap().address,
        area.address
    );
}

#[test]
fn a_memory_dropped_while_a_map_is_queued_is_unmapped_after_it() {
    let host = ShmHost::default();
    let (mem_a, a, ctx_a) = guest(&host, "a");
    let block = ctx_a.create(4096).unwrap();
    let (entered, go) = hold_next_map(a);
    std::thread::scope(|s| {
        let slow = s.spawn(|| ctx_a.attach(block, Access::Write));
        entered.recv().unwrap();
        let dropper = s.spawn(move || drop(mem_a));
        // The memory is unregistered at once, unmapped only after the
        // map in flight.
        let deadline = Instant::now() + Duration::from_secs(60);
        while host.live_memories() != 0 {
            if Instant::now() > deadline {
                go.send(()).unwrap();
                panic!("the drop never unregistered the memory");
            }
            std::thread::yield_now();
        }
        assert!(matches!(
            host.0.registry.lock_memory(a),
            Err(MapError::Gone)
        ));
        go.send(()).unwrap();
        slow.join().unwrap().unwrap();
        dropper.join().unwrap();
    });
    // Its detach finds the memory gone: nothing to undo.
    ctx_a.detach(block, 0).unwrap();
    host.check_invariants().unwrap();
}
