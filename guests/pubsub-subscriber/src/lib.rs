//! Receives every message on `TOPIC` (see the publisher) with the
//! synchronous `next`, checks that the numbers arrive in order and that
//! every byte of each message is the publisher's pattern, reading the block
//! where it lies. (`pubsub-stream-subscriber` does the same from the
//! subscription's stream.)
//!
//! Arguments: `[--pooled] [--ring CAPACITY] [TOPIC=numbers] [EXPECT]`: with
//! `EXPECT`, fail unless that many messages arrived; with `--pooled` (for
//! a pooled publisher), map the topic's pool once and read each message in
//! place there (`next-pooled`); with `--ring`, take the subscription as a
//! lease ring of `CAPACITY` messages and read each in place, taking and
//! releasing without a host call (the host is called only to wait). Prints
//! each number when messages are small.

use shm_guest::pubsub::Subscriber;

mod check;

use check::Checker;

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let pooled = args.iter().any(|a| a == "--pooled");
    let mut args: Vec<String> = args.iter().filter(|a| *a != "--pooled").cloned().collect();
    let ring: Option<u32> = match args.iter().position(|a| a == "--ring") {
        Some(i) if i + 1 < args.len() => {
            let capacity = args.remove(i + 1);
            args.remove(i);
            Some(
                capacity
                    .parse()
                    .map_err(|_| format!("--ring {capacity}: a capacity"))?,
            )
        }
        _ => None,
    };
    let name = args.first().cloned().unwrap_or_else(|| "subscriber".into());
    let topic = args.get(1).cloned().unwrap_or_else(|| "numbers".into());
    let expect: Option<u32> = args.get(2).and_then(|a| a.parse().ok());
    let subscriber = Subscriber::new(&topic).map_err(|e| format!("subscribing to {topic}: {e}"))?;
    let mut check = Checker {
        name,
        received: 0,
        last: None,
        bytes_read: 0,
    };
    let dropped;
    if let Some(capacity) = ring {
        // The publisher may start after this subscriber.
        let ring = subscriber
            .into_ring_within(capacity, std::time::Duration::from_secs(30))
            .map_err(|e| format!("making a ring of {capacity}: {e}"))?;
        while let Some(message) = ring
            .next()
            .map_err(|e| format!("receiving in the ring: {e}"))?
        {
            check.bytes(&message)?;
        }
        dropped = ring.subscriber().dropped();
    } else if pooled {
        while let Some(message) = subscriber
            .next_pooled()
            .map_err(|e| format!("receiving in the pool: {e}"))?
        {
            check.bytes(&message)?;
        }
        dropped = subscriber.dropped();
    } else {
        while let Some(message) = subscriber.next_message() {
            check.message(&message)?;
        }
        dropped = subscriber.dropped();
    }
    println!(
        "{}: received {} messages in order ({} bytes read in place, {} dropped)",
        check.name, check.received, check.bytes_read, dropped
    );
    match expect {
        Some(e) if e != check.received => Err(format!(
            "expected {e} messages, received {}",
            check.received
        )),
        _ => Ok(()),
    }
}
