//! One set of conformance vectors (tests/vectors/messages.txt) for the Rust
//! and the C implementation of the flat format, the C accessors and builder
//! against flat-layout, and a bounded differential fuzz of the two
//! validators.
//!
//! Regenerate the vectors after a deliberate change with
//! `FLAT_WIT_BLESS=1 cargo test -p flat-wit --test conformance`.

mod common;

use common::gen::*;
use common::*;
use flat_layout::{to_vec, Flat};
use flat_wit::Width;

fn enc<T: Flat + ?Sized>(w: Width, value: &T) -> Option<Vec<u8>> {
    match w {
        Width::U8 => to_vec::<u8, T>(value).ok(),
        Width::U16 => to_vec::<u16, T>(value).ok(),
        Width::U32 => to_vec::<u32, T>(value).ok(),
    }
}

fn frame(pixels: u32) -> Frame {
    Frame {
        width: 4,
        height: 2,
        tags: vec!["camera".into(), "frame-1".into()],
        pixels: (0..pixels).map(|i| i as u8).collect(),
    }
}

fn entry_example() -> Entry {
    Entry {
        id: 7,
        tags: vec!["a".into(), "bc".into()],
        note: Some("hi".into()),
        ok: true,
    }
}

fn shapes_example() -> Shapes {
    vec![
        Shape::Circle(9),
        Shape::Label(Label { text: "ok".into() }),
        Shape::Empty,
    ]
}

fn kitchen_sink() -> KitchenSink {
    KitchenSink {
        flag: true,
        letter: '\u{1F600}',
        color: Color::Blue,
        small: -5,
        wide: -300,
        medium: -70000,
        big: i64::MIN,
        huge: u64::MAX,
        ratio: 1.5,
        precise: -0.25,
        pair: (513, "pé".into()),
        maybe: Some(Shape::Label(Label { text: "tag".into() })),
        frames: vec![frame(3), frame(0)],
        words: vec![Some("x".into()), None, Some(String::new())],
        r#type: Some(vec!['a', '\u{10FFFF}']),
    }
}

fn strings(items: &[&str]) -> Strings {
    items.iter().map(|s| s.to_string()).collect()
}

/// Header pair `(offset, length)` at width `w`.
fn hdr(w: Width, offset: u64, len: u64) -> Vec<u8> {
    let n = w.bytes();
    let mut out = offset.to_le_bytes()[..n].to_vec();
    out.extend_from_slice(&len.to_le_bytes()[..n]);
    out
}

fn max(w: Width) -> u64 {
    (1u64 << (8 * w.bytes())) - 1
}

/// The FORMAT.md §5 examples, byte for byte: (type, width, verdict, hex, note).
const FORMAT_EXAMPLES: &[(&str, Width, bool, &str, &str)] = &[
    (
        "strings",
        Width::U8,
        true,
        concat!("0202", "0405", "0703", "68656c6c6f", "6f6e65"),
        "FORMAT.md example 1",
    ),
    (
        "strings",
        Width::U32,
        true,
        concat!(
            "0800000002000000",
            "1000000005000000",
            "0d00000003000000",
            "68656c6c6f",
            "6f6e65"
        ),
        "FORMAT.md example 2",
    ),
    (
        "entry",
        Width::U16,
        true,
        concat!(
            "0700", "0a000200", "01", "10000200", "01", "08000100", "05000200", "61", "6263",
            "6869"
        ),
        "FORMAT.md example 3",
    ),
    (
        "example4",
        Width::U8,
        true,
        concat!("000000", "e9000000", "0202", "01000000", "04030201"),
        "FORMAT.md example 4",
    ),
    (
        "strings",
        Width::U8,
        false,
        concat!("0202", "0401", "0201", "61"),
        "FORMAT.md example 5 (aliased strings)",
    ),
    (
        "nested",
        Width::U8,
        false,
        concat!("0201", "0001"),
        "FORMAT.md example 6 (cycle)",
    ),
    (
        "shapes",
        Width::U8,
        true,
        concat!("0203", "010900", "020502", "000000", "6f6b"),
        "FORMAT.md example 7",
    ),
];

