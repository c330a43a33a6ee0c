//! Typed errors of building, sizing and validating.

use core::fmt;

/// Which half of a header pair did not fit the index type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderField {
    /// The forward offset from the header to its out-of-line bytes.
    Offset,
    /// The length (bytes of a string, elements of a list).
    Length,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::Offset => "offset",
            HeaderField::Length => "length",
        })
    }
}

/// Why [`encoded_size`](crate::encoded_size) could not compute a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeError {
    /// An offset or length does not fit the index type `I`.
    IndexOverflow {
        /// Which half of the header pair overflowed.
        field: HeaderField,
        /// The value that had to be stored.
        value: usize,
        /// The largest value the index type can hold.
        max: usize,
    },
    /// The encoded size does not fit in `usize`.
    SizeOverflow,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeError::IndexOverflow { field, value, max } => write!(
                f,
                "a header {field} of {value} does not fit the index type (max {max}); \
                 use a wider index type (u16 or u32) or a smaller value"
            ),
            SizeError::SizeOverflow => f.write_str(
                "the encoded size overflows usize; split the value into smaller messages",
            ),
        }
    }
}

impl core::error::Error for SizeError {}

/// Why building a flat value failed. Building never panics; it stops at the
/// first error and leaves the buffer in an unspecified (but memory-safe) state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildError {
    /// The buffer is too small.
    BufferTooSmall {
        /// Bytes needed: exact for [`write`](crate::write); for the in-place
        /// [`Builder`](crate::Builder), the bytes needed so far (a lower bound).
        needed: usize,
        /// Length of the buffer.
        available: usize,
    },
    /// An offset or length does not fit the index type `I`.
    IndexOverflow {
        /// Which half of the header pair overflowed.
        field: HeaderField,
        /// The value that had to be stored.
        value: usize,
        /// The largest value the index type can hold.
        max: usize,
    },
    /// A size computation overflowed `usize`.
    SizeOverflow,
    /// A list was finished (or dropped, or its builder finished) before all of
    /// its elements were pushed.
    TooFewElements {
        /// Length the list was allocated with.
        expected: usize,
        /// Elements actually pushed.
        pushed: usize,
    },
    /// More elements were pushed than the list was allocated with.
    TooManyElements {
        /// Length the list was allocated with.
        capacity: usize,
    },
    /// [`Builder::finish`](crate::Builder::finish) was called before a root
    /// value was written.
    NoRoot,
    /// A second root value was started on the same [`Builder`](crate::Builder).
    RootAlreadyWritten,
    /// A record field with out-of-line bytes (strings, lists) was written
    /// after a later field, or twice: the tail must follow the fields' order.
    FieldOutOfOrder {
        /// The field written (declaration index).
        field: usize,
        /// The field that already wrote out-of-line bytes.
        after: usize,
    },
    /// A field slot does not lie inside its record (a hand-written call of
    /// [`RecordBuilder::field`](crate::RecordBuilder::field) with a wrong
    /// offset; derived builders never make one).
    FieldOutsideRecord {
        /// Offset of the field in the record.
        offset: usize,
        /// Inline size of the field.
        width: usize,
        /// Inline size of the record.
        size: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::BufferTooSmall { needed, available } => write!(
                f,
                "buffer too small: {needed} bytes needed, {available} available; \
                 size the block with encoded_size() first"
            ),
            BuildError::IndexOverflow { field, value, max } => {
                fmt::Display::fmt(&SizeError::IndexOverflow { field, value, max }, f)
            }
            BuildError::SizeOverflow => fmt::Display::fmt(&SizeError::SizeOverflow, f),
            BuildError::TooFewElements { expected, pushed } => write!(
                f,
                "list allocated with {expected} elements but only {pushed} were pushed; \
                 push every element or allocate the list with the exact length"
            ),
            BuildError::TooManyElements { capacity } => write!(
                f,
                "list allocated with {capacity} elements is already full; \
                 allocate it with the exact length"
            ),
            BuildError::NoRoot => f.write_str(
                "no root value was written; call Builder::list or Builder::value before finish",
            ),
            BuildError::RootAlreadyWritten => {
                f.write_str("the root value was already written; use one Builder per message")
            }
            BuildError::FieldOutOfOrder { field, after } => write!(
                f,
                "record field {field} has strings or lists but field {after} already wrote its \
                 own; write such fields in declaration order, each once"
            ),
            BuildError::FieldOutsideRecord {
                offset,
                width,
                size,
            } => write!(
                f,
                "a field of {width} bytes at offset {offset} does not fit a record of {size} \
                 bytes; use the builder that #[derive(Flat)] generates"
            ),
        }
    }
}

