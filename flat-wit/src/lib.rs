//! WIT as the schema of [flat-layout](https://docs.rs/flat-layout) messages.
//!
//! Write the message types once in WIT, then generate:
//!
//! * **Rust** ([`rust`]): one type per named WIT type with
//!   `#[derive(flat_layout::Flat)]`, so the validated view (`FrameView<'a, I>`)
//!   and the in-place builder (`FrameBuilder<'p, 'b, I>`) come from the
//!   derive, generic over the index type `I` (`u8`, `u16`, `u32`). Use
//!   [`rust::generate_file`] from a `build.rs`, or the
//!   `flat_wit_macro::generate!` macro (crate `flat-wit-macro`, which builds
//!   on this one and so cannot be re-exported by it).
//! * **C** ([`c`]): one self-contained C99 header with, per type and index
//!   width, a validator (FORMAT.md §4), accessors and an in-place builder.
//!
//! Both go through the [`Model`]: the named records, variants, enums and
//! aliases of a WIT package over primitives, strings, lists, options and
//! tuples, with their inline sizes (FORMAT.md §2). WIT constructs the format
//! does not have (resources, handles, flags, `result`, futures, streams,
//! maps) are reported as [`Error::Unsupported`], naming the type.
//!
//! At run time, without generated code:
//!
//! * [`dynamic`] (feature `dynamic`): validate a message from the [`Model`]
//!   and decode it to JSON, with the JSON Schema of that JSON;
//! * [`mcap`] (feature `mcap`): the convention for recording flat topics in
//!   MCAP files, reading such recordings back as JSON and converting them to
//!   MCAP files of JSON messages.
//!
//! The `flat-wit` binary (feature `cli`, on by default, with both) runs them:
//! `flat-wit c <wit-dir> [--width u8|u16|u32 ...] [--prefix P] -o types.h`,
//! `flat-wit rust <wit-dir> -o types.rs`, and `flat-wit dump` (a message or
//! an MCAP recording as JSON, `--to-json` to convert a recording).
//!
//! # Example
//!
//! ```
//! use flat_wit::{c, rust, Model, Selection, Width};
//!
//! let wit = r#"
//!     package demo:camera;
//!     interface frames {
//!         record frame { width: u32, height: u32, tags: list<string>, pixels: list<u8> }
//!     }
//! "#;
//! let model = Model::parse("camera.wit", wit, &Selection::default())?;
//! let frame = model.get("frame").expect("declared above");
//! let ty = flat_wit::Ty::Named(frame.name.clone());
//! assert_eq!(model.size(&ty, Width::U32), 4 + 4 + 8 + 8);
//!
//! let code = rust::generate(&model, &rust::Options::default())?;
//! assert!(code.contains("pub struct Frame {"));
//! assert!(code.contains("pub tags: Vec<String>,"));
//!
//! // Names start with the package's (`demo_camera_`) unless `prefix` says otherwise.
//! let header = c::generate(&model, &c::Options { widths: vec![Width::U32], prefix: None })?;
//! assert!(header.contains("static inline bool demo_camera_frame_u32_validate(const uint8_t *buf, size_t len)"));
//! # Ok::<(), flat_wit::Error>(())
//! ```
//!
//! In a crate, from `build.rs` (with `flat-wit` as a build dependency and
//! `flat-layout` with its `derive` feature as a dependency):
//!
//! ```no_run
//! // build.rs, in `fn main`:
//! println!("cargo::rerun-if-changed=wit");
//! let out_dir = std::env::var("OUT_DIR").expect("set by cargo");
//! let out = std::path::Path::new(&out_dir).join("messages.rs");
//! if let Err(e) = flat_wit::rust::generate_file("wit", out) {
//!     // Its message (Display) names the file and the type; a `Debug`
//!     // print (`unwrap`, `main` returning the error) would not read as well.
//!     eprintln!("error: {e}");
//!     std::process::exit(1);
//! }
//! // src/lib.rs: include!(concat!(env!("OUT_DIR"), "/messages.rs"));
//! ```

#![deny(missing_docs)]

pub mod c;
#[cfg(feature = "dynamic")]
pub mod dynamic;
mod error;
#[cfg(feature = "mcap")]
pub mod mcap;
mod model;
mod names;
pub mod rust;

pub use error::Error;
pub use model::{Case, Def, Field, Model, Named, Prim, Selection, Ty, Width};

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