/// Every vector: the FORMAT.md examples, values encoded by flat-layout at
/// every width where they fit, and hand-made edge cases, each with the
/// verdict the format requires.
fn all_vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut push = |ty: &str, width: Width, valid: bool, bytes: Vec<u8>, note: &str| {
        out.push(Vector {
            ty: ty.to_string(),
            width,
            valid,
            bytes,
            note: note.to_string(),
        })
    };
    for &(ty, w, valid, hex, note) in FORMAT_EXAMPLES {
        push(ty, w, valid, unhex(hex), note);
    }
    for w in Width::ALL {
        let mut value = |ty: &str, bytes: Option<Vec<u8>>, note: &str| {
            if let Some(bytes) = bytes {
                push(ty, w, true, bytes, note);
            }
        };
        // Values written by flat-layout.
        value("strings", enc(w, &strings(&[])), "empty list");
        value(
            "strings",
            enc(w, &strings(&["hello", "one"])),
            "two strings",
        );
        value(
            "strings",
            enc(w, &strings(&["", "é€😀", "\u{D7FF}\u{E000}\u{10FFFF}"])),
            "multi-byte UTF-8 and its edges",
        );
        value("frame", enc(w, &frame(8)), "a frame");
        value("frame", enc(w, &frame(0)), "no pixels");
        value("frame", enc(w, &frame(200)), "200 pixels");
        value("entry", enc(w, &entry_example()), "example 3's value");
        value(
            "entry",
            enc(
                w,
                &Entry {
                    id: 65535,
                    tags: vec![],
                    note: None,
                    ok: false,
                },
            ),
            "empty and none",
        );
        value(
            "example4",
            enc(w, &(None::<String>, 'é', vec![1u32, 0x0102_0304])),
            "example 4's value",
        );
        value(
            "example4",
            enc(w, &(Some("x".to_string()), '\u{10FFFF}', Vec::<u32>::new())),
            "some, largest char",
        );
        value(
            "label",
            enc(
                w,
                &Label {
                    text: String::new(),
                },
            ),
            "empty text",
        );
        value(
            "label",
            enc(
                w,
                &Label {
                    text: "héllo".into(),
                },
            ),
            "text",
        );
        value("shape", enc(w, &Shape::Empty), "case without payload");
        value("shape", enc(w, &Shape::Circle(255)), "case with u8");
        value(
            "shape",
            enc(w, &Shape::Label(Label { text: "ok".into() })),
            "case with record",
        );
        value("shapes", enc(w, &shapes_example()), "example 7's value");
        value("shapes", enc(w, &Shapes::new()), "no shapes");
        value(
            "nested",
            enc(w, &vec![vec![1u8, 2], vec![], vec![3]]),
            "list of lists",
        );
        value("color", enc(w, &Color::Red), "first case");
        value("color", enc(w, &Color::Blue), "last case");
        value("kitchen-sink", enc(w, &kitchen_sink()), "every shape");
        let mut plain = kitchen_sink();
        plain.maybe = None;
        plain.frames.clear();
        plain.words.clear();
        plain.r#type = None;
        plain.pair.1.clear();
        value("kitchen-sink", enc(w, &plain), "nones and empties");

        let wb = w.bytes() as u64;
        let h = |off: u64, len: u64| hdr(w, off, len);
        let cat = |parts: &[&[u8]]| parts.concat();
        // Root and bounds.
        push(
            "strings",
            w,
            false,
            vec![0; 2 * w.bytes() - 1],
            "root shorter than its inline size",
        );
        push("kitchen-sink", w, false, Vec::new(), "empty buffer");
        push("color", w, false, Vec::new(), "empty buffer, one-byte root");
        push(
            "strings",
            w,
            true,
            h(2 * wb, 0),
            "empty region at the buffer's end",
        );
        push(
            "strings",
            w,
            true,
            h(0, 0),
            "empty region pointing at its own header",
        );
        push(
            "strings",
            w,
            false,
            h(2 * wb + 1, 0),
            "empty region starting past the end",
        );
        push(
            "strings",
            w,
            false,
            cat(&[&h(2 * wb, 1), &vec![0; 2 * w.bytes() - 1]]),
            "list region one byte past the end",
        );
        push(
            "strings",
            w,
            false,
            cat(&[&h(2 * wb, 1), &h(2 * wb, 2), b"a"]),
            "string one byte past the end",
        );
        push(
            "strings",
            w,
            false,
            h(max(w), max(w)),
            "largest offset and length",
        );
        push(
            "nested",
            w,
            false,
            cat(&[&h(2 * wb, max(w)), &h(0, 0)]),
            "largest element count",
        );
        push(
            "strings",
            w,
            true,
            cat(&[&h(2 * wb + 3, 1), b"xyz", &h(2 * wb, 1), b"a"]),
            "gap before a region",
        );
        push(
            "strings",
            w,
            true,
            cat(&[&h(2 * wb, 1), &h(2 * wb, 1), b"a", b"\xff\xfe"]),
            "trailing bytes",
        );
        if let Some(mut f) = enc(w, &frame(8)) {
            let at = 8 + 3 * w.bytes();
            f[at] = f[at].wrapping_add(1);
            push("frame", w, false, f, "pixel count one past the end");
        }
        // Claimed bytes: overlap, alias, cycle, backwards.
        push(
            "strings",
            w,
            false,
            cat(&[&h(0, 1)]),
            "list region over its own root header",
        );
        push(
            "strings",
            w,
            false,
            cat(&[&h(2 * wb, 2), &h(4 * wb, 1), &h(2 * wb, 1), b"a"]),
            "two strings aliasing one byte",
        );
        push(
            "strings",
            w,
            false,
            cat(&[&h(2 * wb, 2), &h(4 * wb + 1, 1), &h(2 * wb, 1), b"ab"]),
            "second string before the first (backwards)",
        );
        push(
            "strings",
            w,
            false,
            cat(&[&h(2 * wb, 1), &h(0, 1)]),
            "string region over its own header",
        );
        push(
            "nested",
            w,
            false,
            cat(&[&h(2 * wb, 1), &h(0, 1)]),
            "cycle: inner list is itself",
        );
        push(
            "nested",
            w,
            false,
            cat(&[&h(2 * wb, 2), &h(4 * wb, 2), &h(2 * wb + 1, 2), b"abc"]),
            "inner lists overlap by one byte",
        );
        // UTF-8, exactly as core::str::from_utf8.
        for (bytes, valid, note) in [
            (&b"\xc0\x80"[..], false, "overlong NUL"),
            (b"\xc1\xbf", false, "overlong 2-byte"),
            (b"\xe0\x80\x80", false, "overlong 3-byte"),
            (b"\xe0\x9f\xbf", false, "overlong 3-byte (U+07FF)"),
            (b"\xf0\x8f\xbf\xbf", false, "overlong 4-byte"),
            (b"\xed\xa0\x80", false, "surrogate U+D800"),
            (b"\xed\xbf\xbf", false, "surrogate U+DFFF"),
            (b"\xf4\x90\x80\x80", false, "above U+10FFFF"),
            (b"\xf5\x80\x80\x80", false, "lead byte F5"),
            (b"\xff", false, "byte FF"),
            (b"\x80", false, "lone continuation byte"),
            (b"a\xe2\x82", false, "truncated 3-byte sequence"),
            (b"\xc2", false, "truncated 2-byte sequence"),
            (b"\xe2\x28\xa1", false, "bad continuation byte"),
            (b"\xed\x9f\xbf", true, "U+D7FF"),
            (b"\xee\x80\x80", true, "U+E000"),
            (b"\xf4\x8f\xbf\xbf", true, "U+10FFFF"),
            (b"\xf0\x90\x80\x80", true, "U+10000"),
            (b"\xc2\x80", true, "U+0080"),
            (b"\x00\x7f", true, "NUL and DEL"),
        ] {
            let n = bytes.len() as u64;
            push(
                "strings",
                w,
                valid,
                cat(&[&h(2 * wb, 1), &h(2 * wb, n), bytes]),
                &format!("UTF-8: {note}"),
            );
        }
        // char, bool and tags.
        if let Some(base) = enc(w, &(None::<String>, 'a', Vec::<u32>::new())) {
            let at = 1 + 2 * w.bytes();
            for (c, valid) in [
                (0xD800u32, false),
                (0xDFFF, false),
                (0x11_0000, false),
                (0xFFFF_FFFF, false),
                (0xD7FF, true),
                (0xE000, true),
                (0x10_FFFF, true),
            ] {
                let mut b = base.clone();
                b[at..at + 4].copy_from_slice(&c.to_le_bytes());
                push("example4", w, valid, b, &format!("char {c:#x}"));
            }
            let mut b = base.clone();
            b[0] = 2;
            push("example4", w, false, b, "option tag 2");
            let mut b = base.clone();
            b[1] = 0xee;
            push(
                "example4",
                w,
                true,
                b,
                "none with a non-zero payload (not inspected)",
            );
        }
        if let Some(base) = enc(w, &entry_example()) {
            let ok = 2 + 2 * w.bytes() + 1 + 2 * w.bytes();
            for v in [2u8, 0xff] {
                let mut b = base.clone();
                b[ok] = v;
                push("entry", w, false, b, &format!("bool {v}"));
            }
            let mut b = base.clone();
            b[2 + 2 * w.bytes()] = 2;
            push("entry", w, false, b, "option tag 2");
        }
        for (tag, valid) in [(3u8, false), (255, false), (2, true)] {
            push("color", w, valid, vec![tag], &format!("enum tag {tag}"));
        }
        if let Some(base) = enc(w, &Shape::Empty) {
            let mut b = base.clone();
            b[0] = 3;
            push("shape", w, false, b, "variant tag 3");
            let mut b = base;
            b[1] = 0x55;
            push("shape", w, true, b, "padding is not inspected");
        }
        if let Some(mut b) = enc(w, &shapes_example()) {
            let elem = 1 + 2 * w.bytes();
            b[2 * w.bytes() + 2 * elem] = 7;
            push("shapes", w, false, b, "third element's tag 7");
        }
        if let Some(mut b) = enc(w, &kitchen_sink()) {
            b[5] = 3; // color
            push("kitchen-sink", w, false, b, "nested enum tag 3");
        }
    }
    out
}

