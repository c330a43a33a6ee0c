//! Throughput: messages per second from one publisher component to 1, 2, 4
//! and 8 subscriber components, every component in a store of its own on a
//! thread of its own, each running its loop inside the guest as a real
//! component does (`publish-many`, `receive-many` of the bench sink):
//!
//! - `mapped`: per-message mapping. The publisher allocates a block
//!   (waiting for a free one), attaches it for writing, writes the sequence
//!   number, commits and publishes; each subscriber takes it with `next`,
//!   attaches it read-only (one `mmap`), reads the first byte and drops it.
//!   The subscribers time every attach inside the guest; the summary gives
//!   the median.
//! - `pooled`: a pooled topic, one call per side per message
//!   (`publish-and-loan`, `next-pooled-after`), waiting where the queue is
//!   empty or full.
//! - `ring`: a pooled topic through lease rings: the publisher publishes in
//!   batches of up to 8 (`publish-loans`, one host call per batch), each
//!   subscriber took its subscription as a ring of 8 and takes and
//!   releases without a host call while messages wait (`wait-ring` when
//!   its ring is empty).
//!
//! One criterion iteration is one message delivered to every subscriber.
//! Environment: `THROUGHPUT_SIZES` (default `4K,1M`), `THROUGHPUT_SUBS`
//! (`1,2,4,8`), `THROUGHPUT_MODES` (`mapped,pooled,ring`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shm_bench::{build_guests, export, list, parse_size};
use shm_host::link::{self, GuestState};
use shm_host::wasmtime::component::{Component, Linker, TypedFunc};
use shm_host::wasmtime::{Engine, Store};
use shm_host::wasmtime_wasi::WasiCtxBuilder;
use shm_host::{Grants, ShmConfig, ShmHost};

const SINK: &str = "zero-copy:bench/sink@0.1.0";
/// Blocks in the publisher's pool.
const POOL: u32 = 12;
/// Ring mode: each ring's capacity, and the publisher's largest batch.
const RING: u32 = 8;

