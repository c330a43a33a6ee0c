//! What the READMEs promise a new user: the install command, flat-wit in
//! the list of publishable crates, and a build.rs example that reports a
//! WIT error by its message. (The README's build.rs example itself is
//! compiled as a doc test: `ReadmeDoctests` in src/lib.rs.)

use std::path::Path;

const README: &str = include_str!("../README.md");
const ROOT_README: &str = include_str!("../../README.md");
const PACKAGE_SCRIPT: &str = include_str!("../../scripts/package");

#[test]
fn the_readme_shows_how_to_install_the_command_line() {
    assert!(README.contains("cargo install --path flat-wit"));
    assert!(ROOT_README.contains("cargo install --path flat-wit"));
}

#[test]
fn the_root_readme_lists_every_crate_scripts_package_publishes() {
    let crates = PACKAGE_SCRIPT
        .lines()
        .find_map(|l| l.strip_prefix("crates=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("scripts/package names its crates");
    let list = ROOT_README
        .split("`scripts/package` packages the publishable crates (")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the root README lists the publishable crates")
        .replace('\n', " ");
    for krate in crates.split_whitespace() {
        assert!(list.contains(&format!("`{krate}`")), "{krate} in: {list}");
    }
    assert!(list.contains("`flat-wit`") && list.contains("`flat-wit-macro`"));
}

#[test]
fn the_build_rs_example_prints_the_error_message() {
    let example = README
        .split("// build.rs")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a build.rs example");
    assert!(example.contains("eprintln!(\"error: {e}\")"), "{example}");
    assert!(!example.contains(".unwrap()") && !example.contains("{e:?}"));
    // What it prints: the message, naming the file or the type, not a
    // struct dump.
    let missing = flat_wit::rust::generate_file(
        "no-such-wit-dir",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("never-written.rs"),
    )
    .expect_err("no such directory");
    let text = missing.to_string();
    assert!(
        text.starts_with("cannot load WIT from no-such-wit-dir"),
        "{text}"
    );
    let unsupported = flat_wit::rust::generate_file(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wit-unsupported"),
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("never-written.rs"),
    )
    .expect_err("flags are unsupported");
    let text = unsupported.to_string();
    assert!(
        text.contains("`permissions`") && text.contains("flags") && !text.contains('{'),
        "{text}"
    );
}
