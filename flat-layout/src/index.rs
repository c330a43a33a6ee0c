//! The index type `I` of headers: `u8`, `u16` or `u32`.

use core::fmt::Debug;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// The integer type used for the `(offset, length)` header pair of strings and
/// lists: `u8`, `u16` or `u32` (sealed).
///
/// The index width is a type parameter of every entry point
/// ([`validate`](crate::validate), [`write`](crate::write),
/// [`Builder`](crate::Builder), ...), like the `P` of the component model's
/// `flat<T, P>` proposal. A header pair takes `2 * WIDTH` bytes.
pub trait Index: sealed::Sealed + Copy + Default + Debug + Send + Sync + 'static {
    /// Size of one index value in bytes (1, 2 or 4).
    const WIDTH: usize;
    /// Largest offset or length representable with this index type.
    const MAX: usize;
    /// The component-model name of the index type (`"u8"`, `"u16"`, `"u32"`).
    const NAME: &'static str;

    /// Reads a little-endian index value at `pos`; returns `None` if the bytes
    /// are not inside `buf`.
    fn read(buf: &[u8], pos: usize) -> Option<usize>;

    /// Reads the header pair `(offset, length)` at `pos`; returns `None` if
    /// its bytes are not inside `buf`.
    fn read_pair(buf: &[u8], pos: usize) -> Option<(usize, usize)>;

    /// Writes `value` (which must be at most [`Index::MAX`]) little-endian at
    /// `pos`; returns `false` without writing if it does not fit.
    fn write(buf: &mut [u8], pos: usize, value: usize) -> bool;
}

macro_rules! impl_index {
    ($t:ty, $w:expr, $pair:expr) => {
        impl Index for $t {
            const WIDTH: usize = $w;
            const MAX: usize = <$t>::MAX as usize;
            const NAME: &'static str = stringify!($t);

            #[inline(always)]
            fn read(buf: &[u8], pos: usize) -> Option<usize> {
                let bytes = buf.get(pos..)?.first_chunk::<$w>()?;
                Some(<$t>::from_le_bytes(*bytes) as usize)
            }

            #[inline(always)]
            fn read_pair(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
                // One bounds check for both halves.
                let pair = buf.get(pos..)?.first_chunk::<$pair>()?;
                let (offset, len) = pair.split_at($w);
                let offset = <$t>::from_le_bytes(offset.try_into().ok()?);
                let len = <$t>::from_le_bytes(len.try_into().ok()?);
                Some((offset as usize, len as usize))
            }

            #[inline(always)]
            fn write(buf: &mut [u8], pos: usize, value: usize) -> bool {
                let Ok(value) = <$t>::try_from(value) else {
                    return false;
                };
                match buf.get_mut(pos..).and_then(|b| b.first_chunk_mut::<$w>()) {
                    Some(dst) => {
                        *dst = value.to_le_bytes();
                        true
                    }
                    None => false,
                }
            }
        }
    };
}

impl_index!(u8, 1, 2);
impl_index!(u16, 2, 4);
impl_index!(u32, 4, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_roundtrip_each_width() {
        let mut buf = [0u8; 6];
        assert!(<u8 as Index>::write(&mut buf, 0, 0xab));
        assert!(<u16 as Index>::write(&mut buf, 1, 0x1234));
        assert!(!<u16 as Index>::write(&mut buf, 1, 0x1_0000));
        assert!(<u32 as Index>::write(&mut buf, 2, 0xdead_beef));
        assert_eq!(buf, [0xab, 0x34, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(<u32 as Index>::read(&buf, 2), Some(0xdead_beef));
        assert_eq!(<u32 as Index>::read(&buf, 3), None);
        assert!(!<u32 as Index>::write(&mut buf, 3, 1));
        assert_eq!(<u8 as Index>::read(&buf, 0), Some(0xab));
        assert_eq!(<u16 as Index>::read_pair(&buf, 2), Some((0xbeef, 0xdead)));
        assert_eq!(<u16 as Index>::read_pair(&buf, 3), None);
        assert_eq!(<u8 as Index>::MAX, 255);
    }
}