/// A bench-sink instance in a store of its own.
struct Guest {
    store: Store<GuestState>,
    open_publisher: TypedFunc<(&'static str, u32, u32, bool), (bool,)>,
    publish_many: TypedFunc<(u64, u32), (bool,)>,
    publish_batches: TypedFunc<(u64, u32, u32), (bool,)>,
    open_subscriber: TypedFunc<(&'static str, bool), (bool,)>,
    ring_subscribe: TypedFunc<(&'static str, u32), (bool,)>,
    receive_many: TypedFunc<(u32,), (Option<(u64, u64)>,)>,
}

impl Guest {
    fn new(
        host: &ShmHost,
        engine: &Engine,
        linker: &Linker<GuestState>,
        sink: &Component,
        name: &str,
    ) -> Guest {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stderr();
        let mut store =
            shm_host::new_store(engine, GuestState::new(host, name, wasi, Grants::all()));
        let instance = linker.instantiate(&mut store, sink).expect("sink");
        macro_rules! typed {
            ($name:literal) => {
                export(&mut store, &instance, SINK, $name)
                    .typed(&store)
                    .expect($name)
            };
        }
        Guest {
            open_publisher: typed!("open-publisher"),
            publish_many: typed!("publish-many"),
            publish_batches: typed!("publish-batches"),
            open_subscriber: typed!("open-subscriber"),
            ring_subscribe: typed!("ring-subscribe"),
            receive_many: typed!("receive-many"),
            store,
        }
    }
}

/// Mode, payload, subscribers, messages per second, median attach (ns).
type Row = (String, String, usize, f64, u64);
static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

fn throughput(c: &mut Criterion) {
    let host = ShmHost::new(ShmConfig::default().concurrency(false));
    let engine = host.engine().expect("engine");
    let (_, sink) = build_guests();
    let sink = link::load_component(&engine, &sink).expect("sink");
    let linker = link::linker(&engine).expect("linker");
    let sizes = list("THROUGHPUT_SIZES", "4K,1M");
    let subs: Vec<usize> = list("THROUGHPUT_SUBS", "1,2,4,8")
        .iter()
        .map(|s| s.parse().expect("a subscriber count"))
        .collect();
    let modes = list("THROUGHPUT_MODES", "mapped,pooled,ring");
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for size_label in &sizes {
        let size = parse_size(size_label);
        for mode in &modes {
            let ring = mode == "ring";
            let pooled = mode == "pooled" || ring;
            for &n in &subs {
                let topic: &'static str =
                    Box::leak(format!("throughput-{mode}-{size}-{n}").into_boxed_str());
                let mut publisher = Guest::new(&host, &engine, &linker, &sink, "publisher");
                let (ok,) = publisher
                    .open_publisher
                    .call(&mut publisher.store, (topic, POOL, size, pooled))
                    .expect("open-publisher");
                assert!(ok, "open-publisher failed");
                let mut subscribers: Vec<Guest> = (0..n)
                    .map(|i| {
                        let mut s =
                            Guest::new(&host, &engine, &linker, &sink, &format!("subscriber#{i}"));
                        let (ok,) = if ring {
                            s.ring_subscribe
                                .call(&mut s.store, (topic, RING))
                                .expect("ring-subscribe")
                        } else {
                            s.open_subscriber
                                .call(&mut s.store, (topic, pooled))
                                .expect("open-subscriber")
                        };
                        assert!(ok, "open-subscriber failed");
                        s
                    })
                    .collect();
                let mut seq = 0u64;
                let mut attach_medians = Vec::new();
                let mut rates = Vec::new();
                let id = BenchmarkId::new(mode.as_str(), format!("{size_label}x{n}"));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let count = u32::try_from(iters).expect("iterations fit u32");
                        let first = seq;
                        seq += iters;
                        let start = Instant::now();
                        let results: Vec<Option<(u64, u64)>> = std::thread::scope(|scope| {
                            let readers: Vec<_> = subscribers
                                .iter_mut()
                                .map(|s| {
                                    scope.spawn(move || {
                                        s.receive_many
                                            .call(&mut s.store, (count,))
                                            .expect("receive-many")
                                            .0
                                    })
                                })
                                .collect();
                            let (ok,) = if ring {
                                publisher
                                    .publish_batches
                                    .call(&mut publisher.store, (first, count, RING))
                                    .expect("publish-batches")
                            } else {
                                publisher
                                    .publish_many
                                    .call(&mut publisher.store, (first, count))
                                    .expect("publish-many")
                            };
                            assert!(ok, "publish-many failed");
                            readers
                                .into_iter()
                                .map(|r| r.join().expect("a reader"))
                                .collect()
                        });
                        let elapsed = start.elapsed();
                        // Each message's first byte is its sequence
                        // number's low byte.
                        let expected: u64 = (first..seq).map(|s| s & 0xFF).sum();
                        for r in &results {
                            let (sum, attach) = r.expect("every message received");
                            assert_eq!(sum, expected, "the messages read back");
                            attach_medians.push(attach);
                        }
                        rates.push(iters as f64 / elapsed.as_secs_f64());
                        elapsed
                    })
                });
                // The measurement: the last 10 calls (the others warmed up).
                let keep = rates.len().saturating_sub(10);
                rates.drain(..keep);
                attach_medians.drain(..attach_medians.len().saturating_sub(10 * n));
                rates.sort_by(f64::total_cmp);
                attach_medians.sort_unstable();
                ROWS.lock().unwrap().push((
                    mode.clone(),
                    size_label.clone(),
                    n,
                    rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN),
                    attach_medians
                        .get(attach_medians.len() / 2)
                        .copied()
                        .unwrap_or(0),
                ));
                drop(subscribers);
                drop(publisher);
            }
        }
    }
    group.finish();
    summary();
}

/// A Markdown table: messages per second (every subscriber got each), and
/// for per-message mapping the median attach time inside the subscribers.
fn summary() {
    let rows = ROWS.lock().unwrap();
    println!();
    println!("| mode | payload | subscribers | messages/s | median attach (guest-timed) |");
    println!("|---|---|---|---|---|");
    for (mode, size, n, rate, attach) in rows.iter() {
        let attach = if mode == "mapped" {
            format!("{:.1} us", *attach as f64 / 1e3)
        } else {
            "- (no attach)".into()
        };
        println!("| {mode} | {size} | {n} | {rate:.0} | {attach} |");
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
