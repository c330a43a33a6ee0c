//! Receives every message on `TOPIC` (see the publisher), checks that the
//! numbers arrive in order and that every byte of each message is the
//! publisher's pattern, reading the block where it lies.
//!
//! Arguments: `[TOPIC=numbers] [EXPECT]`: with `EXPECT`, fail unless that
//! many messages arrived. Prints each number when messages are small.

use std::process::ExitCode;

use shm_guest::pubsub::Subscriber;

fn run() -> Result<(), String> {
    let name = std::env::args()
        .next()
        .unwrap_or_else(|| "subscriber".into());
    let topic = std::env::args().nth(1).unwrap_or_else(|| "numbers".into());
    let expect: Option<u32> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    let mut subscriber = Subscriber::new(&topic);
    let mut received = 0u32;
    let mut last: Option<u32> = None;
    let mut bytes_read = 0u64;
    for message in subscriber.by_ref() {
        let bytes = message
            .attach_read()
            .map_err(|e| format!("attaching: {e}"))?;
        if bytes.len() < 4 {
            return Err(format!("a message of {} bytes", bytes.len()));
        }
        let n = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"));
        if let Some(prev) = last {
            if n <= prev {
                return Err(format!("message {n} after {prev}: out of order"));
            }
        }
        let pattern = (n % 251) as u8;
        if let Some(i) = bytes[4..].iter().position(|&b| b != pattern) {
            return Err(format!("message {n}: byte {} is not {pattern}", i + 4));
        }
        bytes_read += bytes.len() as u64;
        if bytes.len() <= 4096 {
            println!("{name}: received {n}");
        }
        last = Some(n);
        received += 1;
    }
    println!(
        "{name}: received {received} messages in order ({bytes_read} bytes read in place, {} dropped)",
        subscriber.dropped()
    );
    match expect {
        Some(e) if e != received => Err(format!("expected {e} messages, received {received}")),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("subscriber: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
