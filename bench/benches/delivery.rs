//! Delivery cost: one payload to N subscriber components, zero copy against
//! the canonical-ABI copy, side by side in one run.
//!
//! - `zero-copy`: a publisher component (the probe) owns a block filled with
//!   the payload. Per message and subscriber the host has the publisher
//!   clone the block (a read-only handle, `clone-block`), takes the clone out
//!   of the publisher (`give`), moves it into the subscriber's store
//!   (`link::move_block`: a ledger transfer, no bytes move), and calls the
//!   subscriber's `consume-block(borrow<memory-block>, stride)`, which
//!   attaches the block read-only (one `mmap` of the block's pages into its
//!   storage), reads it, and detaches; then the host drops the handle.
//! - `copy`: the same payload, held by the host, passed by value to the
//!   subscriber's `consume-list(list<u8>, stride)`: the canonical ABI
//!   allocates in the subscriber (`cabi_realloc`) and copies the bytes in;
//!   the subscriber reads them the same way and frees them.
//! - `pooled`: a pooled topic. A bench-sink instance publishes (a pooled
//!   publisher whose two pool blocks hold the payload); every subscriber
//!   mapped the pool once when it subscribed. Per message the host calls the
//!   publisher's `pooled-publish` (allocate a free pool block and publish
//!   it: one read-only clone queued per subscriber), then each subscriber's
//!   `pooled-consume(stride)`, which takes the message in place
//!   (`try-next-pooled`: no mapping), reads it, and releases it.
//! - `pooled-write`: the whole pooled cycle a real publisher goes through:
//!   as `pooled`, but per message the publisher's `pooled-publish-seq`
//!   allocates a free pool block, attaches it for writing, writes the
//!   sequence number into its first 8 bytes, commits and publishes; each
//!   subscriber checks that the first byte it reads is that sequence
//!   number's low byte.
//! - `pooled-loan`: the full cycle with one call per side per message: the
//!   publisher's `loan-publish-seq` writes the sequence number into the
//!   block lent by its previous call and publishes it while taking the next
//!   loan (`publish-loan`, one host call); each subscriber's
//!   `pooled-consume-after` releases the message it held and takes the next
//!   (`try-next-pooled-after`, one host call).
//! - `pooled-loop`: as `pooled-loan`, with the loop inside the guests, as a
//!   component that publishes or subscribes runs it: the host calls each
//!   guest once per 8 messages; figures are per message.
//! - `pooled-ring`: the full cycle with lease rings: per 8 messages the
//!   publisher's `loan-publish-batch` writes the sequence numbers into 8
//!   blocks lent by its previous call and publishes them with one host
//!   call (`publish-loans`, which lends the next 8); each subscriber took
//!   its subscription as a lease ring (`map-ring`, capacity 8) and its
//!   `ring-consume` takes, reads and releases the 8 messages in its ring
//!   with no host call. Figures are per message.
//! - `iceoryx2`: the reference zero-copy pub/sub (iceoryx2 0.10, an `ipc`
//!   service in this process, no wasm): the publisher loans an
//!   uninitialized slice of the payload size, writes the sequence number
//!   into its first 8 bytes and sends it; each subscriber receives it,
//!   reads as the others do and drops it.
//! - `guest-copy`: the copy between two components, as a composition has it
//!   today: each subscriber is a bench-relay composed with a bench-sink
//!   (`wac plug`, one component); the relay holds the payload in its own
//!   memory and passes it to the sink's `consume-list`, so the canonical ABI
//!   copies it from one component's memory into the other's. Needs `wac`
//!   (`cargo install wac-cli`); without it the mode is skipped.
//!
//! Both read with a `stride`: `first` reads one byte (the cost of delivery
//! itself), `page` one byte per 4 KiB page (every page touched once).
//!
//! One criterion iteration delivers one message to every subscriber; the
//! summary printed at the end divides by the number of subscribers.
//! Environment: `DELIVERY_SIZES` (e.g. `4K,1M`), `DELIVERY_SUBS` (e.g.
//! `1,8`), `DELIVERY_READS` (`first,page`), `DELIVERY_MODES`
//! (`zero-copy,pooled,pooled-write,pooled-loan,pooled-loop,pooled-ring,iceoryx2,copy,guest-copy`)
//! trim the grid. The summary is also written as CSV to
//! `target/criterion/delivery-summary.csv` (`scripts/plot-delivery` draws it).
//!
//! Only criterion's measurement samples count in the summary (its warm-up
//! calls of the routine are left out).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shm_bench::{build_guests, export, list, median, parse_size, root, time};
use shm_host::link::{self, GuestState};
use shm_host::wasmtime::component::{Component, Func, Linker, ResourceAny, TypedFunc, Val};
use shm_host::wasmtime::{Engine, Store};
use shm_host::wasmtime_wasi::WasiCtxBuilder;
use shm_host::{Grants, ShmConfig, ShmHost};

