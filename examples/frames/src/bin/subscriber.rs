//! Receives frames from the `frames` topic, validates each once and checks
//! every pixel and tag where they lie in the block.

use std::io::Write as _;
use std::process::ExitCode;

use frames::{check, Frame, TOPIC};
use shm_guest::typed::TypedSubscriber;

fn run(name: &str) -> Result<(), String> {
    let subscriber =
        TypedSubscriber::<Frame, u32>::new(TOPIC).map_err(|e| format!("subscribing: {e}"))?;
    let mut n = 0;
    while let Some(message) = subscriber.next() {
        let size = message
            .read(|frame| {
                check(n, &frame)?;
                Ok::<_, String>((frame.width(), frame.height()))
            })
            .map_err(|e| format!("frame {n}: {e}"))??;
        println!("{name}: frame {n}: {}x{} intact", size.0, size.1);
        n += 1;
    }
    println!("{name}: received {n} frames, every pixel and tag checked in place");
    Ok(())
}

fn main() -> ExitCode {
    let name = std::env::args()
        .next()
        .unwrap_or_else(|| "frames-subscriber".into());
    match run(&name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One write for the whole line: stderr is unbuffered, and
            // `eprintln!` writes its pieces one by one, which the other
            // subscribers' lines (on threads of their own) could split.
            let _ = std::io::stderr().write_all(format!("{name}: {e}\n").as_bytes());
            ExitCode::FAILURE
        }
    }
}
