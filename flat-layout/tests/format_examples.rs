//! The worked examples of FORMAT.md, byte for byte.

mod common;
use common::{hex, unhex};
use flat_layout::{validate, write, ValidateError};

#[test]
fn example_1_list_of_strings_u8() {
    let mut buf = [0u8; 64];
    let used = write::<u8, _>(&["hello", "one"], &mut buf).unwrap();
    let expected = unhex("02 02  04 05  07 03  68 65 6c 6c 6f  6f 6e 65");
    assert_eq!(hex(&buf[..used]), hex(&expected));
    let view = validate::<Vec<String>, u8>(&expected).unwrap();
    assert_eq!(format!("{view:?}"), r#"["hello", "one"]"#);
}

#[test]
fn example_2_list_of_strings_u32() {
    let mut buf = [0u8; 64];
    let used = write::<u32, _>(&["hello", "one"], &mut buf).unwrap();
    let expected = unhex(
        "08 00 00 00 02 00 00 00 \
         10 00 00 00 05 00 00 00 \
         0d 00 00 00 03 00 00 00 \
         68 65 6c 6c 6f 6f 6e 65",
    );
    assert_eq!(hex(&buf[..used]), hex(&expected));
    assert_eq!(
        validate::<[&str], u32>(&expected).unwrap(),
        ["hello", "one"][..]
    );
}

#[derive(flat_layout_derive::Flat, Debug)]
struct Entry {
    id: u16,
    tags: Vec<String>,
    note: Option<String>,
    ok: bool,
}

#[test]
fn example_3_record_u16() {
    let entry = Entry {
        id: 7,
        tags: vec!["a".into(), "bc".into()],
        note: Some("hi".into()),
        ok: true,
    };
    let mut buf = [0u8; 64];
    let used = write::<u16, _>(&entry, &mut buf).unwrap();
    let expected = unhex(
        "07 00  0a 00 02 00  01 10 00 02 00  01 \
         08 00 01 00  05 00 02 00 \
         61  62 63  68 69",
    );
    assert_eq!(hex(&buf[..used]), hex(&expected));
    let view = validate::<Entry, u16>(&expected).unwrap();
    assert_eq!(view.id(), 7);
    assert_eq!(view.tags().get(1), Some("bc"));
    assert_eq!(view.note(), Some("hi"));
    assert!(view.ok());
    assert_eq!(
        format!("{view:?}"),
        r#"Entry { id: 7, tags: ["a", "bc"], note: Some("hi"), ok: true }"#
    );
}

#[test]
fn example_4_option_none_char_and_list_of_u32() {
    // (option<string>, char, list<u32>) with u8 headers.
    let value: (Option<&str>, char, &[u32]) = (None, 'é', &[1, 0x0102_0304]);
    let mut buf = [0u8; 64];
    let used = write::<u8, _>(&value, &mut buf).unwrap();
    let expected = unhex(
        "00 00 00  e9 00 00 00  02 02 \
         01 00 00 00  04 03 02 01",
    );
    assert_eq!(hex(&buf[..used]), hex(&expected));
    let (note, c, list) = validate::<(Option<String>, char, Vec<u32>), u8>(&expected).unwrap();
    assert_eq!((note, c), (None, 'é'));
    assert_eq!(list.as_le_slice()[1].get(), 0x0102_0304);
}

#[test]
fn example_5_aliased_strings_are_rejected() {
    // Both elements point at the same byte "a".
    let bytes = unhex("02 02  04 01  02 01  61");
    assert_eq!(
        validate::<Vec<String>, u8>(&bytes).unwrap_err(),
        ValidateError::Overlap {
            header: 4,
            start: 6,
            claimed_end: 7
        }
    );
}

#[test]
fn example_6_backward_offset_impossible_and_cycles_rejected() {
    // list<list<u8>> whose inner header (at 2) points at the outer array at 2
    // itself (offset 0): the region was already claimed.
    let bytes = unhex("02 01  00 01");
    assert_eq!(
        validate::<Vec<Vec<u8>>, u8>(&bytes).unwrap_err(),
        ValidateError::Overlap {
            header: 2,
            start: 2,
            claimed_end: 4
        }
    );
}

#[derive(flat_layout_derive::Flat, Debug)]
enum Shape {
    Empty,
    Circle(u8),
    Label { text: String },
}

#[test]
fn example_7_variant_u8() {
    let shapes = [
        Shape::Circle(9),
        Shape::Label { text: "ok".into() },
        Shape::Empty,
    ];
    let mut buf = [0u8; 64];
    let used = write::<u8, _>(&shapes, &mut buf).unwrap();
    let expected = unhex(
        "02 03 \
         01 09 00  02 05 02  00 00 00 \
         6f 6b",
    );
    assert_eq!(hex(&buf[..used]), hex(&expected));
    let view = validate::<Vec<Shape>, u8>(&expected).unwrap();
    assert_eq!(
        format!("{view:?}"),
        r#"[Circle(9), Label { text: "ok" }, Empty]"#
    );
    assert!(matches!(view.get(0), Some(ShapeView::Circle(9))));
}

#[test]
fn derived_enum_views_match_without_the_hidden_case() {
    let buf = flat_layout::to_vec::<u16, _>(&Shape::Label { text: "x".into() }).unwrap();
    let text = match validate::<Shape, u16>(&buf).unwrap() {
        ShapeView::Empty => "",
        ShapeView::Circle(_) => "circle",
        ShapeView::Label { text } => text,
    };
    assert_eq!(text, "x");
}
