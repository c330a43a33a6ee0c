//! The complex example's publisher: for each message, builds a
//! `list<string>` directly inside a block allocated from its publisher (no
//! heap copy of the strings), then publishes it.
//!
//! Arguments: `[--messages N] [--strings N] [--wait-ms N] [--topic NAME]`.
//! With the default 2 strings, message `i` is `["hello", WORD(i)]` (the
//! seed's content); with `--strings N` it is `"hello"`, `WORD(i)` and
//! `N - 2` more strings of mixed lengths, to show that delivery does not
//! cost more as the payload grows.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use flat_layout::Builder;
use shm_guest::pubsub::{PubSubError, Publisher};

const WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// The message number as a word.
fn word(i: u32) -> String {
    WORDS
        .get(i as usize)
        .map(|w| w.to_string())
        .unwrap_or_else(|| i.to_string())
}

/// String `k` (k >= 2) of message `i` in large mode, into `out`.
fn filler(i: u32, k: u32, out: &mut String) {
    out.clear();
    let _ = write!(out, "message {i} line {k}");
    for _ in 0..(k % 7) {
        out.push_str(" lorem");
    }
}

struct Args {
    messages: u32,
    strings: u32,
    wait: Duration,
    topic: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        messages: 10,
        strings: 2,
        wait: Duration::from_millis(20),
        topic: "complex".into(),
    };
    let mut it = args.iter().skip(1).cloned();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => {
                a.messages = value()?.parse().map_err(|e| format!("--messages: {e}"))?
            }
            "--strings" => a.strings = value()?.parse().map_err(|e| format!("--strings: {e}"))?,
            "--wait-ms" => {
                a.wait =
                    Duration::from_millis(value()?.parse().map_err(|e| format!("--wait-ms: {e}"))?)
            }
            "--topic" => a.topic = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    a.strings = a.strings.max(2);
    Ok(a)
}

/// The exact size of message `i` in the flat format with a u32 index: the
/// root header (8 bytes), one header per string (8 bytes each), the bytes.
fn message_size(i: u32, strings: u32, scratch: &mut String) -> usize {
    let mut bytes = "hello".len() + word(i).len();
    for k in 2..strings {
        filler(i, k, scratch);
        bytes += scratch.len();
    }
    8 + 8 * strings as usize + bytes
}

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    let mut scratch = String::new();
    let size = (0..args.messages)
        .map(|i| message_size(i, args.strings, &mut scratch))
        .max()
        .unwrap_or(8);
    let size = u32::try_from(size).map_err(|_| "messages too large".to_string())?;
    let publisher =
        Publisher::new(&args.topic, 4, size).map_err(|e| format!("creating the publisher: {e}"))?;
    let mut build_time = Duration::ZERO;
    for i in 0..args.messages {
        let (block, _) = loop {
            // While every block is still being read, the host waits for a
            // subscriber to release one.
            match publisher.allocate_within(Duration::from_secs(1)) {
                Ok(b) => break b,
                Err(PubSubError::PoolExhausted) => {}
                Err(e) => return Err(format!("allocating message {i}: {e}")),
            }
        };
        let started = Instant::now();
        {
            let mut bytes = block
                .attach_write()
                .map_err(|e| format!("attaching: {e}"))?;
            // The list is built where subscribers will read it: in the
            // block's pages, mapped into this component's memory.
            let mut builder = Builder::<u32>::new(&mut bytes[..]);
            let mut list = builder
                .list::<Vec<String>>(args.strings as usize)
                .map_err(|e| format!("message {i}: {e}"))?;
            list.push_str("hello").map_err(|e| e.to_string())?;
            list.push_str(&word(i)).map_err(|e| e.to_string())?;
            for k in 2..args.strings {
                filler(i, k, &mut scratch);
                list.push_str(&scratch).map_err(|e| e.to_string())?;
            }
            list.finish().map_err(|e| e.to_string())?;
            let used = builder.finish().map_err(|e| e.to_string())?;
            bytes.commit(used).map_err(|e| format!("committing: {e}"))?;
        }
        build_time += started.elapsed();
        publisher
            .publish(block)
            .map_err(|e| format!("publishing message {i}: {e}"))?;
        std::thread::sleep(args.wait);
    }
    println!(
        "publisher: built {} lists of {} strings in place ({} bytes each at most, {:.1} us to build each) and published them to {} subscribers",
        args.messages,
        args.strings,
        size,
        build_time.as_secs_f64() * 1e6 / f64::from(args.messages.max(1)),
        publisher.subscriber_count()
    );
    Ok(())
}
