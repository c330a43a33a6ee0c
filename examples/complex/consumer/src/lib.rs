//! The complex example's consumer: takes each published block, attaches it
//! read-only (the publisher's pages, mapped), validates the untrusted bytes
//! once with flat-layout and reads the strings where they lie.
//!
//! Arguments: `[--topic NAME] [--expect N]`. Prints every list it received
//! (small lists whole; large ones by length, first and last string), the
//! time to attach (delivery) and to validate and read, per message.

use std::time::{Duration, Instant};

use flat_layout::validate;
use shm_guest::pubsub::Subscriber;

/// Runs with `args` (`args[0]` is the name it prints).
pub fn run(args: &[String]) -> Result<(), String> {
    let name = args.first().cloned().unwrap_or_else(|| "consumer".into());
    let mut topic = "complex".to_string();
    let mut expect = None;
    let mut it = args.iter().skip(1).cloned();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--topic" => topic = it.next().ok_or("--topic needs a value")?,
            "--expect" => {
                expect = Some(
                    it.next()
                        .and_then(|v| v.parse::<u32>().ok())
                        .ok_or("--expect needs a number")?,
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let subscriber = Subscriber::new(&topic).map_err(|e| format!("subscribing to {topic}: {e}"))?;
    let (mut received, mut bytes_total) = (0u32, 0usize);
    let (mut attach_times, mut read_times) = (Vec::new(), Vec::new());
    while let Some(message) = subscriber.next_message() {
        let t0 = Instant::now();
        let bytes = message
            .attach_read()
            .map_err(|e| format!("attaching: {e}"))?;
        let t1 = Instant::now();
        // Untrusted bytes: validated once; afterwards every access is
        // infallible and borrows the block.
        let list =
            validate::<Vec<String>, u32>(&bytes).map_err(|e| format!("message {received}: {e}"))?;
        let chars: usize = list.iter().map(|s| s.len()).sum();
        let t2 = Instant::now();
        attach_times.push(t1 - t0);
        read_times.push(t2 - t1);
        bytes_total += bytes.len();
        let (a, r) = ((t1 - t0).as_secs_f64() * 1e6, (t2 - t1).as_secs_f64() * 1e6);
        if list.len() <= 8 {
            println!(
                "{name}: {list:?} ({} bytes; attach {a:.0} us, validate+read {r:.0} us)",
                bytes.len()
            );
        } else {
            println!(
                "{name}: {} strings, {chars} chars, first {:?}, second {:?}, last {:?} ({} bytes; attach {a:.0} us, validate+read {r:.0} us)",
                list.len(),
                list.get(0).unwrap_or_default(),
                list.get(1).unwrap_or_default(),
                list.last().unwrap_or_default(),
                bytes.len(),
            );
        }
        received += 1;
    }
    println!(
        "{name}: received {received} lists ({bytes_total} bytes read in place); median per message: attach {:.1} us, validate+read {:.1} us",
        median_us(&mut attach_times),
        median_us(&mut read_times),
    );
    match expect {
        Some(e) if e != received => Err(format!("expected {e} lists, received {received}")),
        _ => Ok(()),
    }
}

/// The median of `times`, in microseconds (the first attach of a storage
/// range pays once for replacing heap pages; the median shows the steady
/// cost).
fn median_us(times: &mut [Duration]) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}
