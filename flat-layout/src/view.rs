//! Zero-copy views of validated lists.

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;

use crate::index::Index;
use crate::layout::private::Token;
use crate::layout::{Flat, Layout};

/// Variance and auto-trait marker: a view owns no `T`, only bytes.
type Marker<T, I> = PhantomData<(fn() -> *const T, I)>;

/// A validated `list<T>` borrowing the buffer. Every accessor is infallible
/// and O(1) (element `i` is at `start + i * inline_size::<T, I>()`).
///
/// `T` is the element type as seen by the reader: `ListView<'a, String, I>`
/// and `ListView<'a, Str, I>` both yield `&'a str`.
pub struct ListView<'a, T: ?Sized, I> {
    buf: &'a [u8],
    start: usize,
    len: usize,
    _marker: Marker<T, I>,
}

impl<T: ?Sized, I> Clone for ListView<'_, T, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized, I> Copy for ListView<'_, T, I> {}

impl<'a, T: ?Sized, I> ListView<'a, T, I> {
    /// Only created by `List::view_at` on validated positions (and by
    /// `retype`, which keeps the layout).
    #[inline(always)]
    pub(crate) fn new(buf: &'a [u8], start: usize, len: usize) -> Self {
        ListView {
            buf,
            start,
            len,
            _marker: PhantomData,
        }
    }

    /// The same list seen with another element type of the same layout.
    #[inline(always)]
    pub(crate) fn retype<U: ?Sized>(self) -> ListView<'a, U, I> {
        ListView::new(self.buf, self.start, self.len)
    }

    /// Number of elements.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no elements.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a, T: Flat + ?Sized, I: Index> ListView<'a, T, I> {
    const ELEM: usize = <T::Repr as Layout>::INLINE.get::<I>();

    /// The element at `index`, or `None` if `index >= len()`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<T::View<'a, I>> {
        if index < self.len {
            Some(self.at(index))
        } else {
            None
        }
    }

    #[inline(always)]
    fn at(&self, index: usize) -> T::View<'a, I> {
        let pos = self.start + index * Self::ELEM;
        T::wrap_view::<I>(<T::Repr as Layout>::view_at::<I>(self.buf, pos, Token(())))
    }

    /// The first element, if any.
    #[inline]
    pub fn first(&self) -> Option<T::View<'a, I>> {
        self.get(0)
    }

    /// The last element, if any.
    #[inline]
    pub fn last(&self) -> Option<T::View<'a, I>> {
        self.len.checked_sub(1).map(|i| self.at(i))
    }

    /// Iterates over the elements (double-ended, exact size).
    #[inline]
    pub fn iter(&self) -> Iter<'a, T, I> {
        Iter {
            list: *self,
            front: 0,
            back: self.len,
        }
    }

    /// The bytes of the elements, exactly as stored.
    #[inline]
    pub fn element_bytes(&self) -> &'a [u8] {
        let end = self
            .start
            .saturating_add(self.len.saturating_mul(Self::ELEM));
        self.buf.get(self.start..end).unwrap_or(&[])
    }

    /// Copies the elements into a `Vec` of views.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> alloc::vec::Vec<T::View<'a, I>> {
        self.iter().collect()
    }
}

impl<'a, I: Index> ListView<'a, u8, I> {
    /// The elements of a `list<u8>`, borrowed from the buffer.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.element_bytes()
    }
}

impl<'a, I: Index> ListView<'a, i8, I> {
    /// The elements of a `list<s8>`, borrowed from the buffer.
    #[inline]
    pub fn as_slice(&self) -> &'a [i8] {
        <[i8] as zerocopy::FromBytes>::ref_from_bytes(self.element_bytes()).unwrap_or(&[])
    }
}

macro_rules! le_slice {
    ($($t:ty => $le:ident),*) => {$(
        impl<'a, I: Index> ListView<'a, $t, I> {
            #[doc = concat!(
                "The elements of a `list<", stringify!($t), ">` as a slice of unaligned \
                 little-endian [`zerocopy::little_endian::", stringify!($le), "`] borrowed \
                 from the buffer (call `.get()` on an element for the native value)."
            )]
            #[inline]
            pub fn as_le_slice(&self) -> &'a [zerocopy::little_endian::$le] {
                // Unaligned little-endian wrappers accept any byte slice whose
                // length is a multiple of their size, which validated lists are.
                <[zerocopy::little_endian::$le] as zerocopy::FromBytes>::ref_from_bytes(self.element_bytes())
                    .unwrap_or(&[])
            }
        }
    )*};
}

le_slice!(u16 => U16, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64, f32 => F32, f64 => F64);

impl<T: Flat + ?Sized, I: Index> fmt::Debug for ListView<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Flat + ?Sized, I: Index> IntoIterator for ListView<'a, T, I> {
    type Item = T::View<'a, I>;
    type IntoIter = Iter<'a, T, I>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Flat + ?Sized, I: Index> IntoIterator for &ListView<'a, T, I> {
    type Item = T::View<'a, I>;
    type IntoIter = Iter<'a, T, I>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T, I, U> PartialEq<[U]> for ListView<'a, T, I>
where
    T: Flat + ?Sized,
    I: Index,
    T::View<'a, I>: PartialEq<U>,
{
    fn eq(&self, other: &[U]) -> bool {
        self.len == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
    }
}

/// Iterator over the elements of a [`ListView`].
pub struct Iter<'a, T: ?Sized, I> {
    list: ListView<'a, T, I>,
    front: usize,
    back: usize,
}

impl<T: ?Sized, I> Clone for Iter<'_, T, I> {
    fn clone(&self) -> Self {
        Iter {
            list: self.list,
            front: self.front,
            back: self.back,
        }
    }
}

impl<'a, T: Flat + ?Sized, I: Index> Iterator for Iter<'a, T, I> {
    type Item = T::View<'a, I>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front < self.back {
            let item = self.list.at(self.front);
            self.front += 1;
            Some(item)
        } else {
            None
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }

    #[inline]
    fn nth(&mut self, n: usize) -> Option<Self::Item> {
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }
}

impl<T: Flat + ?Sized, I: Index> DoubleEndedIterator for Iter<'_, T, I> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front < self.back {
            self.back -= 1;
            Some(self.list.at(self.back))
        } else {
            None
        }
    }
}

impl<T: Flat + ?Sized, I: Index> ExactSizeIterator for Iter<'_, T, I> {}

impl<T: Flat + ?Sized, I: Index> FusedIterator for Iter<'_, T, I> {}

impl<T: Flat + ?Sized, I: Index> fmt::Debug for Iter<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}
