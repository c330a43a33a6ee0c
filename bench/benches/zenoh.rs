//! The Zenoh bridge over loopback: latency and throughput of a ping/ack
//! path through shm-host, side by side with two native Zenoh processes
//! doing the same (the anchor), in one run.
//!
//! This process is the publisher of every system: a Zenoh peer session
//! connected to a child process over TCP on 127.0.0.1, a publisher on
//! `bench/ping` (congestion control `Block`) and a subscriber on
//! `bench/pong` (a FIFO channel). Each ping is written afresh: its sequence
//! number (u64, little-endian) then the pattern byte `seq % 251` up to its
//! size (`shm_bench::ping`), sent as a plain Zenoh sample (no attachment).
//! The child reads every byte of each ping (a checksum) and answers with a
//! 16-byte acknowledgement (the ping's sequence number and the checksum),
//! which this process checks against the checksum the ping must have.
//!
//! - `zenoh` (the anchor): the `zenoh-pong` binary, one native Zenoh
//!   process: subscriber, checksum over the payload where Zenoh delivered
//!   it, `put` of the acknowledgement.
//! - `shm-host`: the `shm-host` runner (built with the `zenoh` feature)
//!   running `pubsub` with a Zenoh import of `bench/ping` as topic `ping`
//!   (each sample copied once into a pool block of the message's size),
//!   the `pubsub-relay` guest (wasm32-wasip2) reading each message in place
//!   in the mapped pool and publishing its acknowledgement on topic `pong`
//!   (a pooled loan), and a Zenoh export of `pong` to `bench/pong` (the
//!   16 bytes copied out of the block into the sample).
//!
//! Two groups per payload size and system:
//! - `zenoh-latency`: one iteration is one ping and the wait for its
//!   acknowledgement: a round trip (one way is about half).
//! - `zenoh-throughput`: one iteration is a burst of `N` pings back to back
//!   (64 up to 64 KiB, 16 at 1 MiB, 8 above) and the wait for the last
//!   acknowledgement; every acknowledgement of the burst is taken and
//!   checked (in order, none missing, the right checksum).
//!
//! Each system's child is started afresh per size (on a free port), and
//! the path is warmed up before measuring: pings are sent until the first
//! acknowledgement comes back (the shm-host child compiles its relay and
//! waits for this process's subscriber before it imports), then criterion
//! warms up; only criterion's measurement samples count in the summary.
//! Environment: `ZENOH_SIZES` (default `4K,64K,1M,16M`), `ZENOH_SYSTEMS`
//! (`zenoh,shm-host`), `ZENOH_POOL` (blocks of the import's pool, 8),
//! `ZENOH_BUFFER` (the bridge's buffers, 16 messages), `ZENOH_RELAY_POOL`
//! (blocks of the relay's acknowledgement pool, 4). The summary is printed as Markdown and written as
//! CSV to `target/criterion/zenoh-summary.csv` (`scripts/plot-zenoh` draws
//! it). Results: `shm-host/BENCHMARKS.md`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use shm_bench::ping::{expected, fill, parse_ack};
use shm_bench::{list, median, parse_size, root, time};
use shm_host::bridge::wire::{new_stream_id, Header, Kind};
use shm_host::bridge::zenoh::handlers::{FifoChannel, FifoChannelHandler};
use shm_host::bridge::zenoh::pubsub::{Publisher, Subscriber};
use shm_host::bridge::zenoh::qos::CongestionControl;
use shm_host::bridge::zenoh::sample::Sample;
use shm_host::bridge::zenoh::{Session, Wait};
use shm_host::bridge::Endpoints;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Criterion samples per benchmark.
const SAMPLES: usize = 10;
/// How long an acknowledgement may take before the run fails.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may take until its path answers.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A number from environment variable `var`, or `default`.
fn setting(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// Pings per burst in the throughput group.
fn burst(size: usize) -> u64 {
    match size {
        s if s <= 64 * KIB => 64,
        s if s <= MIB => 16,
        _ => 8,
    }
}

fn label(size: usize) -> String {
    if size >= MIB {
        format!("{} MiB", size / MIB)
    } else if size >= KIB {
        format!("{} KiB", size / KIB)
    } else {
        format!("{size} B")
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Builds the shm-host runner with the `zenoh` feature (into this target
/// directory) and the relay guest; returns their paths.
fn build() -> (PathBuf, PathBuf) {
    let target = target_dir();
    let status = cargo()
        .args(["build", "--quiet", "--release", "-p", "shm-host"])
        .args(["--features", "zenoh"])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo build -p shm-host");
    assert!(status.success(), "building the shm-host runner failed");
    let status = cargo()
        .args(["build", "--quiet", "--release", "-p", "pubsub-relay"])
        .args(["--target", "wasm32-wasip2", "--target-dir", "target/guests"])
        .status()
        .expect("running cargo build -p pubsub-relay");
    assert!(
        status.success(),
        "building guests/pubsub-relay failed (is the wasm32-wasip2 target installed? scripts/build-guests adds it)"
    );
    (
        target.join("release/shm-host"),
        root().join("target/guests/wasm32-wasip2/release/pubsub-relay.wasm"),
    )
}

/// A TCP port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process, killed when dropped (also when the bench panics).
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(name: &str, mut command: Command) -> Process {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Process {
            name: name.into(),
            child,
        }
    }

    /// Waits until it accepts TCP connections on `port`.
    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before listening on {port}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {port} after {READY_TIMEOUT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for it to exit by itself; kills it then.
    fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    eprintln!("zenoh bench: {} exited with {status}", self.name);
                    return;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        eprintln!(
            "zenoh bench: {} did not end within {timeout:?}: killed",
            self.name
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// This process's side of one system: the Zenoh session connected to the
/// child, the ping publisher and the acknowledgement subscriber.
struct Pinger {
    system: &'static str,
    size: usize,
    publisher: Publisher<'static>,
    pongs: Subscriber<FifoChannelHandler<Sample>>,
    session: Session,
    /// The next ping's sequence number.
    next: u64,
    /// The next acknowledgement expected (after the warm-up: in order).
    expect: u64,
}

impl Pinger {
    fn connect(system: &'static str, size: usize, port: u16) -> Pinger {
        let config = Endpoints::default()
            .connect(format!("tcp/127.0.0.1:{port}"))
            .multicast_scouting(false)
            .config()
            .expect("the bench's Zenoh configuration");
        let session = shm_host::bridge::zenoh::open(config)
            .wait()
            .expect("opening the bench's Zenoh session");
        let pongs = session
            .declare_subscriber("bench/pong")
            .with(FifoChannel::new(1024))
            .wait()
            .expect("declaring the bench/pong subscriber");
        let publisher = session
            .declare_publisher("bench/ping")
            .congestion_control(CongestionControl::Block)
            .wait()
            .expect("declaring the bench/ping publisher");
        Pinger {
            system,
            size,
            publisher,
            pongs,
            session,
            next: 0,
            expect: 0,
        }
    }

    /// Writes and sends the next ping; returns its sequence number.
    fn send(&mut self) -> u64 {
        let seq = self.next;
        self.next += 1;
        let mut buf = Vec::with_capacity(self.size);
        fill(&mut buf, seq, self.size);
        self.publisher
            .put(buf)
            .wait()
            .unwrap_or_else(|e| panic!("{}: sending ping {seq}: {e}", self.system));
        seq
    }

    /// The next acknowledgement (sequence number, checksum), or `None`
    /// after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<(u64, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let sample = self
                .pongs
                .recv_deadline(deadline)
                .unwrap_or_else(|e| panic!("{}: the pong channel failed: {e}", self.system))?;
            // The export's end of stream (no payload) is not an ack.
            if sample.payload().is_empty() {
                continue;
            }
            let bytes = sample.payload().to_bytes();
            let ack = parse_ack(&bytes).unwrap_or_else(|| {
                panic!(
                    "{}: an acknowledgement of {} bytes (expected 16)",
                    self.system,
                    bytes.len()
                )
            });
            return Some(ack);
        }
    }

    /// Takes the acknowledgements up to `last`, checking each: in order,
    /// none missing, the checksum of its ping.
    fn acks_until(&mut self, last: u64) {
        while self.expect <= last {
            let (seq, sum) = self.recv(ACK_TIMEOUT).unwrap_or_else(|| {
                panic!(
                    "{} ({}): no acknowledgement of ping {} within {ACK_TIMEOUT:?} (last sent {last})",
                    self.system,
                    label(self.size),
                    self.expect
                )
            });
            assert_eq!(
                seq,
                self.expect,
                "{} ({}): acknowledgement {seq} out of order or one missing",
                self.system,
                label(self.size)
            );
            assert_eq!(
                sum,
                expected(seq, self.size),
                "{} ({}): ping {seq} was not read back right (checksum)",
                self.system,
                label(self.size)
            );
            self.expect += 1;
        }
    }

    /// Sends pings until the path answers, then synchronises on one ping
    /// (acknowledgements of earlier ones are let go): from then on every
    /// ping must be acknowledged, in order.
    fn warm_up(&mut self) {
        let started = Instant::now();
        let mut answered = false;
        while !answered {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "{} ({}): no acknowledgement within {READY_TIMEOUT:?} of pinging: the path never worked (see the child's output above)",
                self.system,
                label(self.size)
            );
            self.send();
            answered = self.recv(Duration::from_millis(200)).is_some();
        }
        let sync = self.send();
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some((seq, sum)) if seq == sync => {
                    assert_eq!(sum, expected(seq, self.size), "{}: checksum", self.system);
                    break;
                }
                Some((seq, _)) if seq < sync => {}
                Some((seq, _)) => {
                    panic!("{}: an acknowledgement of {seq}, never sent", self.system)
                }
                None => panic!(
                    "{} ({}): no acknowledgement of the warm-up ping {sync}",
                    self.system,
                    label(self.size)
                ),
            }
        }
        self.expect = sync + 1;
        println!(
            "zenoh bench: {} ({}) answers after {:.2?}",
            self.system,
            label(self.size),
            started.elapsed()
        );
    }

    /// One round trip.
    fn round_trip(&mut self) {
        let seq = self.send();
        self.acks_until(seq);
    }

    /// A burst of `n` pings, then every acknowledgement.
    fn burst(&mut self, n: u64) {
        let mut last = 0;
        for _ in 0..n {
            last = self.send();
        }
        self.acks_until(last);
    }

    /// Ends the shm-host child's import (the bridge's end of stream), so
    /// that the topology ends and prints its statistics.
    fn end_stream(&self) {
        let end = Header {
            kind: Kind::End,
            stream: new_stream_id(),
            sequence: 0,
        };
        self.publisher
            .put(Vec::<u8>::new())
            .attachment(end.encode().to_vec())
            .wait()
            .unwrap_or_else(|e| panic!("{}: sending the end of stream: {e}", self.system));
    }

    fn close(self) {
        let Pinger {
            publisher,
            pongs,
            session,
            ..
        } = self;
        drop(pongs);
        drop(publisher);
        let _ = session.close().wait();
    }
}

/// Starts `system`'s child for messages of `size` bytes.
fn start(system: &str, size: usize, runner: &Path, relay: &Path) -> (Process, u16) {
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let command = match system {
        "zenoh" => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_zenoh-pong"));
            c.arg(&endpoint);
            c
        }
        "shm-host" => {
            // Blocks as large as the message, in whole pages.
            let block = size.div_ceil(4096) * 4096;
            let mut c = Command::new(runner);
            c.args(["pubsub", "--stats"])
                .args(["--zenoh-import", "bench/ping=ping"])
                .args(["--zenoh-export", "pong=bench/pong"])
                .arg("--relay")
                .arg(relay)
                .args(["--relay-arg", "ping", "--relay-arg", "pong", "--relay-arg"])
                .arg(setting("ZENOH_RELAY_POOL", 4).to_string())
                .args(["--topic", "ping", "--relay-topic", "pong"])
                .args(["--zenoh-listen", &endpoint, "--zenoh-no-multicast"])
                .args(["--zenoh-block-size", &block.to_string()])
                .args(["--zenoh-overflow", "block"])
                .args(["--zenoh-buffer", &setting("ZENOH_BUFFER", 16).to_string()])
                .args(["--zenoh-pool", &setting("ZENOH_POOL", 8).to_string()])
                // The export waits for this process's subscriber, which
                // connects once the child listens.
                .args(["--zenoh-wait", "60"]);
            c
        }
        other => panic!("unknown system {other} (ZENOH_SYSTEMS: zenoh,shm-host)"),
    };
    let mut process = Process::spawn(&format!("{system} child"), command);
    process.wait_listening(port);
    (process, port)
}

