//! The dynamic decoder (`flat_wit::dynamic`) against the generated Rust
//! types of `tests/wit`: the same verdict and the same error (variant and
//! byte positions) as flat-layout's validator on every conformance vector
//! and on random and mutated buffers, the same value as the typed views on
//! valid ones, and JSON that validates against `json_schema`.

mod common;

use std::collections::HashMap;

use common::gen::*;
use common::*;
use flat_layout::{validate_with_len, Index, ValidateError};
use flat_wit::dynamic::{self, f32_json, f64_json, json_schema, DecodeError, Decoder};
use flat_wit::{Model, Selection, Width};
use serde_json::{json, Value};

// ---------------------------------------------------------------- typed side

fn strs<'a>(it: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(it.map(Value::from).collect())
}

fn bytes(b: &[u8]) -> Value {
    Value::Array(b.iter().map(|&x| Value::from(x)).collect())
}

fn opt_str(o: Option<&str>) -> Value {
    o.map_or(Value::Null, Value::from)
}

fn frame<I: Index>(f: &FrameView<'_, I>) -> Value {
    json!({
        "width": f.width(),
        "height": f.height(),
        "tags": strs(f.tags().iter()),
        "pixels": bytes(f.pixels().as_bytes()),
    })
}

fn shape<I: Index>(v: &ShapeView<'_, I>) -> Value {
    match v {
        ShapeView::Empty => json!("empty"),
        ShapeView::Circle(r) => json!({ "circle": r }),
        ShapeView::Label(l) => json!({ "label": { "text": l.text() } }),
        ShapeView::__Marker(_, never) => match *never {},
    }
}

fn color<I: Index>(v: &ColorView<'_, I>) -> Value {
    match v {
        ColorView::Red => json!("red"),
        ColorView::Green => json!("green"),
        ColorView::Blue => json!("blue"),
        ColorView::__Marker(_, never) => match *never {},
    }
}

/// flat-layout's verdict (with the claimed length) and, if valid, the JSON
/// built from the typed view's accessors.
fn typed_at<I: Index>(ty: &str, buf: &[u8]) -> Result<(usize, Value), ValidateError> {
    Ok(match ty {
        "strings" => {
            let (l, n) = validate_with_len::<Strings, I>(buf)?;
            (n, strs(l.iter()))
        }
        "frame" => {
            let (f, n) = validate_with_len::<Frame, I>(buf)?;
            (n, frame(&f))
        }
        "entry" => {
            let (e, n) = validate_with_len::<Entry, I>(buf)?;
            (
                n,
                json!({
                    "id": e.id(),
                    "tags": strs(e.tags().iter()),
                    "note": opt_str(e.note()),
                    "ok": e.ok(),
                }),
            )
        }
        "example4" => {
            let ((o, c, l), n) = validate_with_len::<Example4, I>(buf)?;
            let nums: Vec<Value> = l.iter().map(Value::from).collect();
            (n, json!([opt_str(o), c.to_string(), nums]))
        }
        "label" => {
            let (l, n) = validate_with_len::<Label, I>(buf)?;
            (n, json!({ "text": l.text() }))
        }
        "shape" => {
            let (s, n) = validate_with_len::<Shape, I>(buf)?;
            (n, shape(&s))
        }
        "shapes" => {
            let (l, n) = validate_with_len::<Shapes, I>(buf)?;
            (n, Value::Array(l.iter().map(|s| shape(&s)).collect()))
        }
        "nested" => {
            let (l, n) = validate_with_len::<Nested, I>(buf)?;
            (
                n,
                Value::Array(l.iter().map(|b| bytes(b.as_bytes())).collect()),
            )
        }
        "color" => {
            let (c, n) = validate_with_len::<Color, I>(buf)?;
            (n, color(&c))
        }
        "kitchen-sink" => {
            let (k, n) = validate_with_len::<KitchenSink, I>(buf)?;
            let (num, text) = k.pair();
            (
                n,
                json!({
                    "flag": k.flag(),
                    "letter": k.letter().to_string(),
                    "color": color(&k.color()),
                    "small": k.small(),
                    "wide": k.wide(),
                    "medium": k.medium(),
                    "big": k.big(),
                    "huge": k.huge(),
                    "ratio": f32_json(k.ratio()),
                    "precise": f64_json(k.precise()),
                    "pair": [num, text],
                    "maybe": k.maybe().map_or(Value::Null, |s| shape(&s)),
                    "frames": Value::Array(k.frames().iter().map(|f| frame(&f)).collect()),
                    "words": Value::Array(k.words().iter().map(opt_str).collect()),
                    "type": k.r#type().map_or(Value::Null, |cs| {
                        Value::Array(cs.iter().map(|c| Value::from(c.to_string())).collect())
                    }),
                }),
            )
        }
        other => panic!("unknown test type {other}"),
    })
}

