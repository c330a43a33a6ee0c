//! Writing values: the [`Encoder`] and the one-call [`write`],
//! [`encoded_size`] and `to_vec`.

use core::marker::PhantomData;

use crate::error::{BuildError, HeaderField, SizeError};
use crate::index::Index;
use crate::layout::{inline_size, Flat};

/// Writes flat values into a caller-provided buffer (or only counts bytes,
/// for [`encoded_size`]). Inline bytes go to positions reserved by the
/// parent; strings and list elements are appended at the tail, so offsets
/// always point forward. Never allocates.
///
/// Used through [`Flat::encode`]; its only public method, [`Encoder::pad`],
/// serves generated code.
pub struct Encoder<'b, I: Index> {
    /// `None` when only counting.
    buf: Option<&'b mut [u8]>,
    cap: usize,
    tail: usize,
    _index: PhantomData<I>,
}

impl<'b, I: Index> Encoder<'b, I> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        let cap = buf.len();
        Encoder {
            buf: Some(buf),
            cap,
            tail: 0,
            _index: PhantomData,
        }
    }

    pub(crate) fn counting() -> Self {
        Encoder {
            buf: None,
            cap: usize::MAX,
            tail: 0,
            _index: PhantomData,
        }
    }

    /// Bytes used so far.
    #[inline(always)]
    pub(crate) fn tail(&self) -> usize {
        self.tail
    }

    /// Reserves `bytes` at the tail, zero-filled if `zero`.
    #[inline]
    pub(crate) fn reserve(&mut self, bytes: usize, zero: bool) -> Result<usize, BuildError> {
        let start = self.tail;
        let end = start.checked_add(bytes).ok_or(BuildError::SizeOverflow)?;
        if end > self.cap {
            return Err(BuildError::BufferTooSmall {
                needed: end,
                available: self.cap,
            });
        }
        if zero {
            if let Some(dst) = self.buf.as_deref_mut().and_then(|b| b.get_mut(start..end)) {
                dst.fill(0);
            }
        }
        self.tail = end;
        Ok(start)
    }

    /// Copies `bytes` to `pos` (inside reserved bytes).
    #[inline(always)]
    pub(crate) fn put(&mut self, pos: usize, bytes: &[u8]) -> Result<(), BuildError> {
        let cap = self.cap;
        if let Some(buf) = self.buf.as_deref_mut() {
            let end = pos.saturating_add(bytes.len());
            buf.get_mut(pos..end)
                .ok_or(BuildError::BufferTooSmall {
                    needed: end,
                    available: cap,
                })?
                .copy_from_slice(bytes);
        }
        Ok(())
    }

    /// Zero-fills `len` bytes at `pos`, which must lie inside the inline bytes
    /// of the value being encoded (used for the unused payload bytes of a
    /// variant case). Fails with [`BuildError::BufferTooSmall`] outside the
    /// buffer.
    #[inline]
    pub fn pad(&mut self, pos: usize, len: usize) -> Result<(), BuildError> {
        self.zero(pos, len)
    }

    /// Zero-fills `len` bytes at `pos` (inside reserved bytes).
    #[inline]
    pub(crate) fn zero(&mut self, pos: usize, len: usize) -> Result<(), BuildError> {
        let cap = self.cap;
        if let Some(buf) = self.buf.as_deref_mut() {
            let end = pos.saturating_add(len);
            buf.get_mut(pos..end)
                .ok_or(BuildError::BufferTooSmall {
                    needed: end,
                    available: cap,
                })?
                .fill(0);
        }
        Ok(())
    }

    /// The `len` bytes at `pos` (inside reserved bytes) to write in place.
    /// Fails with [`BuildError::BufferTooSmall`] outside the buffer or when
    /// only counting.
    #[inline]
    pub(crate) fn bytes_mut(&mut self, pos: usize, len: usize) -> Result<&mut [u8], BuildError> {
        let cap = self.cap;
        let end = pos.saturating_add(len);
        self.buf
            .as_deref_mut()
            .and_then(|buf| buf.get_mut(pos..end))
            .ok_or(BuildError::BufferTooSmall {
                needed: end,
                available: cap,
            })
    }

    /// Allocates an out-of-line region of `len` units of `unit` bytes for the
    /// header pair at `header` and writes the header. Returns the region start.
    /// Empty regions get offset 0 and reserve nothing.
    #[inline]
    fn region(
        &mut self,
        header: usize,
        len: usize,
        unit: usize,
        zero: bool,
    ) -> Result<usize, BuildError> {
        if len > I::MAX {
            return Err(BuildError::IndexOverflow {
                field: HeaderField::Length,
                value: len,
                max: I::MAX,
            });
        }
        let bytes = len.checked_mul(unit).ok_or(BuildError::SizeOverflow)?;
        let (start, offset) = if bytes == 0 {
            (header, 0)
        } else {
            let offset = self.tail.saturating_sub(header);
            if offset > I::MAX {
                return Err(BuildError::IndexOverflow {
                    field: HeaderField::Offset,
                    value: offset,
                    max: I::MAX,
                });
            }
            (self.reserve(bytes, zero)?, offset)
        };
        let cap = self.cap;
        if let Some(buf) = self.buf.as_deref_mut() {
            let needed = BuildError::BufferTooSmall {
                needed: header + 2 * I::WIDTH,
                available: cap,
            };
            if !I::write(buf, header, offset) || !I::write(buf, header + I::WIDTH, len) {
                return Err(needed);
            }
        }
        Ok(start)
    }

    /// Writes a list header at `header` and reserves `len` zeroed elements of
    /// `elem` bytes; returns the position of element 0.
    #[inline]
    pub(crate) fn list(
        &mut self,
        header: usize,
        len: usize,
        elem: usize,
    ) -> Result<usize, BuildError> {
        self.region(header, len, elem, true)
    }

    /// Writes a string header at `header` and its bytes at the tail.
    #[inline]
    pub(crate) fn put_str(&mut self, header: usize, s: &str) -> Result<(), BuildError> {
        let start = self.region(header, s.len(), 1, false)?;
        self.put(start, s.as_bytes())
    }
}

