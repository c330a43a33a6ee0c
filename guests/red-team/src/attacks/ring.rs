//! Attacks on lease rings: a subscriber that writes what it likes into the
//! ring's returned region, one that writes into the region the host offers
//! messages in, and one that takes a ring's messages and never returns
//! them.

use std::time::Duration;

use shm_guest::raw::pub_sub::{RingArea, Subscriber as RawSubscriber};
use shm_rules::pubsub::ring::{
    offered_slot, returned_slot, RingMemory, RingReader, OFFERED_PUBLISHED, RETURNED_COUNT,
};

use crate::verdict;

/// A ring region in this component's memory, read and written as the host
/// never would expect.
struct Raw(u32);

impl RingMemory for Raw {
    fn load_u64(&self, offset: usize) -> u64 {
        let b = crate::read_bytes(self.0 + offset as u32, 8);
        u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
    }
    fn load_u32(&self, offset: usize) -> u32 {
        let b = crate::read_bytes(self.0 + offset as u32, 4);
        u32::from_le_bytes(b.try_into().unwrap_or([0; 4]))
    }
    fn store_u64(&self, offset: usize, value: u64) {
        crate::write_u64(self.0 + offset as u32, value);
    }
    fn store_u32(&self, offset: usize, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            crate::write_bytes(self.0 + offset as u32 + i as u32, 1, b);
        }
    }
}

/// A subscription of `topic` as a ring of `capacity`, through the raw
/// imports (the guest crate would never misuse it).
fn raw_ring(topic: &str, capacity: u32) -> Result<(RawSubscriber, RingArea), String> {
    let s = RawSubscriber::new(topic).map_err(|e| format!("subscribing: {e:?}"))?;
    // The topic's pool exists once its publisher started.
    let area = loop {
        let need = match s.ring_storage(capacity) {
            Ok(n) => n,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        shm_guest::donate_storage(need).map_err(|e| format!("donating: {e}"))?;
        break s
            .map_ring(capacity)
            .map_err(|e| format!("map-ring: {e:?}"))?;
    };
    Ok((s, area))
}

/// Takes messages as they come, and for each writes hostile values into
/// the returned region: sequence numbers never offered (one far in the
/// future, one twice), a count far ahead and one that goes backwards, and
/// an entry rewritten after its count. Never names a message it holds:
/// what it took stays held until the host evicts it (stall limit), and
/// nothing it wrote may free a block for the publisher early or harm
/// another subscriber.
pub fn scribble(who: &str, topic: &str) -> Result<(), String> {
    let (s, area) = raw_ring(topic, 4)?;
    let offered = Raw(area.offered);
    let returned = Raw(area.returned);
    let mut reader = RingReader::new(area.capacity);
    let mut count = 0u64;
    let mut taken = 0u64;
    loop {
        let waited = s
            .wait_ring(reader.taken(), 1000)
            .map_err(|e| format!("wait-ring: {e:?}"))?;
        while let Some(entry) = reader.next(&offered) {
            taken += 1;
            let k = entry.seq;
            // Never offered (and never to be: the run publishes 20), far
            // in the future, and the same one twice.
            for bad in [u64::MAX, k + 1000, k + 1000, 1 << 40] {
                returned.store_u64(returned_slot(count, area.capacity), bad);
                count += 1;
            }
            returned.store_u64(RETURNED_COUNT, count);
            let _ = s.wait_ring(reader.taken(), 0);
            // Far ahead, then backwards.
            returned.store_u64(RETURNED_COUNT, u64::MAX / 2);
            let _ = s.wait_ring(reader.taken(), 0);
            returned.store_u64(RETURNED_COUNT, 0);
            let _ = s.wait_ring(reader.taken(), 0);
            // An entry rewritten after its count was published.
            count = offered.load_u64(shm_rules::pubsub::ring::OFFERED_CONSUMED);
            returned.store_u64(RETURNED_COUNT, count + 1);
            returned.store_u64(returned_slot(count, area.capacity), k + 2000);
            returned.store_u64(returned_slot(count, area.capacity), u64::MAX - 1);
            count += 1;
        }
        if waited.ended {
            break;
        }
    }
    println!("{who}: took {taken} messages and returned none honestly");
    Ok(())
}

/// Writes into the offered region (mapped read-only) and into a pool
/// block: each write must trap this component.
pub fn write_offered(who: &str, topic: &str) -> Result<(), String> {
    let (s, area) = raw_ring(topic, 4)?;
    let waited = s
        .wait_ring(0, 10_000)
        .map_err(|e| format!("wait-ring: {e:?}"))?;
    println!(
        "{who}: {} offered; writing into the offered region",
        waited.published
    );
    let at = area.offered + offered_slot(0, area.capacity) as u32;
    crate::write_u64(area.offered + OFFERED_PUBLISHED as u32, u64::MAX);
    crate::write_u64(at, 7);
    verdict(
        who,
        "writing into the ring's offered region",
        Err("the write did not trap".into()),
    );
    Ok(())
}

/// Takes every message offered in its ring and never returns one.
pub fn hold(who: &str, topic: &str) -> Result<(), String> {
    let (s, area) = raw_ring(topic, 4)?;
    let offered = Raw(area.offered);
    let mut reader = RingReader::new(area.capacity);
    loop {
        let _ = s.wait_ring(reader.taken(), 100);
        while reader.next(&offered).is_some() {}
        if reader.taken() > 0 {
            println!("{who}: holding {} ring messages forever", reader.taken());
            break;
        }
    }
    loop {
        std::thread::sleep(Duration::from_millis(10));
    }
}
