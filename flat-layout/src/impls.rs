//! `Layout` and `Flat` implementations for primitives, strings, lists,
//! options, tuples, records and variants.

use crate::encode::Encoder;
use crate::error::{BuildError, ValidateError};
use crate::index::Index;
use crate::layout::private::{Sealed, Token};
use crate::layout::{Cases, Cons, Flat, InlineSize, Layout, List, Nil, Opt, Str, Variant};
use crate::validate::Validator;
use crate::view::ListView;

/// Reads `N` bytes at `pos`, or zeros if they are outside `buf` (which never
/// happens for validated positions; it keeps views panic-free regardless).
#[inline(always)]
pub(crate) fn bytes_at<const N: usize>(buf: &[u8], pos: usize) -> [u8; N] {
    match buf.get(pos..).and_then(|b| b.first_chunk::<N>()) {
        Some(b) => *b,
        None => [0; N],
    }
}

macro_rules! plain_number {
    ($($t:ty),*) => {$(
        impl Sealed for $t {}

        impl Layout for $t {
            const INLINE: InlineSize = InlineSize::fixed(core::mem::size_of::<$t>());
            const CHECKED: bool = false;
            const TAIL: bool = false;

            #[inline(always)]
            fn validate_at<I: Index>(_: &mut Validator<'_>, _: usize, _: Token) -> Result<(), ValidateError> {
                Ok(())
            }

            #[inline(always)]
            fn view_at<I: Index>(buf: &[u8], pos: usize, _: Token) -> $t {
                <$t>::from_le_bytes(bytes_at(buf, pos))
            }
        }

        impl Flat for $t {
            type Repr = $t;
            type View<'a, I: Index> = $t;

            #[inline(always)]
            fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
                repr
            }

            #[inline]
            fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
                enc.put(pos, &self.to_le_bytes())
            }
        }
    )*};
}

plain_number!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl Sealed for bool {}

impl Layout for bool {
    const INLINE: InlineSize = InlineSize::fixed(1);
    const CHECKED: bool = true;
    const TAIL: bool = false;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        _: Token,
    ) -> Result<(), ValidateError> {
        match v.byte(pos)? {
            0 | 1 => Ok(()),
            value => Err(ValidateError::InvalidBool { at: pos, value }),
        }
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, _: Token) -> bool {
        buf.get(pos) == Some(&1)
    }
}

impl Flat for bool {
    type Repr = bool;
    type View<'a, I: Index> = bool;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        enc.put(pos, &[u8::from(*self)])
    }
}

impl Sealed for char {}

impl Layout for char {
    const INLINE: InlineSize = InlineSize::fixed(4);
    const CHECKED: bool = true;
    const TAIL: bool = false;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        _: Token,
    ) -> Result<(), ValidateError> {
        let value = u32::from_le_bytes(bytes_at(v.buf(), pos));
        match char::from_u32(value) {
            Some(_) => Ok(()),
            None => Err(ValidateError::InvalidChar { at: pos, value }),
        }
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, _: Token) -> char {
        char::from_u32(u32::from_le_bytes(bytes_at(buf, pos)))
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

impl Flat for char {
    type Repr = char;
    type View<'a, I: Index> = char;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        enc.put(pos, &u32::from(*self).to_le_bytes())
    }
}

// ---------------------------------------------------------------- strings

impl Sealed for Str {}

