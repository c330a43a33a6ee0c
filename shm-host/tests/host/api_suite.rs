//! The guest API's behavioral suite (guests/api-suite) against the wasm
//! backend: the same source `cargo test -p api-suite` runs natively, built
//! as a component and run under `shm-host run`.

use crate::common;

use std::process::Command;

#[test]
fn the_suite_passes_on_the_wasm_backend() {
    let suite = common::guest("api-suite");
    let out = Command::new(env!("CARGO_BIN_EXE_shm-host"))
        .args(["run", "--stats", suite.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = common::succeeded(&out);
    assert!(!stdout.contains("FAILED"), "{stdout}");
    let cases = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(cases >= 12, "{stdout}");
    assert!(
        stdout.contains(&format!("api-suite: {cases} passed, 0 failed")),
        "{stdout}"
    );
}
