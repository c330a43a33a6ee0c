//! Receives every message on `TOPIC` (see the publisher) with the
//! synchronous `next`, checks that the numbers arrive in order and that
//! every byte of each message is the publisher's pattern, reading the block
//! where it lies. (`pubsub-stream-subscriber` does the same from the
//! subscription's stream.)
//!
//! Arguments: `[--pooled] [TOPIC=numbers] [EXPECT]`: with `EXPECT`, fail
//! unless that many messages arrived; with `--pooled` (for a pooled
//! publisher), map the topic's pool once and read each message in place
//! there (`next-pooled`). Prints each number when messages are small.

use shm_guest::pubsub::Subscriber;

mod check;

use check::Checker;

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let pooled = args.iter().any(|a| a == "--pooled");
    let args: Vec<String> = args.iter().filter(|a| *a != "--pooled").cloned().collect();
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
    if pooled {
        while let Some(message) = subscriber
            .next_pooled()
            .map_err(|e| format!("receiving in the pool: {e}"))?
        {
            check.bytes(&message)?;
        }
    } else {
        while let Some(message) = subscriber.next_message() {
            check.message(&message)?;
        }
    }
    println!(
        "{}: received {} messages in order ({} bytes read in place, {} dropped)",
        check.name,
        check.received,
        check.bytes_read,
        subscriber.dropped()
    );
    match expect {
        Some(e) if e != check.received => Err(format!(
            "expected {e} messages, received {}",
            check.received
        )),
        _ => Ok(()),
    }
}
