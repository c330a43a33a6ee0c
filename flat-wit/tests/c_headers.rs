//! The C header as a user meets it: every payload kind set through a typed
//! setter (no index width by hand), headers generated separately combined
//! in one translation unit, and names that cannot clash by default.

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile_c, hex, model};
use flat_layout::{to_vec, Flat, Index};
use flat_wit::{c, Def, Model, Selection, Ty, Width};

const PAYLOADS_WIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wit-payloads");
const PAYLOADS_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/payloads.c");
const COMBINE_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/combine.c");
const EXE: &str = env!("CARGO_BIN_EXE_flat-wit");

/// tests/wit-payloads, written by hand (flat-layout's derive).
#[allow(dead_code)]
mod hand {
    use flat_layout::Flat;

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct Point {
        pub x: i16,
        pub y: i16,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub enum Level {
        Low,
        High,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub enum Inner {
        Blank,
        Text(String),
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub enum Status {
        Ok,
        Code(u16),
        Flag(bool),
        Letter(char),
        Ratio(f64),
        Degraded(String),
        Word(String),
        Reasons(Vec<String>),
        Names(Vec<String>),
        Note(Option<String>),
        At(Point),
        Pair((u8, String)),
        Level(Level),
        Inner(Inner),
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct Report {
        pub id: u32,
        pub status: Status,
        pub maybe_code: Option<u16>,
        pub maybe_text: Option<String>,
        pub maybe_numbers: Option<Vec<u32>>,
        pub maybe_point: Option<Point>,
        pub maybe_nested: Option<Option<String>>,
        pub statuses: Vec<Status>,
        pub after: String,
    }
}

use hand::*;

/// Case `k` of `status` as tests/c/payloads.c writes it.
fn status(k: usize) -> Status {
    match k {
        0 => Status::Ok,
        1 => Status::Code(513),
        2 => Status::Flag(true),
        3 => Status::Letter('\u{1F600}'),
        4 => Status::Ratio(-0.25),
        5 => Status::Degraded("dust".into()),
        6 => Status::Word("wé".into()),
        7 => Status::Reasons(vec!["a".into(), "bc".into()]),
        8 => Status::Names(vec!["n".into()]),
        9 => Status::Note(Some("hi".into())),
        10 => Status::At(Point { x: -3, y: 4 }),
        11 => Status::Pair((9, "x".into())),
        12 => Status::Level(Level::High),
        13 => Status::Inner(Inner::Text("in".into())),
        _ => unreachable!("14 cases"),
    }
}

const CASES: usize = 14;

fn report(k: usize) -> Report {
    Report {
        id: 7,
        status: status(k),
        maybe_code: Some(65535),
        maybe_text: Some("t".into()),
        maybe_numbers: Some(vec![1, 0x0102_0304]),
        maybe_point: Some(Point { x: 5, y: -6 }),
        maybe_nested: Some(Some("deep".into())),
        statuses: vec![status(k), status((k + 1) % CASES)],
        after: "end".into(),
    }
}

fn enc<I: Index, T: Flat>(value: &T) -> String {
    hex(&to_vec::<I, T>(value).expect("encodes"))
}

/// The kinds of payload a type is, after aliases: what the typed setters
/// distinguish.
fn kind(model: &Model, ty: &Ty) -> &'static str {
    let (alias, resolved) = model.resolve_named(ty);
    let base = match resolved {
        Ty::Prim(_) => "scalar",
        Ty::String => "string",
        Ty::List(_) => "list",
        Ty::Option(_) => "option",
        Ty::Tuple(_) => "tuple",
        Ty::Named(n) => match &model.get(n).expect("declared").def {
            Def::Record(_) => "record",
            Def::Variant(_) => "variant",
            Def::Enum(_) => "enum",
            Def::Alias(_) => unreachable!("resolved"),
        },
    };
    match (alias, resolved) {
        (Some(_), Ty::String | Ty::List(_)) => {
            if base == "string" {
                "alias of string"
            } else {
                "alias of list"
            }
        }
        _ => base,
    }
}

#[test]
fn every_payload_kind_is_built_through_a_typed_setter() {
    let model = Model::load(Path::new(PAYLOADS_WIT), &Selection::default()).expect("loads");
    // The test WIT has a case of every kind of payload, and an option of
    // every kind the cases do not cover already.
    let Def::Variant(cases) = &model.get("status").expect("status").def else {
        panic!("status is a variant");
    };
    let mut kinds: Vec<&str> = cases
        .iter()
        .map(|c| c.payload.as_ref().map_or("none", |t| kind(&model, t)))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "alias of list",
            "alias of string",
            "enum",
            "list",
            "none",
            "option",
            "record",
            "scalar",
            "string",
            "tuple",
            "variant"
        ]
    );
    // The driver builds through the generated functions only: no runtime
    // call, so no index width by hand.
    let source = std::fs::read_to_string(PAYLOADS_C).expect("payloads.c");
    for raw in ["flat_wit_put_", "flat_wit_alloc", "flat_wit_zero"] {
        assert!(!source.contains(raw), "payloads.c calls {raw}");
    }

    let header = c::generate(&model, &c::Options::default()).expect("header");
    let Some(exe) = compile_c(
        "flat-wit-payloads",
        &[("payloads.h", header)],
        Path::new(PAYLOADS_C),
    ) else {
        return;
    };
    let out = Command::new(&exe).output().expect("run payloads");
    assert!(
        out.status.success(),
        "payloads failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3 * CASES);
    let mut n = 0;
    for (w, wb) in [(Width::U8, 1), (Width::U16, 2), (Width::U32, 4)] {
        for k in 0..CASES {
            let value = report(k);
            let expected = match w {
                Width::U8 => enc::<u8, _>(&value),
                Width::U16 => enc::<u16, _>(&value),
                Width::U32 => enc::<u32, _>(&value),
            };
            assert_eq!(
                lines[n],
                format!("{wb} {k} {expected}"),
                "case {k} ({:?}) at {}",
                value.status,
                w.name()
            );
            n += 1;
        }
    }
}

fn one_of(model: &Model, widths: &[Width], types: &[&str]) -> String {
    let model = if types.is_empty() {
        model.clone()
    } else {
        Model::load(
            Path::new(common::WIT_DIR),
            &Selection {
                interface: None,
                types: types.iter().map(|t| t.to_string()).collect(),
            },
        )
        .expect("selection loads")
    };
    c::generate(
        &model,
        &c::Options {
            widths: widths.to_vec(),
            prefix: None,
        },
    )
    .expect("header")
}

fn cli_header(width: &str) -> String {
    let out = Command::new(EXE)
        .args(["c", common::WIT_DIR, "--width", width])
        .output()
        .expect("run flat-wit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn parse(name: &str, wit: &str) -> Model {
    Model::parse(name, wit, &Selection::default()).expect("parses")
}

#[test]
fn headers_of_other_widths_types_and_packages_share_a_translation_unit() {
    let messages = model();
    let one = parse(
        "one.wit",
        "package one:pkg;\ninterface i {\n  variant status { ok, degraded(string) }\n  record frame { n: u8 }\n}\n",
    );
    let two = parse(
        "two.wit",
        "package two:pkg;\ninterface i {\n  variant status { ok, idle, degraded(u32) }\n  record frame { n: u32 }\n}\n",
    );
    let headers = [
        // As a user would: `flat-wit c --width u8`, then `--width u16`.
        ("messages_u8.h", cli_header("u8")),
        ("messages_u16.h", cli_header("u16")),
        (
            "messages_u8_u16.h",
            one_of(&messages, &[Width::U8, Width::U16], &[]),
        ),
        (
            "messages_u16_u32.h",
            one_of(&messages, &[Width::U16, Width::U32], &[]),
        ),
        ("frame_u32.h", one_of(&messages, &[Width::U32], &["frame"])),
        ("entry_u32.h", one_of(&messages, &[Width::U32], &["entry"])),
        (
            "one.h",
            c::generate(&one, &c::Options::default()).expect("one"),
        ),
        (
            "two.h",
            c::generate(&two, &c::Options::default()).expect("two"),
        ),
    ];
    // Without the width in the guards the u16 header would be skipped:
    // the headers differ only in their width sections.
    assert_ne!(headers[0].1, headers[1].1);
    let Some(exe) = compile_c("flat-wit-combine", &headers, Path::new(COMBINE_C)) else {
        return;
    };
    let out = Command::new(&exe).output().expect("run combine");
    assert!(
        out.status.success(),
        "combine failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn names_carry_the_package_by_default() {
    let one = parse(
        "one.wit",
        "package one:pkg@1.2.0;\ninterface i {\n  variant status { ok, degraded(string) }\n}\n",
    );
    let header = c::generate(&one, &c::Options::default()).expect("header");
    assert!(header.contains("#define ONE_PKG_STATUS_DEGRADED 1\n"));
    assert!(header.contains("static inline bool one_pkg_status_u8_validate("));
    // Every generated function and macro carries the prefix (the shared
    // runtime's names are flat_wit_*).
    for line in header.lines() {
        if let Some(rest) = line.strip_prefix("static inline ") {
            let name = rest
                .split('(')
                .next()
                .and_then(|s| s.split_whitespace().last())
                .unwrap_or_default()
                .trim_start_matches('*');
            assert!(
                name.starts_with("one_pkg_") || name.starts_with("flat_wit_"),
                "{line}"
            );
        }
        if let Some(rest) = line.strip_prefix("#define ") {
            assert!(
                rest.starts_with("ONE_PKG_") || rest.starts_with("FLAT_WIT_"),
                "{line}"
            );
        }
    }
    // An explicit prefix, or none.
    let cam = c::generate(
        &one,
        &c::Options {
            prefix: Some("cam".into()),
            ..c::Options::default()
        },
    )
    .expect("header");
    assert!(cam.contains("#define CAM_STATUS_DEGRADED 1\n"));
    let bare = c::generate(
        &one,
        &c::Options {
            prefix: Some(String::new()),
            ..c::Options::default()
        },
    )
    .expect("header");
    assert!(bare.contains("#define STATUS_DEGRADED 1\n"));
}
