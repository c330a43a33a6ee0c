//! Round trips of every supported type at every index width, and the
//! validator's checks of each type.

mod common;
use common::{roundtrip, roundtrip_all, unhex};
use flat_layout::{
    encoded_size, inline_size, validate, write, BuildError, Flat, HeaderField, List, Str,
    ValidateError,
};

#[test]
fn primitives() {
    roundtrip_all(&true);
    roundtrip_all(&false);
    roundtrip_all(&0xABu8);
    roundtrip_all(&-5i8);
    roundtrip_all(&0xBEEFu16);
    roundtrip_all(&-300i16);
    roundtrip_all(&0xDEAD_BEEFu32);
    roundtrip_all(&i32::MIN);
    roundtrip_all(&u64::MAX);
    roundtrip_all(&i64::MIN);
    roundtrip_all(&1.5f32);
    roundtrip_all(&-2.25f64);
    roundtrip_all(&'x');
    roundtrip_all(&'\u{10FFFF}');
    roundtrip_all(&());
    assert_eq!(roundtrip::<u8, _>(&0x0102_0304u32), [4, 3, 2, 1]);
    assert_eq!(roundtrip::<u32, _>(&-1i16), [0xFF, 0xFF]);
}

#[test]
fn inline_sizes_depend_on_index_width() {
    assert_eq!(inline_size::<String, u8>(), 2);
    assert_eq!(inline_size::<String, u16>(), 4);
    assert_eq!(inline_size::<Vec<u64>, u32>(), 8);
    assert_eq!(inline_size::<Option<u32>, u8>(), 5);
    assert_eq!(inline_size::<(u8, String, bool), u16>(), 6);
    assert_eq!(inline_size::<(), u32>(), 0);
}

#[test]
fn strings() {
    roundtrip_all(&String::new());
    roundtrip_all("hello");
    roundtrip_all("ünïcödé ✓ 🦀");
    assert_eq!(roundtrip::<u8, str>("ab"), [2, 2, b'a', b'b']);
    // Empty strings use offset 0 and take no tail bytes.
    assert_eq!(roundtrip::<u16, str>(""), [0, 0, 0, 0]);
}

#[test]
fn lists_of_every_kind() {
    roundtrip_all(&Vec::<String>::new());
    roundtrip_all(&vec!["a".to_string(), String::new(), "ccc".to_string()]);
    roundtrip_all(&vec![
        vec!["x".to_string()],
        vec![],
        vec!["y".to_string(), "z".to_string()],
    ]);
    roundtrip_all(&vec![1u8, 2, 3]);
    roundtrip_all(&vec![-1i64, 2, i64::MAX]);
    roundtrip_all(&vec![true, false, true]);
    roundtrip_all(&vec!['a', 'ß']);
    roundtrip_all(&vec![1.0f64, f64::INFINITY]);
    roundtrip_all(&[Some(1u32), None, Some(3)]);
    roundtrip_all(&vec![(1u8, "a".to_string()), (2, "b".to_string())]);
    roundtrip_all(&vec![vec![vec![1u16, 2], vec![]], vec![vec![3]]]);
    roundtrip_all(&vec![(); 200]);
    roundtrip::<u32, _>(&vec![(); 100_000]);
}

#[test]
fn options_and_tuples() {
    roundtrip_all(&Some("x".to_string()));
    roundtrip_all(&None::<String>);
    roundtrip_all(&Some(Some(5u8)));
    roundtrip_all(&Some(None::<u8>));
    roundtrip_all(&(1u8, 2u16, 3u32, 4u64, -1i8, -2i16, -3i32, -4i64));
    roundtrip_all(&("a", vec!["b"], Some("c")));
    // None is written as tag 0 with a zero-filled payload.
    assert_eq!(roundtrip::<u16, _>(&None::<String>), [0, 0, 0, 0, 0]);
}

