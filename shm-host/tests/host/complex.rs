//! The complex example end to end: a list<string> built in place by the
//! publisher component, read in place by two consumer components.

use crate::common;

use std::process::Command;

fn run(extra_publisher: &[&str], expect: u32) -> String {
    let g = |n: &str| common::guest(n).to_str().unwrap().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shm-host"));
    cmd.args([
        "pubsub",
        "--stats",
        "--verify-sharing",
        "--publisher",
        &g("complex-publisher"),
    ]);
    for a in extra_publisher {
        cmd.args(["--publisher-arg", a]);
    }
    cmd.args([
        "--subscriber",
        &g("complex-consumer"),
        "--subscriber",
        &g("complex-consumer"),
    ]);
    cmd.args([
        "--subscriber-arg",
        "--expect",
        "--subscriber-arg",
        &expect.to_string(),
    ]);
    let out = cmd.output().unwrap();
    common::succeeded(&out)
}

fn check_proof(stdout: &str, attaches: u32) {
    let total = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect(stdout);
    assert!(
        total.contains("copied      0 (         0 bytes)"),
        "{total}"
    );
    let proof = format!(
        "proof of sharing: {attaches} of {attaches} mapped attaches checked in /proc/self/maps are the block's own memfd pages; bytes copied: 0"
    );
    assert!(stdout.contains(&proof), "{stdout}");
}

#[test]
fn two_consumers_receive_every_list_exactly() {
    let stdout = run(&[], 10);
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    for c in ["complex-consumer#1", "complex-consumer#2"] {
        let got: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{c}: [")))
            .map(|l| &l[..l.find(']').unwrap()])
            .collect();
        let want: Vec<String> = words.iter().map(|w| format!(r#""hello", "{w}""#)).collect();
        assert_eq!(got, want, "{c}:\n{stdout}");
        assert!(
            stdout.contains(&format!("{c}: received 10 lists")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("built 10 lists of 2 strings in place"),
        "{stdout}"
    );
    // 10 write attaches by the publisher, 10 read attaches by each consumer.
    check_proof(&stdout, 30);
}

#[test]
fn large_lists_are_delivered_the_same_way() {
    let stdout = run(&["--messages", "3", "--strings", "20000"], 3);
    for c in ["complex-consumer#1", "complex-consumer#2"] {
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{c}: 20000 strings")))
            .collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        for (i, word) in ["zero", "one", "two"].iter().enumerate() {
            assert!(
                lines[i].contains(&format!(
                    r#"first "hello", second "{word}", last "message {i} line 19999"#
                )),
                "{}",
                lines[i]
            );
        }
    }
    check_proof(&stdout, 9);
}
