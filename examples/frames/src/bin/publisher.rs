//! Publishes `COUNT` frames (default 10) of `WIDTH`x`HEIGHT` (default
//! 640x480) on the `frames` topic, each built field by field inside a block
//! of the pool: the pixels are computed straight into the block, as a camera
//! or a decoder would write them, with no frame on the heap first.

use std::process::ExitCode;

use frames::{build_frame, Frame, TOPIC};
use shm_guest::typed::TypedPublisher;

fn run() -> Result<(), String> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (count, width, height) = (
        args.first().copied().unwrap_or(10),
        args.get(1).copied().unwrap_or(640),
        args.get(2).copied().unwrap_or(480),
    );
    // Room for the pixels, the tags and the headers.
    let size = width * height + 4096;
    let publisher = TypedPublisher::<Frame, u32>::new(TOPIC, 4, size)
        .map_err(|e| format!("creating the publisher: {e}"))?;
    for n in 0..count {
        publisher
            .build(|message| build_frame(n, width, height, &mut message.record::<Frame>()?))
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