#[test]
fn list_views_give_slices_and_iterators() {
    let mut buf = [0u8; 128];
    let n = write::<u16, _>(
        &(vec![1u8, 2, 3], vec![-1i8, 5], vec![10u32, 20, 30]),
        &mut buf,
    )
    .unwrap();
    let (bytes, signed, words) = validate::<(Vec<u8>, Vec<i8>, Vec<u32>), u16>(&buf[..n]).unwrap();
    assert_eq!(bytes.as_bytes(), &[1, 2, 3]);
    assert_eq!(signed.as_slice(), &[-1, 5]);
    assert_eq!(
        words
            .as_le_slice()
            .iter()
            .map(|w| w.get())
            .collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert_eq!(words.iter().rev().collect::<Vec<_>>(), [30, 20, 10]);
    assert_eq!(words.iter().len(), 3);
    assert_eq!(words.first(), Some(10));
    assert_eq!(words.last(), Some(30));
    assert_eq!(words.get(3), None);
    assert_eq!(words.iter().nth(1), Some(20));
    assert_eq!(words.to_vec(), [10, 20, 30]);
    assert_eq!((&words).into_iter().sum::<u32>(), 60);
}

#[test]
fn strings_point_into_the_buffer() {
    let buf = flat_layout::to_vec::<u32, _>(&["zero", "copy"]).unwrap();
    let view = validate::<[&str], u32>(&buf).unwrap();
    let range = buf.as_ptr_range();
    for s in view {
        assert!(range.contains(&s.as_ptr()));
    }
}

#[test]
fn one_representation_many_rust_types() {
    let buf = flat_layout::to_vec::<u16, _>(&vec![vec!["a".to_string()]]).unwrap();
    // Read back through marker types and borrowed types alike.
    let a = validate::<List<List<Str>>, u16>(&buf).unwrap();
    let b = validate::<[Vec<&str>], u16>(&buf).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn validation_rejects_bad_values() {
    assert_eq!(
        validate::<bool, u8>(&[2]).unwrap_err(),
        ValidateError::InvalidBool { at: 0, value: 2 }
    );
    assert_eq!(
        validate::<char, u8>(&unhex("00 d8 00 00")).unwrap_err(),
        ValidateError::InvalidChar {
            at: 0,
            value: 0xD800
        }
    );
    assert_eq!(
        validate::<Option<u8>, u8>(&[2, 0]).unwrap_err(),
        ValidateError::InvalidOptionTag { at: 0, value: 2 }
    );
    assert_eq!(
        validate::<String, u8>(&[2, 2, 0xC3, 0x28]).unwrap_err(),
        ValidateError::InvalidUtf8 { header: 0, at: 2 }
    );
    assert_eq!(
        validate::<String, u8>(&[2, 3, b'a', b'b']).unwrap_err(),
        ValidateError::OutOfBounds {
            header: 0,
            start: 2,
            bytes: 3,
            len: 4
        }
    );
    assert_eq!(
        validate::<u32, u8>(&[1, 2]).unwrap_err(),
        ValidateError::RootTooShort { needed: 4, len: 2 }
    );
    // Offset 0 with a non-empty region would alias the header itself.
    assert_eq!(
        validate::<String, u8>(&[0, 1, b'a']).unwrap_err(),
        ValidateError::Overlap {
            header: 0,
            start: 0,
            claimed_end: 2
        }
    );
    // u32 headers near usize::MAX on 32-bit targets; here: beyond the buffer.
    assert!(matches!(
        validate::<Vec<u64>, u32>(&unhex("08 00 00 00 ff ff ff ff")).unwrap_err(),
        ValidateError::OutOfBounds { .. } | ValidateError::ArithmeticOverflow { .. }
    ));
    // A payload of None is not inspected.
    assert_eq!(validate::<Option<bool>, u8>(&[0, 7]).unwrap(), None);
    // Empty regions need no order, only bounds.
    assert_eq!(validate::<String, u8>(&[0, 0]).unwrap(), "");
    assert!(validate::<String, u8>(&[9, 0]).is_err());
}

#[test]
fn zero_sized_elements_cost_nothing_to_validate() {
    // list<tuple<>> claiming 2^32-1 elements in 8 bytes: valid, O(1).
    let bytes = unhex("00 00 00 00 ff ff ff ff");
    let view = validate::<Vec<()>, u32>(&bytes).unwrap();
    assert_eq!(view.len(), u32::MAX as usize);
    assert_eq!(view.get(12345), Some(()));
    // list<list<tuple<>>> with 2^32-1 elements needs 8 bytes each: rejected.
    assert!(matches!(
        validate::<Vec<Vec<()>>, u32>(&bytes).unwrap_err(),
        ValidateError::OutOfBounds { .. } | ValidateError::ArithmeticOverflow { .. }
    ));
}

#[test]
fn write_errors() {
    let mut small = [0u8; 10];
    assert_eq!(
        write::<u32, _>(&["hello", "one"], &mut small).unwrap_err(),
        BuildError::BufferTooSmall {
            needed: 32,
            available: 10
        }
    );
    let long = "x".repeat(300);
    assert_eq!(
        encoded_size::<u8, _>(long.as_str()).unwrap_err(),
        flat_layout::SizeError::IndexOverflow {
            field: HeaderField::Length,
            value: 300,
            max: 255
        }
    );
    let mut buf = vec![0u8; 1000];
    assert_eq!(
        write::<u8, _>(long.as_str(), &mut buf).unwrap_err(),
        BuildError::IndexOverflow {
            field: HeaderField::Length,
            value: 300,
            max: 255
        }
    );
    // Element 1's header is at byte 4, the tail at 2 + 4 + 255 = 261.
    let parts = ["y".repeat(255), "z".to_string()];
    assert_eq!(
        write::<u8, _>(&parts[..], &mut buf).unwrap_err(),
        BuildError::IndexOverflow {
            field: HeaderField::Offset,
            value: 257,
            max: 255
        }
    );
    assert!(write::<u16, _>(&parts[..], &mut buf).is_ok());
    assert!(format!(
        "{}",
        BuildError::BufferTooSmall {
            needed: 32,
            available: 10
        }
    )
    .contains("32"));
}

#[derive(flat_layout_derive::Flat, Debug, Clone, PartialEq)]
struct Inner {
    name: String,
    scores: Vec<u32>,
}

#[derive(flat_layout_derive::Flat, Debug, Clone, PartialEq)]
struct Outer {
    id: u64,
    inner: Inner,
    children: Vec<Inner>,
    label: Option<String>,
    nested: Vec<Vec<String>>,
    flag: bool,
    c: char,
}

#[derive(flat_layout_derive::Flat, Debug)]
struct Empty {}

#[derive(flat_layout_derive::Flat, Debug)]
struct Unit;

#[derive(flat_layout_derive::Flat, Debug)]
enum Message {
    Ping,
    Text(String),
    Batch { ids: Vec<u16>, from: Option<String> },
    Pair(u8, Inner),
}

fn outer() -> Outer {
    let inner = Inner {
        name: "in".into(),
        scores: vec![1, 2],
    };
    Outer {
        id: 42,
        inner: inner.clone(),
        children: vec![
            inner,
            Inner {
                name: String::new(),
                scores: vec![],
            },
        ],
        label: None,
        nested: vec![vec!["a".into()], vec![]],
        flag: true,
        c: 'q',
    }
}

#[test]
fn derived_records_and_enums() {
    roundtrip_all(&outer());
    roundtrip_all(&Empty {});
    roundtrip_all(&Unit);
    roundtrip_all(&vec![Empty {}, Empty {}]);
    roundtrip_all(&vec![
        Message::Ping,
        Message::Text("hi".into()),
        Message::Batch {
            ids: vec![1, 2],
            from: Some("me".into()),
        },
        Message::Pair(
            3,
            Inner {
                name: "n".into(),
                scores: vec![7],
            },
        ),
    ]);
    let buf = flat_layout::to_vec::<u32, _>(&outer()).unwrap();
    let view = validate::<Outer, u32>(&buf).unwrap();
    assert_eq!(view.id(), 42);
    assert_eq!(view.inner().name(), "in");
    assert_eq!(view.children().get(0).unwrap().scores().to_vec(), [1, 2]);
    assert_eq!(view.label(), None);
    assert_eq!(view.nested().get(0).unwrap().get(0), Some("a"));
    assert!(view.flag());
    assert_eq!(view.c(), 'q');
}

#[test]
fn enum_tags_are_validated() {
    // Message has 4 cases.
    let size = inline_size::<Message, u8>();
    let mut bytes = vec![0u8; size];
    bytes[0] = 4;
    assert_eq!(
        validate::<Message, u8>(&bytes).unwrap_err(),
        ValidateError::InvalidVariantTag {
            at: 0,
            value: 4,
            cases: 4
        }
    );
    bytes[0] = 0;
    assert!(matches!(
        validate::<Message, u8>(&bytes).unwrap(),
        MessageView::Ping
    ));
}

#[test]
fn implements_flat_for_references_boxes_arrays() {
    roundtrip_all(&Box::new(5u8));
    roundtrip_all(&[&"a", &"b"]);
    fn assert_flat<T: Flat + ?Sized>() {}
    assert_flat::<&[&str]>();
    assert_flat::<Box<str>>();
}

#[test]
fn aliasing_headers_cannot_multiply_validation_work() {
    // list<list<string>> with 10,000 outer elements that all point at one
    // inner list of 10,000 strings: without the claimed-bytes rule this
    // would cost 10^8 string checks. It is rejected at the second element.
    let n: u32 = 10_000;
    let mut buf = Vec::new();
    buf.extend_from_slice(&8u32.to_le_bytes());
    buf.extend_from_slice(&n.to_le_bytes());
    let outer = 8usize;
    let inner = outer + 8 * n as usize;
    for i in 0..n as usize {
        let header = outer + 8 * i;
        buf.extend_from_slice(&((inner - header) as u32).to_le_bytes());
        buf.extend_from_slice(&n.to_le_bytes());
    }
    let strings = inner + 8 * n as usize;
    for i in 0..n as usize {
        let header = inner + 8 * i;
        buf.extend_from_slice(&((strings + i - header) as u32).to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
    }
    buf.extend(std::iter::repeat_n(b'x', n as usize));
    assert_eq!(
        validate::<Vec<Vec<String>>, u32>(&buf).unwrap_err(),
        ValidateError::Overlap {
            header: 16,
            start: inner,
            claimed_end: buf.len()
        }
    );
    // The same bytes with only the first outer element are valid.
    let mut single = buf.clone();
    single[4..8].copy_from_slice(&1u32.to_le_bytes());
    let view = validate::<Vec<Vec<String>>, u32>(&single).unwrap();
    assert_eq!(view.get(0).unwrap().len(), n as usize);
}

/// The flat format reached under another path, as through a crate that
/// re-exports it.
mod reexported {
    pub use ::flat_layout as renamed;
}

#[derive(flat_layout_derive::Flat, Debug, Clone, PartialEq)]
#[flat(crate = "crate::reexported::renamed")]
struct ThroughAnotherPath {
    n: u32,
    words: Vec<String>,
}

#[test]
fn the_derive_can_name_the_crate_through_another_path() {
    let value = ThroughAnotherPath {
        n: 7,
        words: vec!["a".into(), "bc".into()],
    };
    let bytes = flat_layout::to_vec::<u16, _>(&value).unwrap();
    let view = flat_layout::validate::<ThroughAnotherPath, u16>(&bytes).unwrap();
    assert_eq!(view.n(), 7);
    assert!(view.words().iter().eq(["a", "bc"]));
}
