//! The `consumer` as a command: see the library for what it does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match complex_consumer::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consumer: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