fn typed(ty: &str, w: Width, buf: &[u8]) -> Result<(usize, Value), ValidateError> {
    match w {
        Width::U8 => typed_at::<u8>(ty, buf),
        Width::U16 => typed_at::<u16>(ty, buf),
        Width::U32 => typed_at::<u32>(ty, buf),
    }
}

// ---------------------------------------------------------------- the check

struct Checker {
    model: Model,
    schemas: HashMap<&'static str, jsonschema::Validator>,
    valid: usize,
    total: usize,
}

impl Checker {
    fn new() -> Checker {
        let model = model();
        let schemas = TYPES
            .iter()
            .map(|&ty| {
                let schema = json_schema(&model, ty).expect("schema");
                let v = jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("schema of {ty} compiles: {e}\n{schema:#}"));
                (ty, v)
            })
            .collect();
        Checker {
            model,
            schemas,
            valid: 0,
            total: 0,
        }
    }

    /// Both sides on one buffer: same verdict, same error, same length, same
    /// JSON, and the JSON fits the schema.
    fn check(&mut self, ty: &'static str, w: Width, buf: &[u8]) {
        let decoder = Decoder::new(&self.model, ty, w).expect("decoder");
        let expected = typed(ty, w, buf);
        let got = decoder.validate(buf);
        let what = || format!("{ty} {} {}", w.name(), hex(buf));
        assert_eq!(
            got,
            expected.as_ref().map(|(n, _)| *n).map_err(|e| *e),
            "{}",
            what()
        );
        let decoded = decoder.decode(buf);
        self.total += 1;
        match expected {
            Ok((_, value)) => {
                self.valid += 1;
                let json = decoded.unwrap_or_else(|e| panic!("{}: {e}", what()));
                assert_eq!(json, value, "{}", what());
                let schema = &self.schemas[ty];
                if let Err(e) = schema.validate(&json) {
                    panic!("{}: {json} does not fit its schema: {e}", what());
                }
            }
            Err(e) => assert_eq!(decoded, Err(DecodeError::Invalid(e)), "{}", what()),
        }
    }
}

#[test]
fn dynamic_decoder_agrees_with_generated_validators_on_every_vector() {
    let mut c = Checker::new();
    for v in read_vectors() {
        let ty = TYPES.iter().find(|t| **t == v.ty).expect("test type");
        assert!(c.model.get(ty).is_some());
        c.check(ty, v.width, &v.bytes);
        let verdict = Decoder::new(&c.model, ty, v.width)
            .expect("decoder")
            .validate(&v.bytes)
            .is_ok();
        assert_eq!(verdict, v.valid, "{}", v.line());
    }
    assert!(c.valid > 100 && c.total > c.valid);
}

/// xorshift64*: deterministic, no dependency (as in conformance.rs).
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

/// A mutation of a valid encoding (byte changes with interesting values,
/// nudges, truncation, extension), or random bytes one time in eight.
fn mutate(rng: &mut Rng, seeds: &[&Vector]) -> Vec<u8> {
    const INTERESTING: [u8; 8] = [0, 1, 2, 0x7f, 0x80, 0xc0, 0xed, 0xff];
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
}

/// 10,000 buffers per type and width (300,000 in all); more with
/// `FLAT_WIT_DYNAMIC_FUZZ=<buffers per type and width>`.
#[test]
fn dynamic_decoder_agrees_with_generated_validators_on_random_and_mutated_buffers() {
    let per: usize = std::env::var("FLAT_WIT_DYNAMIC_FUZZ")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let vectors = read_vectors();
    let mut c = Checker::new();
    let mut rng = Rng(0xD1A_F1A7_0000_0001);
    for w in Width::ALL {
        for ty in TYPES {
            let seeds: Vec<&Vector> = vectors
                .iter()
                .filter(|v| v.ty == *ty && v.width == w && v.valid)
                .collect();
            for _ in 0..per {
                let b = mutate(&mut rng, &seeds);
                c.check(ty, w, &b);
            }
        }
    }
    eprintln!(
        "dynamic decoder: {} buffers, {} valid, same verdict, error and value as the generated types",
        c.total, c.valid
    );
    assert!(c.valid > c.total / 20 && c.valid < c.total - c.total / 20);
}

// ---------------------------------------------------------------- conventions

fn one(wit_body: &str) -> Model {
    let wit = format!("package t:t;\ninterface i {{\n{wit_body}\n}}\n");
    Model::parse("t.wit", &wit, &Selection::default()).expect("WIT")
}

