//! Errors of loading a WIT package and generating code from it.

use std::path::PathBuf;

/// Why a WIT package could not be turned into flat types or code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `wit-parser` could not read or resolve the package.
    #[error("cannot load WIT from {path}: {message}")]
    Load {
        /// The directory or file given.
        path: PathBuf,
        /// wit-parser's message (with its context chain).
        message: String,
    },
    /// The requested interface is not in the package.
    #[error("no interface `{name}` in WIT package `{package}`; interfaces: {available}")]
    NoSuchInterface {
        /// The name asked for.
        name: String,
        /// The package searched.
        package: String,
        /// The interfaces it has.
        available: String,
    },
    /// A requested type is not in the selection.
    #[error("no type `{name}` in the selected WIT interfaces")]
    NoSuchType {
        /// The name asked for.
        name: String,
    },
    /// A WIT construct the flat format does not have.
    #[error("type `{ty}` uses {what}, which the flat format does not support: {hint}")]
    Unsupported {
        /// The named WIT type that contains it.
        ty: String,
        /// The construct (`resource`, `flags`, `result`, ...).
        what: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// A type refers to itself (directly or through other types).
    #[error("type `{ty}` is recursive; the flat format needs types of bounded nesting")]
    Recursive {
        /// The named type met again while its definition was being read.
        ty: String,
    },
    /// A variant or enum with more cases than a one-byte tag can name.
    #[error("type `{ty}` has {cases} cases; the flat format allows at most 256 (one tag byte)")]
    TooManyCases {
        /// The variant or enum.
        ty: String,
        /// Its number of cases.
        cases: usize,
    },
    /// Two different WIT types get the same name in the generated code.
    #[error("name `{name}` is generated for both {first} and {second}; rename one of them in the WIT{hint}")]
    NameClash {
        /// The generated name.
        name: String,
        /// What it was first generated for.
        first: String,
        /// What it was generated for again.
        second: String,
        /// Extra advice, if any.
        hint: &'static str,
    },
    /// A tuple longer than `flat-layout` implements `Flat` for.
    #[error("type `{ty}` has a tuple of {len} elements; generated Rust supports at most 8 (use a record)")]
    TupleTooLong {
        /// The named type containing it.
        ty: String,
        /// The tuple's length.
        len: usize,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