impl Layout for Str {
    const INLINE: InlineSize = InlineSize::HEADER;
    const CHECKED: bool = true;
    const TAIL: bool = true;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        _: Token,
    ) -> Result<(), ValidateError> {
        let (start, len) = v.claim::<I>(pos, 1)?;
        let bytes = v.region(pos, start, len)?;
        match core::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) => Err(ValidateError::InvalidUtf8 {
                header: pos,
                at: start + e.valid_up_to(),
            }),
        }
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, _: Token) -> &str {
        // SAFETY: `view_at` needs a `Token`, which only this crate can
        // create, and this crate calls it only on positions `pos` for which
        // `Str::validate_at::<I>` succeeded on this same buffer (the root
        // after `validate`, list elements and record fields of validated
        // values, and option/variant payloads whose tag was validated).
        // `validate_at` claimed the header pair at `pos`, so `pos + 2 * W <=
        // buf.len()`; it computed `start = pos + offset` and `start + len`
        // with checked arithmetic and found `start + len <= buf.len()` (for
        // an empty string `start <= buf.len()`); and `core::str::from_utf8`
        // accepted exactly the bytes `start .. start + len`. `buf` is a
        // shared borrow for the whole lifetime of the view, so none of this
        // can have changed: both ranges are in bounds (their sums do not
        // overflow: validation computed them) and the bytes are UTF-8.
        // Skipping the bounds checks here is what makes reading a
        // validated `list<string>` as cheap as rkyv's unchecked archives.
        unsafe {
            let pair = buf.get_unchecked(pos..pos + 2 * I::WIDTH);
            let (offset, len) = I::read_pair(pair, 0).unwrap_or((0, 0));
            let start = pos + offset;
            core::str::from_utf8_unchecked(buf.get_unchecked(start..start + len))
        }
    }
}

/// Reads the header pair at `pos`: (absolute start of the region, length).
/// Saturates instead of overflowing; validated headers never saturate.
#[inline(always)]
pub(crate) fn header<I: Index>(buf: &[u8], pos: usize) -> (usize, usize) {
    let (offset, len) = I::read_pair(buf, pos).unwrap_or((0, 0));
    (pos.saturating_add(offset), len)
}

impl Flat for Str {
    type Repr = Str;
    type View<'a, I: Index> = &'a str;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        match *self {}
    }
}

impl Flat for str {
    type Repr = Str;
    type View<'a, I: Index> = &'a str;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        enc.put_str(pos, self)
    }
}

// ---------------------------------------------------------------- lists

impl<L: Layout> Sealed for List<L> {}

impl<L: Layout> Layout for List<L> {
    const INLINE: InlineSize = InlineSize::HEADER;
    const CHECKED: bool = true;
    const TAIL: bool = true;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        token: Token,
    ) -> Result<(), ValidateError> {
        let elem = L::INLINE.get::<I>();
        let (start, len) = v.claim::<I>(pos, elem)?;
        // Elements are visited only if they have something to check; such
        // layouts are at least one byte long, so `len * elem` bytes were just
        // claimed and this loop is linear in them.
        if L::CHECKED && elem > 0 {
            let mut at = start;
            for _ in 0..len {
                L::validate_at::<I>(v, at, token)?;
                at += elem;
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, _: Token) -> ListView<'_, L, I> {
        let (start, len) = header::<I>(buf, pos);
        ListView::new(buf, start, len)
    }
}

impl<L: Layout> Flat for List<L> {
    type Repr = List<L>;
    type View<'a, I: Index> = ListView<'a, L, I>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        match self.0 {}
    }
}

impl<T: Flat> Flat for [T] {
    type Repr = List<T::Repr>;
    type View<'a, I: Index> = ListView<'a, T, I>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr.retype()
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        let elem = <T::Repr as Layout>::INLINE.get::<I>();
        let mut at = enc.list(pos, self.len(), elem)?;
        for item in self {
            item.encode(enc, at)?;
            at += elem;
        }
        Ok(())
    }
}

impl<T: Flat, const N: usize> Flat for [T; N] {
    type Repr = List<T::Repr>;
    type View<'a, I: Index> = ListView<'a, T, I>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr.retype()
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        self.as_slice().encode(enc, pos)
    }
}

// ---------------------------------------------------------------- options

impl<L: Layout> Sealed for Opt<L> {}

impl<L: Layout> Layout for Opt<L> {
    const INLINE: InlineSize = InlineSize::fixed(1).plus(L::INLINE);
    const CHECKED: bool = true;
    const TAIL: bool = L::TAIL;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        token: Token,
    ) -> Result<(), ValidateError> {
        match v.byte(pos)? {
            0 => Ok(()),
            1 => L::validate_at::<I>(v, pos + 1, token),
            value => Err(ValidateError::InvalidOptionTag { at: pos, value }),
        }
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, token: Token) -> Option<L::View<'_, I>> {
        if buf.get(pos) == Some(&1) {
            Some(L::view_at::<I>(buf, pos + 1, token))
        } else {
            None
        }
    }
}

