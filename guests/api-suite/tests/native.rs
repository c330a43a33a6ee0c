//! The suite against the native backend.

#[test]
fn the_suite_passes_on_the_native_backend() {
    let failures = api_suite::run_all(|_, _| {});
    assert!(failures.is_empty(), "{failures:#?}");
}
