//! The in-place builder.

mod common;
use common::unhex;
use flat_layout::{validate, BuildError, Builder, HeaderField};

#[test]
fn list_of_strings_in_place_matches_one_call_write() {
    let mut block = [0xEEu8; 64];
    let mut b = Builder::<u8>::new(&mut block);
    let mut list = b.list::<Vec<String>>(2).unwrap();
    list.push_str("hello").unwrap();
    list.push("one").unwrap();
    assert_eq!(list.pushed(), 2);
    list.finish().unwrap();
    let used = b.finish().unwrap();
    assert_eq!(
        &block[..used],
        &unhex("02 02 04 05 07 03 68 65 6c 6c 6f 6f 6e 65")[..]
    );
}

#[test]
fn nested_lists_in_place() {
    let mut block = vec![0u8; 256];
    let mut b = Builder::<u16>::new(&mut block);
    {
        let mut outer = b.list::<Vec<Vec<String>>>(3).unwrap();
        let mut first = outer.push_list(2).unwrap();
        first.push_str("a").unwrap();
        first.push_str("b").unwrap();
        first.finish().unwrap();
        outer.push(&vec!["c"]).unwrap();
        outer.push_list(0).unwrap().finish().unwrap();
        outer.finish().unwrap();
    }
    let used = b.finish().unwrap();
    let view = validate::<Vec<Vec<String>>, u16>(&block[..used]).unwrap();
    assert_eq!(format!("{view:?}"), r#"[["a", "b"], ["c"], []]"#);
    let expected = flat_layout::to_vec::<u16, _>(&vec![vec!["a", "b"], vec!["c"], vec![]]).unwrap();
    assert_eq!(&block[..used], &expected[..]);
}

#[derive(flat_layout_derive::Flat, Debug)]
struct Point {
    x: i32,
    tags: Vec<String>,
}

#[test]
fn records_pushed_into_a_list() {
    let mut block = [0u8; 128];
    let mut b = Builder::<u32>::new(&mut block);
    let mut list = b.list::<Vec<Point>>(2).unwrap();
    list.push(&Point {
        x: -1,
        tags: vec!["t".into()],
    })
    .unwrap();
    list.push(&Point { x: 2, tags: vec![] }).unwrap();
    list.finish().unwrap();
    let used = b.finish().unwrap();
    let view = validate::<Vec<Point>, u32>(&block[..used]).unwrap();
    assert_eq!(
        format!("{view:?}"),
        r#"[Point { x: -1, tags: ["t"] }, Point { x: 2, tags: [] }]"#
    );
}

#[test]
fn root_value_in_one_call() {
    let mut block = [0u8; 32];
    let mut b = Builder::<u8>::new(&mut block);
    b.value(&Some("x")).unwrap();
    assert_eq!(b.value(&1u8), Err(BuildError::RootAlreadyWritten));
    assert!(b.list::<Vec<u8>>(1).is_err());
    let used = b.finish().unwrap();
    assert_eq!(
        validate::<Option<String>, u8>(&block[..used]).unwrap(),
        Some("x")
    );
}

#[test]
fn too_many_and_too_few_elements() {
    let mut block = [0u8; 64];
    let mut b = Builder::<u8>::new(&mut block);
    let mut list = b.list::<Vec<String>>(1).unwrap();
    list.push_str("a").unwrap();
    assert_eq!(
        list.push_str("b"),
        Err(BuildError::TooManyElements { capacity: 1 })
    );
    list.finish().unwrap();
    b.finish().unwrap();

    let mut b = Builder::<u8>::new(&mut block);
    let mut list = b.list::<Vec<String>>(3).unwrap();
    list.push_str("a").unwrap();
    assert_eq!(
        list.finish(),
        Err(BuildError::TooFewElements {
            expected: 3,
            pushed: 1
        })
    );
    assert_eq!(
        b.finish(),
        Err(BuildError::TooFewElements {
            expected: 3,
            pushed: 1
        })
    );

    // A dropped nested builder is reported by the root builder, and the
    // missing elements are still valid zero values.
    let mut b = Builder::<u8>::new(&mut block);
    let mut outer = b.list::<Vec<Vec<String>>>(1).unwrap();
    let mut inner = outer.push_list(2).unwrap();
    inner.push_str("only").unwrap();
    drop(inner);
    outer.finish().unwrap();
    let used = b.used();
    assert_eq!(
        b.finish(),
        Err(BuildError::TooFewElements {
            expected: 2,
            pushed: 1
        })
    );
    let view = validate::<Vec<Vec<String>>, u8>(&block[..used]).unwrap();
    assert_eq!(format!("{view:?}"), r#"[["only", ""]]"#);

    let b = Builder::<u8>::new(&mut block);
    assert_eq!(b.finish(), Err(BuildError::NoRoot));
}

#[test]
fn buffer_too_small_in_place_reports_bytes_needed_so_far() {
    let mut block = [0u8; 8];
    let mut b = Builder::<u16>::new(&mut block);
    assert_eq!(
        b.list::<Vec<String>>(2).err(),
        Some(BuildError::BufferTooSmall {
            needed: 12,
            available: 8
        })
    );
    let mut block = [0u8; 14];
    let mut b = Builder::<u16>::new(&mut block);
    let mut list = b.list::<Vec<String>>(2).unwrap();
    list.push_str("ab").unwrap();
    assert_eq!(
        list.push_str("cd"),
        Err(BuildError::BufferTooSmall {
            needed: 16,
            available: 14
        })
    );
    // After the failure the slot is still a valid empty string.
    drop(list);
    let used = b.used();
    assert_eq!(
        validate::<Vec<String>, u16>(&block[..used]).unwrap(),
        ["ab", ""][..]
    );
}

#[test]
fn u8_index_offset_overflow_in_place() {
    let mut block = vec![0u8; 1024];
    let mut b = Builder::<u8>::new(&mut block);
    let mut list = b.list::<Vec<String>>(2).unwrap();
    list.push_str(&"x".repeat(255)).unwrap();
    assert_eq!(
        list.push_str("y"),
        Err(BuildError::IndexOverflow {
            field: HeaderField::Offset,
            value: 257,
            max: 255
        })
    );
}

#[test]
fn an_ignored_root_error_is_reported_by_finish() {
    let mut block = [0u8; 6];
    let mut b = Builder::<u8>::new(&mut block);
    let err = b.list::<Vec<u32>>(2).err();
    assert_eq!(
        err,
        Some(BuildError::BufferTooSmall {
            needed: 10,
            available: 6
        })
    );
    assert_eq!(
        b.finish(),
        Err(BuildError::BufferTooSmall {
            needed: 10,
            available: 6
        })
    );
}
