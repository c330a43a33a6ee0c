//! Receives every message of topic `IN` in place (a pooled topic: the pool
//! is mapped once, each message read where it lies), reads every byte of
//! it (a checksum: the wrapping sum of its little-endian u64 words, the
//! last one zero-padded), and publishes on topic `OUT` a 16-byte
//! acknowledgement from a pool of its own (a loan, written in place): the
//! message's first 8 bytes (the sequence number its sender wrote) and the
//! checksum. Ends when `IN` ends, printing one summary line.
//!
//! Arguments: `[IN=ping] [OUT=pong] [POOL=4]` (`POOL`: blocks of the
//! acknowledgements' pool). The Zenoh bridge benchmark
//! (`bench/benches/zenoh.rs`) runs it between an import and an export.

use std::time::Duration;

use shm_guest::pubsub::{Loan, PubSubError, Publisher, Subscriber};

/// The acknowledgement's size: sequence number and checksum.
pub const ACK: u32 = 16;

/// The wrapping sum of the little-endian u64 words of `bytes` (the last
/// word zero-padded): reads every byte.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut sum = (&mut words).fold(0u64, |s, w| {
        s.wrapping_add(u64::from_le_bytes(w.try_into().expect("eight bytes")))
    });
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        sum = sum.wrapping_add(u64::from_le_bytes(last));
    }
    sum
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// A block to write the next acknowledgement into, waiting while every
/// block of the pool is still queued or being sent (the host wakes the
/// wait when one is released).
fn loan(publisher: &Publisher) -> Result<Loan<'_>, String> {
    loop {
        match publisher.loan_within(Duration::from_secs(1)) {
            Ok(loan) => return Ok(loan),
            Err(PubSubError::PoolExhausted) => {}
            Err(e) => return Err(format!("loaning an acknowledgement block: {e}")),
        }
    }
}

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let name = args.first().cloned().unwrap_or_else(|| "relay".into());
    let input: String = arg(args, 1, "ping".to_string());
    let output: String = arg(args, 2, "pong".to_string());
    let pool: u32 = arg(args, 3, 4).max(1);
    // Subscribe first: the topology starts the publishers once every relay
    // subscribed.
    let subscriber = Subscriber::new(&input).map_err(|e| format!("subscribing to {input}: {e}"))?;
    let publisher = Publisher::pooled(&output, pool, ACK)
        .map_err(|e| format!("creating the publisher on {output}: {e}"))?;
    let mut next = Some(loan(&publisher)?);
    let (mut messages, mut bytes, mut total) = (0u64, 0u64, 0u64);
    let mut message = subscriber
        .next_pooled()
        .map_err(|e| format!("receiving on {input}: {e}"))?;
    while let Some(m) = message {
        let sum = checksum(&m);
        let mut sequence = [0u8; 8];
        let n = m.len().min(8);
        sequence[..n].copy_from_slice(&m[..n]);
        messages += 1;
        bytes += m.len() as u64;
        total = total.wrapping_add(sum);
        let mut ack = match next.take() {
            Some(l) => l,
            None => loan(&publisher)?,
        };
        ack[..8].copy_from_slice(&sequence);
        ack[8..16].copy_from_slice(&sum.to_le_bytes());
        next = ack
            .publish_and_loan(ACK)
            .map_err(|e| format!("publishing acknowledgement {messages}: {e}"))?;
        message = subscriber
            .next_pooled_after(m)
            .map_err(|e| format!("receiving on {input}: {e}"))?;
    }
    drop(next);
    println!(
        "{name}: acknowledged {messages} messages ({bytes} bytes read in place, checksum {total:#x}, {} dropped) from {input} on {output}",
        subscriber.dropped()
    );
    Ok(())
}