fn vector_file(vectors: &[Vector]) -> String {
    let mut text = String::from(
        "# Conformance vectors of the flat format for tests/wit (package flat-wit:test).\n\
         # One per line: <type> <width> <valid|invalid> <hex, - if empty> <note>.\n\
         # Generated by tests/conformance.rs (FLAT_WIT_BLESS=1 to regenerate); checked\n\
         # against flat-layout's and the generated C validator.\n",
    );
    for v in vectors {
        text.push_str(&v.line());
        text.push('\n');
    }
    text
}

#[test]
fn vectors_are_up_to_date() {
    let text = vector_file(&all_vectors());
    if std::env::var_os("FLAT_WIT_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(VECTORS).parent().expect("dir"))
            .expect("mkdir");
        std::fs::write(VECTORS, &text).expect("write vectors");
    }
    let stored = std::fs::read_to_string(VECTORS).unwrap_or_default();
    assert!(
        stored == text,
        "tests/vectors/messages.txt is out of date; regenerate it with FLAT_WIT_BLESS=1 cargo test -p flat-wit --test conformance"
    );
}

#[test]
fn rust_validator_agrees_with_every_vector() {
    let vectors = read_vectors();
    assert!(vectors.len() > 200, "{} vectors", vectors.len());
    for v in &vectors {
        assert_eq!(
            rust_valid(&v.ty, v.width, &v.bytes),
            v.valid,
            "{}",
            v.line()
        );
        assert_eq!(render(&v.ty, v.width, &v.bytes).is_some(), v.valid);
    }
    for w in Width::ALL {
        for ty in TYPES {
            assert!(
                vectors
                    .iter()
                    .any(|v| v.ty == *ty && v.width == w && v.valid),
                "no valid vector for {ty} at {}",
                w.name()
            );
        }
    }
}

