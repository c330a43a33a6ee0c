//! Native mode end to end: the same publisher and subscriber source as the
//! components, as threads of one program, print what they print under
//! `shm-host pubsub`.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_native-topology"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_seed_pubsub_test_runs_natively() {
    let stdout = run(&["pubsub", "numbers", "20"]);
    for s in ["pubsub-subscriber#1", "pubsub-subscriber#2"] {
        let got: Vec<u32> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{s}: received ")))
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(got, (0..20).collect::<Vec<_>>(), "{stdout}");
        assert!(stdout.contains(&format!(
            "{s}: received 20 messages in order (1280 bytes read in place, 0 dropped)"
        )));
    }
    assert!(
        stdout.contains("publisher: published 20 messages of 64 bytes on numbers to 2 subscribers")
    );
}

#[test]
fn the_complex_example_runs_natively() {
    let stdout = run(&["complex"]);
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
        assert_eq!(got, want, "{stdout}");
        assert!(
            stdout.contains(&format!("{c}: received 10 lists (330 bytes read in place)")),
            "{stdout}"
        );
    }
}