impl<L: Layout> Flat for Opt<L> {
    type Repr = Opt<L>;
    type View<'a, I: Index> = Option<L::View<'a, I>>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        match self.0 {}
    }
}

impl<T: Flat> Flat for Option<T> {
    type Repr = Opt<T::Repr>;
    type View<'a, I: Index> = Option<T::View<'a, I>>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr.map(T::wrap_view::<I>)
    }

    #[inline]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        match self {
            Some(value) => {
                enc.put(pos, &[1])?;
                value.encode(enc, pos + 1)
            }
            None => {
                enc.put(pos, &[0])?;
                enc.zero(pos + 1, <T::Repr as Layout>::INLINE.get::<I>())
            }
        }
    }
}

// ---------------------------------------------------------------- records and tuples

impl<H: Layout, T: Layout> Sealed for Cons<H, T> {}

impl<H: Layout, T: Layout> Layout for Cons<H, T> {
    const INLINE: InlineSize = H::INLINE.plus(T::INLINE);
    const CHECKED: bool = H::CHECKED || T::CHECKED;
    const TAIL: bool = H::TAIL || T::TAIL;

    #[inline(always)]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        token: Token,
    ) -> Result<(), ValidateError> {
        if H::CHECKED {
            H::validate_at::<I>(v, pos, token)?;
        }
        if T::CHECKED {
            T::validate_at::<I>(v, pos + H::INLINE.get::<I>(), token)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn view_at<I: Index>(buf: &[u8], pos: usize, token: Token) -> (H::View<'_, I>, T::View<'_, I>) {
        (
            H::view_at::<I>(buf, pos, token),
            T::view_at::<I>(buf, pos + H::INLINE.get::<I>(), token),
        )
    }
}

impl<H: Layout, T: Layout> Flat for Cons<H, T> {
    type Repr = Cons<H, T>;
    type View<'a, I: Index> = (H::View<'a, I>, T::View<'a, I>);

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        match self.0 {}
    }
}

impl Sealed for Nil {}

impl Layout for Nil {
    const INLINE: InlineSize = InlineSize::ZERO;
    const CHECKED: bool = false;
    const TAIL: bool = false;

    #[inline(always)]
    fn validate_at<I: Index>(
        _: &mut Validator<'_>,
        _: usize,
        _: Token,
    ) -> Result<(), ValidateError> {
        Ok(())
    }

    #[inline(always)]
    fn view_at<I: Index>(_: &[u8], _: usize, _: Token) {}
}

impl Flat for Nil {
    type Repr = Nil;
    type View<'a, I: Index> = ();

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    #[inline(always)]
    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        Ok(())
    }
}

impl Flat for () {
    type Repr = Nil;
    type View<'a, I: Index> = ();

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    #[inline(always)]
    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        Ok(())
    }
}

macro_rules! tuple_repr {
    () => { Nil };
    ($head:ident $(, $tail:ident)*) => { Cons<<$head as Flat>::Repr, tuple_repr!($($tail),*)> };
}

macro_rules! tuple_impl {
    ($($name:ident $var:ident),+) => {
        impl<$($name: Flat),+> Flat for ($($name,)+) {
            type Repr = tuple_repr!($($name),+);
            type View<'a, I: Index> = ($($name::View<'a, I>,)+);

            #[inline(always)]
            fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
                let rest = repr;
                $( let ($var, rest) = rest; )+
                let () = rest;
                ($($name::wrap_view::<I>($var),)+)
            }

            #[inline]
            fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
                let ($($var,)+) = self;
                let mut at = pos;
                $(
                    $var.encode(enc, at)?;
                    at += <$name::Repr as Layout>::INLINE.get::<I>();
                )+
                let _ = at;
                Ok(())
            }
        }
    };
}

