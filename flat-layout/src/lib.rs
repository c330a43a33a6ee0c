//! A flat, offset-based binary layout for component-model values
//! (`list<string>`, records, options, ...), built **in place** inside a
//! caller-provided buffer and read **where it lies** after one validation
//! pass. No intermediate heap copy on either side.
//!
//! * [`Builder`] writes into a `&mut [u8]` (e.g. an attached shared-memory
//!   block) with no allocation; [`write()`] does the same in one call from
//!   ordinary Rust values, and [`encoded_size`] computes the exact size first.
//! * [`validate`] checks untrusted bytes once, in time linear in their length
//!   for any input, and returns a view whose accessors cannot fail: lengths,
//!   `get(i)`, iterators, `&str` pointing into the buffer, slices of
//!   primitives, and a `Debug` that prints the value.
//! * The header index type `I` (`u8`, `u16` or `u32`) is a type parameter,
//!   like `P` in the component model's `flat<T, P>`.
//!
//! The byte format is specified in `FORMAT.md` next to this crate's manifest.
//!
//! # Example: a `list<string>` built in place, validated and read
//!
//! ```
//! use flat_layout::{encoded_size, validate, Builder};
//!
//! let lines = ["hello", "one"];
//! // Size the block first (exact), then build inside it.
//! let size = encoded_size::<u32, _>(&lines)?;
//! let mut block = vec![0u8; size];
//!
//! let mut builder = Builder::<u32>::new(&mut block);
//! let mut list = builder.list::<[&str]>(lines.len())?;
//! for line in lines {
//!     list.push_str(line)?;
//! }
//! list.finish()?;
//! let used = builder.finish()?; // hand `used` to `detach`
//! assert_eq!(used, size);
//!
//! // A subscriber checks the untrusted bytes once, then reads in place.
//! let view = validate::<[&str], u32>(&block[..used])?;
//! assert_eq!(view.len(), 2);
//! assert_eq!(view.get(0), Some("hello"));
//! assert!(view.iter().eq(["hello", "one"]));
//! assert_eq!(format!("{view:?}"), r#"["hello", "one"]"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Records
//!
//! With the `derive` feature (or the `flat-layout-derive` crate),
//! `#[derive(Flat)]` on a struct with named fields generates its layout and a
//! view type `<Name>View<'a, I>` with one accessor per field, and a builder
//! `<Name>Builder<'p, 'b, I>` that writes the record in place field by field
//! ([`Builder::record`], [`FlatRecord`] has an example); on an enum it
//! generates a variant layout, a view enum and a builder
//! `<Name>Builder<'s, 'b, I>` that writes one case and its payload in place
//! ([`FieldSlot::variant`], [`FlatVariant`] has an example).
//!
//! # Features
//!
//! * `std` (default): implies `alloc`.
//! * `alloc`: [`to_vec`] and `Flat` for `String`, `Vec<T>` and `Box<T>`.
//! * `derive`: re-exports `#[derive(Flat)]`.
//!
//! Without features the crate is `#![no_std]` and never allocates.
//!
//! # Shared memory
//!
//! A view borrows `&[u8]`: the bytes must not change while it lives (as for
//! any Rust shared reference). A subscriber must only validate and read a
//! block after the publisher detached it and stopped writing.

#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(test)]
extern crate std;

// Lets `#[derive(Flat)]` (which names `::flat_layout`) work inside this crate.
extern crate self as flat_layout;

mod build;
mod encode;
mod error;
mod impls;
mod index;
mod layout;
mod record;
mod validate;
mod view;

pub use build::{Builder, ListBuilder, ListLayout};
#[cfg(feature = "alloc")]
pub use encode::to_vec;
pub use encode::{encoded_size, write, Encoder};
pub use error::{BuildError, HeaderField, SizeError, ValidateError};
pub use impls::encode_case;
pub use index::Index;
pub use layout::{
    inline_size, Case, CaseAt, CaseNext, CaseZero, Cases, Cons, Either, Flat, InlineSize, Layout,
    List, Never, Nil, NoCase, Opt, Str, Variant,
};
pub use record::{FieldSlot, FlatRecord, FlatVariant, RecordBuilder};
pub use validate::{validate, validate_with_len};
pub use view::{Iter, ListView};

#[cfg(feature = "derive")]
pub use flat_layout_derive::Flat;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
