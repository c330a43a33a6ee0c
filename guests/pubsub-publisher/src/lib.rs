//! Publishes `COUNT` messages on `TOPIC`, each a pool block holding its
//! number (u32, little-endian) then `SIZE - 4` bytes of a pattern, with a
//! `wasi:clocks` wait of `WAIT_MS` between them.
//!
//! Arguments: `[--pooled] [COUNT=20] [SIZE=64] [TOPIC=numbers] [WAIT_MS=10]
//! [POOL=4] [START=0]`; `--pooled` makes the topic pooled (subscribers may
//! map the pool and read messages in place); the numbers run from `START`
//! (a restarted publisher goes on where the last one stopped).

use std::time::Duration;

use shm_guest::pubsub::{PubSubError, Publisher};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let pooled = args.iter().any(|a| a == "--pooled");
    let args: &[String] = &args
        .iter()
        .filter(|a| *a != "--pooled")
        .cloned()
        .collect::<Vec<_>>();
    let count: u32 = arg(args, 1, 20);
    let size: u32 = arg(args, 2, 64).max(4);
    let topic: String = arg(args, 3, "numbers".to_string());
    let wait = Duration::from_millis(arg(args, 4, 10));
    let pool: u32 = arg(args, 5, 4);
    let start: u32 = arg(args, 6, 0);
    let publisher = if pooled {
        Publisher::pooled(&topic, pool, size)
    } else {
        Publisher::new(&topic, pool, size)
    }
    .map_err(|e| format!("creating the publisher: {e}"))?;
    for i in start..start.saturating_add(count) {
        let (block, _) = loop {
            // While every pool block is still being read, the host waits
            // for a subscriber to release one.
            match publisher.allocate_within(Duration::from_secs(1)) {
                Ok(b) => break b,
                Err(PubSubError::PoolExhausted) => {}
                Err(e) => return Err(format!("allocating message {i}: {e}")),
            }
        };
        {
            let mut w = block
                .attach_write()
                .map_err(|e| format!("attaching message {i}: {e}"))?;
            w[..4].copy_from_slice(&i.to_le_bytes());
            let pattern = (i % 251) as u8;
            w[4..].fill(pattern);
            w.commit(size as usize)
                .map_err(|e| format!("committing message {i}: {e}"))?;
        }
        publisher
            .publish(block)
            .map_err(|e| format!("publishing message {i}: {e}"))?;
        std::thread::sleep(wait);
    }
    println!(
        "publisher: published {count} messages of {size} bytes on {topic} to {} subscribers",
        publisher.subscriber_count()
    );
    Ok(())
}
