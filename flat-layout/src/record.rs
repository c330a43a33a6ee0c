//! Records built in place, field by field: [`FlatRecord`], [`RecordBuilder`]
//! and [`FieldSlot`].
//!
//! `#[derive(Flat)]` on a struct `Name` also generates `NameBuilder<'p, 'b, I>`
//! with one method per field returning that field's [`FieldSlot`]. A slot
//! writes the field where it lies: in one call ([`FieldSlot::set`]), as a
//! list whose elements are pushed one by one ([`FieldSlot::list`]), as an
//! option's payload ([`FieldSlot::some`]), as a nested record
//! ([`FieldSlot::record`]) or as one case of a variant whose payload is then
//! written the same ways ([`FieldSlot::variant`], [`FlatVariant`]). Nothing
//! is built on the heap first.
//!
//! Fields start zero-filled, which is a valid value of every type (0,
//! `false`, empty strings and lists, `None`, a variant's first case with
//! zero fields): a field never set reads as that. Fields without out-of-line
//! bytes (numbers, `bool`, `char`, records of them) may be set in any order
//! and again; fields with strings or lists must be written in declaration
//! order, each once (FORMAT.md §3: the tail follows the fields' order), or
//! the slot answers [`BuildError::FieldOutOfOrder`].

use crate::build::ListBuilder;
use crate::encode::Encoder;
use crate::error::BuildError;
use crate::index::Index;
use crate::layout::{CaseAt, Cases, Cons, Flat, Layout, List, Opt, Variant};

/// A record type whose fields can be set one by one in place; implemented by
/// `#[derive(Flat)]` for structs, whose [`Builder`](FlatRecord::Builder) is
/// the generated `NameBuilder`.
///
/// ```
/// use flat_layout::{validate, Builder};
/// use flat_layout_derive::Flat;
///
/// #[derive(Flat)]
/// struct Frame {
///     width: u32,
///     height: u32,
///     tags: Vec<String>,
///     pixels: Vec<u8>,
/// }
///
/// let mut block = [0u8; 256];
/// let mut builder = Builder::<u32>::new(&mut block);
/// let mut frame = builder.record::<Frame>()?;
/// frame.width().set(&4u32)?;
/// frame.height().set(&2u32)?;
/// let mut tags = frame.tags().list(1)?;
/// tags.push_str("front")?;
/// tags.finish()?;
/// let mut pixels = frame.pixels().list(8)?;
/// // The element array inside the block: a camera or a decoder writes here.
/// pixels.elements_mut()?.copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
/// pixels.finish()?;
/// let used = builder.finish()?;
///
/// let frame = validate::<Frame, u32>(&block[..used])?;
/// assert_eq!((frame.width(), frame.height()), (4, 2));
/// assert_eq!(frame.tags().get(0), Some("front"));
/// assert_eq!(frame.pixels().iter().sum::<u8>(), 36);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FlatRecord: Flat {
    /// The generated builder (`NameBuilder`), a field slot per field.
    type Builder<'p, 'b: 'p, I: Index>;

    /// Wraps the untyped record builder; called by [`Builder::record`],
    /// [`ListBuilder::push_record`] and [`FieldSlot::record`].
    ///
    /// [`Builder::record`]: crate::Builder::record
    fn builder<'p, 'b: 'p, I: Index>(record: RecordBuilder<'p, 'b, I>) -> Self::Builder<'p, 'b, I>;
}

/// A variant (enum) type whose case payloads can be written in place;
/// implemented by `#[derive(Flat)]` for enums, whose
/// [`Builder`](FlatVariant::Builder) is the generated `NameBuilder` with one
/// method per case (snake_case): a case without payload is written by its
/// method, a case with one unnamed field returns the [`FieldSlot`] of its
/// payload, a case with named or several fields returns a builder with one
/// slot per field.
///
/// ```
/// use flat_layout::{validate, Builder};
/// use flat_layout_derive::Flat;
///
/// #[derive(Flat)]
/// enum Status {
///     Ok,
///     Degraded(String),
///     Failed { code: u16, reasons: Vec<String> },
/// }
///
/// #[derive(Flat)]
/// struct Report {
///     id: u32,
///     status: Status,
/// }
///
/// let mut block = [0u8; 64];
/// let mut builder = Builder::<u16>::new(&mut block);
/// let mut report = builder.record::<Report>()?;
/// report.id().set(&7u32)?;
/// // The string goes straight into the block: no `String` on the heap.
/// report.status().variant::<Status>().degraded()?.set("dust")?;
/// let used = builder.finish()?;
///
/// let report = validate::<Report, u16>(&block[..used])?;
/// assert!(matches!(report.status(), StatusView::Degraded("dust")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FlatVariant: Flat {
    /// The generated builder (`NameBuilder`), a method per case.
    type Builder<'s, 'b: 's, I: Index>;

    /// Wraps the slot the variant is written into; called by
    /// [`FieldSlot::variant`], [`Builder::variant`] and
    /// [`ListBuilder::push_variant`].
    ///
    /// [`Builder::variant`]: crate::Builder::variant
    fn builder<'s, 'b: 's, I: Index>(
        slot: FieldSlot<'s, 'b, Self::Repr, I>,
    ) -> Self::Builder<'s, 'b, I>;
}

