//! The `relay` as a command: see the library for what it does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match pubsub_relay::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
