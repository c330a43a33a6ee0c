//! The `publisher` as a command: see the library for what it does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match complex_publisher::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publisher: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
