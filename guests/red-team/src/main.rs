//! The hostile publisher or subscriber command: see [`red_team::attacks`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match red_team::attacks::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("red-team: {e}");
            ExitCode::FAILURE
        }
    }
}
