//! The complex example with a C subscriber: the Rust publisher's
//! `list<string>` messages read in place by the Rust consumer and by the C
//! one (`examples/complex/consumer-c`, built by `scripts/build-c-guests`),
//! side by side in one topology. Both must print the same lines (timings
//! aside) for every message, and nothing may be copied into either.

use crate::common;

use std::path::PathBuf;

const RUST: &str = "complex-consumer#1";
const C: &str = "complex-consumer-c#2";

/// The C consumer component; `scripts/build-c-guests` builds it (the
/// project's test script runs it after `scripts/build-guests`).
fn c_consumer() -> PathBuf {
    let p = common::guests_dir().join("complex-consumer-c.wasm");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/build-c-guests` (it installs the C toolchain if needed)",
        p.display()
    );
    p
}

/// Runs the publisher with `publisher_args`, the Rust consumer and the C
/// consumer (both told to expect `expect` lists); returns stdout.
fn run(publisher_args: &[&str], expect: u32) -> String {
    let c = c_consumer();
    let mut args = vec![
        "pubsub",
        "--stats",
        "--verify-sharing",
        "--publisher",
        "@complex-publisher",
    ];
    for a in publisher_args {
        args.extend(["--publisher-arg", a]);
    }
    let expect = expect.to_string();
    args.extend([
        "--subscriber",
        "@complex-consumer",
        "--subscriber",
        c.to_str().unwrap(),
        "--subscriber-arg",
        "--expect",
        "--subscriber-arg",
        &expect,
    ]);
    let out = common::shm_host(&args);
    common::succeeded(&out)
}

/// What consumer `name` printed, in order, without its name and with the
/// timings cut off (they differ from run to run): `["hello", "zero"] (33
/// bytes` for a message, `received 10 lists (330 bytes read in place)` for
/// the summary.
fn printed(stdout: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| {
            let end = l
                .find("; attach ")
                .or_else(|| l.find("; median per message"))
                .unwrap_or_else(|| panic!("{name} printed a line without timings: {l}"));
            l[..end].to_string()
        })
        .collect()
}

/// Both consumers printed the same `messages` message lines and summary,
/// and the C consumer's every attach was a mapping, no copy.
fn check_same_and_mapped(stdout: &str, messages: u64) -> Vec<String> {
    let (rust, c) = (printed(stdout, RUST), printed(stdout, C));
    assert_eq!(rust.len() as u64, messages + 1, "{stdout}");
    assert_eq!(c, rust, "the C consumer printed otherwise:\n{stdout}");
    let stats = common::stats_line(stdout, C);
    assert_eq!(common::stat(stats, "attaches"), messages, "{stats}");
    assert_eq!(common::stat(stats, "mapped"), messages, "{stats}");
    assert_eq!(common::stat(stats, "copied"), 0, "{stats}");
    assert_eq!(common::stat(stats, "errors"), 0, "{stats}");
    c
}

#[test]
fn a_c_consumer_prints_what_the_rust_consumer_prints() {
    let stdout = run(&[], 10);
    let c = check_same_and_mapped(&stdout, 10);
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    for (line, word) in c.iter().zip(words) {
        // The flat list<string> (u32): a header pair for the list and one
        // per string (8 bytes each), then the strings' bytes.
        let bytes = 3 * 8 + "hello".len() + word.len();
        assert_eq!(line, &format!(r#"["hello", "{word}"] ({bytes} bytes"#));
    }
    assert_eq!(c[10], "received 10 lists (330 bytes read in place)");
    // The publisher's 10 write attaches and each consumer's 10 read
    // attaches were all the blocks' own memfd pages.
    assert!(
        stdout.contains(
            "proof of sharing: 30 of 30 mapped attaches checked in /proc/self/maps are the \
             block's own memfd pages; bytes copied: 0"
        ),
        "{stdout}"
    );
}

#[test]
fn a_c_consumer_reads_large_lists_in_place_too() {
    let stdout = run(&["--messages", "3", "--strings", "20000"], 3);
    let c = check_same_and_mapped(&stdout, 3);
    for (i, word) in ["zero", "one", "two"].iter().enumerate() {
        assert!(
            c[i].starts_with("20000 strings, ")
                && c[i].contains(&format!(
                    r#"first "hello", second "{word}", last "message {i} line 19999"#
                )),
            "{}",
            c[i]
        );
    }
    assert!(
        stdout.contains("proof of sharing: 9 of 9 mapped"),
        "{stdout}"
    );
}
