//! The `flat-wit` command line: its output is the library's, its errors name
//! the WIT type, and the header compiles for wasm32 guests.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use flat_wit::{c, Width};

const EXE: &str = env!("CARGO_BIN_EXE_flat-wit");

fn tmp(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn c_and_rust_subcommands_write_the_generated_code() {
    let header = tmp("cli-messages.h");
    let out = Command::new(EXE)
        .args(["c", WIT_DIR, "--width", "u8", "--width", "u32", "-o"])
        .arg(&header)
        .output()
        .expect("run flat-wit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = c::generate(
        &model(),
        &c::Options {
            widths: vec![Width::U8, Width::U32],
            prefix: None,
        },
    )
    .expect("generate");
    assert_eq!(std::fs::read_to_string(&header).expect("read"), expected);

    let out = Command::new(EXE)
        .args(["rust", WIT_DIR])
        .output()
        .expect("run flat-wit");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        std::fs::read_to_string(GENERATED_RS).expect("read")
    );
}

#[test]
fn unsupported_wit_is_reported_with_its_type() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wit-unsupported");
    let out = Command::new(EXE)
        .args(["c", dir])
        .output()
        .expect("run flat-wit");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`permissions`") && err.contains("flags"),
        "{err}"
    );
    let out = Command::new(EXE)
        .args(["c", WIT_DIR, "--width", "u64"])
        .output()
        .expect("run flat-wit");
    assert!(!out.status.success());
}

#[test]
fn header_compiles_for_wasm32_with_clang() {
    if Command::new("clang").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no clang; the wasm32 compile check did not run");
        return;
    }
    let dir = tmp("cli-wasm32");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let header = c::generate(&model(), &c::Options::default()).expect("generate");
    std::fs::write(dir.join("messages.h"), header).expect("write");
    std::fs::write(
        dir.join("use.c"),
        "#include \"messages.h\"\nbool check(const uint8_t *p, size_t n) { return flat_wit_test_frame_u32_validate(p, n) && flat_wit_test_kitchen_sink_u8_validate(p, n); }\n",
    )
    .expect("write");
    let out = Command::new("clang")
        .args([
            "--target=wasm32-wasi",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-c",
        ])
        .arg(dir.join("use.c"))
        .arg("-o")
        .arg(dir.join("use.o"))
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
