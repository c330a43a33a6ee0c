//! The honest side of the fuzzer: a publisher and subscribers that check
//! every byte of every message, more than once.

use std::collections::VecDeque;
use std::time::Duration;

use shm_guest::pubsub::{PubSubError, Publisher, Subscriber};

use crate::{check, pattern};

/// How many messages a subscriber keeps (and checks again) before it lets
/// the oldest go.
const KEPT: usize = 3;

/// Publishes `count` messages of `size` bytes on `topic`. A block that
/// comes back for reuse must still carry exactly the message it carried
/// when it was published: nobody may change a published message.
/// Waits `pause` between messages.
pub fn publish(
    who: &str,
    topic: &str,
    count: u64,
    size: usize,
    pause: Duration,
    pooled: bool,
) -> Result<(), String> {
    let size = size.max(8);
    let pool = 8;
    let publisher = if pooled {
        Publisher::pooled(topic, pool, size as u32)
    } else {
        Publisher::new(topic, pool, size as u32)
    }
    .map_err(|e| format!("publisher: {e}"))?;
    let mut corrupt = 0u64;
    let mut checked = 0u64;
    for i in 0..count {
        let (block, valid) = loop {
            match publisher.allocate_within(Duration::from_secs(1)) {
                Ok(b) => break b,
                Err(PubSubError::PoolExhausted) => {}
                Err(e) => return Err(format!("allocating message {i}: {e}")),
            }
        };
        let mut w = block
            .attach_write()
            .map_err(|e| format!("attaching message {i}: {e}"))?;
        // A reused block: what it carried must be intact, its length too
        // (a block that never carried a message comes back empty).
        if valid != 0 {
            match check(&w[..(valid as usize).min(w.len())], size) {
                Ok(_) => checked += 1,
                Err(e) => {
                    corrupt += 1;
                    println!(
                        "{who}: CORRUPT block back for message {i} ({valid} valid bytes): {e}"
                    );
                }
            }
        }
        w[..8].copy_from_slice(&i.to_le_bytes());
        for (j, b) in w[8..size].iter_mut().enumerate() {
            *b = pattern(i, j);
        }
        w.commit(size)
            .map_err(|e| format!("committing message {i}: {e}"))?;
        publisher
            .publish(block)
            .map_err(|e| format!("publishing message {i}: {e}"))?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    println!(
        "{who}: published {count} messages of {size} bytes on {topic} ({checked} blocks checked on reuse, {corrupt} corrupt)"
    );
    Ok(())
}

/// Reads messages read in place from `next` to the end, checking each with
/// `check(bytes, again)` on arrival and again before letting it go (it
/// keeps the last [`KEPT`]); returns how many arrived.
fn read_in_place<M: core::ops::Deref<Target = [u8]>>(
    mut next: impl FnMut() -> Result<Option<M>, String>,
    check: &mut impl FnMut(&[u8], bool),
) -> Result<u64, String> {
    let (mut received, mut kept) = (0, VecDeque::new());
    while let Some(m) = next()? {
        received += 1;
        check(&m, false);
        kept.push_back(m);
        if kept.len() > KEPT {
            let old = kept.pop_front().expect("kept");
            check(&old, true);
        }
    }
    for m in kept.drain(..) {
        check(&m, true);
    }
    Ok(received)
}

/// Reads `topic` to its end, checking each message (of `size` bytes)
/// on arrival and again before letting it go (it keeps the last
/// [`KEPT`]).
pub fn subscribe(
    who: &str,
    topic: &str,
    size: usize,
    pooled: bool,
    ring: bool,
) -> Result<(), String> {
    let s = Subscriber::new(topic).map_err(|e| format!("subscribing: {e}"))?;
    let (mut received, mut corrupt, mut last) = (0u64, 0u64, None::<u64>);
    let mut verdict = |bytes: &[u8], again: bool| match check(bytes, size) {
        Ok(i) => Some(i),
        Err(e) => {
            corrupt += 1;
            let when = if again { "while held" } else { "on arrival" };
            println!("{who}: CORRUPT {when}: {e}");
            None
        }
    };
    let in_order = |i: u64, last: &mut Option<u64>| {
        if last.is_some_and(|l| i <= l) {
            println!("{who}: CORRUPT order: message {i} after {last:?}");
        }
        *last = Some(i);
    };
    let mut check = |bytes: &[u8], again: bool| {
        if let Some(i) = verdict(bytes, again) {
            if !again {
                in_order(i, &mut last);
            }
        }
    };
    if ring {
        // A lease ring: taken and released without a host call; the ring
        // holds the kept messages and room for the next two.
        let r = s
            .into_ring_within(KEPT as u32 + 2, std::time::Duration::from_secs(30))
            .map_err(|e| format!("making a ring: {e}"))?;
        received = read_in_place(|| r.next().map_err(|e| format!("taking: {e}")), &mut check)?;
        println!(
            "{who}: received {received} messages through a ring, {} dropped, {corrupt} corrupt",
            r.subscriber().dropped()
        );
        return Ok(());
    }
    if pooled {
        received = read_in_place(
            || s.next_pooled().map_err(|e| format!("taking: {e}")),
            &mut check,
        )?;
    } else {
        let mut kept = VecDeque::new();
        while let Some(m) = s.next_message() {
            received += 1;
            let g = m.attach_read().map_err(|e| format!("attaching: {e}"))?;
            if let Some(i) = verdict(&g, false) {
                in_order(i, &mut last);
            }
            drop(g);
            kept.push_back(m);
            if kept.len() > KEPT {
                let old = kept.pop_front().expect("kept");
                let g = old
                    .attach_read()
                    .map_err(|e| format!("attaching again: {e}"))?;
                verdict(&g, true);
            }
        }
    }
    println!(
        "{who}: received {received} messages, {} dropped, {corrupt} corrupt",
        s.dropped()
    );
    Ok(())
}
