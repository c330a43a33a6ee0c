//! Publishes `COUNT` frames (default 10) of `WIDTH`x`HEIGHT` (default
//! 640x480) on the `frames` topic, each built field by field inside a block
//! of the pool: the pixels are computed straight into the block, as a camera
//! or a decoder would write them, with no frame on the heap first.
//!
//! Arguments: `[COUNT [WIDTH [HEIGHT]]] [--wrong-frame N]`. With
//! `--wrong-frame N` it sends frame `N + 1` where frame `N` belongs, so that
//! the subscribers' check must fail there (the tests use it to see that the
//! Rust and the C subscriber name the same first difference).

use std::process::ExitCode;

use frames::{build_frame, Frame, TOPIC};
use shm_guest::typed::TypedPublisher;

fn run() -> Result<(), String> {
    let mut numbers = Vec::new();
    let mut wrong = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--wrong-frame" {
            let n = args.next().and_then(|a| a.parse::<u32>().ok());
            wrong = Some(n.ok_or("--wrong-frame needs a frame number")?);
        } else if let Ok(n) = arg.parse::<u32>() {
            numbers.push(n);
        }
    }
    let (count, width, height) = (
        numbers.first().copied().unwrap_or(10),
        numbers.get(1).copied().unwrap_or(640),
        numbers.get(2).copied().unwrap_or(480),
    );
    // Room for the pixels, the tags and the headers.
    let size = width * height + 4096;
    let publisher = TypedPublisher::<Frame, u32>::new(TOPIC, 4, size)
        .map_err(|e| format!("creating the publisher: {e}"))?;
    for n in 0..count {
        let content = if wrong == Some(n) { n + 1 } else { n };
        publisher
            .build(|message| build_frame(content, width, height, &mut message.record::<Frame>()?))
            .map_err(|e| format!("sending frame {n}: {e}"))?;
    }
    println!(
        "frames-publisher: sent {count} frames of {width}x{height} to {} subscribers",
        publisher.publisher().subscriber_count()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frames-publisher: {e}");
            ExitCode::FAILURE
        }
    }
}
