//! The `subscriber` as a command: see the library for what it does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match pubsub_subscriber::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("subscriber: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