impl core::error::Error for BuildError {}

impl From<SizeError> for BuildError {
    fn from(e: SizeError) -> Self {
        match e {
            SizeError::IndexOverflow { field, value, max } => {
                BuildError::IndexOverflow { field, value, max }
            }
            SizeError::SizeOverflow => BuildError::SizeOverflow,
        }
    }
}

/// Why a buffer was rejected by [`validate`](crate::validate). Positions are
/// byte offsets from the start of the buffer.
///
/// Every variant means the bytes are not a value of the requested type at the
/// requested index width: check that writer and reader agree on both, and
/// otherwise treat the message as corrupt or hostile and drop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidateError {
    /// The buffer is shorter than the fixed-size root value.
    RootTooShort {
        /// Inline size of the root type at this index width.
        needed: usize,
        /// Length of the buffer.
        len: usize,
    },
    /// A header's region (`position of header + offset`, `length` units) does
    /// not lie inside the buffer.
    OutOfBounds {
        /// Position of the header pair.
        header: usize,
        /// Start of the region it points to.
        start: usize,
        /// Size of the region in bytes.
        bytes: usize,
        /// Length of the buffer.
        len: usize,
    },
    /// Computing a header's region overflowed `usize`.
    ArithmeticOverflow {
        /// Position of the header pair.
        header: usize,
    },
    /// A header's region starts before the end of the previously claimed
    /// region: it points backwards, into an earlier value, or overlaps
    /// another region (see FORMAT.md, "claimed bytes").
    Overlap {
        /// Position of the header pair.
        header: usize,
        /// Start of the region it points to.
        start: usize,
        /// First byte not yet claimed by earlier regions.
        claimed_end: usize,
    },
    /// A string's bytes are not UTF-8.
    InvalidUtf8 {
        /// Position of the string header pair.
        header: usize,
        /// Position of the first invalid byte.
        at: usize,
    },
    /// A `bool` byte is neither 0 nor 1.
    InvalidBool {
        /// Position of the byte.
        at: usize,
        /// The byte found.
        value: u8,
    },
    /// A `char` is not a Unicode scalar value.
    InvalidChar {
        /// Position of the 4 bytes.
        at: usize,
        /// The value found.
        value: u32,
    },
    /// An `option` tag byte is neither 0 nor 1.
    InvalidOptionTag {
        /// Position of the tag.
        at: usize,
        /// The byte found.
        value: u8,
    },
    /// A variant tag names no case of the variant type.
    InvalidVariantTag {
        /// Position of the tag.
        at: usize,
        /// The byte found.
        value: u8,
        /// Number of cases of the variant type.
        cases: usize,
    },
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValidateError::RootTooShort { needed, len } => write!(
                f,
                "buffer of {len} bytes is shorter than the {needed}-byte root value"
            ),
            ValidateError::OutOfBounds {
                header,
                start,
                bytes,
                len,
            } => write!(
                f,
                "header at byte {header} points to {bytes} bytes at {start}, \
                 outside the {len}-byte buffer"
            ),
            ValidateError::ArithmeticOverflow { header } => {
                write!(f, "header at byte {header} describes a region beyond usize")
            }
            ValidateError::Overlap {
                header,
                start,
                claimed_end,
            } => write!(
                f,
                "header at byte {header} points to byte {start}, before byte {claimed_end} \
                 where unclaimed data starts (backward, aliased or overlapping region)"
            ),
            ValidateError::InvalidUtf8 { header, at } => write!(
                f,
                "string of header at byte {header} is not UTF-8 (invalid byte at {at})"
            ),
            ValidateError::InvalidBool { at, value } => {
                write!(f, "bool at byte {at} is {value}, expected 0 or 1")
            }
            ValidateError::InvalidChar { at, value } => {
                write!(
                    f,
                    "char at byte {at} is {value:#x}, not a Unicode scalar value"
                )
            }
            ValidateError::InvalidOptionTag { at, value } => {
                write!(f, "option tag at byte {at} is {value}, expected 0 or 1")
            }
            ValidateError::InvalidVariantTag { at, value, cases } => write!(
                f,
                "variant tag at byte {at} is {value}, but the type has {cases} cases"
            ),
        }?;
        f.write_str(
            "; check that writer and reader use the same type and index width, \
             otherwise drop the corrupt message",
        )
    }
}

impl core::error::Error for ValidateError {}