/// One measured configuration: the mean time per iteration of each
/// criterion sample.
struct Row {
    system: &'static str,
    size: usize,
    latency: Vec<f64>,
    burst: u64,
    /// Seconds per burst.
    throughput: Vec<f64>,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// Keeps criterion's measurement samples: the last `SAMPLES` calls (it
/// calls the routine during its warm-up too).
fn measured(mut samples: Vec<f64>) -> Vec<f64> {
    let warm_up = samples.len().saturating_sub(SAMPLES);
    samples.drain(..warm_up);
    samples
}

fn zenoh(c: &mut Criterion) {
    let sizes: Vec<usize> = list("ZENOH_SIZES", "4K,64K,1M,16M")
        .iter()
        .map(|s| parse_size(s) as usize)
        .collect();
    let systems: Vec<&'static str> = list("ZENOH_SYSTEMS", "zenoh,shm-host")
        .iter()
        .map(|s| match s.as_str() {
            "zenoh" => "zenoh",
            "shm-host" => "shm-host",
            other => panic!("unknown system {other} (ZENOH_SYSTEMS: zenoh,shm-host)"),
        })
        .collect();
    let (runner, relay) = build();
    for &size in &sizes {
        for &system in &systems {
            let (process, port) = start(system, size, &runner, &relay);
            let mut pinger = Pinger::connect(system, size, port);
            pinger.warm_up();
            let mut latency = Vec::new();
            {
                let mut group = c.benchmark_group("zenoh-latency");
                group
                    .sample_size(SAMPLES)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(3));
                group.bench_function(BenchmarkId::new(system, label(size)), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            pinger.round_trip();
                        }
                        let t = start.elapsed();
                        latency.push(t.as_secs_f64() / iters as f64);
                        t
                    })
                });
                group.finish();
            }
            let n = burst(size);
            let mut throughput = Vec::new();
            {
                let mut group = c.benchmark_group("zenoh-throughput");
                group
                    .sample_size(SAMPLES)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(4))
                    .throughput(Throughput::Bytes(n * size as u64));
                group.bench_function(BenchmarkId::new(system, label(size)), |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            pinger.burst(n);
                        }
                        let t = start.elapsed();
                        throughput.push(t.as_secs_f64() / iters as f64);
                        t
                    })
                });
                group.finish();
            }
            ROWS.lock().unwrap().push(Row {
                system,
                size,
                latency: measured(latency),
                burst: n,
                throughput: measured(throughput),
            });
            if system == "shm-host" {
                pinger.end_stream();
                pinger.close();
                process.finish(Duration::from_secs(15));
            } else {
                pinger.close();
                drop(process);
            }
        }
    }
    summary();
}