#[test]
fn format_examples_are_byte_exact() {
    let value = |ty: &str, w: Width| -> Vec<u8> {
        match ty {
            "strings" => enc(w, &strings(&["hello", "one"])),
            "entry" => enc(w, &entry_example()),
            "example4" => enc(w, &(None::<String>, 'é', vec![1u32, 0x0102_0304])),
            "shapes" => enc(w, &shapes_example()),
            other => panic!("{other}"),
        }
        .expect("fits")
    };
    for &(ty, w, valid, hex, note) in FORMAT_EXAMPLES {
        if valid {
            assert_eq!(common::hex(&value(ty, w)), hex, "{note}");
        }
    }
}

/// The driver's input record for one buffer.
fn record(op: u8, ty: &str, w: Width, bytes: &[u8]) -> Vec<u8> {
    let index = TYPES.iter().position(|t| *t == ty).expect("test type") as u8;
    let mut out = vec![op, index, w.bytes() as u8];
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

#[test]
fn c_validator_and_accessors_agree_with_every_vector() {
    let Some(driver) = driver() else {
        return;
    };
    let vectors = read_vectors();
    let mut input = Vec::new();
    for v in &vectors {
        input.extend(record(b'V', &v.ty, v.width, &v.bytes));
        input.extend(record(b'D', &v.ty, v.width, &v.bytes));
    }
    let out = run_driver(driver, &input);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2 * vectors.len());
    for (v, pair) in vectors.iter().zip(lines.chunks(2)) {
        assert_eq!(pair[0] == "1", v.valid, "C verdict for {}", v.line());
        let expected = render(&v.ty, v.width, &v.bytes).unwrap_or_else(|| "invalid".into());
        assert_eq!(pair[1], expected, "C accessors for {}", v.line());
    }
}

