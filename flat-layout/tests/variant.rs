//! Variants built in place case by case (`#[derive(Flat)]`'s `NameBuilder`
//! for enums): every kind of payload is written where it lies and gives the
//! bytes `write` gives from the whole value.

use flat_layout::{to_vec, validate, BuildError, Builder, Index};
use flat_layout_derive::Flat;

#[derive(Flat, Debug, Clone, PartialEq)]
struct Label {
    text: String,
    size: u8,
}

#[derive(Flat, Debug, Clone, PartialEq)]
enum Status {
    Ok,
    Degraded(String),
    Code(u16),
    Reasons(Vec<String>),
    Note(Option<String>),
    Label(Label),
    Pair(u8, String),
    Failed { code: u16, reasons: Vec<String> },
    // Keyword and acronym case names get usable methods.
    Type,
    HTTPError(u16),
}

#[derive(Flat, Debug, Clone, PartialEq)]
struct Report {
    id: u32,
    status: Status,
    after: String,
}

fn encoded<I: Index>(value: &Report) -> Vec<u8> {
    to_vec::<I, _>(value).expect("encodes")
}

/// Builds a `Report` whose status is written by `case`, in place.
fn build<I: Index>(
    case: impl FnOnce(
        flat_layout::FieldSlot<'_, '_, <Status as flat_layout::Flat>::Repr, I>,
    ) -> Result<(), BuildError>,
) -> Result<Vec<u8>, BuildError> {
    let mut block = vec![0xAAu8; 512];
    let mut builder = Builder::<I>::new(&mut block);
    let mut report = builder.record::<Report>()?;
    report.id().set(&7u32)?;
    case(report.status())?;
    report.after().set("end")?;
    let used = builder.finish()?;
    block.truncate(used);
    Ok(block)
}

fn report_with(status: Status) -> Report {
    Report {
        id: 7,
        status,
        after: "end".into(),
    }
}

