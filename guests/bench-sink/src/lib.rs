//! A subscriber for shm-host's delivery benchmark: reads a payload that
//! arrives as a memory block (attached in place, zero copy) or as a
//! `list<u8>` (copied into this component's memory by the canonical ABI),
//! the same way in both cases.

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "zero-copy:bench/bench-sink",
        with: { "zero-copy:shm/exchange@0.1.0": shm_guest::raw },
    });
}

use std::cell::RefCell;

use bindings::exports::zero_copy::bench::sink::Guest;
use shm_guest::pubsub::{Publisher, Subscriber};
use shm_guest::raw::{Error, MemoryBlock};
use shm_guest::BlockRef;

thread_local! {
    static PUBLISHER: RefCell<Option<Publisher>> = const { RefCell::new(None) };
    static SUBSCRIBER: RefCell<Option<Subscriber>> = const { RefCell::new(None) };
}

/// Fills every block of a new pooled publisher's pool with ones.
fn pooled_publisher(topic: &str, elements: u32, size: u32) -> Result<Publisher, String> {
    // `pooled` maps the publisher's own pool (write windows); without
    // windows the write attaches below donate the storage they need.
    let publisher = Publisher::pooled(topic, elements, size).map_err(|e| e.to_string())?;
    let mut blocks = Vec::new();
    for _ in 0..elements {
        let (block, _) = publisher.allocate().map_err(|e| e.to_string())?;
        {
            let mut w = block.attach_write().map_err(|e| e.to_string())?;
            w.fill(1);
            w.commit(size as usize).map_err(|e| e.to_string())?;
        }
        // Held until all are written, so that each allocate is a new block.
        blocks.push(block);
    }
    Ok(publisher)
}

/// Sums one byte every `stride` bytes.
fn sum(bytes: &[u8], stride: u32) -> u64 {
    let stride = stride.max(1) as usize;
    bytes.iter().step_by(stride).map(|&b| u64::from(b)).sum()
}

struct Sink;

impl Guest for Sink {
    fn consume_block(block: &MemoryBlock, stride: u32) -> Result<u64, Error> {
        let bytes = BlockRef::new(block).attach_read()?;
        Ok(sum(&bytes, stride))
    }

    fn consume_list(bytes: Vec<u8>, stride: u32) -> u64 {
        sum(&bytes, stride)
    }

    fn pooled_publisher(topic: String, elements: u32, size: u32) -> bool {
        match pooled_publisher(&topic, elements, size) {
            Ok(p) => {
                PUBLISHER.with(|slot| *slot.borrow_mut() = Some(p));
                true
            }
            Err(e) => {
                eprintln!("bench-sink: pooled publisher: {e}");
                false
            }
        }
    }

    fn pooled_publish() -> bool {
        PUBLISHER.with(|slot| {
            let slot = slot.borrow();
            let Some(p) = slot.as_ref() else { return false };
            // The block keeps the bytes committed when it was filled.
            p.allocate().and_then(|(block, _)| p.publish(block)).is_ok()
        })
    }

    fn pooled_publish_seq(seq: u64) -> bool {
        PUBLISHER.with(|slot| {
            let slot = slot.borrow();
            let Some(p) = slot.as_ref() else { return false };
            let Ok((block, _)) = p.allocate() else {
                return false;
            };
            let written = block.attach_write().and_then(|mut w| {
                let len = w.len();
                w[..8].copy_from_slice(&seq.to_le_bytes());
                w.commit(len)
            });
            written.is_ok() && p.publish(block).is_ok()
        })
    }

    fn pooled_subscribe(topic: String) -> bool {
        let Ok(s) = Subscriber::new(&topic) else {
            return false;
        };
        let mapped = s.map_pool();
        SUBSCRIBER.with(|slot| *slot.borrow_mut() = Some(s));
        mapped.is_ok()
    }

    fn pooled_consume(stride: u32) -> Option<u64> {
        SUBSCRIBER.with(|slot| {
            let slot = slot.borrow();
            let message = slot.as_ref()?.try_next_pooled().ok()??;
            Some(sum(&message, stride))
        })
    }
}

bindings::export!(Sink with_types_in bindings);
