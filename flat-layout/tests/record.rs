//! Records built in place field by field (`#[derive(Flat)]`'s `NameBuilder`):
//! the rules on field order, unset fields, failed writes and nesting.

use flat_layout::{validate, BuildError, Builder, RecordBuilder};
use flat_layout_derive::Flat;

#[derive(Flat, Debug, Clone, PartialEq)]
struct Meta {
    seq: u64,
    source: String,
}

#[derive(Flat, Debug, Clone, PartialEq)]
struct Frame {
    width: u32,
    height: u32,
    tags: Vec<String>,
    meta: Meta,
    note: Option<String>,
    pixels: Vec<u8>,
}

#[test]
fn inline_fields_may_come_last_and_unset_fields_read_as_zero() {
    let mut block = [0xEEu8; 256];
    let mut b = Builder::<u16>::new(&mut block);
    let mut frame = b.record::<Frame>().unwrap();
    let mut pixels = frame.pixels().list(3).unwrap();
    pixels.elements_mut().unwrap().copy_from_slice(&[7, 8, 9]);
    pixels.finish().unwrap();
    frame.height().set(&2u32).unwrap();
    frame.height().set(&3u32).unwrap(); // inline fields may be set again
    let used = b.finish().unwrap();

    let view = validate::<Frame, u16>(&block[..used]).unwrap();
    assert_eq!(view.height(), 3);
    assert_eq!(view.width(), 0);
    assert!(view.tags().is_empty());
    assert_eq!((view.meta().seq(), view.meta().source()), (0, ""));
    assert_eq!(view.note(), None);
    assert_eq!(view.pixels().iter().collect::<Vec<u8>>(), [7, 8, 9]);
}

#[test]
fn fields_with_strings_or_lists_go_in_declaration_order_once() {
    let mut block = [0u8; 256];
    let mut b = Builder::<u32>::new(&mut block);
    let mut frame = b.record::<Frame>().unwrap();
    frame.note().some().unwrap().set("late").unwrap();
    // `tags` (field 2) after `note` (field 4): its bytes would precede
    // note's in the tail, which validation rejects, so the builder refuses.
    assert_eq!(
        frame.tags().list(1).err(),
        Some(BuildError::FieldOutOfOrder { field: 2, after: 4 })
    );
    assert_eq!(
        frame.meta().record::<Meta>().err().map(|e| e.to_string()),
        Some(BuildError::FieldOutOfOrder { field: 3, after: 4 }.to_string())
    );
    // Twice: refused as well (the first bytes would be left as a gap).
    assert_eq!(
        frame.note().set(&Some("again")),
        Err(BuildError::FieldOutOfOrder { field: 4, after: 4 })
    );
    // Later fields and inline fields still work.
    frame.pixels().set(&[1u8, 2][..]).unwrap();
    frame.width().set(&9u32).unwrap();
    let used = b.finish().unwrap();
    let view = validate::<Frame, u32>(&block[..used]).unwrap();
    assert_eq!(view.note(), Some("late"));
    assert_eq!(view.width(), 9);
    assert_eq!(view.pixels().len(), 2);
}

#[test]
fn a_failed_write_leaves_the_field_empty_and_may_be_retried() {
    let mut block = [0u8; 64];
    let mut b = Builder::<u8>::new(&mut block);
    let mut frame = b.record::<Frame>().unwrap();
    let mut meta = frame.meta().record::<Meta>().unwrap();
    meta.seq().set(&41u64).unwrap();
    let long = "x".repeat(100);
    assert!(matches!(
        meta.source().set(long.as_str()),
        Err(BuildError::BufferTooSmall { .. })
    ));
    meta.source().set("cam0").unwrap();
    meta.seq().set(&42u64).unwrap();
    let used = b.finish().unwrap();
    let view = validate::<Frame, u8>(&block[..used]).unwrap();
    assert_eq!((view.meta().seq(), view.meta().source()), (42, "cam0"));
}

#[test]
fn a_list_field_left_short_fails_the_message() {
    let mut block = [0u8; 128];
    let mut b = Builder::<u32>::new(&mut block);
    let mut frame = b.record::<Frame>().unwrap();
    let mut tags = frame.tags().list(2).unwrap();
    tags.push_str("one").unwrap();
    drop(tags);
    assert_eq!(
        b.finish(),
        Err(BuildError::TooFewElements {
            expected: 2,
            pushed: 1
        })
    );
}

#[test]
fn records_in_a_list_are_pushed_one_by_one() {
    let mut block = [0u8; 128];
    let mut b = Builder::<u16>::new(&mut block);
    let mut metas = b.list::<Vec<Meta>>(2).unwrap();
    for (seq, source) in [(1u64, "left"), (2, "right")] {
        let mut meta = metas.push_record::<Meta>().unwrap();
        meta.source().set(source).unwrap();
        meta.seq().set(&seq).unwrap();
    }
    assert_eq!(
        metas.push_record::<Meta>().err(),
        Some(BuildError::TooManyElements { capacity: 2 })
    );
    metas.finish().unwrap();
    let used = b.finish().unwrap();
    assert_eq!(
        &block[..used],
        &flat_layout::to_vec::<u16, _>(&vec![
            Meta {
                seq: 1,
                source: "left".into()
            },
            Meta {
                seq: 2,
                source: "right".into()
            },
        ])
        .unwrap()[..]
    );
}

#[test]
fn a_slot_outside_its_record_refuses_every_write() {
    // What a hand-written call with a wrong offset gets (derived builders
    // compute offsets from the fields' inline sizes).
    struct Wrong;
    impl flat_layout::Flat for Wrong {
        type Repr = <u32 as flat_layout::Flat>::Repr;
        type View<'a, I: flat_layout::Index> = u32;
        fn wrap_view<'a, I: flat_layout::Index>(
            v: <Self::Repr as flat_layout::Flat>::View<'a, I>,
        ) -> Self::View<'a, I> {
            v
        }
        fn encode<I: flat_layout::Index>(
            &self,
            enc: &mut flat_layout::Encoder<'_, I>,
            pos: usize,
        ) -> Result<(), BuildError> {
            0u32.encode(enc, pos)
        }
    }
    impl flat_layout::FlatRecord for Wrong {
        type Builder<'p, 'b: 'p, I: flat_layout::Index> = RecordBuilder<'p, 'b, I>;
        fn builder<'p, 'b: 'p, I: flat_layout::Index>(
            record: RecordBuilder<'p, 'b, I>,
        ) -> RecordBuilder<'p, 'b, I> {
            record
        }
    }
    let mut block = [0u8; 16];
    let mut b = Builder::<u32>::new(&mut block);
    let mut rec = b.record::<Wrong>().unwrap();
    assert_eq!(
        rec.field::<u32>(0, 2).set(&1u32),
        Err(BuildError::FieldOutsideRecord {
            offset: 2,
            width: 4,
            size: 4
        })
    );
    rec.field::<u32>(0, 0).set(&5u32).unwrap();
    assert_eq!(b.finish(), Ok(4));
    assert_eq!(block[..4], 5u32.to_le_bytes());
}
