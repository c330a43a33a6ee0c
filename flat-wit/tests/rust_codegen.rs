//! The Rust generated from tests/wit: kept up to date in
//! tests/generated/messages.rs (compiled here), and byte-for-byte equal to
//! hand-written `#[derive(Flat)]` types, whether written in one call or
//! through the generated builders.
//!
//! Regenerate after a deliberate change with
//! `FLAT_WIT_BLESS=1 cargo test -p flat-wit --test rust_codegen`.

mod common;

use common::gen;
use common::*;
use flat_layout::{to_vec, validate, Builder, Flat, Index};
use flat_wit::rust;

/// The same types, written by hand.
#[allow(dead_code)]
mod hand {
    use flat_layout::Flat;

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct Frame {
        pub width: u32,
        pub height: u32,
        pub tags: Vec<String>,
        pub pixels: Vec<u8>,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct Entry {
        pub id: u16,
        pub tags: Vec<String>,
        pub note: Option<String>,
        pub ok: bool,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct Label {
        pub text: String,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub enum Shape {
        Empty,
        Circle(u8),
        Label(Label),
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub enum Color {
        Red,
        Green,
        Blue,
    }

    #[derive(Flat, Debug, Clone, PartialEq)]
    pub struct KitchenSink {
        pub flag: bool,
        pub letter: char,
        pub color: Color,
        pub small: i8,
        pub wide: i16,
        pub medium: i32,
        pub big: i64,
        pub huge: u64,
        pub ratio: f32,
        pub precise: f64,
        pub pair: (u16, String),
        pub maybe: Option<Shape>,
        pub frames: Vec<Frame>,
        pub words: Vec<Option<String>>,
        pub r#type: Option<Vec<char>>,
    }
}

#[test]
fn generated_code_is_up_to_date() {
    let code = rust::generate(&model(), &rust::Options::default()).expect("generate");
    if std::env::var_os("FLAT_WIT_BLESS").is_some() {
        std::fs::write(GENERATED_RS, &code).expect("write");
    }
    let stored = std::fs::read_to_string(GENERATED_RS).unwrap_or_default();
    assert!(
        stored == code,
        "tests/generated/messages.rs is out of date; regenerate it with FLAT_WIT_BLESS=1 cargo test -p flat-wit --test rust_codegen"
    );
}

fn frame_pair(n: u8) -> (gen::Frame, hand::Frame) {
    let tags = vec!["camera".to_string(), format!("frame-{n}")];
    let pixels: Vec<u8> = (0..n).collect();
    (
        gen::Frame {
            width: 4,
            height: u32::from(n),
            tags: tags.clone(),
            pixels: pixels.clone(),
        },
        hand::Frame {
            width: 4,
            height: u32::from(n),
            tags,
            pixels,
        },
    )
}

fn sink_pair() -> (gen::KitchenSink, hand::KitchenSink) {
    let (g0, h0) = frame_pair(3);
    let (g1, h1) = frame_pair(0);
    (
        gen::KitchenSink {
            flag: true,
            letter: 'λ',
            color: gen::Color::Green,
            small: i8::MIN,
            wide: -2,
            medium: i32::MAX,
            big: -1,
            huge: 1 << 40,
            ratio: f32::NAN,
            precise: f64::INFINITY,
            pair: (9, "nine".into()),
            maybe: Some(gen::Shape::Label(gen::Label { text: "tag".into() })),
            frames: vec![g0, g1],
            words: vec![None, Some("w".into())],
            r#type: Some(vec!['x']),
        },
        hand::KitchenSink {
            flag: true,
            letter: 'λ',
            color: hand::Color::Green,
            small: i8::MIN,
            wide: -2,
            medium: i32::MAX,
            big: -1,
            huge: 1 << 40,
            ratio: f32::NAN,
            precise: f64::INFINITY,
            pair: (9, "nine".into()),
            maybe: Some(hand::Shape::Label(hand::Label { text: "tag".into() })),
            frames: vec![h0, h1],
            words: vec![None, Some("w".into())],
            r#type: Some(vec!['x']),
        },
    )
}

/// Both encodings at `I`, which must be equal (both fail alike if the
/// value does not fit `I`). Returns whether it fit.
fn same<I: Index, G: Flat, H: Flat>(g: &G, h: &H) -> bool {
    let (a, b) = (to_vec::<I, G>(g), to_vec::<I, H>(h));
    assert_eq!(a, b, "at {}", I::NAME);
    a.is_ok()
}

fn same_all<G: Flat, H: Flat>(g: &G, h: &H) -> usize {
    usize::from(same::<u8, G, H>(g, h))
        + usize::from(same::<u16, G, H>(g, h))
        + usize::from(same::<u32, G, H>(g, h))
}

#[test]
fn generated_types_encode_like_hand_written_ones() {
    let mut fits = 0;
    for n in [0u8, 5, 120, 255] {
        let (g, h) = frame_pair(n);
        fits += same_all(&g, &h);
    }
    let (g, h) = sink_pair();
    fits += same_all(&g, &h);
    fits += same_all(
        &gen::Entry {
            id: 3,
            tags: vec!["t".into()],
            note: None,
            ok: true,
        },
        &hand::Entry {
            id: 3,
            tags: vec!["t".into()],
            note: None,
            ok: true,
        },
    );
    let gs: gen::Shapes = vec![
        gen::Shape::Label(gen::Label { text: "l".into() }),
        gen::Shape::Empty,
    ];
    let hs: Vec<hand::Shape> = vec![
        hand::Shape::Label(hand::Label { text: "l".into() }),
        hand::Shape::Empty,
    ];
    fits += same_all(&gs, &hs);
    // Everything fits every width (offsets are relative to their headers).
    assert_eq!(fits, 3 * 7);
    // A buffer of one reads as the other.
    let (g, _) = sink_pair();
    let bytes = to_vec::<u16, _>(&g).expect("fits");
    let view = validate::<hand::KitchenSink, u16>(&bytes).expect("valid");
    assert_eq!(view.letter(), 'λ');
    assert_eq!(view.frames().len(), 2);
}

/// Builds a frame in place through the generated `FrameBuilder`.
fn build_frame<I: Index>(buf: &mut [u8], n: u16) -> Result<usize, flat_layout::BuildError> {
    let mut builder = Builder::<I>::new(buf);
    let mut frame = builder.record::<gen::Frame>()?;
    frame.width().set(&4u32)?;
    frame.height().set(&u32::from(n))?;
    let mut tags = frame.tags().list(2)?;
    tags.push_str("camera")?;
    tags.push_str(&format!("frame-{n}"))?;
    tags.finish()?;
    let mut pixels = frame.pixels().list(usize::from(n))?;
    for (i, p) in pixels.elements_mut()?.iter_mut().enumerate() {
        *p = i as u8;
    }
    pixels.finish()?;
    builder.finish()
}

/// Builds a kitchen sink in place through the generated builders (nested
/// records, options, lists of records, variants case by case).
fn build_sink<I: Index>(buf: &mut [u8]) -> Result<usize, flat_layout::BuildError> {
    let (g, _) = sink_pair();
    let mut builder = Builder::<I>::new(buf);
    let mut k = builder.record::<gen::KitchenSink>()?;
    k.flag().set(&g.flag)?;
    k.letter().set(&g.letter)?;
    // A variant case written in place (WIT enums and variants alike).
    assert_eq!(g.color, gen::Color::Green);
    k.color().variant::<gen::Color>().green()?;
    k.small().set(&g.small)?;
    k.wide().set(&g.wide)?;
    k.medium().set(&g.medium)?;
    k.big().set(&g.big)?;
    k.huge().set(&g.huge)?;
    k.ratio().set(&g.ratio)?;
    k.precise().set(&g.precise)?;
    k.pair().set(&g.pair)?;
    // option<shape> with the case `label(label)`: its string is written
    // straight into the buffer, no `String` first.
    k.maybe()
        .some()?
        .variant::<gen::Shape>()
        .label()?
        .record::<gen::Label>()?
        .text()
        .set("tag")?;
    let mut frames = k.frames().list(2)?;
    for f in &g.frames {
        let mut fb = frames.push_record::<gen::Frame>()?;
        fb.width().set(&f.width)?;
        fb.height().set(&f.height)?;
        fb.tags().set(&f.tags)?;
        fb.pixels().set(&f.pixels)?;
    }
    frames.finish()?;
    let mut words = k.words().list(2)?;
    words.push(&None::<String>)?;
    words.push(&Some("w"))?;
    words.finish()?;
    k.r#type().some()?.set(&vec!['x'])?;
    builder.finish()
}

#[test]
fn generated_builders_write_what_hand_written_types_encode() {
    fn at<I: Index>() {
        for n in [0u8, 6, 100] {
            let mut buf = vec![0u8; 1024];
            let (_, h) = frame_pair(n);
            match (build_frame::<I>(&mut buf, u16::from(n)), to_vec::<I, _>(&h)) {
                (Ok(used), Ok(expected)) => {
                    assert_eq!(&buf[..used], &expected[..], "{n} at {}", I::NAME)
                }
                (Err(_), Err(_)) => {}
                (a, b) => panic!("frame {n} at {}: built {a:?}, encoded {b:?}", I::NAME),
            }
        }
        let mut buf = vec![0u8; 1024];
        let (_, h) = sink_pair();
        match (build_sink::<I>(&mut buf), to_vec::<I, _>(&h)) {
            (Ok(used), Ok(expected)) => {
                assert_eq!(&buf[..used], &expected[..], "sink at {}", I::NAME)
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("sink at {}: built {a:?}, encoded {b:?}", I::NAME),
        }
    }
    at::<u8>();
    at::<u16>();
    at::<u32>();
    // A list of 256 elements does not fit u8 lengths: the builder refuses.
    let mut buf = vec![0u8; 1024];
    assert!(build_frame::<u8>(&mut buf, 255).is_ok());
    assert!(build_frame::<u8>(&mut buf, 256).is_err());
    assert!(build_frame::<u16>(&mut buf, 256).is_ok());
}

#[test]
fn build_rs_helper_writes_the_same_code() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flat-wit-build-rs.rs");
    rust::generate_file(WIT_DIR, &out).expect("generate_file");
    let written = std::fs::read_to_string(&out).expect("read");
    assert_eq!(
        written,
        std::fs::read_to_string(GENERATED_RS).expect("read")
    );
}