fn every_case<I: Index>() -> Result<(), BuildError> {
    let cases: Vec<(Status, Vec<u8>)> = vec![
        (Status::Ok, build::<I>(|s| s.variant::<Status>().ok())?),
        (
            Status::Degraded("dust".into()),
            build::<I>(|s| s.variant::<Status>().degraded()?.set("dust"))?,
        ),
        (
            Status::Code(513),
            build::<I>(|s| s.variant::<Status>().code()?.set(&513u16))?,
        ),
        (
            Status::Reasons(vec!["a".into(), "bc".into()]),
            build::<I>(|s| {
                let mut list = s.variant::<Status>().reasons()?.list(2)?;
                list.push_str("a")?;
                list.push_str("bc")?;
                list.finish()
            })?,
        ),
        (
            Status::Note(Some("hi".into())),
            build::<I>(|s| s.variant::<Status>().note()?.some()?.set("hi"))?,
        ),
        (
            Status::Note(None),
            build::<I>(|s| s.variant::<Status>().note()?.none())?,
        ),
        (
            Status::Label(Label {
                text: "tag".into(),
                size: 3,
            }),
            build::<I>(|s| {
                let mut label = s.variant::<Status>().label()?.record::<Label>()?;
                label.text().set("tag")?;
                label.size().set(&3u8)
            })?,
        ),
        (
            Status::Pair(9, "x".into()),
            build::<I>(|s| {
                let mut pair = s.variant::<Status>().pair()?;
                pair.f0().set(&9u8)?;
                pair.f1().set("x")
            })?,
        ),
        (
            Status::Failed {
                code: 500,
                reasons: vec!["disk".into()],
            },
            build::<I>(|s| {
                let mut failed = s.variant::<Status>().failed()?;
                failed.code().set(&500u16)?;
                let mut reasons = failed.reasons().list(1)?;
                reasons.push_str("disk")?;
                reasons.finish()
            })?,
        ),
        (
            Status::Type,
            build::<I>(|s| s.variant::<Status>().r#type())?,
        ),
        (
            Status::HTTPError(404),
            build::<I>(|s| s.variant::<Status>().http_error()?.set(&404u16))?,
        ),
    ];
    for (status, bytes) in cases {
        let value = report_with(status);
        assert_eq!(
            bytes,
            encoded::<I>(&value),
            "{value:?} at u{}",
            8 * I::WIDTH
        );
        validate::<Report, I>(&bytes).expect("valid");
    }
    Ok(())
}

#[test]
fn every_payload_kind_is_written_in_place_as_write_writes_it() -> Result<(), BuildError> {
    every_case::<u8>()?;
    every_case::<u16>()?;
    every_case::<u32>()
}

#[test]
fn a_string_case_reads_back_and_a_second_case_overwrites_the_first(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut block = [0u8; 64];
    let mut builder = Builder::<u16>::new(&mut block);
    let mut report = builder.record::<Report>()?;
    // A case without out-of-line bytes may be written, then replaced.
    report.status().variant::<Status>().code()?.set(&1u16)?;
    report
        .status()
        .variant::<Status>()
        .degraded()?
        .set("dust")?;
    report.after().set("end")?;
    let used = builder.finish()?;
    let view = validate::<Report, u16>(&block[..used])?;
    assert!(matches!(view.status(), StatusView::Degraded("dust")));
    assert_eq!(view.after(), "end");
    Ok(())
}

#[test]
fn a_case_with_a_string_follows_the_field_order() -> Result<(), BuildError> {
    let mut block = [0u8; 64];
    let mut builder = Builder::<u8>::new(&mut block);
    let mut report = builder.record::<Report>()?;
    report.id().set(&7u32)?;
    report.after().set("end")?;
    // `status` comes before `after`: its string would go backwards.
    assert!(matches!(
        report.status().variant::<Status>().degraded(),
        Err(BuildError::FieldOutOfOrder { field: 1, after: 2 })
    ));
    // A case without out-of-line bytes may still be written.
    report.status().variant::<Status>().code()?.set(&3u16)?;
    let used = builder.finish()?;
    assert_eq!(
        &block[..used],
        &encoded::<u8>(&report_with(Status::Code(3)))[..]
    );
    Ok(())
}

#[test]
fn variants_as_the_root_and_as_list_elements() -> Result<(), Box<dyn std::error::Error>> {
    let mut block = [0u8; 128];
    let mut builder = Builder::<u32>::new(&mut block);
    builder.variant::<Status>()?.degraded()?.set("root")?;
    let used = builder.finish()?;
    assert_eq!(
        &block[..used],
        &to_vec::<u32, _>(&Status::Degraded("root".into()))?[..]
    );

    let mut block = [0u8; 128];
    let mut builder = Builder::<u8>::new(&mut block);
    let mut list = builder.list::<Vec<Status>>(3)?;
    list.push_variant::<Status>()?.degraded()?.set("a")?;
    list.push_variant::<Status>()?.ok()?;
    let mut reasons = list.push_variant::<Status>()?.reasons()?.list(1)?;
    reasons.push_str("b")?;
    reasons.finish()?;
    list.finish()?;
    let used = builder.finish()?;
    let expected = vec![
        Status::Degraded("a".into()),
        Status::Ok,
        Status::Reasons(vec!["b".into()]),
    ];
    assert_eq!(&block[..used], &to_vec::<u8, _>(&expected)?[..]);
    Ok(())
}

#[test]
fn a_case_too_big_for_the_buffer_fails_and_the_message_does_not_finish() {
    let mut block = [0u8; 12];
    let mut builder = Builder::<u8>::new(&mut block);
    let result = builder
        .variant::<Status>()
        .and_then(|s| s.degraded()?.set("far too long for twelve bytes"));
    assert!(matches!(result, Err(BuildError::BufferTooSmall { .. })));
}
