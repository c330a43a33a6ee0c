//! The typed-topic example (`examples/frames`): a message type of one's own
//! (`#[derive(Flat)] struct Frame`) published to two subscriber components,
//! every pixel and tag checked in place, nothing copied.

use crate::common;

use std::process::Command;

#[test]
fn frames_reach_two_subscribers_intact_and_uncopied() {
    let arg = |name: &str| common::guest(name).to_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_shm-host"))
        .args(["pubsub", "--stats", "--verify-sharing", "--publisher"])
        .arg(arg("frames-publisher"))
        .args([
            "--publisher-arg",
            "6",
            "--publisher-arg",
            "320",
            "--publisher-arg",
            "200",
        ])
        .arg("--subscriber")
        .arg(arg("frames-subscriber"))
        .arg("--subscriber")
        .arg(arg("frames-subscriber"))
        .output()
        .unwrap();
    let stdout = common::succeeded(&out);
    for s in ["frames-subscriber#1", "frames-subscriber#2"] {
        for n in 0..6 {
            assert!(
                stdout.contains(&format!("{s}: frame {n}: 320x200 intact")),
                "{s} frame {n}:\n{stdout}"
            );
        }
        assert!(stdout.contains(&format!(
            "{s}: received 6 frames, every pixel and tag checked in place"
        )));
    }
    assert!(
        stdout.contains("proof of sharing: 18 of 18 mapped attaches checked in /proc/self/maps are the block's own memfd pages; bytes copied: 0"),
        "{stdout}"
    );
}
