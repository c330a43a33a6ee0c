//! What recording a topic costs its publisher (issue #25: "recording 100
//! messages of 16 MiB does not change the publisher's cost beyond noise").
//!
//! One run publishes 100 messages of 16 MiB from host code (a
//! `NativePublisher`, pool of 8 blocks: one copy into a pool block per
//! message) to one subscriber that reads every message (a
//! `NativeSubscriber` on a thread of its own, one copy out), and measures
//! the publisher's time for the 100 publishes. Side by side in one run:
//! - `plain`: no recorder;
//! - `recorded`: a `Recorder` on the same topic writing every message to
//!   an MCAP file (a temporary directory), with its own drop-oldest queue
//!   and its taking and writing threads.
//!
//! The recorder's drops are printed after each run (a message it dropped
//! is one it did not make the publisher wait for). Results are in
//! `shm-host/BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shm_host::pubsub::native::{NativePublisher, NativeSubscriber, Next};
use shm_host::record::{RecordSchema, Recorder};
use shm_host::ShmHost;

const MESSAGE: usize = 16 << 20;
const MESSAGES: u64 = 100;
const POOL: u32 = 8;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shm-record-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Publishes `MESSAGES` messages to a reading subscriber, with a recorder
/// when `record`; returns the publisher's time.
fn run(payload: &[u8], record: bool) -> Duration {
    let host = ShmHost::default();
    let mut reader = NativeSubscriber::new(&host, "reader", "frames").expect("subscribe");
    let recorder = record.then(|| {
        let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/frames/wit");
        let schema = RecordSchema::from_wit(&wit, "frame", "u32").expect("the frames WIT");
        let path = scratch().join("frames.mcap");
        Recorder::start(&host, "frames", &path, schema).expect("a recorder")
    });
    let reading = std::thread::spawn(move || {
        let mut bytes = Vec::with_capacity(MESSAGE);
        let mut got = 0u64;
        loop {
            bytes.clear();
            match reader.next_into(&mut bytes, Duration::from_secs(60)) {
                Ok(Next::Message) => got += 1,
                Ok(Next::Ended) => return got,
                other => panic!("the subscriber: {other:?}"),
            }
        }
    });
    let mut publisher =
        NativePublisher::new(&host, "camera", "frames", POOL, MESSAGE as u32).expect("publish");
    let start = Instant::now();
    for _ in 0..MESSAGES {
        publisher
            .publish_within(&[payload], Duration::from_secs(60))
            .expect("published");
    }
    let spent = start.elapsed();
    drop(publisher);
    assert_eq!(reading.join().expect("the subscriber"), MESSAGES);
    if let Some(recorder) = recorder {
        let stats = recorder.finish().expect("the recording");
        eprintln!("  {stats}");
    }
    spent
}

fn bench(c: &mut Criterion) {
    let payload: Vec<u8> = (0..MESSAGE).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("record-16MiB-x100");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(MESSAGES * MESSAGE as u64));
    for (name, record) in [("plain", false), ("recorded", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(&payload, record)).sum())
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(scratch());
}

criterion_group!(benches, bench);
criterion_main!(benches);