const KIB: u32 = 1024;
/// Criterion samples per benchmark.
const SAMPLES: usize = 10;
const MIB: u32 = 1024 * 1024;
/// Messages per host call in the `pooled-loop` mode.
const LOOP: u32 = 8;

/// The `wac` command, if installed.
fn wac() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home.map(|h| h.join("bin")));
    candidates.map(|d| d.join("wac")).find(|p| p.is_file())
}

/// The relay composed with a bench sink (`wac plug`), or `None` without
/// `wac`.
fn compose(sink: &Path) -> Option<PathBuf> {
    let Some(wac) = wac() else {
        eprintln!(
            "delivery: `wac` not found (cargo install wac-cli): the guest-copy mode is skipped"
        );
        return None;
    };
    let relay = sink.with_file_name("bench_relay.wasm");
    let out = sink.with_file_name("bench_relay_sink.wasm");
    let status = Command::new(wac)
        .arg("plug")
        .arg(&relay)
        .arg("--plug")
        .arg(sink)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("running wac");
    assert!(status.success(), "wac plug failed");
    Some(out)
}

struct World {
    host: ShmHost,
    engine: Engine,
    linker: Linker<GuestState>,
    probe: Component,
    sink: Component,
    /// The relay composed with a sink (guest-copy mode), if `wac` is there.
    relay: Option<Component>,
}

/// A composed relay and sink in a store of its own (guest-copy mode).
struct Relay {
    store: Store<GuestState>,
    send: TypedFunc<(u32,), (u64,)>,
}

impl Relay {
    fn new(w: &World, name: &str, size: u32) -> Relay {
        let component = w.relay.as_ref().expect("the composed relay");
        let mut store = guest_store(w, name);
        let instance = w.linker.instantiate(&mut store, component).expect("relay");
        let iface = "zero-copy:bench/relay@0.1.0";
        let prepare = export(&mut store, &instance, iface, "prepare")
            .typed::<(u32,), ()>(&store)
            .expect("prepare type");
        prepare.call(&mut store, (size,)).expect("prepare");
        let send = export(&mut store, &instance, iface, "send")
            .typed(&store)
            .expect("send type");
        Relay { store, send }
    }

    /// Sends the payload from the relay's memory into the sink's.
    fn send(&mut self, stride: u32) -> u64 {
        self.send.call(&mut self.store, (stride,)).expect("send").0
    }
}

/// A store of its own for a guest of the benchmark, its stderr shown (a
/// guest's reason for a failure).
fn guest_store(w: &World, name: &str) -> Store<GuestState> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stderr();
    shm_host::new_store(
        &w.engine,
        GuestState::new(&w.host, name, wasi, Grants::all()),
    )
}

fn call(store: &mut Store<GuestState>, f: Func, args: &[Val]) -> Val {
    let mut out = vec![Val::Bool(false); f.ty(&*store).results().len()];
    f.call(&mut *store, args, &mut out).expect("call");
    out.into_iter().next().unwrap_or(Val::Bool(false))
}

