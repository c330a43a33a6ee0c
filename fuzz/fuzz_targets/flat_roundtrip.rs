//! Arbitrary values are written at every index width (exact size first),
//! validated and read back equal.

#![no_main]

use flat_layout::{encoded_size, validate_with_len, write, BuildError, Flat, Index, SizeError};
use libfuzzer_sys::fuzz_target;

#[path = "types.rs"]
mod types;
use types::Rec;

fn roundtrip<I: Index, T: Flat + ?Sized + core::fmt::Debug>(value: &T) {
    match encoded_size::<I, T>(value) {
        Ok(size) => {
            let mut buf = vec![0xA5u8; size];
            let used = write::<I, T>(value, &mut buf).expect("write after encoded_size");
            assert_eq!(used, size);
            let (view, claimed) = validate_with_len::<T, I>(&buf).expect("own output validates");
            assert_eq!(claimed, used);
            assert_eq!(format!("{view:?}"), format!("{value:?}"));
        }
        Err(SizeError::IndexOverflow {
            field,
            value: v,
            max,
        }) => {
            let mut buf = vec![0u8; 1 << 16];
            let err = write::<I, T>(value, &mut buf).expect_err("size said it cannot fit");
            assert!(
                err == BuildError::IndexOverflow {
                    field,
                    value: v,
                    max
                } || matches!(err, BuildError::BufferTooSmall { .. })
            );
        }
        Err(SizeError::SizeOverflow) => {}
    }
}

fuzz_target!(|input: (Rec, Vec<String>, Vec<Vec<String>>)| {
    let (rec, strings, nested) = input;
    roundtrip::<u8, _>(&rec);
    roundtrip::<u16, _>(&rec);
    roundtrip::<u32, _>(&rec);
    roundtrip::<u8, _>(&strings);
    roundtrip::<u16, _>(&strings);
    roundtrip::<u32, _>(&strings);
    roundtrip::<u8, _>(&nested);
    roundtrip::<u32, _>(&nested);
});
