//! The `shm-host run` command, end to end: the minimal example, a plain
//! WASI command, and the errors a user can make.

use crate::common;

use std::process::{Command, Output};

fn shm_host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shm-host"))
        .args(args)
        .output()
        .expect("running shm-host")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn minimal_example_increments_in_place_without_copying() {
    let main = common::guest("minimal-main");
    let worker = common::guest("minimal_impl");
    let out = shm_host(&[
        "run",
        "--stats",
        "--link",
        worker.to_str().unwrap(),
        main.to_str().unwrap(),
        "0,1,1,5000,65535,70000",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
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
    let total = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect(&stdout);
    assert!(
        total.contains("copied      0 (         0 bytes)"),
        "{total}"
    );
    // Five increments and one read: six attaches, all mapped.
    assert!(
        total.contains("attaches        6  mapped        6"),
        "{total}"
    );
}

#[test]
fn a_plain_wasi_command_runs_unchanged() {
    let hello = common::guest("hello-wasi");
    let out = shm_host(&[
        "run",
        "--env",
        "GREETING=hi",
        hello.to_str().unwrap(),
        "a",
        "--b",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(
        stdout.contains(r#"hello from wasi: args=["a", "--b"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("GREETING=hi"), "{stdout}");
    let out = shm_host(&["run", hello.to_str().unwrap(), "--fail"]);
    // WASI 0.2's `exit` carries success or failure only, as under
    // `wasmtime run`: a failing exit is status 1.
    assert_eq!(out.status.code(), Some(1), "a failing exit fails the run");
}

#[test]
fn clear_errors_for_bad_inputs() {
    let out = shm_host(&["run", "/nonexistent/x.wasm"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot read /nonexistent/x.wasm"),
        "{}",
        text(&out.stderr)
    );

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shm-host-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = shm_host(&["run", core.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is a core wasm module, not a component"),
        "{}",
        text(&out.stderr)
    );

    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"hello").unwrap();
    let out = shm_host(&["run", junk.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("is not a wasm component"),
        "{}",
        text(&out.stderr)
    );

    // The minimal example without its worker: an unsatisfied import.
    let main = common::guest("minimal-main");
    let out = shm_host(&["run", main.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("zero-copy:examples/counter"), "{stderr}");
    assert!(stderr.contains("--link"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
