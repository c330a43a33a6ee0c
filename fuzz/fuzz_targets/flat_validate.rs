//! Validates arbitrary bytes as several types at every index width and, when
//! accepted, reads the whole value (Debug walks every field and element).
//! Must never panic, and every string must point inside the input.
//! (Not read through `Debug`: lists of zero-sized types, whose reading cost
//! is their length, not the input size.)

#![no_main]

use core::fmt::Write;

use flat_layout::{validate, Flat, Index};
use libfuzzer_sys::fuzz_target;

#[path = "types.rs"]
mod types;
use types::{Event, Rec, Sink};

fn inside(s: &str, buf: &[u8]) {
    let range = buf.as_ptr_range();
    assert!(range.start <= s.as_ptr() && s.as_ptr().wrapping_add(s.len()) <= range.end);
}

fn read_all<T: Flat + ?Sized, I: Index>(buf: &[u8]) {
    if let Ok(view) = validate::<T, I>(buf) {
        let mut sink = Sink(0);
        write!(sink, "{view:?}").expect("formatting a view never fails");
    }
}

fn strings<I: Index>(buf: &[u8]) {
    if let Ok(list) = validate::<Vec<String>, I>(buf) {
        assert_eq!(list.iter().count(), list.len());
        for s in list.iter().rev() {
            inside(s, buf);
        }
    }
    if let Ok(lists) = validate::<Vec<Vec<String>>, I>(buf) {
        for list in lists {
            for s in list {
                inside(s, buf);
            }
        }
    }
}

fn all<I: Index>(buf: &[u8]) {
    strings::<I>(buf);
    read_all::<Rec, I>(buf);
    read_all::<Vec<Event>, I>(buf);
    read_all::<(Option<Vec<char>>, Vec<bool>, Vec<u64>), I>(buf);
    // Lists of zero-sized elements validate in O(1) but may hold 2^32 - 1
    // elements: reading them is O(length), so only look at the lengths.
    if let Ok(lists) = validate::<Vec<Vec<()>>, I>(buf) {
        let total: usize = lists.iter().map(|l| l.len()).sum();
        core::hint::black_box(total);
    }
}

fuzz_target!(|data: &[u8]| {
    all::<u8>(data);
    all::<u16>(data);
    all::<u32>(data);
});
