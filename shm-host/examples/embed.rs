//! The shortest complete embedding: an engine, a linker with WASI and both
//! interfaces, a command component run in an armed store, the statistics.
//!
//! `cargo run -p shm-host --example embed -- target/guests/wasm32-wasip2/release/api-suite.wasm`

use shm_host::link::{self, GuestState};
use shm_host::wasmtime::component::Component;
use shm_host::wasmtime_wasi::WasiCtxBuilder;
use shm_host::{Grants, ShmHost};

/// Runs the command component at `path`; returns whether it succeeded, and
/// the host's statistics table.
pub fn run(path: &str) -> shm_host::wasmtime::Result<(bool, String)> {
    let host = ShmHost::default(); // before any other wasmtime engine
    let engine = host.engine()?; // every linear memory from the host; epoch ticks
    let linker = link::linker(&engine)?; // WASI p2 + exchange + pub-sub
    let component = Component::from_file(&engine, path)?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().arg("guest");
    let state = GuestState::new(&host, "guest", wasi, Grants::all());
    let status = shm_host::command::run(&engine, &linker, &component, state, "");
    Ok((status.succeeded(), host.statistics().to_string()))
}

#[allow(dead_code)]
fn main() -> shm_host::wasmtime::Result<()> {
    let path = std::env::args().nth(1).expect("give a command component");
    let (ok, statistics) = run(&path)?;
    print!("{statistics}");
    std::process::exit(if ok { 0 } else { 1 })
}