/// One record being written in place: the untyped part of a generated
/// `NameBuilder`, which hands out a [`FieldSlot`] per field.
pub struct RecordBuilder<'p, 'b, I: Index> {
    enc: &'p mut Encoder<'b, I>,
    incomplete: &'p mut Option<BuildError>,
    /// Position of the record's inline bytes.
    pos: usize,
    /// Inline size of the record.
    size: usize,
    /// The last field that wrote out-of-line bytes (declaration index).
    tail_field: Option<usize>,
}

impl<'p, 'b, I: Index> RecordBuilder<'p, 'b, I> {
    /// A record whose `size` inline bytes (zero-filled) are at `pos`.
    pub(crate) fn new(
        enc: &'p mut Encoder<'b, I>,
        incomplete: &'p mut Option<BuildError>,
        pos: usize,
        size: usize,
    ) -> Self {
        RecordBuilder {
            enc,
            incomplete,
            pos,
            size,
            tail_field: None,
        }
    }

    /// The slot of the field declared `index`-th, of layout `L`, whose inline
    /// bytes start `offset` bytes into the record. Generated builders call
    /// this with the sum of the inline sizes of the fields before it; a slot
    /// that would not lie inside the record answers
    /// [`BuildError::FieldOutsideRecord`] to every write.
    pub fn field<L: Layout>(&mut self, index: usize, offset: usize) -> FieldSlot<'_, 'b, L, I> {
        let width = L::INLINE.get::<I>();
        let fault = match offset.checked_add(width) {
            Some(end) if end <= self.size => None,
            _ => Some(BuildError::FieldOutsideRecord {
                offset,
                width,
                size: self.size,
            }),
        };
        FieldSlot {
            enc: &mut *self.enc,
            incomplete: &mut *self.incomplete,
            tail_field: &mut self.tail_field,
            index,
            pos: self.pos.saturating_add(offset),
            fault,
            _layout: core::marker::PhantomData,
        }
    }
}

/// One field of a record (or an option's payload) being written in place,
/// borrowed from its record builder. Its methods consume it: take the slot
/// again (`frame.width()`) to write the field again.
pub struct FieldSlot<'s, 'b, L: Layout, I: Index> {
    enc: &'s mut Encoder<'b, I>,
    incomplete: &'s mut Option<BuildError>,
    tail_field: &'s mut Option<usize>,
    index: usize,
    pos: usize,
    fault: Option<BuildError>,
    _layout: core::marker::PhantomData<fn() -> L>,
}

impl<'s, 'b, L: Layout, I: Index> FieldSlot<'s, 'b, L, I> {
    const WIDTH: usize = L::INLINE.get::<I>();

    /// A slot at `pos` of a value of its own (a root or a list element)
    /// whose out-of-line order is tracked in `tail_field` as field `index`.
    pub(crate) fn standalone(
        enc: &'s mut Encoder<'b, I>,
        incomplete: &'s mut Option<BuildError>,
        tail_field: &'s mut Option<usize>,
        index: usize,
        pos: usize,
    ) -> Self {
        FieldSlot {
            enc,
            incomplete,
            tail_field,
            index,
            pos,
            fault: None,
            _layout: core::marker::PhantomData,
        }
    }

    /// Checks that the slot lies in its record and, if the layout has
    /// out-of-line bytes, that no later field wrote any yet.
    fn check(&self) -> Result<(), BuildError> {
        self.check_as(L::TAIL)
    }

    /// [`check`](Self::check) for a write with (`tail`) or without
    /// out-of-line bytes.
    fn check_as(&self, tail: bool) -> Result<(), BuildError> {
        if let Some(e) = self.fault {
            return Err(e);
        }
        match *self.tail_field {
            Some(after) if tail && after >= self.index => Err(BuildError::FieldOutOfOrder {
                field: self.index,
                after,
            }),
            _ => Ok(()),
        }
    }

    /// Records that the field wrote its out-of-line bytes.
    fn wrote(tail_field: &mut Option<usize>, index: usize) {
        if L::TAIL {
            *tail_field = Some(index);
        }
    }

    /// Writes the whole field from any value of its layout (`&640u32`,
    /// `"front"`, a `Vec<String>`, a derived record...). On error the field
    /// is left zero-filled (a valid default) and may be set again.
    pub fn set<V: Flat<Repr = L> + ?Sized>(self, value: &V) -> Result<(), BuildError> {
        self.check()?;
        match value.encode(self.enc, self.pos) {
            Ok(()) => {
                Self::wrote(self.tail_field, self.index);
                Ok(())
            }
            Err(e) => {
                let _ = self.enc.zero(self.pos, Self::WIDTH);
                Err(e)
            }
        }
    }