fn ok_u32(v: Val) -> u32 {
    match v {
        Val::Result(Ok(Some(b))) => match *b {
            Val::U32(x) => x,
            other => panic!("expected u32, got {other:?}"),
        },
        other => panic!("expected ok(u32), got {other:?}"),
    }
}

/// The publisher: a probe holding one block filled with the payload.
struct Publisher {
    store: Store<GuestState>,
    slot: u32,
    clone: Func,
    give: Func,
}

impl Publisher {
    fn new(w: &World, size: u32) -> Publisher {
        let mut store = shm_host::new_store(
            &w.engine,
            GuestState::new(&w.host, "publisher", WasiCtxBuilder::new(), Grants::all()),
        );
        let instance = w.linker.instantiate(&mut store, &w.probe).expect("probe");
        let iface = "zero-copy:examples/probe@0.1.0";
        let f = |store: &mut Store<GuestState>, name| export(store, &instance, iface, name);
        let (create, attach, fill, detach) = (
            f(&mut store, "create"),
            f(&mut store, "attach"),
            f(&mut store, "fill"),
            f(&mut store, "detach"),
        );
        let (alloc, donate) = (f(&mut store, "alloc"), f(&mut store, "donate"));
        let (clone, give) = (f(&mut store, "clone-block"), f(&mut store, "give"));
        let slot = ok_u32(call(&mut store, create, &[Val::U32(size)]));
        // Storage for the write attach, then the payload written in place.
        let need = size + 2 * 65536;
        let Val::U32(at) = call(&mut store, alloc, &[Val::U32(need)]) else {
            panic!("alloc")
        };
        call(&mut store, donate, &[Val::U32(at), Val::U32(need)]);
        let area = call(
            &mut store,
            attach,
            &[Val::U32(slot), Val::Flags(vec!["write".into()])],
        );
        let Val::Result(Ok(Some(area))) = area else {
            panic!("attach: {area:?}")
        };
        let Val::Record(fields) = *area else {
            panic!("memory-area")
        };
        let address = match fields.iter().find(|(k, _)| k == "address") {
            Some((_, Val::U32(a))) => *a,
            other => panic!("{other:?}"),
        };
        call(
            &mut store,
            fill,
            &[Val::U32(address), Val::U32(size), Val::U8(1)],
        );
        call(&mut store, detach, &[Val::U32(slot), Val::U32(size)]);
        Publisher {
            store,
            slot,
            clone,
            give,
        }
    }

    /// A read-only clone of the payload's block, moved out of the publisher.
    fn hand_out(&mut self) -> ResourceAny {
        let slot = ok_u32(call(&mut self.store, self.clone, &[Val::U32(self.slot)]));
        match call(&mut self.store, self.give, &[Val::U32(slot)]) {
            Val::Resource(r) => r,
            other => panic!("give: {other:?}"),
        }
    }
}