#[test]
fn c_builder_writes_what_flat_layout_writes() {
    let Some(driver) = driver() else {
        return;
    };
    // (driver type index, Rust encoding, what)
    type Encode = Box<dyn Fn(Width) -> Option<Vec<u8>>>;
    let cases: Vec<(&str, u8, Encode)> = vec![
        ("frame", 1, Box::new(|w| enc(w, &frame(8)))),
        (
            "frame with 300 pixels",
            8,
            Box::new(|w| enc(w, &frame(300))),
        ),
        ("entry", 2, Box::new(|w| enc(w, &entry_example()))),
        ("shapes", 6, Box::new(|w| enc(w, &shapes_example()))),
        ("kitchen-sink", 9, Box::new(|w| enc(w, &kitchen_sink()))),
    ];
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for w in Width::ALL {
        for (what, index, rust) in &cases {
            let bytes = rust(w);
            input.extend([b'B', *index, w.bytes() as u8, 0, 0, 0, 0]);
            expected.push((
                format!("{what} at {}", w.name()),
                bytes.as_ref().map(|b| common::hex(b)),
            ));
            if let Some(b) = &bytes {
                // Exactly sized buffer: fits; one byte less: the builder fails.
                for cap in [b.len(), b.len() - 1] {
                    input.extend([b'S', *index, w.bytes() as u8]);
                    input.extend((cap as u32).to_le_bytes());
                    let ok = cap == b.len();
                    expected.push((
                        format!("{what} at {} into {cap} bytes", w.name()),
                        ok.then(|| common::hex(b)),
                    ));
                }
            }
        }
    }
    for w in Width::ALL {
        for misuse in 20..=27u8 {
            input.extend([b'S', misuse, w.bytes() as u8, 64, 0, 0, 0]);
            expected.push((format!("misuse {misuse} at {}", w.name()), None));
        }
    }
    let out = run_driver(driver, &input);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (line, (what, want)) in lines.iter().zip(&expected) {
        assert_eq!(*line, want.as_deref().unwrap_or("fail"), "{what}");
    }
    assert!(
        expected.iter().any(|(_, w)| w.is_none()),
        "an overflow case"
    );
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `n` buffers for `ty` at `w`: mutations of its valid vectors (byte
/// changes with interesting values, header nudges, truncation, extension)
/// and random bytes.
fn fuzz_inputs(rng: &mut Rng, seeds: &[&Vector], n: usize) -> Vec<Vec<u8>> {
    const INTERESTING: [u8; 8] = [0, 1, 2, 0x7f, 0x80, 0xc0, 0xed, 0xff];
    (0..n)
        .map(|_| {
            if seeds.is_empty() || rng.below(8) == 0 {
                let len = rng.below(48);
                return (0..len).map(|_| rng.next() as u8).collect();
            }
            let mut b = seeds[rng.below(seeds.len())].bytes.clone();
            for _ in 0..1 + rng.below(3) {
                match rng.below(6) {
                    0 | 1 if !b.is_empty() => {
                        let at = rng.below(b.len());
                        b[at] = INTERESTING[rng.below(INTERESTING.len())];
                    }
                    2 if !b.is_empty() => {
                        let at = rng.below(b.len());
                        b[at] = rng.next() as u8;
                    }
                    3 if !b.is_empty() => {
                        let at = rng.below(b.len());
                        b[at] = b[at].wrapping_add(if rng.below(2) == 0 { 1 } else { 255 });
                    }
                    4 if !b.is_empty() => {
                        let len = rng.below(b.len());
                        b.truncate(len);
                    }
                    _ => {
                        for _ in 0..1 + rng.below(4) {
                            b.push(rng.next() as u8);
                        }
                    }
                }
            }
            b
        })
        .collect()
}

/// The differential fuzz: one round of 20,000 buffers per type and width in
/// the tests; a long campaign sets `FLAT_WIT_FUZZ_ROUNDS` (each round a new
/// seed), e.g. `FLAT_WIT_FUZZ_ROUNDS=100 cargo test --release -p flat-wit
/// --test conformance c_and_rust -- --nocapture` (recorded in README.md).
#[test]
fn c_and_rust_validators_agree_on_random_and_mutated_buffers() {
    let rounds: u64 = std::env::var("FLAT_WIT_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    let (mut total, mut total_valid) = (0, 0);
    for round in 0..rounds {
        let (n, valid) = differential_round(0x5EED_F1A7_0000_0001 + round);
        total += n;
        total_valid += valid;
    }
    eprintln!(
        "differential fuzz: {rounds} round(s), {total} buffers, {total_valid} valid, C and Rust agree on all ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
}

/// One round of the differential fuzz from `seed`: how many buffers, and
/// how many of them were valid.
fn differential_round(seed: u64) -> (usize, usize) {
    const PER_TYPE_AND_WIDTH: usize = 20_000;
    let Some(driver) = driver() else {
        return (0, 0);
    };
    let vectors = read_vectors();
    let mut rng = Rng(seed);
    let mut cases = Vec::new();
    let mut input = Vec::new();
    for w in Width::ALL {
        for ty in TYPES {
            let seeds: Vec<&Vector> = vectors
                .iter()
                .filter(|v| v.ty == *ty && v.width == w && v.valid)
                .collect();
            for b in fuzz_inputs(&mut rng, &seeds, PER_TYPE_AND_WIDTH) {
                input.extend(record(b'V', ty, w, &b));
                cases.push((*ty, w, b));
            }
        }
    }
    let out = run_driver(driver, &input);
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), cases.len());
    let mut valid = 0usize;
    let mut mismatches = Vec::new();
    for ((ty, w, b), c) in cases.iter().zip(&verdicts) {
        let rust = rust_valid(ty, *w, b);
        valid += usize::from(rust);
        if rust != (*c == "1") {
            mismatches.push(format!(
                "{ty} {} rust={rust} c={c} {}",
                w.name(),
                common::hex(b)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ, e.g.:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
    // Both kinds of input were exercised.
    let n = cases.len();
    assert!(valid > n / 20 && valid < n - n / 20, "{valid} of {n} valid");
    (n, valid)
}

#[test]
fn c_utf8_check_is_rusts_on_every_short_sequence() {
    let Some(driver) = driver() else {
        return;
    };
    // Every 1- and 2-byte string, every 3-byte string with a lead byte of
    // E0..EF and boundary third bytes, every 4-byte one with a lead of
    // F0..F7 and boundary third and fourth bytes.
    let mut strings: Vec<Vec<u8>> = (0..=255u8).map(|a| vec![a]).collect();
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            strings.push(vec![a, b]);
        }
    }
    const EDGES: [u8; 5] = [0x00, 0x7f, 0x80, 0xbf, 0xc0];
    for a in 0xe0..=0xefu8 {
        for b in 0..=255u8 {
            for c in EDGES {
                strings.push(vec![a, b, c]);
            }
        }
    }
    for a in 0xf0..=0xf7u8 {
        for b in 0..=255u8 {
            for c in EDGES {
                for d in [0x7f, 0x80, 0xbf] {
                    strings.push(vec![a, b, c, d]);
                }
            }
        }
    }
    let mut input = Vec::new();
    let mut buffers = Vec::new();
    for s in &strings {
        // label { text: string } at u8: header (offset 2, length) then the bytes.
        let mut b = vec![2, s.len() as u8];
        b.extend_from_slice(s);
        input.extend(record(b'V', "label", Width::U8, &b));
        buffers.push(b);
    }
    let out = run_driver(driver, &input);
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), strings.len());
    let mut valid = 0;
    for ((s, b), c) in strings.iter().zip(&buffers).zip(&verdicts) {
        let rust = std::str::from_utf8(s).is_ok();
        valid += usize::from(rust);
        assert_eq!(rust_valid("label", Width::U8, b), rust);
        assert_eq!(
            *c == "1",
            rust,
            "C and Rust disagree on UTF-8 {}",
            common::hex(s)
        );
    }
    assert!(valid > 10_000, "{valid}");
}
