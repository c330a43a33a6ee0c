//! The end-to-end fuzzer: real wasm guests on the real host (threads,
//! mappings, the fault handler), hostile guests making fuzz-chosen calls of
//! every interface function beside an honest publisher and subscribers
//! that check every message on arrival, while they hold it, and when its
//! block comes back for reuse (`guests/host-fuzz`).
//!
//! Oracle, per seed: no honest check fails (`CORRUPT`), the honest
//! components succeed, no host code panics, the ledger's invariants hold
//! whenever a checker thread looks (every 10 ms) and at the end, nobody
//! holds the ledger for longer than the stall limit, the process's
//! resident memory stays bounded, and afterwards the host holds no block.
//!
//! `FUZZ_E2E_SEEDS` (default 3: CI's short run), `FUZZ_E2E_FIRST_SEED`,
//! `FUZZ_E2E_STEPS` (calls per hostile guest, default 1500) scale it; the
//! recorded campaign is in `fuzz/README.md`.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shm_host::command::Status;
use shm_host::pubsub::{Overflow, PubSubConfig};
use shm_host::topology::Topology;
use shm_host::{ShmConfig, ShmHost};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

const STALL_LIMIT: Duration = Duration::from_secs(2);
/// Hostile guests per seed.
const FUZZERS: u64 = 2;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's resident memory now, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// What one seed's run showed.
struct Outcome {
    calls: u64,
    violations: Vec<String>,
    longest_wait: Duration,
}