#[test]
fn nested_options_floats_and_wide_integers_follow_the_documented_json() {
    let m = one(
        "record r { a: option<option<u8>>, f: f32, g: f64, big: u64, neg: s64 }
         type oo = option<option<u8>>;",
    );
    type R = (Option<Option<u8>>, f32, f64, u64, i64);
    let cases: Vec<(R, Value)> = vec![
        (
            (None, 0.1, f64::NAN, u64::MAX, i64::MIN),
            json!({ "a": null, "f": 0.1, "g": "NaN", "big": u64::MAX, "neg": i64::MIN }),
        ),
        (
            (Some(None), f32::INFINITY, f64::NEG_INFINITY, 1 << 60, -1),
            json!({ "a": [null], "f": "Infinity", "g": "-Infinity", "big": 1u64 << 60, "neg": -1 }),
        ),
        (
            (Some(Some(7)), f32::MAX, -0.5, 0, 0),
            json!({ "a": [7], "f": 3.4028235e38, "g": -0.5, "big": 0, "neg": 0 }),
        ),
    ];
    let schema = json_schema(&m, "r").expect("schema");
    let validator = jsonschema::draft202012::new(&schema).expect("compiles");
    for (value, expected) in cases {
        for w in Width::ALL {
            let buf = match w {
                Width::U8 => flat_layout::to_vec::<u8, R>(&value),
                Width::U16 => flat_layout::to_vec::<u16, R>(&value),
                Width::U32 => flat_layout::to_vec::<u32, R>(&value),
            }
            .expect("encodes");
            let json = dynamic::decode(&m, "r", w, &buf).expect("decodes");
            assert_eq!(json, expected);
            assert!(validator.is_valid(&json), "{json}");
        }
    }
    // `none` and `some(none)` differ; the schema tells them apart too.
    let oo = jsonschema::draft202012::new(&json_schema(&m, "oo").expect("schema")).expect("c");
    for ok in [json!(null), json!([null]), json!([3])] {
        assert!(oo.is_valid(&ok), "{ok}");
    }
    for bad in [json!(3), json!([]), json!([1, 2]), json!([256])] {
        assert!(!oo.is_valid(&bad), "{bad}");
    }
}

#[test]
fn schemas_reject_json_of_another_shape() {
    let c = Checker::new();
    let reject = |ty: &str, v: Value| {
        assert!(!c.schemas[ty].is_valid(&v), "{ty} accepts {v}");
    };
    reject("color", json!("purple"));
    reject("shape", json!({ "circle": 256 }));
    reject("shape", json!({ "circle": 1, "empty": null }));
    reject("shape", json!("circle"));
    reject("label", json!({ "text": "a", "extra": 1 }));
    reject("label", json!({}));
    reject("example4", json!([null, "ab", []]));
    reject("example4", json!([null, "a"]));
    reject(
        "entry",
        json!({ "id": -1, "tags": [], "note": null, "ok": true }),
    );
    assert!(c.schemas["shape"].is_valid(&json!("empty")));
}

#[test]
fn unknown_types_and_hostile_buffers_are_errors_not_panics() {
    let m = model();
    let err = Decoder::new(&m, "nope", Width::U8).expect_err("no such type");
    assert!(err.to_string().contains("no type `nope`"), "{err}");
    assert!(err.to_string().contains("kitchen-sink"), "{err}");
    // A u32 header claiming 4 GiB of list<list<u8>> elements: rejected in
    // O(1), nothing allocated.
    let huge = [8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0];
    let e = dynamic::decode(&m, "nested", Width::U32, &huge).expect_err("out of bounds");
    assert!(matches!(
        e,
        DecodeError::Invalid(ValidateError::OutOfBounds { header: 0, .. })
    ));
    assert!(e.to_string().contains("header at byte 0"), "{e}");
}

#[test]
fn types_nested_deeper_than_the_limit_are_refused_up_front() {
    let nest = |n: usize| format!("type deep = {}u8{};", "list<".repeat(n), ">".repeat(n));
    // wit-parser allows 100 levels in one written type; named types chain further.
    let ok = one(&nest(90));
    assert!(Decoder::new(&ok, "deep", Width::U8).is_ok());
    assert_eq!(
        dynamic::decode(&ok, "deep", Width::U8, &[0, 0]).expect("empty list"),
        json!([])
    );
    let chain: String = (1..70)
        .map(|i| format!("type t{i} = list<t{}>;\n", i - 1))
        .collect();
    let deep = one(&format!("type t0 = list<u8>;\n{chain}type deep = t69;"));
    let err = Decoder::new(&deep, "deep", Width::U8).expect_err("too deep");
    assert!(matches!(err, DecodeError::TooDeep { .. }), "{err}");
    assert!(json_schema(&deep, "deep").is_err());
}