/// (round trip s, MB/s, msg/s) of a row: medians over the samples.
fn figures(r: &Row) -> (f64, f64, f64) {
    let per_burst = median(&r.throughput);
    let n = r.burst as f64;
    (
        median(&r.latency),
        n * r.size as f64 / per_burst / 1e6,
        n / per_burst,
    )
}

/// Prints the Markdown table and writes the CSV.
fn summary() {
    let rows = ROWS.lock().unwrap();
    println!();
    println!("| payload | system | round trip (median) | throughput MB/s | messages/s | burst |");
    println!("|---|---|---|---|---|---|");
    let mut csv = String::from(
        "system,size,bytes,latency_us,throughput_mb_s,messages_s,burst,latency_samples_us,burst_samples_s\n",
    );
    for r in rows.iter() {
        let (rtt, mbs, msgs) = figures(r);
        println!(
            "| {} | {} | {} | {mbs:.1} | {msgs:.0} | {} |",
            label(r.size),
            r.system,
            time(rtt),
            r.burst
        );
        let join = |v: &[f64], scale: f64| {
            v.iter()
                .map(|x| format!("{:.3}", x * scale))
                .collect::<Vec<_>>()
                .join(" ")
        };
        csv.push_str(&format!(
            "{},{},{},{:.3},{:.3},{:.1},{},{},{}\n",
            r.system,
            label(r.size).replace(' ', ""),
            r.size,
            rtt * 1e6,
            mbs,
            msgs,
            r.burst,
            join(&r.latency, 1e6),
            join(&r.throughput, 1.0),
        ));
    }
    // shm-host against the anchor, per size.
    println!();
    println!("| payload | shm-host / zenoh round trip | shm-host / zenoh throughput |");
    println!("|---|---|---|");
    let find = |system: &str, size: usize| {
        rows.iter()
            .find(|r| r.system == system && r.size == size)
            .map(figures)
    };
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        if let (Some(s), Some(z)) = (find("shm-host", size), find("zenoh", size)) {
            println!(
                "| {} | {:.2}x | {:.2}x |",
                label(size),
                s.0 / z.0,
                s.1 / z.1
            );
        }
    }
    let dir = target_dir().join("criterion");
    let path = dir.join("zenoh-summary.csv");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, csv)) {
        Ok(()) => println!("summary written to {}", path.display()),
        Err(e) => eprintln!("zenoh bench: could not write {}: {e}", path.display()),
    }
}

criterion_group!(benches, zenoh);
criterion_main!(benches);