    /// Writes the field as a record built field by field (`T` is the Rust
    /// record type whose layout the field has) and returns its builder.
    pub fn record<T: FlatRecord<Repr = L>>(self) -> Result<T::Builder<'s, 'b, I>, BuildError> {
        self.check()?;
        Self::wrote(self.tail_field, self.index);
        Ok(T::builder(RecordBuilder::new(
            self.enc,
            self.incomplete,
            self.pos,
            Self::WIDTH,
        )))
    }

    /// Writes the field as one case of the variant `T` (an enum with
    /// `#[derive(Flat)]` whose layout the field has) and returns its
    /// builder, whose methods choose the case and write its payload in
    /// place (see [`FlatVariant`]).
    pub fn variant<T: FlatVariant<Repr = L>>(self) -> T::Builder<'s, 'b, I> {
        T::builder(self)
    }
}

impl<'s, 'b, C: Cases, I: Index> FieldSlot<'s, 'b, Variant<C>, I> {
    /// Writes the tag of case `N` (see [`CaseAt`]), zero-fills the payload
    /// bytes and returns the slot of the case's payload. Derived enum
    /// builders call this with the case's index; the payload's layout is
    /// that case's, so only a payload of the right type can be written.
    pub fn case<N>(self) -> Result<FieldSlot<'s, 'b, <C as CaseAt<N>>::Payload, I>, BuildError>
    where
        C: CaseAt<N>,
    {
        const {
            assert!(
                <C as CaseAt<N>>::TAG < 256,
                "a variant tag is one byte: at most 256 cases"
            )
        };
        // Only a payload with out-of-line bytes must keep the fields' order.
        self.check_as(<<C as CaseAt<N>>::Payload as Layout>::TAIL)?;
        self.enc.put(self.pos, &[<C as CaseAt<N>>::TAG as u8])?;
        self.enc.zero(self.pos + 1, C::MAX_PAYLOAD.get::<I>())?;
        Ok(FieldSlot {
            enc: self.enc,
            incomplete: self.incomplete,
            tail_field: self.tail_field,
            index: self.index,
            pos: self.pos + 1,
            fault: None,
            _layout: core::marker::PhantomData,
        })
    }
}

impl<'s, 'b, H: Layout, T: Layout, I: Index> FieldSlot<'s, 'b, Cons<H, T>, I> {
    /// The slot of the first element of a tuple (or of a variant case's
    /// payload, whose fields are a tuple): a case `Degraded(String)` has the
    /// payload layout `Cons<Str, Nil>`, and this is its `Str`.
    pub fn first(self) -> FieldSlot<'s, 'b, H, I> {
        FieldSlot {
            enc: self.enc,
            incomplete: self.incomplete,
            tail_field: self.tail_field,
            index: self.index,
            pos: self.pos,
            fault: self.fault,
            _layout: core::marker::PhantomData,
        }
    }

    /// Writes the tuple element by element: returns a record builder over
    /// its bytes (derived builders of variant cases with several or named
    /// fields hand out its field slots).
    pub fn fields(self) -> Result<RecordBuilder<'s, 'b, I>, BuildError> {
        self.check()?;
        Self::wrote(self.tail_field, self.index);
        Ok(RecordBuilder::new(
            self.enc,
            self.incomplete,
            self.pos,
            Self::WIDTH,
        ))
    }
}

impl<'s, 'b, E: Layout, I: Index> FieldSlot<'s, 'b, List<E>, I> {
    /// Allocates the field as a list of `len` elements and returns its
    /// builder; push every element, then finish it.
    pub fn list(self, len: usize) -> Result<ListBuilder<'s, 'b, E, I>, BuildError> {
        self.check()?;
        let list = ListBuilder::start(self.enc, self.incomplete, self.pos, len)?;
        Self::wrote(self.tail_field, self.index);
        Ok(list)
    }
}

impl<'s, 'b, L: Layout, I: Index> FieldSlot<'s, 'b, Opt<L>, I> {
    /// Makes the option `Some` and returns the slot of its payload
    /// (zero-filled until written).
    pub fn some(self) -> Result<FieldSlot<'s, 'b, L, I>, BuildError> {
        self.check()?;
        self.enc.put(self.pos, &[1])?;
        self.enc.zero(self.pos + 1, L::INLINE.get::<I>())?;
        Ok(FieldSlot {
            enc: self.enc,
            incomplete: self.incomplete,
            tail_field: self.tail_field,
            index: self.index,
            pos: self.pos + 1,
            fault: None,
            _layout: core::marker::PhantomData,
        })
    }

    /// Makes the option `None`.
    pub fn none(self) -> Result<(), BuildError> {
        if let Some(e) = self.fault {
            return Err(e);
        }
        self.enc.zero(self.pos, Self::WIDTH)
    }
}
