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
use shm_guest::pubsub::{Loan, PooledMessage, Publisher, Ring, Subscriber};
use shm_guest::raw::{Error, MemoryBlock};
use shm_guest::BlockRef;

// One publisher or subscriber per instance, for the instance's life: leaked,
// so that a loan or a held message (which borrow them) can be kept from one
// call to the next.
thread_local! {
    static PUBLISHER: RefCell<Option<&'static Publisher>> = const { RefCell::new(None) };
    static LOAN: RefCell<Option<Loan<'static>>> = const { RefCell::new(None) };
    static SUBSCRIBER: RefCell<Option<&'static Subscriber>> = const { RefCell::new(None) };
    static HELD: RefCell<Option<PooledMessage<'static>>> = const { RefCell::new(None) };
    static POOLED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    static LOANS: RefCell<Vec<Loan<'static>>> = const { RefCell::new(Vec::new()) };
    static RING: RefCell<Option<&'static Ring>> = const { RefCell::new(None) };
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
                PUBLISHER.with(|slot| *slot.borrow_mut() = Some(Box::leak(Box::new(p))));
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
            let Some(p) = *slot.borrow() else {
                return false;
            };
            // The block keeps the bytes committed when it was filled.
            p.allocate().and_then(|(block, _)| p.publish(block)).is_ok()
        })
    }

    fn pooled_publish_seq(seq: u64) -> bool {
        PUBLISHER.with(|slot| {
            let Some(p) = *slot.borrow() else {
                return false;
            };
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
        SUBSCRIBER.with(|slot| *slot.borrow_mut() = Some(Box::leak(Box::new(s))));
        mapped.is_ok()
    }

    fn pooled_consume(stride: u32) -> Option<u64> {
        let s = SUBSCRIBER.with(|slot| *slot.borrow())?;
        let message = s.try_next_pooled().ok()??;
        Some(sum(&message, stride))
    }

    fn loan_publish_seq(seq: u64, count: u32) -> bool {
        let Some(p) = PUBLISHER.with(|slot| *slot.borrow()) else {
            return false;
        };
        LOAN.with(|slot| {
            let mut slot = slot.borrow_mut();
            for i in 0..u64::from(count) {
                let mut loan = match slot.take() {
                    Some(loan) => loan,
                    None => match p.loan() {
                        Ok(loan) => loan,
                        Err(e) => {
                            eprintln!("bench-sink: loan: {e}");
                            return false;
                        }
                    },
                };
                loan[..8].copy_from_slice(&(seq + i).to_le_bytes());
                let len = loan.len() as u32;
                match loan.publish_and_loan(len) {
                    Ok(next) => *slot = next,
                    Err(e) => {
                        eprintln!("bench-sink: publish-loan: {e}");
                        return false;
                    }
                }
            }
            true
        })
    }

    fn loan_publish_batch(seq: u64, count: u32) -> bool {
        let Some(p) = PUBLISHER.with(|slot| *slot.borrow()) else {
            return false;
        };
        LOANS.with(|slot| {
            let mut loans = slot.borrow_mut();
            if loans.len() < count as usize {
                // The rest in one call (the rings gave the last batch back).
                match p.loan_many(count - loans.len() as u32) {
                    Ok(more) => loans.extend(more),
                    Err(e) => {
                        eprintln!("bench-sink: loans: {e}");
                        return false;
                    }
                }
            }
            if loans.len() < count as usize {
                eprintln!("bench-sink: only {} of {count} blocks free", loans.len());
                return false;
            }
            let batch = loans.drain(..count as usize).enumerate().map(|(i, mut loan)| {
                loan[..8].copy_from_slice(&(seq + i as u64).to_le_bytes());
                let len = loan.len() as u32;
                (loan, len)
            });
            let batch: Vec<_> = batch.collect();
            match p.publish_batch(batch, count) {
                Ok(next) => {
                    loans.extend(next);
                    true
                }
                Err(e) => {
                    eprintln!("bench-sink: publish-loans: {e}");
                    false
                }
            }
        })
    }

    fn publish_batches(seq: u64, count: u32, batch: u32) -> bool {
        let Some(p) = PUBLISHER.with(|slot| *slot.borrow()) else {
            return false;
        };
        let end = seq + u64::from(count);
        LOANS.with(|slot| {
            let mut loans = slot.borrow_mut();
            let mut next = seq;
            while next < end {
                let want = (end - next).min(u64::from(batch.max(1))) as usize;
                // Top up in one call without waiting; wait only for a
                // first block.
                if loans.len() < want {
                    match p.loan_many((want - loans.len()) as u32) {
                        Ok(more) => loans.extend(more),
                        Err(e) => {
                            eprintln!("bench-sink: loans: {e}");
                            return false;
                        }
                    }
                }
                if loans.is_empty() {
                    match p.loan_within(std::time::Duration::from_secs(10)) {
                        Ok(loan) => loans.push(loan),
                        Err(e) => {
                            eprintln!("bench-sink: loan-within: {e}");
                            return false;
                        }
                    }
                }
                let n = loans.len().min(want);
                let sent: Vec<_> = loans
                    .drain(..n)
                    .enumerate()
                    .map(|(i, mut loan)| {
                        loan[..8].copy_from_slice(&(next + i as u64).to_le_bytes());
                        let len = loan.len() as u32;
                        (loan, len)
                    })
                    .collect();
                match p.publish_batch(sent, want as u32) {
                    Ok(lent) => loans.extend(lent),
                    Err(e) => {
                        eprintln!("bench-sink: publish-loans: {e}");
                        return false;
                    }
                }
                next += n as u64;
            }
            true
        })
    }

    fn ring_subscribe(topic: String, capacity: u32) -> bool {
        let ring = Subscriber::new(&topic).and_then(|s| s.into_ring(capacity));
        match ring {
            Ok(ring) => {
                RING.with(|slot| *slot.borrow_mut() = Some(Box::leak(Box::new(ring))));
                true
            }
            Err(e) => {
                eprintln!("bench-sink: ring: {e}");
                false
            }
        }
    }

    fn ring_consume(stride: u32, count: u32) -> Option<u64> {
        let ring = RING.with(|slot| *slot.borrow())?;
        let mut total = 0;
        for _ in 0..count {
            let message = match ring.try_next() {
                Some(m) => m,
                None => ring.next().ok()??,
            };
            total += sum(&message, stride);
        }
        Some(total)
    }

    fn open_publisher(topic: String, elements: u32, size: u32, pooled: bool) -> bool {
        let p = if pooled {
            Publisher::pooled(&topic, elements, size)
        } else {
            Publisher::new(&topic, elements, size)
        };
        match p {
            Ok(p) => {
                PUBLISHER.with(|slot| *slot.borrow_mut() = Some(Box::leak(Box::new(p))));
                POOLED.with(|c| c.set(pooled));
                true
            }
            Err(e) => {
                eprintln!("bench-sink: publisher: {e}");
                false
            }
        }
    }

    fn publish_many(seq: u64, count: u32) -> bool {
        let Some(p) = PUBLISHER.with(|slot| *slot.borrow()) else {
            return false;
        };
        let pooled = POOLED.with(|c| c.get());
        for s in seq..seq + u64::from(count) {
            let sent = if pooled {
                Self::publish_loaned(p, s)
            } else {
                Self::publish_mapped(p, s)
            };
            if let Err(e) = sent {
                eprintln!("bench-sink: publish: {e}");
                return false;
            }
        }
        true
    }

    fn open_subscriber(topic: String, pooled: bool) -> bool {
        let Ok(s) = Subscriber::new(&topic) else {
            return false;
        };
        if pooled && s.map_pool().is_err() {
            return false;
        }
        SUBSCRIBER.with(|slot| *slot.borrow_mut() = Some(Box::leak(Box::new(s))));
        POOLED.with(|c| c.set(pooled));
        true
    }

    fn receive_many(count: u32) -> Option<(u64, u64)> {
        if let Some(ring) = RING.with(|slot| *slot.borrow()) {
            let mut total = 0;
            for _ in 0..count {
                let message = ring.next().ok()??;
                total += u64::from(*message.first()?);
            }
            return Some((total, 0));
        }
        let s = SUBSCRIBER.with(|slot| *slot.borrow())?;
        let mut total = 0;
        if POOLED.with(|c| c.get()) {
            return HELD.with(|held| {
                let mut held = held.borrow_mut();
                for _ in 0..count {
                    let next = match held.take() {
                        Some(previous) => s.next_pooled_after(previous),
                        None => s.next_pooled(),
                    };
                    let message = next.ok()??;
                    total += u64::from(*message.first()?);
                    *held = Some(message);
                }
                Some((total, 0))
            });
        }
        let mut attach_ns = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let block = s.next_message()?;
            let started = std::time::Instant::now();
            let bytes = block.attach_read().ok()?;
            attach_ns.push(started.elapsed().as_nanos() as u64);
            total += u64::from(*bytes.first()?);
        }
        attach_ns.sort_unstable();
        Some((total, attach_ns.get(attach_ns.len() / 2).copied().unwrap_or(0)))
    }

    fn pooled_consume_after(stride: u32, count: u32) -> Option<u64> {
        let s = SUBSCRIBER.with(|slot| *slot.borrow())?;
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            let mut total = 0;
            for _ in 0..count {
                let next = match held.take() {
                    Some(previous) => s.try_next_pooled_after(previous),
                    None => s.try_next_pooled(),
                };
                let message = next.ok()??;
                total += sum(&message, stride);
                *held = Some(message);
            }
            Some(total)
        })
    }
}

