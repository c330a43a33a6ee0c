//! The native anchor of the Zenoh benchmark (`benches/zenoh.rs`): a Zenoh
//! peer listening on the endpoint given (multicast scouting off) that
//! receives each ping on `bench/ping`, reads every byte of it (the
//! checksum of `shm_bench::ping`), and puts its 16-byte acknowledgement
//! (the ping's first 8 bytes and the checksum) on `bench/pong`. What the
//! shm-host side does with a Zenoh import, a wasm relay and an export, in
//! one plain Zenoh process. Runs until killed.
//!
//! Usage: `zenoh-pong tcp/127.0.0.1:PORT`

use std::process::ExitCode;

use shm_bench::ping::{ack, Checksum};
use shm_host::bridge::zenoh::handlers::FifoChannel;
use shm_host::bridge::zenoh::qos::CongestionControl;
use shm_host::bridge::zenoh::Wait;
use shm_host::bridge::Endpoints;

fn main() -> ExitCode {
    let Some(endpoint) = std::env::args().nth(1) else {
        eprintln!("usage: zenoh-pong ENDPOINT (tcp/127.0.0.1:PORT)");
        return ExitCode::FAILURE;
    };
    match run(&endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zenoh-pong: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(endpoint: &str) -> Result<(), shm_host::bridge::zenoh::Error> {
    let config = Endpoints::default()
        .listen(endpoint)
        .multicast_scouting(false)
        .config()?;
    let session = shm_host::bridge::zenoh::open(config).wait()?;
    let publisher = session
        .declare_publisher("bench/pong")
        .congestion_control(CongestionControl::Block)
        .wait()?;
    let subscriber = session
        .declare_subscriber("bench/ping")
        .with(FifoChannel::new(256))
        .wait()?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    while let Ok(sample) = subscriber.recv() {
        let payload = sample.payload();
        let mut sum = Checksum::default();
        let mut first = [0u8; 8];
        let mut have = 0;
        for slice in payload.slices() {
            if have < 8 {
                let n = (8 - have).min(slice.len());
                first[have..have + n].copy_from_slice(&slice[..n]);
                have += n;
            }
            sum.update(slice);
        }
        messages += 1;
        bytes += payload.len() as u64;
        publisher
            .put(ack(&first[..have], sum.finish()).to_vec())
            .wait()?;
    }
    println!("zenoh-pong: acknowledged {messages} messages ({bytes} bytes)");
    Ok(())
}
