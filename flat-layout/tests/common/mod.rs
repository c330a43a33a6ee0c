//! Helpers shared by the integration tests.
#![allow(dead_code)]

use flat_layout::{encoded_size, validate, validate_with_len, write, Flat, Index};

/// Writes `value` with index `I`, checks the size, validates and compares the
/// view's `Debug` with the value's. Returns the bytes.
pub fn roundtrip<I: Index, T: Flat + ?Sized + core::fmt::Debug>(value: &T) -> Vec<u8> {
    let size = encoded_size::<I, T>(value).expect("encoded_size");
    let mut buf = vec![0xAAu8; size + 7];
    let used = write::<I, T>(value, &mut buf).expect("write");
    assert_eq!(used, size, "encoded_size must equal bytes used");
    buf.truncate(used);
    let (view, claimed) = validate_with_len::<T, I>(&buf).expect("validate");
    assert_eq!(claimed, used, "builders leave no gaps");
    assert_eq!(format!("{view:?}"), format!("{value:?}"));
    // Trailing bytes are ignored.
    let mut longer = buf.clone();
    longer.extend_from_slice(&[0xFF; 5]);
    let view = validate::<T, I>(&longer).expect("validate with trailing bytes");
    assert_eq!(format!("{view:?}"), format!("{value:?}"));
    buf
}

/// `roundtrip` at all three index widths.
pub fn roundtrip_all<T: Flat + ?Sized + core::fmt::Debug>(value: &T) {
    roundtrip::<u8, T>(value);
    roundtrip::<u16, T>(value);
    roundtrip::<u32, T>(value);
}

pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}