impl Sink {
    /// Publishes one message per mapping (not pooled).
    fn publish_mapped(p: &Publisher, seq: u64) -> Result<(), String> {
        let wait = std::time::Duration::from_secs(10);
        let (block, _) = p.allocate_within(wait).map_err(|e| e.to_string())?;
        let mut w = block.attach_write().map_err(|e| e.to_string())?;
        w[..8].copy_from_slice(&seq.to_le_bytes());
        let len = w.len();
        w.commit(len).map_err(|e| e.to_string())?;
        p.publish(block).map_err(|e| e.to_string())
    }

    /// Publishes one message by loan (pooled), keeping the next loan.
    fn publish_loaned(p: &'static Publisher, seq: u64) -> Result<(), String> {
        LOAN.with(|slot| {
            let mut slot = slot.borrow_mut();
            let mut loan = match slot.take() {
                Some(loan) => loan,
                None => loop {
                    match p.loan() {
                        Ok(loan) => break loan,
                        Err(shm_guest::pubsub::PubSubError::PoolExhausted) => {
                            std::thread::sleep(std::time::Duration::from_micros(20));
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                },
            };
            loan[..8].copy_from_slice(&seq.to_le_bytes());
            let len = loan.len() as u32;
            *slot = loan.publish_and_loan(len).map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

bindings::export!(Sink with_types_in bindings);
