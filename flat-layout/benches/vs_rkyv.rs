//! flat-layout vs rkyv 0.8 on a log-like `list<string>` (~10,000 strings,
//! ~1 MB): build, validate, read all. See BENCHMARKS.md for results.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flat_layout::{encoded_size, validate, Builder};
use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;

const LINES: usize = 10_000;

/// Deterministic log-like lines of mixed lengths (about 100 bytes on average).
fn log_lines() -> Vec<String> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let levels = ["INFO", "WARN", "DEBUG", "ERROR", "TRACE"];
    let words = [
        "request", "cache", "miss", "user", "upstream", "retry", "ok", "timeout", "ß→✓",
    ];
    (0..LINES)
        .map(|i| {
            let r = next();
            let mut line = format!(
                "2026-11-24T{:02}:{:02}:{:02}.{:03}Z {} svc-{}: ",
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60,
                r % 1000,
                levels[(r >> 10) as usize % levels.len()],
                (r >> 20) % 16,
            );
            // Mixed lengths: mostly short, some long lines.
            let extra = match (r >> 30) % 10 {
                0..=5 => (r >> 40) % 40,
                6..=8 => 40 + (r >> 40) % 120,
                _ => 200 + (r >> 40) % 500,
            };
            while line.len() < 48 + extra as usize {
                line.push_str(words[(next() % words.len() as u64) as usize]);
                line.push(' ');
            }
            line
        })
        .collect()
}

fn build_flat(lines: &[String], block: &mut [u8]) -> usize {
    let mut builder = Builder::<u32>::new(block);
    let mut list = builder.list::<Vec<String>>(lines.len()).expect("list");
    for line in lines {
        list.push_str(line).expect("push");
    }
    list.finish().expect("finish list");
    builder.finish().expect("finish")
}

fn read_all_flat(list: flat_layout::ListView<'_, String, u32>) -> usize {
    list.iter()
        .map(|s| s.len() + usize::from(s.as_bytes().first().copied().unwrap_or(0)))
        .sum()
}

fn read_all_rkyv(list: &rkyv::Archived<Vec<String>>) -> usize {
    list.iter()
        .map(|s| s.len() + usize::from(s.as_bytes().first().copied().unwrap_or(0)))
        .sum()
}

fn benches(c: &mut Criterion) {
    let lines = log_lines();
    let payload: usize = lines.iter().map(String::len).sum();

    let size = encoded_size::<u32, _>(&lines).expect("size");
    let mut block = vec![0u8; size];
    let used = build_flat(&lines, &mut block);
    assert_eq!(used, size);

    let rkyv_bytes = rkyv::to_bytes::<RkyvError>(&lines).expect("rkyv");
    let archived =
        rkyv::access::<rkyv::Archived<Vec<String>>, RkyvError>(&rkyv_bytes).expect("access");
    let flat = validate::<Vec<String>, u32>(&block).expect("validate");
    assert_eq!(read_all_flat(flat), read_all_rkyv(archived));
    eprintln!(
        "data set: {} strings, {payload} string bytes; flat-layout<u32> {size} bytes, rkyv {} bytes",
        lines.len(),
        rkyv_bytes.len()
    );

    // A second block of the same size for the build benchmarks.
    let mut scratch = vec![0u8; size];
    let mut group = c.benchmark_group("build");
    group.throughput(Throughput::Bytes(payload as u64));
    group.bench_function("flat-layout (Builder in place)", |b| {
        b.iter(|| black_box(build_flat(black_box(&lines), &mut scratch)))
    });
    group.bench_function("flat-layout (write)", |b| {
        b.iter(|| {
            black_box(flat_layout::write::<u32, _>(black_box(&lines), &mut scratch).expect("write"))
        })
    });
    let mut out = Some(AlignedVec::<16>::with_capacity(rkyv_bytes.len()));
    group.bench_function("rkyv (to_bytes_in, reused buffer)", |b| {
        b.iter(|| {
            let mut buf = out.take().expect("buffer");
            buf.clear();
            let buf =
                rkyv::api::high::to_bytes_in::<_, RkyvError>(black_box(&lines), buf).expect("rkyv");
            black_box(buf.len());
            out = Some(buf);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(payload as u64));
    group.bench_function("flat-layout (validate)", |b| {
        b.iter(|| {
            black_box(
                validate::<Vec<String>, u32>(black_box(&block))
                    .expect("validate")
                    .len(),
            )
        })
    });
    group.bench_function("rkyv (access)", |b| {
        b.iter(|| {
            black_box(
                rkyv::access::<rkyv::Archived<Vec<String>>, RkyvError>(black_box(&rkyv_bytes))
                    .expect("access")
                    .len(),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("read_all");
    group.throughput(Throughput::Bytes(payload as u64));
    group.bench_function("flat-layout", |b| {
        b.iter(|| black_box(read_all_flat(black_box(flat))))
    });
    group.bench_function("rkyv", |b| {
        b.iter(|| black_box(read_all_rkyv(black_box(archived))))
    });
    group.finish();

    let mut group = c.benchmark_group("validate_and_read_all");
    group.throughput(Throughput::Bytes(payload as u64));
    group.bench_function("flat-layout", |b| {
        b.iter(|| read_all_flat(validate::<Vec<String>, u32>(black_box(&block)).expect("validate")))
    });
    group.bench_function("rkyv", |b| {
        b.iter(|| {
            read_all_rkyv(
                rkyv::access::<rkyv::Archived<Vec<String>>, RkyvError>(black_box(&rkyv_bytes))
                    .expect("access"),
            )
        })
    });
    group.finish();
}

criterion_group!(vs_rkyv, benches);
criterion_main!(vs_rkyv);
