//! The frames example with a C subscriber: one WIT record
//! (`examples/frames/wit/frame.wit`) is the message type of the Rust
//! publisher, the Rust subscriber (both through `flat_wit_macro::generate!`)
//! and the C subscriber (`examples/frames/subscriber-c`, through the header
//! `flat-wit c` makes; built by `scripts/build-c-guests`), side by side in
//! one topology. Both subscribers must print the same lines for every frame,
//! having checked every pixel and tag in place, and nothing may be copied
//! into either.

use crate::common;

use std::path::PathBuf;

const RUST: &str = "frames-subscriber#1";
const C: &str = "frames-subscriber-c#2";

/// The C subscriber component; `scripts/build-c-guests` builds it (the
/// project's test script runs it after `scripts/build-guests`).
fn c_subscriber() -> PathBuf {
    let p = common::guests_dir().join("frames-subscriber-c.wasm");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/build-c-guests` (it installs the C toolchain if needed)",
        p.display()
    );
    p
}

/// Runs `publisher` with `publisher_args` on the `frames` topic, the Rust
/// subscriber and the C one; returns the runner's output.
fn run(publisher: &str, publisher_args: &[&str]) -> std::process::Output {
    let c = c_subscriber();
    let mut args = vec![
        "pubsub",
        "--stats",
        "--verify-sharing",
        "--publisher",
        publisher,
    ];
    for a in publisher_args {
        args.extend(["--publisher-arg", a]);
    }
    args.extend([
        "--subscriber",
        "@frames-subscriber",
        "--subscriber",
        c.to_str().unwrap(),
    ]);
    common::shm_host(&args)
}

/// What subscriber `name` printed, in order, without its name. The frames
/// subscribers print no timings, so the lines compare whole.
fn printed(stdout: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// Publishes `count` frames of `width` x `height` with the Rust publisher
/// and checks that both subscribers printed the same lines, every frame
/// intact, and that the C subscriber's every attach was a mapping, no copy.
fn same_lines_and_mapped(count: u32, width: u32, height: u32) -> String {
    let (count_s, width_s, height_s) = (count.to_string(), width.to_string(), height.to_string());
    let out = run("@frames-publisher", &[&count_s, &width_s, &height_s]);
    let stdout = common::succeeded(&out);
    let (rust, c) = (printed(&stdout, RUST), printed(&stdout, C));
    let mut expected: Vec<String> = (0..count)
        .map(|n| format!("frame {n}: {width}x{height} intact"))
        .collect();
    expected.push(format!(
        "received {count} frames, every pixel and tag checked in place"
    ));
    assert_eq!(rust, expected, "{stdout}");
    assert_eq!(c, rust, "the C subscriber printed otherwise:\n{stdout}");
    let stats = common::stats_line(&stdout, C);
    let count = u64::from(count);
    assert_eq!(common::stat(stats, "attaches"), count, "{stats}");
    assert_eq!(common::stat(stats, "mapped"), count, "{stats}");
    assert_eq!(common::stat(stats, "copied"), 0, "{stats}");
    assert_eq!(common::stat(stats, "errors"), 0, "{stats}");
    // The publisher's write attaches and each subscriber's read attaches
    // were all the blocks' own memfd pages.
    let attaches = 3 * count;
    assert!(
        stdout.contains(&format!(
            "proof of sharing: {attaches} of {attaches} mapped attaches checked in \
             /proc/self/maps are the block's own memfd pages; bytes copied: 0"
        )),
        "{stdout}"
    );
    stdout
}

#[test]
fn a_c_subscriber_reads_the_rust_frames_in_place() {
    same_lines_and_mapped(6, 320, 200);
}

#[test]
fn a_c_subscriber_reads_frames_of_an_odd_size() {
    // Blocks of an odd size: a frame of 340 KB that ends inside a page.
    // (Frames without pixels, an empty list with no region, pass in
    // `both_subscribers_name_the_same_wrong_pixel_or_tag`.)
    same_lines_and_mapped(3, 1021, 333);
}

#[test]
fn both_subscribers_refuse_a_message_of_another_type() {
    // The complex publisher's `list<string>` messages, published on the
    // frames topic: not a valid `frame`. Both subscribers must say so and
    // fail; the C one with a message and exit status 1, not a trap.
    let out = run(
        "@complex-publisher",
        &["--topic", "frames", "--messages", "2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for name in [RUST, C] {
        assert!(
            stderr.contains(&format!(
                "{name}: frame 0: the message is not a valid one of this type: "
            )),
            "{name}:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "subscriber {name} failed (it exited with an error status)"
            )),
            "{name}:\n{stderr}"
        );
    }
    let stats = common::stats_line(&String::from_utf8_lossy(&out.stdout), C).to_string();
    assert_eq!(common::stat(&stats, "copied"), 0, "{stats}");
}

/// Runs the Rust publisher with `--wrong-frame wrong`, which sends frame
/// `wrong + 1` in its place: both subscribers check frames up to there
/// intact, then must fail on it naming the same first difference.
fn both_fail_alike(count: u32, width: u32, height: u32, wrong: u32) -> Vec<String> {
    let args = [count, width, height].map(|n| n.to_string());
    let wrong_s = wrong.to_string();
    let out = run(
        "@frames-publisher",
        &[&args[0], &args[1], &args[2], "--wrong-frame", &wrong_s],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    let (rust, c) = (printed(&stdout, RUST), printed(&stdout, C));
    let intact: Vec<String> = (0..wrong)
        .map(|n| format!("frame {n}: {width}x{height} intact"))
        .collect();
    assert_eq!(rust, intact, "{stdout}");
    assert_eq!(c, intact, "{stdout}");
    let (rust_err, c_err) = (printed(&stderr, RUST), printed(&stderr, C));
    assert_eq!(rust_err.len(), 1, "{stderr}");
    assert_eq!(
        c_err, rust_err,
        "the C subscriber failed otherwise:\n{stderr}"
    );
    c_err
}

#[test]
fn both_subscribers_name_the_same_wrong_pixel_or_tag() {
    // Frame 2 carries frame 3's pixels: pixel 0 is 3 * 7.
    assert_eq!(both_fail_alike(4, 8, 4, 2), ["frame 2: pixel 0 is 21"]);
    // Without pixels only the tags tell frame 1 from frame 2.
    assert_eq!(
        both_fail_alike(3, 0, 0, 1),
        [r#"frame 1: tags ["camera", "frame-2"]"#]
    );
}