/// A bench-sink instance in a store of its own: a subscriber, or the
/// publisher of the pooled mode.
struct Subscriber {
    store: Store<GuestState>,
    consume_block: Func,
    consume_list: TypedFunc<(&'static [u8], u32), (u64,)>,
    pooled_publisher: TypedFunc<(&'static str, u32, u32), (bool,)>,
    pooled_publish: TypedFunc<(), (bool,)>,
    pooled_publish_seq: TypedFunc<(u64,), (bool,)>,
    pooled_subscribe: TypedFunc<(&'static str,), (bool,)>,
    pooled_consume: TypedFunc<(u32,), (Option<u64>,)>,
    loan_publish_seq: TypedFunc<(u64, u32), (bool,)>,
    pooled_consume_after: TypedFunc<(u32, u32), (Option<u64>,)>,
    loan_publish_batch: TypedFunc<(u64, u32), (bool,)>,
    ring_subscribe: TypedFunc<(&'static str, u32), (bool,)>,
    ring_consume: TypedFunc<(u32, u32), (Option<u64>,)>,
}

const SINK: &str = "zero-copy:bench/sink@0.1.0";

impl Subscriber {
    fn new(w: &World, name: &str) -> Subscriber {
        let mut store = guest_store(w, name);
        let instance = w.linker.instantiate(&mut store, &w.sink).expect("sink");
        let consume_block = export(&mut store, &instance, SINK, "consume-block");
        let consume_list = export(&mut store, &instance, SINK, "consume-list")
            .typed(&store)
            .expect("consume-list type");
        let pooled_publisher = export(&mut store, &instance, SINK, "pooled-publisher")
            .typed(&store)
            .expect("pooled-publisher type");
        let pooled_publish = export(&mut store, &instance, SINK, "pooled-publish")
            .typed(&store)
            .expect("pooled-publish type");
        let pooled_publish_seq = export(&mut store, &instance, SINK, "pooled-publish-seq")
            .typed(&store)
            .expect("pooled-publish-seq type");
        let pooled_subscribe = export(&mut store, &instance, SINK, "pooled-subscribe")
            .typed(&store)
            .expect("pooled-subscribe type");
        let pooled_consume = export(&mut store, &instance, SINK, "pooled-consume")
            .typed(&store)
            .expect("pooled-consume type");
        let loan_publish_seq = export(&mut store, &instance, SINK, "loan-publish-seq")
            .typed(&store)
            .expect("loan-publish-seq type");
        let pooled_consume_after = export(&mut store, &instance, SINK, "pooled-consume-after")
            .typed(&store)
            .expect("pooled-consume-after type");
        let loan_publish_batch = export(&mut store, &instance, SINK, "loan-publish-batch")
            .typed(&store)
            .expect("loan-publish-batch type");
        let ring_subscribe = export(&mut store, &instance, SINK, "ring-subscribe")
            .typed(&store)
            .expect("ring-subscribe type");
        let ring_consume = export(&mut store, &instance, SINK, "ring-consume")
            .typed(&store)
            .expect("ring-consume type");
        Subscriber {
            store,
            loan_publish_batch,
            ring_subscribe,
            ring_consume,
            loan_publish_seq,
            pooled_consume_after,
            consume_block,
            consume_list,
            pooled_publisher,
            pooled_publish,
            pooled_publish_seq,
            pooled_subscribe,
            pooled_consume,
        }
    }

    /// Pooled mode: this instance becomes the pooled publisher of `topic`.
    fn open_pooled_publisher(&mut self, topic: &'static str, size: u32, elements: u32) {
        let (ok,) = self
            .pooled_publisher
            .call(&mut self.store, (topic, elements, size))
            .expect("pooled-publisher");
        assert!(ok, "the pooled publisher could not be opened");
    }

    /// Pooled mode: publishes the next message.
    fn publish_pooled(&mut self) {
        let (ok,) = self
            .pooled_publish
            .call(&mut self.store, ())
            .expect("pooled-publish");
        assert!(ok, "pooled-publish failed");
    }

    /// Pooled mode: subscribes to `topic` and maps its pool.
    /// Pooled mode with a writing publisher: allocate, attach for writing,
    /// write `seq` into the first 8 bytes, commit, publish.
    fn publish_pooled_seq(&mut self, seq: u64) {
        let (ok,) = self
            .pooled_publish_seq
            .call(&mut self.store, (seq,))
            .expect("pooled-publish-seq");
        assert!(ok, "pooled-publish-seq failed");
    }

    fn subscribe_pooled(&mut self, topic: &'static str) {
        let (ok,) = self
            .pooled_subscribe
            .call(&mut self.store, (topic,))
            .expect("pooled-subscribe");
        assert!(ok, "pooled-subscribe failed");
    }

    /// Loan modes: publishes `count` messages numbered from `seq`.
    fn loan_publish_seq(&mut self, seq: u64, count: u32) {
        let (ok,) = self
            .loan_publish_seq
            .call(&mut self.store, (seq, count))
            .expect("loan-publish-seq");
        assert!(ok, "loan-publish-seq failed");
    }

    /// Ring mode: publishes `count` messages numbered from `seq` with one
    /// host call.
    fn loan_publish_batch(&mut self, seq: u64, count: u32) {
        let (ok,) = self
            .loan_publish_batch
            .call(&mut self.store, (seq, count))
            .expect("loan-publish-batch");
        assert!(ok, "loan-publish-batch failed");
    }

    /// Ring mode: subscribes to `topic` through a lease ring.
    fn subscribe_ring(&mut self, topic: &'static str, capacity: u32) {
        let (ok,) = self
            .ring_subscribe
            .call(&mut self.store, (topic, capacity))
            .expect("ring-subscribe");
        assert!(ok, "ring-subscribe failed");
    }

    /// Ring mode: takes, reads and releases `count` messages in the ring.
    fn receive_ring(&mut self, stride: u32, count: u32) -> u64 {
        let (sum,) = self
            .ring_consume
            .call(&mut self.store, (stride, count))
            .expect("ring-consume");
        sum.expect("messages in the ring")
    }

    /// Loan modes: takes `count` messages, each releasing the one before.
    fn receive_after(&mut self, stride: u32, count: u32) -> u64 {
        let (sum,) = self
            .pooled_consume_after
            .call(&mut self.store, (stride, count))
            .expect("pooled-consume-after");
        sum.expect("queued messages")
    }

    /// Pooled mode: reads the queued message in place and releases it.
    fn receive_pooled(&mut self, stride: u32) -> u64 {
        let (sum,) = self
            .pooled_consume
            .call(&mut self.store, (stride,))
            .expect("pooled-consume");
        sum.expect("a queued message")
    }

    /// Zero copy: receives the block, reads it in place, drops it.
    fn receive_block(&mut self, publisher: &mut Publisher, stride: u32) -> u64 {
        let block = publisher.hand_out();
        let block = link::move_block(
            block,
            publisher.store.as_context_mut(),
            self.store.as_context_mut(),
        )
        .expect("move");
        let sum = match call(
            &mut self.store,
            self.consume_block,
            &[Val::Resource(block), Val::U32(stride)],
        ) {
            Val::Result(Ok(Some(v))) => match *v {
                Val::U64(x) => x,
                other => panic!("{other:?}"),
            },
            other => panic!("consume-block: {other:?}"),
        };
        // Drop the subscriber's handle as a guest's `resource.drop` does:
        // through the resource's destructor (out of the table and the
        // ledger).
        block.resource_drop(&mut self.store).expect("drop");
        sum
    }

    /// The canonical-ABI copy: the payload passed by value.
    fn receive_list(&mut self, payload: &'static [u8], stride: u32) -> u64 {
        let (sum,) = self
            .consume_list
            .call(&mut self.store, (payload, stride))
            .expect("consume-list");
        sum
    }
}

use shm_host::wasmtime::AsContextMut;

/// Process memory from /proc/self/smaps_rollup, in KiB.
#[derive(Clone, Copy, Debug, Default)]
struct Mem {
    rss: i64,
    pss_anon: i64,
    pss_shmem: i64,
}

fn mem() -> Mem {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    Mem {
        rss: field("Rss:"),
        pss_anon: field("Pss_Anon:"),
        pss_shmem: field("Pss_Shmem:"),
    }
}

/// What the summary reports for one configuration.
#[derive(Default)]
struct Row {
    /// Mean time per iteration (one message to every subscriber) of each
    /// criterion sample.
    samples: Vec<f64>,
    /// Memory after the run minus memory before the setup.
    mem: (i64, i64, i64),
}

static ROWS: Mutex<Vec<(String, Row)>> = Mutex::new(Vec::new());

fn label(size: u32) -> String {
    if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

/// The inverse of [`label`].
fn label_bytes(label: &str) -> u64 {
    let (n, unit) = label.split_once(' ').expect("a label");
    let n: u64 = n.parse().expect("a label's number");
    n * if unit == "MiB" {
        u64::from(MIB)
    } else {
        u64::from(KIB)
    }
}

fn delivery(c: &mut Criterion) {
    // The ShmHost comes before the process's first Engine.
    // No guest here uses streams: engines without concurrency support make
    // every component call cheaper, for every mode alike
    // (`DELIVERY_CONCURRENCY=1` keeps it on).
    let host = ShmHost::new(
        ShmConfig::default().concurrency(std::env::var_os("DELIVERY_CONCURRENCY").is_some()),
    );
    let engine = host.engine().expect("engine");
    let (probe, sink) = build_guests();
    let mut modes = list(
        "DELIVERY_MODES",
        "zero-copy,pooled,pooled-write,pooled-loan,pooled-loop,pooled-ring,iceoryx2,copy,guest-copy",
    );
    let iceoryx = iceoryx::Node::new();
    let relay = if modes.iter().any(|m| m == "guest-copy") {
        compose(&sink).map(|c| link::load_component(&engine, &c).expect("composed relay"))
    } else {
        None
    };
    if relay.is_none() {
        modes.retain(|m| m != "guest-copy");
    }
    let world = World {
        probe: link::load_component(&engine, &probe).expect("probe"),
        sink: link::load_component(&engine, &sink).expect("sink"),
        relay,
        linker: link::linker(&engine).expect("linker"),
        host,
        engine,
    };

    let sizes: Vec<u32> = list("DELIVERY_SIZES", "4K,1M,16M,64M")
        .iter()
        .map(|s| parse_size(s))
        .collect();
    let subs: Vec<usize> = list("DELIVERY_SUBS", "1,2,8")
        .iter()
        .map(|s| s.parse().expect("a subscriber count"))
        .collect();
    let reads = list("DELIVERY_READS", "first,page");

    // The copy's payload, held by the host: one buffer for every size (the
    // typed function takes a `&'static [u8]`).
    let max = sizes.iter().copied().max().unwrap_or(0) as usize;
    let payload_buffer: &'static [u8] = Box::leak(vec![1u8; max].into_boxed_slice());

    for read in &reads {
        let mut group = c.benchmark_group(format!("delivery/{read}"));
        group
            .sample_size(SAMPLES)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        for &size in &sizes {
            let stride = if read == "page" { 4096 } else { size };
            for &n in &subs {
                for mode in &modes {
                    // Each mode sets up only what it uses, so that the memory
                    // figures are its own.
                    let before = mem();
                    let mut publisher = (mode == "zero-copy").then(|| Publisher::new(&world, size));
                    let payload = &payload_buffer[..size as usize];
                    let mut subscribers: Vec<Subscriber> = if mode == "guest-copy" {
                        Vec::new()
                    } else {
                        (0..n)
                            .map(|i| Subscriber::new(&world, &format!("subscriber#{i}")))
                            .collect()
                    };
                    let mut relays: Vec<Relay> = if mode == "guest-copy" {
                        (0..n)
                            .map(|i| Relay::new(&world, &format!("relay#{i}"), size))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    // Messages per host call to each guest (loop mode).
                    let ring = mode == "pooled-ring";
                    let batch: u32 = if mode == "pooled-loop" || ring {
                        LOOP
                    } else {
                        1
                    };
                    let loans = mode == "pooled-loan" || mode == "pooled-loop" || ring;
                    let mut pooled = None;
                    if mode == "pooled" || mode == "pooled-write" || loans {
                        let topic: &'static str =
                            Box::leak(format!("{read}-{size}-{n}-{mode}").into_boxed_str());
                        let mut p = Subscriber::new(&world, "pooled-publisher");
                        // A loan and the message the subscribers hold are
                        // out of the pool, besides the queued ones.
                        // A ring's released batch comes back when the
                        // publisher wants blocks (the host reads the rings).
                        let elements = if loans { batch + 3 } else { 2 };
                        p.open_pooled_publisher(topic, size, elements);
                        for s in subscribers.iter_mut() {
                            if ring {
                                s.subscribe_ring(topic, batch);
                            } else {
                                s.subscribe_pooled(topic);
                            }
                        }
                        pooled = Some(p);
                    }
                    let mut ice = (mode == "iceoryx2")
                        .then(|| iceoryx.as_ref().and_then(|node| node.topology(size, n)))
                        .flatten();
                    if mode == "iceoryx2" && ice.is_none() {
                        eprintln!(
                            "delivery: iceoryx2 could not serve {} to {n}: skipped",
                            label(size)
                        );
                        continue;
                    }
                    let expected = u64::from(size.div_ceil(stride));
                    let writing = mode == "pooled-write" || loans || mode == "iceoryx2";
                    let mut seq = 0u64;
                    let mut row = Row::default();
                    let id = BenchmarkId::new(mode.as_str(), format!("{}x{n}", label(size)));
                    group.bench_function(id.clone(), |b| {
                        b.iter_custom(|iters| {
                            let start = Instant::now();
                            for _ in 0..iters {
                                // The first byte read: the sequence number's
                                // low byte instead of a one.
                                let first = seq + 1;
                                seq += u64::from(batch);
                                let expected: u64 = if writing {
                                    (first..=seq).map(|s| expected - 1 + (s & 0xFF)).sum()
                                } else {
                                    expected
                                };
                                if let Some(ice) = ice.as_mut() {
                                    let sums = ice.deliver(first, stride);
                                    for sum in sums {
                                        assert_eq!(sum, expected, "the payload read back");
                                    }
                                    continue;
                                }
                                if let Some(p) = pooled.as_mut() {
                                    if ring {
                                        p.loan_publish_batch(first, batch);
                                    } else if loans {
                                        p.loan_publish_seq(first, batch);
                                    } else if writing {
                                        p.publish_pooled_seq(first);
                                    } else {
                                        p.publish_pooled();
                                    }
                                }
                                for r in relays.iter_mut() {
                                    assert_eq!(r.send(stride), expected, "the payload read back");
                                }
                                for s in subscribers.iter_mut() {
                                    let sum = match (mode.as_str(), publisher.as_mut()) {
                                        ("copy", _) => s.receive_list(payload, stride),
                                        ("pooled" | "pooled-write", _) => s.receive_pooled(stride),
                                        ("pooled-loan" | "pooled-loop", _) => {
                                            s.receive_after(stride, batch)
                                        }
                                        ("pooled-ring", _) => s.receive_ring(stride, batch),
                                        (_, Some(p)) => s.receive_block(p, stride),
                                        (_, None) => unreachable!("zero copy has its publisher"),
                                    };
                                    assert_eq!(sum, expected, "the payload read back");
                                }
                            }
                            // Per message (a loop-mode iteration is `batch`).
                            let t = start.elapsed() / batch;
                            row.samples.push(t.as_secs_f64() / iters as f64);
                            t
                        })
                    });
                    // Criterion calls the routine during its warm-up too;
                    // its measurement is the last `sample_size` calls.
                    let warm_up = row.samples.len().saturating_sub(SAMPLES);
                    row.samples.drain(..warm_up);
                    let after = mem();
                    row.mem = (
                        after.rss - before.rss,
                        after.pss_anon - before.pss_anon,
                        after.pss_shmem - before.pss_shmem,
                    );
                    let stats = world.host.totals();
                    ROWS.lock()
                        .unwrap()
                        .push((format!("{read}|{}|{n}|{mode}|{stats:?}", label(size)), row));
                    drop(subscribers);
                    drop(relays);
                    drop(pooled);
                    drop(publisher);
                    drop(ice);
                }
            }
        }
        group.finish();
    }
    summary();
}

/// (read, payload, subscribers) of a row of the summary.
type Key = (String, String, String);
/// Time per message per subscriber, and the memory deltas.
type Entry = (f64, (i64, i64, i64));

/// Prints a Markdown table: per message per subscriber, zero copy and
/// copy side by side, and the memory each configuration kept.
fn summary() {
    let rows = ROWS.lock().unwrap();
    let mut by: HashMap<Key, Entry> = HashMap::new();
    let mut keys: Vec<Key> = Vec::new();
    for (key, row) in rows.iter() {
        let parts: Vec<&str> = key.split('|').collect();
        let (read, size, n, mode) = (parts[0], parts[1], parts[2], parts[3]);
        let subs: f64 = n.parse().unwrap();
        let k = (read.to_string(), size.to_string(), n.to_string());
        if !keys.contains(&k) {
            keys.push(k.clone());
        }
        by.insert(
            (format!("{read}|{mode}"), size.to_string(), n.to_string()),
            (median(&row.samples) / subs, row.mem),
        );
    }
    const MODES: [(&str, &str); 9] = [
        ("zero-copy", "zero copy"),
        ("pooled", "pooled (publisher does not write)"),
        ("pooled-write", "pooled, full cycle"),
        ("pooled-loan", "pooled, full cycle, one call per side"),
        ("pooled-loop", "pooled, full cycle, guest loops"),
        ("pooled-ring", "lease rings, full cycle, batches of 8"),
        ("iceoryx2", "iceoryx2 (native)"),
        ("copy", "copy, host to guest"),
        ("guest-copy", "copy, guest to guest"),
    ];
    let header: Vec<&str> = MODES.iter().map(|m| m.1).collect();
    println!();
    println!(
        "| read | payload | subscribers | {} / msg / sub | copy / best full cycle |",
        header.join(" / msg / sub | ")
    );
    println!("|---|---|---|{}---|", "---|".repeat(MODES.len()));
    for (read, size, n) in &keys {
        let get = |mode: &str| by.get(&(format!("{read}|{mode}"), size.clone(), n.clone()));
        let times: Vec<String> = MODES
            .iter()
            .map(|m| get(m.0).map_or("-".into(), |x| time(x.0)))
            .collect();
        let best = ["pooled-ring", "pooled-loop", "pooled-loan", "pooled-write"]
            .iter()
            .find_map(|m| get(m));
        let ratio = match (best, get("copy")) {
            (Some(o), Some(c)) if c.0 < o.0 => format!("{:.2}x", c.0 / o.0),
            (Some(o), Some(c)) => format!("{:.1}x", c.0 / o.0),
            _ => "-".into(),
        };
        println!(
            "| {read} | {size} | {n} | {} | {ratio} |",
            times.join(" | ")
        );
    }
    println!();
    println!(
        "| read | payload | subscribers | {} (RSS, Pss_Anon, Pss_Shmem delta, KiB) |",
        header.join(" | ")
    );
    println!("|---|---|---|{}", "---|".repeat(MODES.len()));
    for (read, size, n) in &keys {
        let get = |mode: &str| by.get(&(format!("{read}|{mode}"), size.clone(), n.clone()));
        let mem: Vec<String> = MODES
            .iter()
            .map(|m| {
                get(m.0).map_or("-".into(), |x| {
                    format!("{}, {}, {}", x.1 .0, x.1 .1, x.1 .2)
                })
            })
            .collect();
        println!("| {read} | {size} | {n} | {} |", mem.join(" | "));
    }
    write_csv(&keys, &by, &MODES.map(|m| m.0));
    println!();
    if let Some((key, _)) = rows.last() {
        println!(
            "host totals after the run: {}",
            key.split('|').nth(4).unwrap_or("")
        );
    }
}

/// The per-message, per-subscriber medians as CSV (read, payload bytes,
/// subscribers, mode, seconds) for `scripts/plot-delivery`.
fn write_csv(keys: &[Key], by: &HashMap<Key, Entry>, modes: &[&str]) {
    let mut csv = String::from("read,bytes,subscribers,mode,seconds\n");
    for (read, size, n) in keys {
        for mode in modes {
            if let Some(x) = by.get(&(format!("{read}|{mode}"), size.clone(), n.clone())) {
                let bytes = label_bytes(size);
                csv.push_str(&format!("{read},{bytes},{n},{mode},{:e}\n", x.0));
            }
        }
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("criterion");
    let path = dir.join("delivery-summary.csv");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, csv)) {
        Ok(()) => println!("summary written to {}", path.display()),
        Err(e) => eprintln!("delivery: could not write {}: {e}", path.display()),
    }
}

mod iceoryx;

criterion_group!(benches, delivery);
criterion_main!(benches);
