//! The pub-sub subscriber, reading the subscription's messages as a
//! component-model `stream<memory-block>` from an async export.
//!
//! Arguments (`wasi:cli/environment`): `[TOPIC=numbers] [EXPECT]`.
#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "zero-copy:examples/stream-subscriber",
        with: {
            "zero-copy:shm/exchange@0.1.0": shm_guest::raw,
            "zero-copy:shm/pub-sub@0.1.0": shm_guest::raw::pub_sub,
        },
    });
}

#[path = "../../pubsub-subscriber/src/check.rs"]
mod check;

use check::Checker;
use shm_guest::pubsub::Subscriber;

struct StreamSubscriber;

impl bindings::Guest for StreamSubscriber {
    async fn run() -> Result<(), String> {
        let name = std::env::args()
            .next()
            .unwrap_or_else(|| "stream-subscriber".into());
        let topic = std::env::args().nth(1).unwrap_or_else(|| "numbers".into());
        let expect: Option<u32> = std::env::args().nth(2).and_then(|a| a.parse().ok());
        let subscriber =
            Subscriber::new(&topic).map_err(|e| format!("subscribing to {topic}: {e}"))?;
        let mut messages = subscriber.messages();
        let mut check = Checker {
            name,
            received: 0,
            last: None,
            bytes_read: 0,
        };
        while let Some(message) = messages.next().await {
            check.message(&message)?;
        }
        println!(
            "{}: received {} messages in order from the stream ({} bytes read in place)",
            check.name, check.received, check.bytes_read
        );
        match expect {
            Some(e) if e != check.received => Err(format!(
                "expected {e} messages, received {}",
                check.received
            )),
            _ => Ok(()),
        }
    }
}

bindings::export!(StreamSubscriber with_types_in bindings);
