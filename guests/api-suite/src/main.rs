//! The suite as a command: prints each case and a summary; fails if any
//! case failed. Built as a wasm component and run under `shm-host run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let failures = api_suite::run_all(|name, result| match result {
        Ok(()) => println!("ok {name}"),
        Err(why) => println!("FAILED {name}: {why}"),
    });
    let total = api_suite::CASES.len();
    println!(
        "api-suite: {} passed, {} failed",
        total - failures.len(),
        failures.len()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
