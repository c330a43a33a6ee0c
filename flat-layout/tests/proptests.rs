//! Property tests: build, validate, read back at every index width; exact
//! sizes; random mutations never panic and never read outside the buffer.

mod common;
use flat_layout::{
    encoded_size, validate, validate_with_len, write, BuildError, Builder, Flat, Index, SizeError,
};
use proptest::prelude::*;

#[derive(flat_layout_derive::Flat, Debug, Clone, PartialEq)]
struct Kid {
    label: Option<String>,
    value: i64,
}

#[derive(flat_layout_derive::Flat, Debug, Clone, PartialEq)]
struct Rec {
    id: u32,
    name: String,
    tags: Vec<String>,
    groups: Vec<Vec<String>>,
    note: Option<String>,
    numbers: Option<Vec<u16>>,
    flag: bool,
    c: char,
    kids: Vec<Kid>,
}

fn strings(max_len: usize, max_items: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::string::string_regex(&format!(".{{0,{max_len}}}")).unwrap(),
        0..max_items,
    )
}

fn kid() -> impl Strategy<Value = Kid> {
    (prop::option::of("[a-z]{0,6}"), any::<i64>()).prop_map(|(label, value)| Kid { label, value })
}

fn rec(scale: usize) -> impl Strategy<Value = Rec> {
    (
        any::<u32>(),
        ".{0,8}",
        strings(6, scale),
        prop::collection::vec(strings(4, scale), 0..scale),
        prop::option::of(".{0,6}"),
        prop::option::of(prop::collection::vec(any::<u16>(), 0..scale)),
        any::<bool>(),
        any::<char>(),
        prop::collection::vec(kid(), 0..scale),
    )
        .prop_map(
            |(id, name, tags, groups, note, numbers, flag, c, kids)| Rec {
                id,
                name,
                tags,
                groups,
                note,
                numbers,
                flag,
                c,
                kids,
            },
        )
}

/// Builds `r` in place field by field with the derived `RecBuilder`: the
/// strings and lists in declaration order (lists element by element, the
/// `u16` numbers as raw little-endian bytes, the kids record by record), the
/// inline fields last and in another order.
fn build_rec<I: Index>(r: &Rec, buf: &mut [u8]) -> Result<usize, BuildError> {
    let mut b = Builder::<I>::new(buf);
    let mut rec = b.record::<Rec>()?;
    rec.name().set(r.name.as_str())?;
    let mut tags = rec.tags().list(r.tags.len())?;
    for t in &r.tags {
        tags.push_str(t)?;
    }
    tags.finish()?;
    let mut groups = rec.groups().list(r.groups.len())?;
    for g in &r.groups {
        let mut group = groups.push_list(g.len())?;
        for s in g {
            group.push_str(s)?;
        }
        group.finish()?;
    }
    groups.finish()?;
    if let Some(note) = &r.note {
        rec.note().some()?.set(note.as_str())?;
    }
    match &r.numbers {
        Some(numbers) => {
            let mut list = rec.numbers().some()?.list(numbers.len())?;
            let bytes = list.elements_mut()?;
            for (n, out) in numbers.iter().zip(bytes.chunks_exact_mut(2)) {
                out.copy_from_slice(&n.to_le_bytes());
            }
            list.finish()?;
        }
        None => rec.numbers().none()?,
    }
    let mut kids = rec.kids().list(r.kids.len())?;
    for k in &r.kids {
        let mut kid = kids.push_record::<Kid>()?;
        kid.value().set(&k.value)?;
        if let Some(label) = &k.label {
            kid.label().some()?.set(label.as_str())?;
        }
    }
    kids.finish()?;
    rec.c().set(&r.c)?;
    rec.flag().set(&r.flag)?;
    rec.id().set(&r.id)?;
    b.finish()
}

