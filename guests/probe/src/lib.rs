//! A test component that drives the `exchange` imports with arbitrary, also
//! hostile, arguments: tests tell it which raw calls to make. It is built
//! only for tests and deliberately skips the guest crate's safe API.
#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "zero-copy:examples/probe-guest",
        with: {
            "zero-copy:shm/exchange@0.1.0": shm_guest::raw,
            "zero-copy:shm/pub-sub@0.1.0": shm_guest::raw::pub_sub,
        },
    });
}

use std::cell::RefCell;

use bindings::exports::zero_copy::examples::probe::Guest;
use shm_guest::raw::pub_sub::{PubSubError, Publisher, Subscriber};
use shm_guest::raw::{AttachFlags, Error, MemoryArea, MemoryBlock};

thread_local! {
    static SLOTS: RefCell<Vec<Option<MemoryBlock>>> = const { RefCell::new(Vec::new()) };
    static PUBLISHERS: RefCell<Vec<Option<Publisher>>> = const { RefCell::new(Vec::new()) };
    static SUBSCRIBERS: RefCell<Vec<Option<Subscriber>>> = const { RefCell::new(Vec::new()) };
}

fn keep<T>(table: &'static std::thread::LocalKey<RefCell<Vec<Option<T>>>>, value: T) -> u32 {
    table.with(|t| {
        let mut t = t.borrow_mut();
        t.push(Some(value));
        (t.len() - 1) as u32
    })
}

fn using<T, R>(
    table: &'static std::thread::LocalKey<RefCell<Vec<Option<T>>>>,
    slot: u32,
    f: impl FnOnce(&T) -> R,
) -> R {
    table.with(|t| {
        f(t.borrow()
            .get(slot as usize)
            .and_then(|x| x.as_ref())
            .expect("probe: empty slot"))
    })
}

fn forget<T>(table: &'static std::thread::LocalKey<RefCell<Vec<Option<T>>>>, slot: u32) {
    let value = table.with(|t| t.borrow_mut().get_mut(slot as usize).and_then(|x| x.take()));
    drop(value);
}

fn store(block: MemoryBlock) -> u32 {
    SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        s.push(Some(block));
        (s.len() - 1) as u32
    })
}

fn with<R>(slot: u32, f: impl FnOnce(&MemoryBlock) -> R) -> R {
    SLOTS.with(|s| {
        let s = s.borrow();
        let block = s
            .get(slot as usize)
            .and_then(|b| b.as_ref())
            .expect("probe: empty slot");
        f(block)
    })
}

fn take_slot(slot: u32) -> MemoryBlock {
    SLOTS.with(|s| {
        s.borrow_mut()
            .get_mut(slot as usize)
            .and_then(|b| b.take())
            .expect("probe: empty slot")
    })
}

/// A slice at an arbitrary address of our memory: the test chooses it, and
/// hostile addresses are the point. Out-of-bounds addresses trap in wasm.
fn region(address: u32, len: u32) -> &'static mut [u8] {
    // SAFETY: not sound in general (the probe is a deliberately hostile test
    // tool); in wasm every access is bounds-checked by the runtime, so the
    // worst outcome is a trap of this component.
    unsafe { core::slice::from_raw_parts_mut(address as usize as *mut u8, len as usize) }
}

struct Probe;