fn run_seed(seed: u64, steps: u64) -> Outcome {
    let pooled = seed % 2 == 1;
    let overflow = if seed % 3 == 2 {
        Overflow::Block
    } else {
        Overflow::DropOldest
    };
    let host = ShmHost::new(
        ShmConfig::default()
            .pubsub(
                PubSubConfig::default()
                    .overflow(overflow)
                    .stall_limit(STALL_LIMIT),
            )
            .cpu_limit(Some(Duration::from_secs(60))),
    );
    let mut topology = Topology::new(&host).unwrap();
    let fuzz = topology.load(common::guest("host-fuzz")).unwrap();
    let outputs: Arc<Mutex<Vec<(String, MemoryOutputPipe)>>> = Arc::default();
    let kept = outputs.clone();
    topology.wasi(move |name, wasi| {
        let pipe = MemoryOutputPipe::new(1 << 20);
        wasi.stdout(pipe.clone());
        kept.lock().unwrap().push((name.to_string(), pipe));
        Ok(())
    });
    let pool_flag = if pooled { "--pooled" } else { "--plain" };
    let ring_flag = if pooled { "--ring" } else { "--plain" };
    // Messages for the whole of the hostile guests' runs (one every quarter
    // millisecond), of one page or of several.
    let count = (steps * 2).to_string();
    let size = if seed % 4 < 2 { "4096" } else { "70000" };
    topology
        .topic("numbers")
        .relay_output("fuzz/*")
        .timeout(Duration::from_secs(60))
        .publisher(
            "publisher",
            fuzz.clone(),
            &[
                "--role",
                "publisher",
                "numbers",
                &count,
                size,
                "250",
                pool_flag,
            ],
        )
        .subscriber(
            "honest-1",
            fuzz.clone(),
            &["--role", "subscriber", "numbers", size, pool_flag],
        )
        .subscriber(
            "honest-2",
            fuzz.clone(),
            // On pooled topics through a lease ring: released in memory,
            // reconciled by the host while hostile guests do their worst.
            &[
                "--role",
                "subscriber",
                "numbers",
                size,
                pool_flag,
                ring_flag,
            ],
        );
    for k in 0..FUZZERS {
        let (seed_arg, steps_arg) = ((seed * FUZZERS + k).to_string(), steps.to_string());
        let own = format!("fuzz/{k}");
        topology.relay(
            format!("fuzz-{k}"),
            fuzz.clone(),
            &["--role", "fuzz", &seed_arg, &steps_arg, &own],
        );
    }
    // The checker: the ledger's invariants, and how long taking the ledger
    // waits (nobody may hold it past the stall limit).
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let (host, done) = (host.clone(), done.clone());
        std::thread::spawn(move || {
            let mut broken = Vec::new();
            let mut longest = Duration::ZERO;
            while !done.load(Ordering::Acquire) {
                let asked = Instant::now();
                let checked = host.check_invariants();
                longest = longest.max(asked.elapsed());
                if let Err(e) = checked {
                    broken.push(e);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (broken, longest)
        })
    };
    let report = topology.run();
    done.store(true, Ordering::Release);
    let (mut violations, longest_wait) = checker.join().expect("the checker");
    if longest_wait > STALL_LIMIT {
        violations.push(format!("the ledger was held for {longest_wait:?}"));
    }
    if let Err(e) = host.check_invariants() {
        violations.push(format!("invariants after the run: {e}"));
    }
    let texts: Vec<(String, String)> = outputs
        .lock()
        .unwrap()
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                String::from_utf8_lossy(&p.contents()).into_owned(),
            )
        })
        .collect();
    let mut calls = 0;
    for (name, text) in &texts {
        for line in text.lines() {
            if line.contains("CORRUPT") {
                violations.push(format!("{name}: {line}"));
            }
            if std::env::var_os("FUZZ_E2E_VERBOSE").is_some() {
                eprintln!("seed {seed}: {name}: {line}");
            }
            if let Some(n) = line
                .split(" made ")
                .nth(1)
                .and_then(|r| r.split(" calls").next())
            {
                calls += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    for e in &report.ended {
        let honest = !e.name.starts_with("fuzz-");
        let shown = format!("{:?}", e.status);
        if honest && !e.status.succeeded() {
            let out = texts
                .iter()
                .find(|(n, _)| *n == e.name)
                .map(|(_, t)| t.as_str());
            violations.push(format!("{} failed: {shown}\n{}", e.name, out.unwrap_or("")));
        }
        if shown.contains("panicked") {
            violations.push(format!("{}: host code panicked: {shown}", e.name));
        }
        if !honest && std::env::var_os("FUZZ_E2E_VERBOSE").is_some() {
            eprintln!("seed {seed}: {} ended: {shown}", e.name);
        } else if !honest && !matches!(e.status, Status::Succeeded | Status::Stopped(_)) {
            // A hostile guest may trap (a bad pointer of its own) or be
            // stopped; it may not take the host with it, which the honest
            // ones would show. Recorded for the campaign's log only.
            eprintln!("seed {seed}: {} ended: {shown}", e.name);
        }
    }
    if !report.unfinished.is_empty() {
        violations.push(format!("unfinished: {:?}", report.unfinished));
    }
    if host.live_blocks() != 0 {
        violations.push(format!("{} blocks left after the run", host.live_blocks()));
    }
    Outcome {
        calls,
        violations,
        longest_wait,
    }
}

#[test]
fn hostile_guests_never_break_the_honest_ones_or_the_host() {
    let seeds = setting("FUZZ_E2E_SEEDS", 3);
    let first = setting("FUZZ_E2E_FIRST_SEED", 1);
    let steps = setting("FUZZ_E2E_STEPS", 1500);
    let started = Instant::now();
    let before = resident();
    let (mut calls, mut peak, mut longest) = (0u64, before, Duration::ZERO);
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        let outcome = run_seed(seed, steps);
        calls += outcome.calls;
        peak = peak.max(resident());
        longest = longest.max(outcome.longest_wait);
        for v in outcome.violations {
            failures.push(format!("seed {seed}: {v}"));
        }
    }
    eprintln!(
        "host fuzz: seeds {first}..{}, {calls} hostile calls, {} s, longest wait for the ledger {longest:?}, resident memory {} MiB at most (started at {} MiB)",
        first + seeds,
        started.elapsed().as_secs(),
        peak >> 20,
        before >> 20
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        calls >= seeds * FUZZERS * steps / 2,
        "only {calls} calls were made"
    );
    // Bounded memory: the guests' own memories and the blocks are limited
    // per guest; 4 GiB is far above what a run needs.
    assert!(
        peak - before < 4 << 30,
        "resident memory grew to {} MiB",
        peak >> 20
    );
}
