//! The in-place builder: allocate a list, push its elements one by one.

use core::marker::PhantomData;

use crate::encode::Encoder;
use crate::error::BuildError;
use crate::index::Index;
use crate::layout::{inline_size, Flat, Layout, List, Str};
use crate::record::{FieldSlot, FlatRecord, FlatVariant, RecordBuilder};

/// Builds one flat value directly inside a caller-provided buffer (an attached
/// memory block), without heap allocation.
///
/// ```
/// use flat_layout::{Builder, validate};
///
/// let mut block = [0u8; 256];
/// let mut builder = Builder::<u32>::new(&mut block);
/// let mut lines = builder.list::<Vec<Vec<String>>>(2)?; // root: list<list<string>>
/// let mut first = lines.push_list(2)?;
/// first.push_str("hello")?;
/// first.push_str("one")?;
/// first.finish()?;
/// lines.push_list(0)?.finish()?;
/// lines.finish()?;
/// let used = builder.finish()?;
///
/// let view = validate::<Vec<Vec<String>>, u32>(&block[..used])?;
/// assert_eq!(format!("{view:?}"), r#"[["hello", "one"], []]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Builder<'b, I: Index> {
    enc: Encoder<'b, I>,
    root_written: bool,
    /// First error that leaves the value incomplete.
    incomplete: Option<BuildError>,
    /// Out-of-line order of a root built through a slot ([`Builder::variant`]).
    root_tail: Option<usize>,
}

impl<'b, I: Index> Builder<'b, I> {
    /// Starts building at byte 0 of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Builder {
            enc: Encoder::new(buf),
            root_written: false,
            incomplete: None,
            root_tail: None,
        }
    }

    fn start_root(&mut self, root: usize) -> Result<usize, BuildError> {
        if self.root_written {
            return Err(BuildError::RootAlreadyWritten);
        }
        let pos = self.enc.reserve(root, true)?;
        self.root_written = true;
        Ok(pos)
    }

    /// Makes the root a list of `len` elements of type `T` (any type whose
    /// layout is a list, e.g. `Vec<String>`, `[&str]`, `List<Str>`) and
    /// returns its builder. The elements are zero-filled until pushed.
    pub fn list<T: Flat + ?Sized>(
        &mut self,
        len: usize,
    ) -> Result<ListBuilder<'_, 'b, <T::Repr as ListLayout>::Elem, I>, BuildError>
    where
        T::Repr: ListLayout,
    {
        let header = self.start_root(inline_size::<T, I>())?;
        let elem = <<T::Repr as ListLayout>::Elem as Layout>::INLINE.get::<I>();
        let start = self.enc.list(header, len, elem).inspect_err(|e| {
            self.incomplete.get_or_insert(*e);
        })?;
        Ok(ListBuilder::from_parts(
            &mut self.enc,
            &mut self.incomplete,
            start,
            len,
        ))
    }

    /// Makes the root a record `T` (a struct with `#[derive(Flat)]`) and
    /// returns its generated builder, which sets the fields one by one in
    /// place (see [`FlatRecord`]).
    pub fn record<T: FlatRecord + ?Sized>(&mut self) -> Result<T::Builder<'_, 'b, I>, BuildError> {
        let size = inline_size::<T, I>();
        let pos = self.start_root(size)?;
        Ok(T::builder(RecordBuilder::new(
            &mut self.enc,
            &mut self.incomplete,
            pos,
            size,
        )))
    }

    /// Makes the root a variant `T` (an enum with `#[derive(Flat)]`) and
    /// returns its generated builder, whose methods choose the case and
    /// write its payload in place (see [`FlatVariant`]).
    pub fn variant<T: FlatVariant + ?Sized>(
        &mut self,
    ) -> Result<T::Builder<'_, 'b, I>, BuildError> {
        let pos = self.start_root(inline_size::<T, I>())?;
        Ok(T::builder(FieldSlot::standalone(
            &mut self.enc,
            &mut self.incomplete,
            &mut self.root_tail,
            0,
            pos,
        )))
    }

    /// Writes the whole root value in one call.
    pub fn value<T: Flat + ?Sized>(&mut self, value: &T) -> Result<(), BuildError> {
        let pos = self.start_root(inline_size::<T, I>())?;
        value.encode(&mut self.enc, pos).inspect_err(|e| {
            self.incomplete.get_or_insert(*e);
        })
    }

    /// Bytes written so far.
    pub fn used(&self) -> usize {
        self.enc.tail()
    }

    /// Checks that the root was written and every list got all its elements
    /// (otherwise returns the first error met, so an ignored error is not
    /// lost), and returns the number of valid bytes (from byte 0) to hand on.
    pub fn finish(self) -> Result<usize, BuildError> {
        if !self.root_written {
            return Err(BuildError::NoRoot);
        }
        match self.incomplete {
            Some(e) => Err(e),
            None => Ok(self.enc.tail()),
        }
    }
}

