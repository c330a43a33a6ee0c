//! The delivery benchmark lives in `benches/delivery.rs`
//! (`cargo bench -p shm-bench`); results and how to read them are in
//! `shm-host/BENCHMARKS.md`. This library is empty: the crate exists so
//! that the systems the benchmark compares against (iceoryx2) are
//! dependencies of the benchmark only.