/// Writes `value` into `buf` with index type `I` (root at byte 0) and returns
/// the number of bytes used. Never allocates, never panics.
///
/// On [`BuildError::BufferTooSmall`], `needed` is the exact encoded size.
///
/// ```
/// let names = vec!["hello".to_string(), "one".to_string()];
/// let mut block = [0u8; 32];
/// let used = flat_layout::write::<u8, _>(&names, &mut block)?;
/// assert_eq!(used, 2 + 2 * 2 + 5 + 3);
/// # Ok::<(), flat_layout::BuildError>(())
/// ```
pub fn write<I: Index, T: Flat + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, BuildError> {
    let available = buf.len();
    let mut enc = Encoder::<I>::new(buf);
    let result = enc
        .reserve(inline_size::<T, I>(), true)
        .and_then(|root| value.encode(&mut enc, root));
    match result {
        Ok(()) => Ok(enc.tail()),
        Err(BuildError::BufferTooSmall { .. }) => match encoded_size::<I, T>(value) {
            Ok(needed) => Err(BuildError::BufferTooSmall { needed, available }),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    }
}

/// The exact number of bytes [`write()`] will use for `value` with index type
/// `I`, or why it cannot be written (an offset or length that does not fit
/// `I`). Use it to size a memory block before building.
///
/// ```
/// let size = flat_layout::encoded_size::<u32, _>(&["hello", "one"])?;
/// assert_eq!(size, 8 + 2 * 8 + 5 + 3);
/// assert!(flat_layout::encoded_size::<u8, _>(&["x"; 300]).is_err());
/// # Ok::<(), flat_layout::SizeError>(())
/// ```
pub fn encoded_size<I: Index, T: Flat + ?Sized>(value: &T) -> Result<usize, SizeError> {
    let mut enc = Encoder::<I>::counting();
    let result = enc
        .reserve(inline_size::<T, I>(), false)
        .and_then(|root| value.encode(&mut enc, root));
    match result {
        Ok(()) => Ok(enc.tail()),
        Err(BuildError::IndexOverflow { field, value, max }) => {
            Err(SizeError::IndexOverflow { field, value, max })
        }
        Err(_) => Err(SizeError::SizeOverflow),
    }
}

/// Encodes `value` into a new, exactly sized `Vec<u8>`.
#[cfg(feature = "alloc")]
pub fn to_vec<I: Index, T: Flat + ?Sized>(value: &T) -> Result<alloc::vec::Vec<u8>, SizeError> {
    let size = encoded_size::<I, T>(value)?;
    let mut out = alloc::vec![0u8; size];
    match write::<I, T>(value, &mut out) {
        Ok(used) => {
            out.truncate(used);
            Ok(out)
        }
        Err(BuildError::IndexOverflow { field, value, max }) => {
            Err(SizeError::IndexOverflow { field, value, max })
        }
        Err(_) => Err(SizeError::SizeOverflow),
    }
}
