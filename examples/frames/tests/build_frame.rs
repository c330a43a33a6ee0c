//! The publisher's in-place, field-by-field frame is byte for byte the
//! frame `TypedPublisher::send` would write from an owned value, and the
//! subscriber's check accepts it (and rejects a wrong one).

use frames::{build_frame, check, frame, pixel, Frame};
use shm_guest::flat_layout::{to_vec, validate, Builder};

#[test]
fn built_in_place_equals_the_owned_frame_and_passes_the_check() {
    for (n, width, height) in [(0, 4, 3), (5, 64, 48), (9, 1, 0)] {
        let expected = to_vec::<u32, _>(&frame(n, width, height)).unwrap();
        let mut block = vec![0xA5u8; expected.len() + 100];
        let mut builder = Builder::<u32>::new(&mut block);
        build_frame(n, width, height, &mut builder.record::<Frame>().unwrap()).unwrap();
        let used = builder.finish().unwrap();
        assert_eq!(&block[..used], &expected[..], "frame {n}");
        let view = validate::<Frame, u32>(&block[..used]).unwrap();
        check(n, &view).unwrap();
        assert!(check(n + 1, &view).is_err());
    }
}

/// The bytes of a small frame, spelled out (flat-layout FORMAT.md, index
/// type u32, nothing aligned): what the `Frame` generated from
/// `wit/frame.wit` writes, the hand-written struct it replaced wrote, and
/// the C subscriber's `frame_u32_*` accessors read.
#[test]
fn a_frame_has_the_bytes_the_format_gives_it() {
    let le = |v: u32| v.to_le_bytes();
    let mut expected = Vec::new();
    // Inline part (24 bytes): width, height, then the (offset, count)
    // pairs of tags and pixels; offsets count from the pair's own position.
    expected.extend(le(2)); // width, at 0
    expected.extend(le(1)); // height, at 4
    expected.extend(le(24 - 8)); // tags: elements at 24
    expected.extend(le(2));
    expected.extend(le(53 - 16)); // pixels: at 53, after the tags' strings
    expected.extend(le(2));
    // The tags' elements: one (offset, length) pair per string.
    expected.extend(le(40 - 24)); // "camera" at 40
    expected.extend(le(6));
    expected.extend(le(46 - 32)); // "frame-0" at 46
    expected.extend(le(7));
    expected.extend(b"camera");
    expected.extend(b"frame-0");
    expected.extend([pixel(0, 0), pixel(0, 1)]);
    assert_eq!(to_vec::<u32, _>(&frame(0, 2, 1)).unwrap(), expected);
}
