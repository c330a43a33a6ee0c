//! Native mode: the publish/subscribe examples as one ordinary program.
//!
//! The publisher and subscriber components' own code (their `run`
//! functions, the same source the wasm components are built from) runs on
//! threads of this process, over the guest crate's in-process backend:
//!
//! ```text
//! cargo run -p native-topology -- pubsub [SUBSCRIBER ARGS...]   # the seed's 20 integers, 2 subscribers
//! cargo run -p native-topology -- complex [PUBLISHER ARGS...]    # the complex example, 2 consumers
//! ```
//!
//! As under `shm-host pubsub`, every subscriber runs on its own thread and
//! subscribes before the publisher starts; the publisher's end closes the
//! topic and the subscribers finish.

use std::process::ExitCode;
use std::time::{Duration, Instant};

type Run = fn(&[String]) -> Result<(), String>;

fn topology(
    publisher: (&str, Run, Vec<String>),
    subscribers: Vec<(String, Run, Vec<String>)>,
) -> Result<(), String> {
    let before = shm_guest::pubsub::subscriptions();
    let count = subscribers.len();
    let threads: Vec<_> = subscribers
        .into_iter()
        .map(|(name, run, args)| {
            let mut argv = vec![name.clone()];
            argv.extend(args);
            std::thread::spawn(move || run(&argv).map_err(|e| format!("{name}: {e}")))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while shm_guest::pubsub::subscriptions() < before + count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (name, run, args) = publisher;
    let mut argv = vec![name.to_string()];
    argv.extend(args);
    let mut result = run(&argv).map_err(|e| format!("{name}: {e}"));
    for t in threads {
        let r = t
            .join()
            .map_err(|_| "a subscriber panicked".to_string())
            .and_then(|r| r);
        result = result.and(r);
    }
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("pubsub") => topology(
            ("pubsub-publisher", pubsub_publisher::run, vec![]),
            (1..=2)
                .map(|i| {
                    let sub: Run = pubsub_subscriber::run;
                    (format!("pubsub-subscriber#{i}"), sub, args[1..].to_vec())
                })
                .collect(),
        ),
        Some("complex") => topology(
            (
                "complex-publisher",
                complex_publisher::run,
                args[1..].to_vec(),
            ),
            (1..=2)
                .map(|i| {
                    let sub: Run = complex_consumer::run;
                    (format!("complex-consumer#{i}"), sub, vec![])
                })
                .collect(),
        ),
        _ => Err(
            "usage: native-topology pubsub [SUBSCRIBER ARGS...] | complex [PUBLISHER ARGS...]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("native-topology: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
