//! The minimal example natively: main and the worker in one program, from
//! the components' source.

#[test]
fn the_minimal_example_runs_natively() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minimal-main"))
        .arg("0,1,1,5000,65535,70000")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "the worker made 5 increments at 4 positions; all 65536 bytes verified in place"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("position 70000 is outside the block"),
        "{stdout}"
    );
}