tuple_impl!(A a);
tuple_impl!(A a, B b);
tuple_impl!(A a, B b, C c);
tuple_impl!(A a, B b, C c, D d);
tuple_impl!(A a, B b, C c, D d, E e);
tuple_impl!(A a, B b, C c, D d, E e, F f);
tuple_impl!(A a, B b, C c, D d, E e, F f, G g);
tuple_impl!(A a, B b, C c, D d, E e, F f, G g, H h);

// ---------------------------------------------------------------- variants

impl<C: Cases> Sealed for Variant<C> {}

impl<C: Cases> Layout for Variant<C> {
    const INLINE: InlineSize = InlineSize::fixed(1).plus(C::MAX_PAYLOAD);
    const CHECKED: bool = true;
    const TAIL: bool = C::TAIL;

    #[inline]
    fn validate_at<I: Index>(
        v: &mut Validator<'_>,
        pos: usize,
        token: Token,
    ) -> Result<(), ValidateError> {
        let tag = v.byte(pos)?;
        if C::validate_case::<I>(v, usize::from(tag), pos + 1, token)? {
            Ok(())
        } else {
            Err(ValidateError::InvalidVariantTag {
                at: pos,
                value: tag,
                cases: C::COUNT,
            })
        }
    }

    #[inline]
    fn view_at<I: Index>(buf: &[u8], pos: usize, token: Token) -> C::View<'_, I> {
        let tag = usize::from(buf.get(pos).copied().unwrap_or(0));
        // Validated tags are always `< C::COUNT`; clamping keeps the view total.
        let tag = if tag < C::COUNT { tag } else { 0 };
        C::view_case::<I>(buf, tag, pos + 1, token)
    }
}

impl<C: Cases> Flat for Variant<C> {
    type Repr = Variant<C>;
    type View<'a, I: Index> = C::View<'a, I>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        repr
    }

    fn encode<I: Index>(&self, _: &mut Encoder<'_, I>, _: usize) -> Result<(), BuildError> {
        match self.0 {}
    }
}

/// Writes the tag and payload of one case of a variant whose layout is
/// `Variant<C>`, zero-filling the unused payload bytes. Used by derived enums.
#[inline]
pub fn encode_case<C: Cases, P: Flat + ?Sized, I: Index>(
    enc: &mut Encoder<'_, I>,
    pos: usize,
    tag: u8,
    payload: &P,
) -> Result<(), BuildError> {
    let max = C::MAX_PAYLOAD.get::<I>();
    let used = <P::Repr as Layout>::INLINE.get::<I>();
    enc.put(pos, &[tag])?;
    payload.encode(enc, pos + 1)?;
    enc.zero(pos + 1 + used, max.saturating_sub(used))
}

// ---------------------------------------------------------------- references and boxes

impl<T: Flat + ?Sized> Flat for &T {
    type Repr = T::Repr;
    type View<'a, I: Index> = T::View<'a, I>;

    #[inline(always)]
    fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
        T::wrap_view::<I>(repr)
    }

    #[inline(always)]
    fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
        (**self).encode(enc, pos)
    }
}

#[cfg(feature = "alloc")]
mod alloc_impls {
    use super::*;
    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec::Vec;

    impl Flat for String {
        type Repr = Str;
        type View<'a, I: Index> = &'a str;

        #[inline(always)]
        fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
            repr
        }

        #[inline]
        fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
            enc.put_str(pos, self)
        }
    }

    impl<T: Flat> Flat for Vec<T> {
        type Repr = List<T::Repr>;
        type View<'a, I: Index> = ListView<'a, T, I>;

        #[inline(always)]
        fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
            repr.retype()
        }

        #[inline]
        fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
            self.as_slice().encode(enc, pos)
        }
    }

    impl<T: Flat + ?Sized> Flat for Box<T> {
        type Repr = T::Repr;
        type View<'a, I: Index> = T::View<'a, I>;

        #[inline(always)]
        fn wrap_view<'a, I: Index>(repr: <Self::Repr as Flat>::View<'a, I>) -> Self::View<'a, I> {
            T::wrap_view::<I>(repr)
        }

        #[inline(always)]
        fn encode<I: Index>(&self, enc: &mut Encoder<'_, I>, pos: usize) -> Result<(), BuildError> {
            (**self).encode(enc, pos)
        }
    }
}
