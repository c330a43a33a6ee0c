//! A camera process feeding sandboxed plugins in another process: a plain
//! Rust program (no wasm, no host) that publishes camera frames to a Zenoh
//! key expression. A `shm-host` imports the key expression as its topic
//! `frames`, and its `frames-subscriber` components validate and read each
//! frame in place, zero copy, as if a local component had published it:
//!
//! ```text
//! shm-host pubsub --zenoh-listen tcp/127.0.0.1:7447 --zenoh-no-multicast \
//!     --zenoh-import camera/frames=frames \
//!     --subscriber frames-subscriber.wasm --subscriber frames-subscriber.wasm
//! cargo run -p shm-host --features zenoh --example zenoh-camera -- \
//!     --connect tcp/127.0.0.1:7447 --frames 30
//! ```
//!
//! Each frame is the `Frame` record of `examples/frames/wit/frame.wit`,
//! built in place into one reused buffer in the flat format, and sent as
//! one sample with the bridge's header (stream, sequence number), then the
//! end of the stream, which closes the topic on the other side.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use frames::{build_frame, Frame};
use shm_guest::flat_layout::Builder;
use shm_host::bridge::wire::{new_stream_id, Header, Kind};
use shm_host::bridge::zenoh::qos::CongestionControl;
use shm_host::bridge::zenoh::Wait;
use shm_host::bridge::Endpoints;

#[derive(Parser)]
#[command(about = "Publishes camera frames to a Zenoh key expression")]
struct Args {
    /// The Zenoh endpoint of the host to feed.
    #[arg(long, default_value = "tcp/127.0.0.1:7447")]
    connect: String,
    /// The key expression.
    #[arg(long, default_value = "camera/frames")]
    key: String,
    /// Frames to send.
    #[arg(long, default_value_t = 30)]
    frames: u32,
    /// Frame width in pixels.
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 480)]
    height: u32,
    /// Milliseconds between frames.
    #[arg(long, default_value_t = 0)]
    interval: u64,
    /// Seconds to wait for a subscriber before sending.
    #[arg(long, default_value_t = 30)]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zenoh-camera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let config = Endpoints::default()
        .connect(&args.connect)
        .multicast_scouting(false)
        .config()?;
    let session = shm_host::bridge::zenoh::open(config)
        .wait()
        .map_err(|e| anyhow::anyhow!("opening the Zenoh session: {e}"))?;
    let publisher = session
        .declare_publisher(args.key.clone())
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(|e| anyhow::anyhow!("declaring the publisher on {}: {e}", args.key))?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    while !publisher
        .matching_status()
        .wait()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .matching()
    {
        if Instant::now() >= deadline {
            bail!("no subscriber of {} within {} s", args.key, args.wait);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stream = new_stream_id();
    let pixels = args.width as usize * args.height as usize;
    let mut buffer = vec![0u8; pixels + 256];
    for n in 0..args.frames {
        // The frame is written in place, as a camera driver would fill its
        // buffer; the sample takes a copy of the bytes used.
        let mut builder = Builder::<u32>::new(&mut buffer);
        let mut frame = builder.record::<Frame>().context("starting a frame")?;
        build_frame(n, args.width, args.height, &mut frame).context("building a frame")?;
        let used = builder.finish().context("finishing a frame")?;
        let header = Header {
            kind: Kind::Message,
            stream,
            sequence: u64::from(n),
        };
        publisher
            .put(&buffer[..used])
            .attachment(header.encode().to_vec())
            .wait()
            .map_err(|e| anyhow::anyhow!("sending frame {n}: {e}"))?;
        if args.interval > 0 {
            std::thread::sleep(Duration::from_millis(args.interval));
        }
    }
    let end = Header {
        kind: Kind::End,
        stream,
        sequence: u64::from(args.frames),
    };
    publisher
        .put(Vec::<u8>::new())
        .attachment(end.encode().to_vec())
        .wait()
        .map_err(|e| anyhow::anyhow!("sending the end: {e}"))?;
    println!(
        "zenoh-camera: sent {} frames of {}x{} to {}",
        args.frames, args.width, args.height, args.key
    );
    // Closing sends what is still queued (Zenoh drains its links).
    session
        .close()
        .wait()
        .map_err(|e| anyhow::anyhow!("closing the session: {e}"))?;
    Ok(())
}
