//! Support shared by the benchmarks in `benches/` (`cargo bench -p
//! shm-bench`): building the guest components they load, and finding
//! their exports. Results and how to read them: `shm-host/BENCHMARKS.md`.
//! The crate exists so that the systems the benchmarks compare against
//! (iceoryx2) are dependencies of the benchmarks only, never of shm-host's
//! tests.

pub mod ping;

use std::path::{Path, PathBuf};
use std::process::Command;

use shm_host::link::GuestState;
use shm_host::wasmtime::component::{Func, Instance};
use shm_host::wasmtime::Store;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds the guest components (with the project's script) and the bench
/// sink and relay (a workspace of their own) for wasm32-wasip2; returns the
/// paths of the probe and the sink.
pub fn build_guests() -> (PathBuf, PathBuf) {
    let root = root();
    let status = Command::new("bash")
        .arg(root.join("scripts/build-guests"))
        .status()
        .expect("running scripts/build-guests");
    assert!(status.success(), "scripts/build-guests failed");
    let probe = root.join("target/guests/wasm32-wasip2/release/shm_probe.wasm");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bench-sink");
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "--workspace"])
        .args(["--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(root.join("guests/bench-sink/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("building guests/bench-sink");
    assert!(status.success(), "building guests/bench-sink failed");
    (probe, target.join("wasm32-wasip2/release/bench_sink.wasm"))
}

/// The export `name` of interface `iface` of `instance`.
pub fn export(store: &mut Store<GuestState>, instance: &Instance, iface: &str, name: &str) -> Func {
    let i = instance
        .get_export_index(&mut *store, None, iface)
        .unwrap_or_else(|| panic!("{iface} is not exported"));
    let f = instance
        .get_export_index(&mut *store, Some(&i), name)
        .unwrap_or_else(|| panic!("{iface}#{name} is not exported"));
    instance.get_func(&mut *store, f).expect("a function")
}

/// The comma-separated list in environment variable `var`, or `default`'s
/// (the benchmarks' grid settings, e.g. `DELIVERY_SIZES=4K,1M`).
pub fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A size such as `4K`, `16M` or `100` in bytes.
pub fn parse_size(s: &str) -> u32 {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u32 = n.parse().expect("a size such as 4K or 16M");
    n * match unit {
        "K" => 1024,
        "M" => 1024 * 1024,
        "" => 1,
        other => panic!("unknown unit {other}"),
    }
}

/// The median of `xs` (NaN when empty): the benchmarks' summaries.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// `s` seconds for a summary table: ms from 1 ms, us below (two decimals
/// under 10 us).
pub fn time(s: f64) -> String {
    if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s < 1e-5 {
        format!("{:.2} us", s * 1e6)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}