/// Writes `value` and checks size, validation and read-back; if the value
/// does not fit the index type, checks that `write` reports the same error.
fn check_roundtrip<I: Index, T: Flat + ?Sized + core::fmt::Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    match encoded_size::<I, T>(value) {
        Ok(size) => {
            let mut buf = vec![0x5Au8; size];
            let used =
                write::<I, T>(value, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(used, size);
            let (view, claimed) =
                validate_with_len::<T, I>(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(claimed, used);
            prop_assert_eq!(format!("{view:?}"), format!("{value:?}"));
            if size > 0 {
                let mut small = vec![0u8; size - 1];
                prop_assert_eq!(
                    write::<I, T>(value, &mut small),
                    Err(BuildError::BufferTooSmall {
                        needed: size,
                        available: size - 1
                    })
                );
            }
        }
        Err(SizeError::IndexOverflow {
            field,
            value: v,
            max,
        }) => {
            let mut buf = vec![0u8; 1 << 16];
            prop_assert_eq!(
                write::<I, T>(value, &mut buf),
                Err(BuildError::IndexOverflow {
                    field,
                    value: v,
                    max
                })
            );
        }
        Err(e) => return Err(TestCaseError::fail(e.to_string())),
    }
    Ok(())
}

fn in_buffer(s: &str, buf: &[u8]) -> bool {
    let range = buf.as_ptr_range();
    let start = s.as_ptr();
    // `wrapping_add` only forms the end pointer for the comparison.
    range.start <= start && start.wrapping_add(s.len()) <= range.end
}

fn read_strings<I: Index>(buf: &[u8]) -> bool {
    match validate::<Vec<String>, I>(buf) {
        Ok(view) => view.iter().all(|s| in_buffer(s, buf)) && view.iter().count() == view.len(),
        Err(_) => true,
    }
}

fn read_nested<I: Index>(buf: &[u8]) -> bool {
    match validate::<Vec<Vec<String>>, I>(buf) {
        Ok(view) => view
            .iter()
            .all(|inner| inner.iter().all(|s| in_buffer(s, buf))),
        Err(_) => true,
    }
}

fn read_rec<I: Index>(buf: &[u8]) -> bool {
    match validate::<Rec, I>(buf) {
        Ok(r) => {
            let _ = format!("{r:?}");
            in_buffer(r.name(), buf)
                && r.tags().iter().all(|s| in_buffer(s, buf))
                && r.groups()
                    .iter()
                    .all(|g| g.iter().all(|s| in_buffer(s, buf)))
                && r.note().is_none_or(|s| in_buffer(s, buf))
                && r.numbers().is_none_or(|n| n.iter().count() == n.len())
                && r.kids()
                    .iter()
                    .all(|k| k.label().is_none_or(|s| in_buffer(s, buf)))
        }
        Err(_) => true,
    }
}

/// Applies `(position, byte)` overwrites and a truncation.
fn mutate(mut buf: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if buf.is_empty() {
        return buf;
    }
    for &(pos, byte) in edits {
        let len = buf.len();
        buf[pos % len] = byte;
    }
    let keep = buf.len() - cut % (buf.len() + 1) / 4;
    buf.truncate(keep);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn list_of_strings_roundtrip(small in strings(8, 12), big in strings(40, 60)) {
        for v in [&small, &big] {
            check_roundtrip::<u8, _>(v)?;
            check_roundtrip::<u16, _>(v)?;
            check_roundtrip::<u32, _>(v)?;
        }
    }

    #[test]
    fn nested_lists_roundtrip(v in prop::collection::vec(strings(6, 6), 0..8)) {
        check_roundtrip::<u8, _>(&v)?;
        check_roundtrip::<u16, _>(&v)?;
        check_roundtrip::<u32, _>(&v)?;
    }

    #[test]
    fn record_roundtrip(small in rec(3), big in rec(10)) {
        for r in [&small, &big] {
            check_roundtrip::<u8, _>(r)?;
            check_roundtrip::<u16, _>(r)?;
            check_roundtrip::<u32, _>(r)?;
            check_roundtrip::<u16, _>(&vec![r.clone(), r.clone()])?;
        }
    }

    #[test]
    fn record_built_field_by_field_equals_one_call_write(r in rec(6)) {
        for width in [2, 4] {
            let expected = if width == 2 {
                flat_layout::to_vec::<u16, _>(&r)
            } else {
                flat_layout::to_vec::<u32, _>(&r)
            };
            let Ok(expected) = expected else { continue };
            // Garbage first: every byte of the result must be written.
            let mut block = vec![0xA5u8; expected.len()];
            let used = if width == 2 {
                build_rec::<u16>(&r, &mut block)
            } else {
                build_rec::<u32>(&r, &mut block)
            };
            prop_assert_eq!(used, Ok(expected.len()));
            prop_assert_eq!(&block, &expected);
        }
    }

    #[test]
    fn in_place_builder_equals_one_call_write(v in strings(30, 40)) {
        let size = encoded_size::<u32, _>(&v).unwrap();
        let mut block = vec![0xFFu8; size];
        let mut b = Builder::<u32>::new(&mut block);
        let mut list = b.list::<Vec<String>>(v.len()).unwrap();
        for s in &v {
            list.push_str(s).unwrap();
        }
        list.finish().unwrap();
        prop_assert_eq!(b.finish().unwrap(), size);
        prop_assert_eq!(block, flat_layout::to_vec::<u32, _>(&v).unwrap());
    }

    #[test]
    fn mutated_strings_never_panic(
        v in strings(10, 10),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let buf8 = mutate(flat_layout::to_vec::<u8, _>(&v).unwrap_or_default(), &edits, cut);
        prop_assert!(read_strings::<u8>(&buf8));
        let buf16 = mutate(flat_layout::to_vec::<u16, _>(&v).unwrap(), &edits, cut);
        prop_assert!(read_strings::<u16>(&buf16));
        let buf32 = mutate(flat_layout::to_vec::<u32, _>(&v).unwrap(), &edits, cut);
        prop_assert!(read_strings::<u32>(&buf32));
        // Reading the bytes as other types must not panic either.
        prop_assert!(read_nested::<u16>(&buf16));
        prop_assert!(read_rec::<u32>(&buf32));
    }

    #[test]
    fn mutated_nested_and_records_never_panic(
        v in prop::collection::vec(strings(5, 5), 0..6),
        r in rec(4),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        for buf in [
            flat_layout::to_vec::<u8, _>(&v).unwrap_or_default(),
            flat_layout::to_vec::<u16, _>(&v).unwrap(),
            flat_layout::to_vec::<u32, _>(&v).unwrap(),
        ] {
            let buf = mutate(buf, &edits, cut);
            prop_assert!(read_nested::<u8>(&buf) && read_nested::<u16>(&buf) && read_nested::<u32>(&buf));
        }
        let r8 = mutate(flat_layout::to_vec::<u8, _>(&r).unwrap_or_default(), &edits, cut);
        prop_assert!(read_rec::<u8>(&r8));
        let r16 = mutate(flat_layout::to_vec::<u16, _>(&r).unwrap(), &edits, cut);
        prop_assert!(read_rec::<u16>(&r16));
        let r32 = mutate(flat_layout::to_vec::<u32, _>(&r).unwrap(), &edits, cut);
        prop_assert!(read_rec::<u32>(&r32) && read_strings::<u32>(&r32));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(read_strings::<u8>(&bytes) && read_strings::<u16>(&bytes) && read_strings::<u32>(&bytes));
        prop_assert!(read_nested::<u8>(&bytes) && read_nested::<u16>(&bytes));
        prop_assert!(read_rec::<u8>(&bytes) && read_rec::<u16>(&bytes) && read_rec::<u32>(&bytes));
    }
}