/// Layouts that are lists (sealed); `Elem` is the element layout.
pub trait ListLayout: Layout {
    /// The element layout.
    type Elem: Layout;
}

impl<L: Layout> ListLayout for List<L> {
    type Elem = L;
}

/// Builder of one list whose element layout is `L`, borrowed from its parent
/// ([`Builder::list`] or [`ListBuilder::push_list`]). Push exactly the
/// allocated number of elements, then call [`finish`](ListBuilder::finish).
///
/// Dropping it early leaves the missing elements zero-filled (a valid
/// default: empty strings and lists, 0, `false`, `None`) and makes the
/// enclosing [`Builder::finish`] return [`BuildError::TooFewElements`].
pub struct ListBuilder<'p, 'b, L: Layout, I: Index> {
    enc: &'p mut Encoder<'b, I>,
    incomplete: &'p mut Option<BuildError>,
    start: usize,
    len: usize,
    pushed: usize,
    /// Out-of-line order of elements built through a slot
    /// ([`ListBuilder::push_variant`]): the index of the last one.
    tail: Option<usize>,
    _elem: PhantomData<fn() -> L>,
}

impl<'p, 'b, L: Layout, I: Index> ListBuilder<'p, 'b, L, I> {
    const ELEM: usize = L::INLINE.get::<I>();

    pub(crate) fn start(
        enc: &'p mut Encoder<'b, I>,
        incomplete: &'p mut Option<BuildError>,
        header: usize,
        len: usize,
    ) -> Result<Self, BuildError> {
        let start = enc.list(header, len, Self::ELEM)?;
        Ok(Self::from_parts(enc, incomplete, start, len))
    }

    fn from_parts(
        enc: &'p mut Encoder<'b, I>,
        incomplete: &'p mut Option<BuildError>,
        start: usize,
        len: usize,
    ) -> Self {
        ListBuilder {
            enc,
            incomplete,
            start,
            len,
            pushed: 0,
            tail: None,
            _elem: PhantomData,
        }
    }

    /// Number of elements the list was allocated with.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list was allocated with no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements pushed so far.
    pub fn pushed(&self) -> usize {
        self.pushed
    }

    /// Position of the next element, or the error for a full list.
    fn next_slot(&self) -> Result<usize, BuildError> {
        if self.pushed >= self.len {
            return Err(BuildError::TooManyElements { capacity: self.len });
        }
        Ok(self.start + self.pushed * Self::ELEM)
    }

    /// Appends one element, written in one call from any Rust value of the
    /// element layout (e.g. `&str` or `String` for a `list<string>`, a
    /// `Vec<String>` for a `list<list<string>>`, a derived record).
    pub fn push<V: Flat<Repr = L> + ?Sized>(&mut self, value: &V) -> Result<(), BuildError> {
        let slot = self.next_slot()?;
        match value.encode(self.enc, slot) {
            Ok(()) => {
                self.pushed += 1;
                Ok(())
            }
            Err(e) => {
                // Leave the slot as a valid zero value; the caller may retry.
                let _ = self.enc.zero(slot, Self::ELEM);
                Err(e)
            }
        }
    }

