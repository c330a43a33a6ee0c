//! `generate!` on tests/wit: the generated types build, validate and encode
//! exactly like hand-written `#[derive(Flat)]` types.

use flat_layout::{to_vec, validate, Builder, Flat};

mod camera {
    flat_wit_macro::generate!({
        path: "tests/wit",
        interface: "frames",
    });
}

mod only_frame {
    flat_wit_macro::generate!({ path: "tests/wit/camera.wit", interface: "frames", types: ["frame"] });
}

#[derive(Flat, Debug, Clone, PartialEq)]
struct Frame {
    width: u32,
    height: u32,
    tags: Vec<String>,
    pixels: Vec<u8>,
}

#[derive(Flat, Debug, Clone, PartialEq)]
#[allow(dead_code)]
enum Event {
    Started,
    Frame(Frame),
    Stopped(Option<String>),
}

#[derive(Flat, Debug, Clone, PartialEq)]
#[allow(dead_code)]
enum Status {
    Ok,
    Degraded(String),
    Failed(Vec<String>),
}

#[derive(Flat, Debug, Clone, PartialEq)]
struct Report {
    id: u32,
    status: Status,
    events: Vec<Event>,
}

#[test]
fn generated_builder_writes_what_the_hand_written_type_encodes(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut block = [0u8; 256];
    let mut builder = Builder::<u16>::new(&mut block);
    let mut frame = builder.record::<camera::Frame>()?;
    frame.width().set(&2u32)?;
    frame.height().set(&1u32)?;
    let mut tags = frame.tags().list(1)?;
    tags.push_str("front")?;
    tags.finish()?;
    frame.pixels().set(&[7u8, 9][..])?;
    let used = builder.finish()?;

    let hand = Frame {
        width: 2,
        height: 1,
        tags: vec!["front".into()],
        pixels: vec![7, 9],
    };
    assert_eq!(&block[..used], &to_vec::<u16, _>(&hand)?[..]);
    let view = validate::<camera::Frame, u16>(&block[..used])?;
    assert_eq!(view.tags().get(0), Some("front"));
    let only = validate::<only_frame::Frame, u16>(&block[..used])?;
    assert_eq!(only.pixels().as_bytes(), [7, 9]);
    Ok(())
}

#[test]
fn generated_variant_encodes_like_the_hand_written_one() -> Result<(), Box<dyn std::error::Error>> {
    let generated = camera::Event::Stopped(Some("done".into()));
    let hand = Event::Stopped(Some("done".into()));
    assert_eq!(to_vec::<u8, _>(&generated)?, to_vec::<u8, _>(&hand)?);
    assert_eq!(to_vec::<u32, _>(&generated)?, to_vec::<u32, _>(&hand)?);
    let bytes = to_vec::<u32, _>(&camera::Event::Started)?;
    assert!(matches!(
        validate::<camera::Event, u32>(&bytes)?,
        camera::EventView::Started
    ));
    Ok(())
}

#[test]
fn generated_variant_cases_are_built_in_place() -> Result<(), Box<dyn std::error::Error>> {
    use camera::{Event as GenEvent, Frame as GenFrame, Report as GenReport, Status as GenStatus};

    let mut block = [0u8; 256];
    let mut builder = Builder::<u16>::new(&mut block);
    let mut report = builder.record::<GenReport>()?;
    report.id().set(&7u32)?;
    // The string goes straight into the block: no `String` on the heap.
    report
        .status()
        .variant::<GenStatus>()
        .degraded()?
        .set("dust")?;
    let mut events = report.events().list(3)?;
    events.push_variant::<GenEvent>()?.started()?;
    let mut frame = events
        .push_variant::<GenEvent>()?
        .frame()?
        .record::<GenFrame>()?;
    frame.width().set(&2u32)?;
    frame.tags().list(0)?.finish()?;
    events
        .push_variant::<GenEvent>()?
        .stopped()?
        .some()?
        .set("done")?;
    events.finish()?;
    let used = builder.finish()?;

    let hand = Report {
        id: 7,
        status: Status::Degraded("dust".into()),
        events: vec![
            Event::Started,
            Event::Frame(Frame {
                width: 2,
                height: 0,
                tags: vec![],
                pixels: vec![],
            }),
            Event::Stopped(Some("done".into())),
        ],
    };
    assert_eq!(&block[..used], &to_vec::<u16, _>(&hand)?[..]);
    let view = validate::<GenReport, u16>(&block[..used])?;
    assert!(matches!(
        view.status(),
        camera::StatusView::Degraded("dust")
    ));

    // As the root, with a list payload.
    let mut block = [0u8; 64];
    let mut builder = Builder::<u8>::new(&mut block);
    let mut reasons = builder.variant::<GenStatus>()?.failed()?.list(2)?;
    reasons.push_str("disk")?;
    reasons.push_str("fan")?;
    reasons.finish()?;
    let used = builder.finish()?;
    assert_eq!(
        &block[..used],
        &to_vec::<u8, _>(&Status::Failed(vec!["disk".into(), "fan".into()]))?[..]
    );
    Ok(())
}
