//! `host-fuzz.wasm`: the components of the end-to-end fuzzer
//! (`shm-host/tests/host/fuzz.rs`), one command with three roles:
//!
//! - `--role publisher TOPIC COUNT SIZE PAUSE-US [--pooled]`: an honest
//!   publisher (waits PAUSE-US microseconds after each message);
//!   message `i` is `i` (u64, little endian) then `pattern(i, j)`. When a
//!   block comes back for reuse it checks that it still holds exactly the
//!   message it last carried (no one changed it while it was out).
//! - `--role subscriber TOPIC SIZE [--pooled] [--ring]`: an honest
//!   subscriber; checks each message on arrival, keeps the last few, and
//!   checks them again before letting them go (with `--ring`, taking them
//!   through a lease ring: in place, released without a host call).
//! - `--role fuzz SEED STEPS OWN-TOPIC`: a hostile guest that makes STEPS
//!   calls of every interface function, chosen by a generator seeded with
//!   SEED: handles, sizes, offsets, flags, topics, loans and leases, drops
//!   in odd orders, and result pointers into its own read-only attachments
//!   and pool mappings.
//!
//! Every honest check that fails prints a line with `CORRUPT`; the fuzzer
//! prints `host-fuzz: SEED made N calls`.

mod honest;
#[cfg(target_arch = "wasm32")]
mod hostile;

use std::process::ExitCode;

/// Byte `j` of message `i`'s body.
pub(crate) fn pattern(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(j as u64 * 7)) as u8
}

/// Checks that `bytes` are a whole message (`size` bytes); returns its
/// number, or what is wrong.
pub(crate) fn check(bytes: &[u8], size: usize) -> Result<u64, String> {
    if bytes.len() != size || size < 8 {
        return Err(format!("{} bytes instead of {size}", bytes.len()));
    }
    let i = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    match bytes[8..]
        .iter()
        .enumerate()
        .find(|&(j, &b)| b != pattern(i, j))
    {
        Some((j, b)) => Err(format!(
            "message {i}: byte {} is {b:#x}, not {:#x}",
            j + 8,
            pattern(i, j)
        )),
        None => Ok(i),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let who = args.first().cloned().unwrap_or_else(|| "host-fuzz".into());
    let role = args
        .iter()
        .position(|a| a == "--role")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let pooled = args.iter().any(|a| a == "--pooled");
    let rest: Vec<&str> = args
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|a| !a.starts_with("--") && *a != role)
        .collect();
    let arg = |i: usize| rest.get(i).copied().unwrap_or("");
    let num = |i: usize, d: u64| arg(i).parse().unwrap_or(d);
    let result = match role.as_str() {
        "publisher" => honest::publish(
            &who,
            arg(0),
            num(1, 100),
            num(2, 4096) as usize,
            std::time::Duration::from_micros(num(3, 0)),
            pooled,
        ),
        "subscriber" => {
            let ring = args.iter().any(|a| a == "--ring");
            honest::subscribe(&who, arg(0), num(1, 8) as usize, pooled, ring)
        }
        #[cfg(target_arch = "wasm32")]
        "fuzz" => hostile::run(&who, num(0, 1), num(1, 1000), arg(2)),
        other => Err(format!("unknown role {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{who}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