    /// Appends a record `T` (a struct with `#[derive(Flat)]`) built field by
    /// field, and returns its builder, which borrows this list until dropped.
    pub fn push_record<T: FlatRecord<Repr = L> + ?Sized>(
        &mut self,
    ) -> Result<T::Builder<'_, 'b, I>, BuildError> {
        let slot = self.next_slot()?;
        self.pushed += 1;
        Ok(T::builder(RecordBuilder::new(
            &mut *self.enc,
            &mut *self.incomplete,
            slot,
            Self::ELEM,
        )))
    }

    /// Appends a variant `T` (an enum with `#[derive(Flat)]`) and returns its
    /// builder, whose methods choose the case and write its payload in place
    /// (see [`FlatVariant`]); it borrows this list until dropped. The
    /// element counts as pushed (as its first case with zero fields until a
    /// case is written).
    pub fn push_variant<T: FlatVariant<Repr = L> + ?Sized>(
        &mut self,
    ) -> Result<T::Builder<'_, 'b, I>, BuildError> {
        let slot = self.next_slot()?;
        let index = self.pushed;
        self.pushed += 1;
        Ok(T::builder(FieldSlot::standalone(
            &mut *self.enc,
            &mut *self.incomplete,
            &mut self.tail,
            index,
            slot,
        )))
    }

    /// The whole element array, to write in place (a camera, a decoder, a
    /// `read` into it), for element layouts where every byte pattern is a
    /// valid value: integers, floats, and records or tuples of them (a
    /// compile error otherwise). Multi-byte elements are little-endian.
    /// Every element counts as pushed; they start zero-filled.
    pub fn elements_mut(&mut self) -> Result<&mut [u8], BuildError> {
        const {
            assert!(!L::CHECKED, "elements_mut needs an element layout where every byte pattern is valid (numbers and records of numbers)")
        };
        let bytes = self
            .len
            .checked_mul(Self::ELEM)
            .ok_or(BuildError::SizeOverflow)?;
        let elements = self.enc.bytes_mut(self.start, bytes)?;
        self.pushed = self.len;
        Ok(elements)
    }

    /// Checks that every element was pushed.
    pub fn finish(self) -> Result<(), BuildError> {
        if self.pushed == self.len {
            Ok(())
        } else {
            Err(BuildError::TooFewElements {
                expected: self.len,
                pushed: self.pushed,
            })
        }
    }
}

impl<'b, I: Index> ListBuilder<'_, 'b, Str, I> {
    /// Appends a string: its header goes into the next element, its bytes to
    /// the tail of the buffer.
    #[inline]
    pub fn push_str(&mut self, s: &str) -> Result<(), BuildError> {
        self.push(s)
    }
}

impl<'b, E: Layout, I: Index> ListBuilder<'_, 'b, List<E>, I> {
    /// Appends a nested list of `len` elements and returns its builder, which
    /// borrows this one until it is finished or dropped.
    pub fn push_list(&mut self, len: usize) -> Result<ListBuilder<'_, 'b, E, I>, BuildError> {
        let slot = self.next_slot()?;
        let child = ListBuilder::start(&mut *self.enc, &mut *self.incomplete, slot, len)?;
        self.pushed += 1;
        Ok(child)
    }
}

impl<L: Layout, I: Index> Drop for ListBuilder<'_, '_, L, I> {
    fn drop(&mut self) {
        if self.pushed < self.len && self.incomplete.is_none() {
            *self.incomplete = Some(BuildError::TooFewElements {
                expected: self.len,
                pushed: self.pushed,
            });
        }
    }
}
