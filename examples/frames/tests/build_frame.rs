//! The publisher's in-place, field-by-field frame is byte for byte the
//! frame `TypedPublisher::send` would write from an owned value, and the
//! subscriber's check accepts it (and rejects a wrong one).

use frames::{build_frame, check, frame, Frame};
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