impl Guest for Probe {
    fn alloc(len: u32) -> u32 {
        Box::leak(vec![0u8; len as usize].into_boxed_slice()).as_ptr() as usize as u32
    }
    fn donate(address: u32, len: u32) -> Result<(), Error> {
        MemoryBlock::add_storage(region(address, len))
    }
    fn create(size: u32) -> Result<u32, Error> {
        MemoryBlock::new(size).map(store)
    }
    fn create_local(address: u32, len: u32) -> Result<u32, Error> {
        MemoryBlock::create_local(region(address, len)).map(store)
    }
    fn clone_block(slot: u32) -> Result<u32, Error> {
        with(slot, |b| b.clone()).map(store)
    }
    fn partition(slot: u32, start: u32, size: u32, mode: AttachFlags) -> Result<u32, Error> {
        with(slot, |b| b.create_partition(start, size, mode)).map(store)
    }
    fn attach(slot: u32, mode: AttachFlags) -> Result<MemoryArea, Error> {
        with(slot, |b| b.attach(mode))
    }
    fn detach(slot: u32, consumed: u32) -> Result<(), Error> {
        with(slot, |b| b.detach(consumed))
    }
    fn drop_block(slot: u32) {
        drop(take_slot(slot));
    }
    fn size(slot: u32) -> u32 {
        with(slot, |b| b.size())
    }
    fn minimum_size(slot: u32) -> u32 {
        with(slot, |b| b.minimum_size())
    }
    fn optimum_size(count: u32, size: u32) -> u32 {
        MemoryBlock::optimum_size(count, size)
    }
    fn give(slot: u32) -> MemoryBlock {
        take_slot(slot)
    }
    fn take(block: MemoryBlock) -> u32 {
        store(block)
    }
    fn handle_of(slot: u32) -> u32 {
        with(slot, |b| b.handle())
    }
    fn attach_raw(handle: u32, mode: AttachFlags) -> Result<MemoryArea, Error> {
        // SAFETY: deliberately unchecked: the handle may be stale, which the
        // runtime must catch (a trap of this component).
        let block = unsafe { MemoryBlock::from_handle(handle) };
        let r = block.attach(mode);
        core::mem::forget(block);
        r
    }
    fn write(address: u32, bytes: Vec<u8>) {
        let dst = address as usize as *mut u8;
        for (i, b) in bytes.into_iter().enumerate() {
            // SAFETY: hostile by design; a write into a read-only page traps.
            unsafe { core::ptr::write_volatile(dst.add(i), b) };
        }
    }
    fn read(address: u32, len: u32) -> Vec<u8> {
        region(address, len).to_vec()
    }
    fn fill(address: u32, len: u32, value: u8) {
        region(address, len).fill(value);
    }
    fn checksum(address: u32, len: u32) -> u64 {
        region(address, len).iter().map(|&b| u64::from(b)).sum()
    }
    fn publisher_new(topic: String, elements: u32, size: u32) -> Result<u32, PubSubError> {
        Publisher::new(&topic, elements, size).map(|p| keep(&PUBLISHERS, p))
    }
    fn publisher_allocate(publisher: u32) -> Result<(u32, u32), PubSubError> {
        let (block, bytes) = using(&PUBLISHERS, publisher, |p| p.allocate())?;
        Ok((store(block), bytes))
    }
    fn publisher_publish(publisher: u32, slot: u32) -> Result<(), PubSubError> {
        let block = take_slot(slot);
        using(&PUBLISHERS, publisher, |p| p.publish(block))
    }
    fn publisher_subscription(publisher: u32) -> Result<u32, PubSubError> {
        let s = using(&PUBLISHERS, publisher, |p| p.subscribers())?;
        Ok(keep(&SUBSCRIBERS, s))
    }
    fn publisher_drop(publisher: u32) {
        forget(&PUBLISHERS, publisher);
    }
    fn subscribe(topic: String) -> Result<u32, PubSubError> {
        Ok(keep(&SUBSCRIBERS, Subscriber::new(&topic)?))
    }
    fn subscriber_next(subscriber: u32, wait: bool) -> Option<u32> {
        let m = using(&SUBSCRIBERS, subscriber, |s| {
            if wait {
                s.next()
            } else {
                s.try_next()
            }
        });
        m.map(store)
    }
    fn subscriber_dropped(subscriber: u32) -> u64 {
        using(&SUBSCRIBERS, subscriber, |s| s.dropped())
    }
    fn subscriber_drop(subscriber: u32) {
        forget(&SUBSCRIBERS, subscriber);
    }
}

bindings::export!(Probe with_types_in bindings);
