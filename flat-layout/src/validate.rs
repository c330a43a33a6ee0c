//! One-pass validation of untrusted bytes (see FORMAT.md, "Validation").

use crate::error::ValidateError;
use crate::index::Index;
use crate::layout::private::Token;
use crate::layout::{Flat, Layout};

/// Validation state: the buffer and the end of the bytes claimed so far.
///
/// Every out-of-line region must start at or after `claimed_end` and moves it
/// to the region's end, so regions are disjoint, lie after their headers and
/// are visited in increasing order. The work per header, `bool`, `char` or tag
/// is constant and each lies in distinct claimed bytes, so validation is
/// linear in the buffer length for any input.
pub struct Validator<'a> {
    buf: &'a [u8],
    claimed_end: usize,
}

impl<'a> Validator<'a> {
    #[inline(always)]
    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// The byte at `pos`, which lies in claimed bytes.
    #[inline(always)]
    pub(crate) fn byte(&self, pos: usize) -> Result<u8, ValidateError> {
        self.buf
            .get(pos)
            .copied()
            .ok_or(ValidateError::OutOfBounds {
                header: pos,
                start: pos,
                bytes: 1,
                len: self.buf.len(),
            })
    }

    /// Reads the header pair at `header` (inside claimed bytes), checks its
    /// region of `length * elem` bytes and claims it. Returns the absolute
    /// start of the region and the length.
    #[inline]
    pub(crate) fn claim<I: Index>(
        &mut self,
        header: usize,
        elem: usize,
    ) -> Result<(usize, usize), ValidateError> {
        let len_total = self.buf.len();
        let out = ValidateError::OutOfBounds {
            header,
            start: header,
            bytes: 2 * I::WIDTH,
            len: len_total,
        };
        let offset = I::read(self.buf, header).ok_or(out)?;
        let length = I::read(self.buf, header + I::WIDTH).ok_or(out)?;
        let overflow = ValidateError::ArithmeticOverflow { header };
        let start = header.checked_add(offset).ok_or(overflow)?;
        let bytes = length.checked_mul(elem).ok_or(overflow)?;
        let end = start.checked_add(bytes).ok_or(overflow)?;
        if end > len_total {
            return Err(ValidateError::OutOfBounds {
                header,
                start,
                bytes,
                len: len_total,
            });
        }
        if bytes > 0 {
            if start < self.claimed_end {
                return Err(ValidateError::Overlap {
                    header,
                    start,
                    claimed_end: self.claimed_end,
                });
            }
            self.claimed_end = end;
        }
        Ok((start, length))
    }

    /// The `len` bytes at `start`, which `claim` checked to be in bounds.
    #[inline(always)]
    pub(crate) fn region(
        &self,
        header: usize,
        start: usize,
        len: usize,
    ) -> Result<&'a [u8], ValidateError> {
        self.buf
            .get(start..start + len)
            .ok_or(ValidateError::OutOfBounds {
                header,
                start,
                bytes: len,
                len: self.buf.len(),
            })
    }
}

/// Checks that `buf` holds a valid `T` written with index type `I` and returns
/// its zero-copy view.
///
/// Every header reachable from the root (at byte 0) is checked once: bounds,
/// arithmetic overflow, the claimed-bytes order (no backward, aliased or
/// overlapping regions), UTF-8 of strings, `bool`, `char`, option and variant
/// tags. The work is linear in `buf.len()` for any input. Bytes after the
/// value are ignored, so a whole memory block can be passed.
///
/// The returned view's accessors cannot fail.
///
/// ```
/// let mut block = [0u8; 64];
/// let used = flat_layout::write::<u16, _>(&["hello", "one"], &mut block)?;
/// let list = flat_layout::validate::<[&str], u16>(&block[..used])?;
/// assert_eq!(list.get(1), Some("one"));
/// assert_eq!(format!("{list:?}"), r#"["hello", "one"]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn validate<T: Flat + ?Sized, I: Index>(buf: &[u8]) -> Result<T::View<'_, I>, ValidateError> {
    validate_with_len::<T, I>(buf).map(|(view, _)| view)
}

/// Like [`validate`], and also returns the number of bytes up to the end of
/// the last claimed region (the size of the value when it was written by this
/// crate's builders, which leave no gaps).
pub fn validate_with_len<T: Flat + ?Sized, I: Index>(
    buf: &[u8],
) -> Result<(T::View<'_, I>, usize), ValidateError> {
    let root = <T::Repr as Layout>::INLINE.get::<I>();
    if buf.len() < root {
        return Err(ValidateError::RootTooShort {
            needed: root,
            len: buf.len(),
        });
    }
    let mut v = Validator {
        buf,
        claimed_end: root,
    };
    <T::Repr as Layout>::validate_at::<I>(&mut v, 0, Token(()))?;
    let view = T::wrap_view::<I>(<T::Repr as Layout>::view_at::<I>(buf, 0, Token(())));
    Ok((view, v.claimed_end))
}
