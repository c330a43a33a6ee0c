//! The embedding shown in the README runs: `examples/embed.rs` is included
//! here and executed on a shipped component, and the README shows exactly
//! its code.

use crate::common;

#[path = "../../examples/embed.rs"]
mod example;

#[test]
fn the_readme_embedding_runs_a_component() {
    let suite = common::guest("api-suite");
    let (ok, statistics) = example::run(suite.to_str().unwrap()).unwrap();
    assert!(ok, "the api suite failed under the embedding");
    let guest = statistics
        .lines()
        .find(|l| l.trim_start().starts_with("guest "))
        .expect(&statistics);
    assert!(!guest.contains("attaches        0"), "{guest}");
    assert!(statistics.contains("copied      0"), "{statistics}");
}

#[test]
fn the_readme_shows_the_example() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let example = include_str!("../../examples/embed.rs");
    let body = example
        .split_once("use shm_host::link")
        .map(|(_, b)| format!("use shm_host::link{b}"))
        .unwrap();
    let body = body.split("\n#[allow(dead_code)]").next().unwrap().trim();
    assert!(
        readme.contains(body),
        "README.md's \"Using the host\" must show examples/embed.rs:\n{body}"
    );
}
