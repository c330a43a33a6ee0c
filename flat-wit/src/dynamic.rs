//! Messages read at run time from the WIT model, with no generated code:
//! validate a buffer, decode it to JSON, and describe that JSON with a JSON
//! Schema.
//!
//! ```
//! use flat_wit::{dynamic, Model, Selection, Width};
//!
//! let wit = "package demo:camera;
//!            interface frames { record frame { width: u32, tags: list<string> } }";
//! let model = Model::parse("camera.wit", wit, &Selection::default())?;
//! // FORMAT.md §1.2: width 640, then `tags` = ["front"] at `u8` width.
//! let bytes = [0x80, 0x02, 0, 0, 0x02, 1, 0x02, 5, b'f', b'r', b'o', b'n', b't'];
//! let json = dynamic::decode(&model, "frame", Width::U8, &bytes)?;
//! assert_eq!(json, serde_json::json!({ "width": 640, "tags": ["front"] }));
//!
//! // Invalid bytes: the validator's error, with the byte position.
//! let err = dynamic::decode(&model, "frame", Width::U8, &bytes[..10]).unwrap_err();
//! assert!(err.to_string().contains("header at byte 6"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Validation
//!
//! [`Decoder::validate`] checks exactly what the validators generated for
//! the same type check (FORMAT.md §4, flat-layout's `validate`), in the same
//! order, and reports the same [`ValidateError`] (variant, positions and
//! all) on the same bytes. Its work is linear in the buffer's length.
//!
//! # JSON
//!
//! [`Decoder::decode`] validates, then emits (the JSON Schema of the same
//! value is [`json_schema`]):
//!
//! | WIT | JSON |
//! |---|---|
//! | `record` | an object with the WIT field names (kebab-case, as declared, `%type` as `type`), in declaration order |
//! | `variant` | a case without payload: its name as a string (`"empty"`); a case with one: an object with one member, the case name (`{"circle": 9}`) |
//! | `enum` | the case name as a string |
//! | `option<T>` | `null` for none, `T`'s JSON for some; if `T`'s JSON can itself be `null` (`T` is an option), some is a one-element array: `some(none)` is `[null]` |
//! | `tuple<..>`, `list<T>` | arrays (`list<u8>` too: an array of numbers) |
//! | `string`, `char` | strings (a `char` is a string of one scalar value) |
//! | `bool` | `true` / `false` |
//! | `u8`..`u64`, `s8`..`s64` | integers, exact (`u64` and `s64` too; JavaScript readers lose precision above 2^53) |
//! | `f32`, `f64` | numbers; an `f32` is written as the shortest decimal that reads back as the same `f32`; NaN, infinity and minus infinity as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers) |
//!
//! # Bounds
//!
//! Nothing the bytes say is trusted: every position is checked, no input
//! panics, and allocation is bounded by the buffer (a list's elements are
//! claimed bytes of it). Recursion follows the type, not the bytes; the WIT
//! reader rejects recursive types and [`Decoder::new`] rejects types nested
//! deeper than [`MAX_DEPTH`]. WIT has no zero-sized types, but a hand-made
//! [`Model`] may: their lists cost no bytes, so decoding stops after
//! [`MAX_ZERO_SIZED_ELEMENTS`] such elements per message.

use std::collections::{HashMap, HashSet};

pub use flat_layout::ValidateError;
use serde_json::{json, Map, Number, Value};

use crate::model::{Def, Model, Prim, Ty, Width};

/// The deepest type nesting [`Decoder::new`] accepts (each record, variant,
/// option, list, tuple and alias is one level).
pub const MAX_DEPTH: usize = 128;

/// The most elements of zero-sized types one message may decode to.
pub const MAX_ZERO_SIZED_ELEMENTS: usize = 1 << 16;

/// The JSON Schema dialect of [`json_schema`].
pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Why a type could not be decoded, or a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The type asked for is not in the model.
    #[error("no type `{name}` in WIT package `{package}`; its types: {available}")]
    NoSuchType {
        /// The name asked for.
        name: String,
        /// The model's package.
        package: String,
        /// The model's type names.
        available: String,
    },
    /// The bytes are not a valid message of the type at the width: the
    /// validator's error, with its byte positions.
    #[error("invalid message: {0}")]
    Invalid(ValidateError),
    /// The type nests deeper than [`MAX_DEPTH`] (or is recursive, which only
    /// a hand-made model can be).
    #[error("type `{ty}` nests deeper than {max} levels (or is recursive); flatten the WIT type")]
    TooDeep {
        /// The type asked for.
        ty: String,
        /// The limit.
        max: usize,
    },
    /// A valid message whose lists of zero-sized elements would decode to
    /// more than [`MAX_ZERO_SIZED_ELEMENTS`] values.
    #[error(
        "list at byte {header} has {length} elements of a zero-sized type, more than the \
         {max} a message may decode to; the message is valid, read it with the generated types"
    )]
    TooManyZeroSized {
        /// Position of the list's header pair.
        header: usize,
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
}

// Not `#[from]`: that would also make the validator's error the `source`,
// and error reports would print its message twice.
impl From<ValidateError> for DecodeError {
    fn from(e: ValidateError) -> Self {
        DecodeError::Invalid(e)
    }
}

/// Validates and decodes messages of one type of a [`Model`] at one index
/// width (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Decoder<'m> {
    model: &'m Model,
    root: Ty,
    width: Width,
    /// Inline size and "has something to check" of each named type.
    named: HashMap<&'m str, (usize, bool)>,
}

/// Validates `buf` as a `ty` of `model` at `width` and decodes it to JSON
/// ([`Decoder::decode`]).
pub fn decode(model: &Model, ty: &str, width: Width, buf: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(model, ty, width)?.decode(buf)
}

impl<'m> Decoder<'m> {
    /// A decoder of the named type `ty` (WIT name) of `model` at `width`.
    pub fn new(model: &'m Model, ty: &str, width: Width) -> Result<Decoder<'m>, DecodeError> {
        let root = root_type(model, ty)?;
        check_depth(model, ty, &root)?;
        // Dependencies come first in `model.types`, so one pass in order
        // sizes every named type from the sizes before it.
        let mut decoder = Decoder {
            model,
            root,
            width,
            named: HashMap::new(),
        };
        for t in &model.types {
            let entry = match &t.def {
                Def::Record(fields) => (
                    fields.iter().map(|f| decoder.size(&f.ty)).sum(),
                    fields.iter().any(|f| decoder.checked(&f.ty)),
                ),
                Def::Variant(cases) => (
                    1 + cases
                        .iter()
                        .filter_map(|c| c.payload.as_ref())
                        .map(|p| decoder.size(p))
                        .max()
                        .unwrap_or(0),
                    true,
                ),
                Def::Enum(_) => (1, true),
                Def::Alias(target) => (decoder.size(target), decoder.checked(target)),
            };
            decoder.named.insert(t.name.as_str(), entry);
        }
        Ok(decoder)
    }

    /// The index width.
    pub fn width(&self) -> Width {
        self.width
    }

    /// Checks that `buf` holds a valid message (FORMAT.md §4) and returns
    /// the number of bytes up to the end of its last claimed region, as
    /// flat-layout's `validate_with_len` does. Trailing bytes are ignored.
    pub fn validate(&self, buf: &[u8]) -> Result<usize, ValidateError> {
        let mut walk = self.walk(buf, false)?;
        match walk.value(&self.root, 0) {
            Ok(_) => Ok(walk.claimed_end),
            Err(DecodeError::Invalid(e)) => Err(e),
            // Validation neither emits nor counts elements, and `new` bounded
            // the depth: no other error is possible.
            Err(_) => Ok(walk.claimed_end),
        }
    }

    /// Validates `buf` and decodes the message to JSON (conventions in the
    /// [module documentation](self)).
    pub fn decode(&self, buf: &[u8]) -> Result<Value, DecodeError> {
        let mut walk = self.walk(buf, true)?;
        walk.value(&self.root, 0)
    }

    fn walk<'d, 'b>(
        &'d self,
        buf: &'b [u8],
        emit: bool,
    ) -> Result<Walk<'d, 'm, 'b>, ValidateError> {
        let root = self.size(&self.root);
        if buf.len() < root {
            return Err(ValidateError::RootTooShort {
                needed: root,
                len: buf.len(),
            });
        }
        Ok(Walk {
            decoder: self,
            buf,
            claimed_end: root,
            emit,
            zero_sized: 0,
        })
    }

    fn size(&self, ty: &Ty) -> usize {
        match ty {
            Ty::Prim(p) => p.size(),
            Ty::String | Ty::List(_) => 2 * self.width.bytes(),
            Ty::Option(t) => 1 + self.size(t),
            Ty::Tuple(ts) => ts.iter().map(|t| self.size(t)).sum(),
            Ty::Named(n) => self.named.get(n.as_str()).map_or(0, |e| e.0),
        }
    }

    fn checked(&self, ty: &Ty) -> bool {
        match ty {
            Ty::Prim(p) => p.checked(),
            Ty::String | Ty::List(_) | Ty::Option(_) => true,
            Ty::Tuple(ts) => ts.iter().any(|t| self.checked(t)),
            Ty::Named(n) => self.named.get(n.as_str()).is_some_and(|e| e.1),
        }
    }
}

/// The type `Ty::Named(name)` if the model has it.
fn root_type(model: &Model, name: &str) -> Result<Ty, DecodeError> {
    match model.get(name) {
        Some(t) => Ok(Ty::Named(t.name.clone())),
        None => Err(DecodeError::NoSuchType {
            name: name.to_string(),
            package: model.package.clone(),
            available: model
                .types
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Rejects types nested deeper than [`MAX_DEPTH`] (each named type's depth
/// computed once, so shared types cost nothing more).
fn check_depth(model: &Model, name: &str, root: &Ty) -> Result<(), DecodeError> {
    fn depth<'a>(
        model: &'a Model,
        ty: &'a Ty,
        level: usize,
        memo: &mut HashMap<&'a str, usize>,
    ) -> Option<usize> {
        if level > MAX_DEPTH {
            return None;
        }
        let inner = |tys: &mut dyn Iterator<Item = &'a Ty>, memo: &mut HashMap<&'a str, usize>| {
            let mut most = 0;
            for t in tys {
                most = most.max(depth(model, t, level + 1, memo)?);
            }
            Some(1 + most)
        };
        match ty {
            Ty::Prim(_) | Ty::String => Some(1),
            Ty::List(t) | Ty::Option(t) => inner(&mut std::iter::once(&**t), memo),
            Ty::Tuple(ts) => inner(&mut ts.iter(), memo),
            Ty::Named(n) => {
                if let Some(&d) = memo.get(n.as_str()) {
                    return (level + d <= MAX_DEPTH + 1).then_some(d);
                }
                let d = match model.get(n).map(|t| &t.def) {
                    None | Some(Def::Enum(_)) => Some(1),
                    Some(Def::Record(fields)) => inner(&mut fields.iter().map(|f| &f.ty), memo),
                    Some(Def::Variant(cases)) => {
                        inner(&mut cases.iter().filter_map(|c| c.payload.as_ref()), memo)
                    }
                    Some(Def::Alias(t)) => inner(&mut std::iter::once(t), memo),
                }?;
                memo.insert(n.as_str(), d);
                Some(d)
            }
        }
    }
    match depth(model, root, 1, &mut HashMap::new()) {
        Some(_) => Ok(()),
        None => Err(DecodeError::TooDeep {
            ty: name.to_string(),
            max: MAX_DEPTH,
        }),
    }
}

/// One walk over a buffer: flat-layout's `Validator` (same checks, same
/// order, same errors), emitting JSON if `emit`.
struct Walk<'d, 'm, 'b> {
    decoder: &'d Decoder<'m>,
    buf: &'b [u8],
    claimed_end: usize,
    emit: bool,
    zero_sized: usize,
}

impl Walk<'_, '_, '_> {
    /// The `N` bytes at `pos` (always inside the root or a claimed region,
    /// so the error is never returned for a walk that got there).
    fn bytes<const N: usize>(&self, pos: usize) -> Result<[u8; N], ValidateError> {
        pos.checked_add(N)
            .and_then(|end| self.buf.get(pos..end))
            .and_then(|b| b.try_into().ok())
            .ok_or(ValidateError::OutOfBounds {
                header: pos,
                start: pos,
                bytes: N,
                len: self.buf.len(),
            })
    }

    fn byte(&self, pos: usize) -> Result<u8, ValidateError> {
        self.bytes::<1>(pos).map(|[b]| b)
    }

    fn index(&self, pos: usize) -> Option<usize> {
        let w = self.decoder.width.bytes();
        let b = self.buf.get(pos..pos.checked_add(w)?)?;
        let mut le = [0u8; 8];
        le[..w].copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(le)).ok()
    }

    /// flat-layout's `Validator::claim`: reads the header pair at `header`,
    /// checks its region of `length * elem` bytes and claims it.
    fn claim(&mut self, header: usize, elem: usize) -> Result<(usize, usize), ValidateError> {
        let len_total = self.buf.len();
        let w = self.decoder.width.bytes();
        let out = ValidateError::OutOfBounds {
            header,
            start: header,
            bytes: 2 * w,
            len: len_total,
        };
        let offset = self.index(header).ok_or(out)?;
        let length = header
            .checked_add(w)
            .and_then(|p| self.index(p))
            .ok_or(out)?;
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

    /// Checks (and, if emitting, decodes) the `ty` at `pos`. Without `emit`
    /// the result is `Null` and values with nothing to check are skipped.
    fn value(&mut self, ty: &Ty, pos: usize) -> Result<Value, DecodeError> {
        let d = self.decoder;
        Ok(match ty {
            Ty::Prim(p) => {
                if !self.emit && !p.checked() {
                    return Ok(Value::Null);
                }
                self.prim(*p, pos)?
            }
            Ty::String => {
                let (start, len) = self.claim(pos, 1)?;
                let bytes = self
                    .buf
                    .get(start..start + len)
                    .ok_or(ValidateError::OutOfBounds {
                        header: pos,
                        start,
                        bytes: len,
                        len: self.buf.len(),
                    })?;
                match std::str::from_utf8(bytes) {
                    Ok(s) if self.emit => Value::String(s.to_string()),
                    Ok(_) => Value::Null,
                    Err(e) => {
                        return Err(ValidateError::InvalidUtf8 {
                            header: pos,
                            at: start + e.valid_up_to(),
                        }
                        .into())
                    }
                }
            }
            Ty::List(t) => {
                let elem = d.size(t);
                let (start, len) = self.claim(pos, elem)?;
                if self.emit {
                    if elem == 0 {
                        self.zero_sized = self.zero_sized.saturating_add(len);
                        if self.zero_sized > MAX_ZERO_SIZED_ELEMENTS {
                            return Err(DecodeError::TooManyZeroSized {
                                header: pos,
                                length: len,
                                max: MAX_ZERO_SIZED_ELEMENTS,
                            });
                        }
                    }
                    // `len * elem` bytes were claimed (or `len` is bounded
                    // above), so this allocation is bounded by the buffer.
                    let mut items = Vec::with_capacity(len.min(self.buf.len()));
                    for i in 0..len {
                        items.push(self.value(t, start + i * elem)?);
                    }
                    Value::Array(items)
                } else {
                    // As flat-layout: elements are visited only if they have
                    // something to check, which makes them at least a byte.
                    if d.checked(t) && elem > 0 {
                        for i in 0..len {
                            self.value(t, start + i * elem)?;
                        }
                    }
                    Value::Null
                }
            }
            Ty::Option(t) => match self.byte(pos)? {
                0 => Value::Null,
                1 => {
                    let v = self.value(t, pos + 1)?;
                    if self.emit && nullable(d.model, t) {
                        Value::Array(vec![v])
                    } else {
                        v
                    }
                }
                value => return Err(ValidateError::InvalidOptionTag { at: pos, value }.into()),
            },
            Ty::Tuple(ts) => {
                let mut items = Vec::new();
                let mut at = pos;
                for t in ts {
                    if self.emit || d.checked(t) {
                        let v = self.value(t, at)?;
                        if self.emit {
                            items.push(v);
                        }
                    }
                    at += d.size(t);
                }
                if self.emit {
                    Value::Array(items)
                } else {
                    Value::Null
                }
            }
            Ty::Named(n) => match d.model.get(n).map(|t| &t.def) {
                None => Value::Object(Map::new()),
                Some(Def::Alias(t)) => self.value(t, pos)?,
                Some(Def::Record(fields)) => {
                    let mut obj = Map::new();
                    let mut at = pos;
                    for f in fields {
                        if self.emit || d.checked(&f.ty) {
                            let v = self.value(&f.ty, at)?;
                            if self.emit {
                                obj.insert(f.name.clone(), v);
                            }
                        }
                        at += d.size(&f.ty);
                    }
                    if self.emit {
                        Value::Object(obj)
                    } else {
                        Value::Null
                    }
                }
                Some(Def::Variant(cases)) => {
                    let tag = self.byte(pos)?;
                    let Some(case) = cases.get(usize::from(tag)) else {
                        return Err(ValidateError::InvalidVariantTag {
                            at: pos,
                            value: tag,
                            cases: cases.len(),
                        }
                        .into());
                    };
                    match &case.payload {
                        Some(p) => {
                            let v = self.value(p, pos + 1)?;
                            let mut obj = Map::new();
                            obj.insert(case.name.clone(), v);
                            Value::Object(obj)
                        }
                        None => Value::String(case.name.clone()),
                    }
                }
                Some(Def::Enum(names)) => {
                    let tag = self.byte(pos)?;
                    match names.get(usize::from(tag)) {
                        Some(name) => Value::String(name.clone()),
                        None => {
                            return Err(ValidateError::InvalidVariantTag {
                                at: pos,
                                value: tag,
                                cases: names.len(),
                            }
                            .into())
                        }
                    }
                }
            },
        })
    }

    fn prim(&self, p: Prim, pos: usize) -> Result<Value, ValidateError> {
        Ok(match p {
            Prim::Bool => match self.byte(pos)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                value => return Err(ValidateError::InvalidBool { at: pos, value }),
            },
            Prim::Char => {
                let value = u32::from_le_bytes(self.bytes(pos)?);
                match char::from_u32(value) {
                    Some(c) => Value::String(c.to_string()),
                    None => return Err(ValidateError::InvalidChar { at: pos, value }),
                }
            }
            Prim::U8 => self.byte(pos)?.into(),
            Prim::S8 => i8::from_le_bytes(self.bytes(pos)?).into(),
            Prim::U16 => u16::from_le_bytes(self.bytes(pos)?).into(),
            Prim::S16 => i16::from_le_bytes(self.bytes(pos)?).into(),
            Prim::U32 => u32::from_le_bytes(self.bytes(pos)?).into(),
            Prim::S32 => i32::from_le_bytes(self.bytes(pos)?).into(),
            Prim::U64 => u64::from_le_bytes(self.bytes(pos)?).into(),
            Prim::S64 => i64::from_le_bytes(self.bytes(pos)?).into(),
            Prim::F32 => f32_json(f32::from_le_bytes(self.bytes(pos)?)),
            Prim::F64 => f64_json(f64::from_le_bytes(self.bytes(pos)?)),
        })
    }
}

/// An `f32` as JSON: the shortest decimal that reads back as the same `f32`
/// (as an `f64` number), or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn f32_json(x: f32) -> Value {
    if x.is_finite() {
        // `Display` of a finite f32 is its shortest round-trip decimal,
        // which parses as a finite f64.
        match x.to_string().parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => f64_json(f64::from(x)),
        }
    } else {
        f64_json(f64::from(x))
    }
}

/// An `f64` as JSON: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn f64_json(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Whether `ty`'s JSON can be `null`: it is an option (through aliases).
fn nullable(model: &Model, ty: &Ty) -> bool {
    // Alias chains are finite in a model read from WIT; the bound keeps a
    // hand-made cyclic one from looping.
    let mut ty = ty;
    for _ in 0..=MAX_DEPTH {
        match ty {
            Ty::Option(_) => return true,
            Ty::Named(n) => match model.get(n).map(|t| &t.def) {
                Some(Def::Alias(t)) => ty = t,
                _ => return false,
            },
            _ => return false,
        }
    }
    false
}

// ---------------------------------------------------------------- JSON Schema

/// The JSON Schema (draft 2020-12) of the JSON that [`Decoder::decode`]
/// emits for the named type `ty` of `model`, at any index width.
///
/// The root type's schema is at the top level, with `title` (the WIT name)
/// and `description` (its WIT documentation, if any); every named type it
/// uses is in `$defs` under its WIT name and referenced as
/// `{"$ref": "#/$defs/<name>"}` (internal references only, as Foxglove
/// accepts). Records forbid members other than their fields and require
/// all of them.
pub fn json_schema(model: &Model, ty: &str) -> Result<Value, DecodeError> {
    let root = root_type(model, ty)?;
    check_depth(model, ty, &root)?;
    let named = model.get(ty).ok_or_else(|| DecodeError::NoSuchType {
        name: ty.to_string(),
        package: model.package.clone(),
        available: String::new(),
    })?;
    let mut used = Vec::new();
    let mut schema = def_schema(model, &named.def, &mut used);
    // The definitions of every named type reachable from the root's.
    let mut defs = Map::new();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(name) = used.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(t) = model.get(&name) {
            let mut s = def_schema(model, &t.def, &mut used);
            annotate(&mut s, &t.name, t.docs.as_deref());
            defs.insert(name, s);
        }
    }
    annotate(&mut schema, &named.name, named.docs.as_deref());
    if let Value::Object(obj) = &mut schema {
        let mut top = Map::new();
        top.insert("$schema".into(), JSON_SCHEMA_DIALECT.into());
        top.extend(std::mem::take(obj));
        if !defs.is_empty() {
            let mut sorted: Vec<(String, Value)> = defs.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            top.insert("$defs".into(), Value::Object(sorted.into_iter().collect()));
        }
        *obj = top;
    }
    Ok(schema)
}

fn annotate(schema: &mut Value, title: &str, docs: Option<&str>) {
    if let Value::Object(obj) = schema {
        obj.insert("title".into(), title.into());
        if let Some(d) = docs {
            obj.insert("description".into(), d.trim().into());
        }
    }
}

fn def_schema(model: &Model, def: &Def, used: &mut Vec<String>) -> Value {
    match def {
        Def::Record(fields) => {
            let mut props = Map::new();
            for f in fields {
                props.insert(f.name.clone(), ty_schema(model, &f.ty, used));
            }
            let required: Vec<Value> = fields.iter().map(|f| f.name.clone().into()).collect();
            json!({
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": false,
            })
        }
        Def::Variant(cases) => {
            let one_of: Vec<Value> = cases
                .iter()
                .map(|c| match &c.payload {
                    None => json!({ "const": c.name }),
                    Some(p) => {
                        let mut props = Map::new();
                        props.insert(c.name.clone(), ty_schema(model, p, used));
                        json!({
                            "type": "object",
                            "properties": props,
                            "required": [c.name],
                            "additionalProperties": false,
                        })
                    }
                })
                .collect();
            json!({ "oneOf": one_of })
        }
        Def::Enum(names) => json!({ "type": "string", "enum": names }),
        Def::Alias(t) => ty_schema(model, t, used),
    }
}

fn ty_schema(model: &Model, ty: &Ty, used: &mut Vec<String>) -> Value {
    match ty {
        Ty::Prim(p) => prim_schema(*p),
        Ty::String => json!({ "type": "string" }),
        Ty::List(t) => json!({ "type": "array", "items": ty_schema(model, t, used) }),
        Ty::Option(t) => {
            let some = ty_schema(model, t, used);
            let some = if nullable(model, t) {
                json!({
                    "type": "array",
                    "prefixItems": [some],
                    "items": false,
                    "minItems": 1,
                })
            } else {
                some
            };
            json!({ "anyOf": [{ "type": "null" }, some] })
        }
        Ty::Tuple(ts) => {
            let items: Vec<Value> = ts.iter().map(|t| ty_schema(model, t, used)).collect();
            json!({
                "type": "array",
                "prefixItems": items,
                "items": false,
                "minItems": ts.len(),
            })
        }
        Ty::Named(n) => {
            used.push(n.clone());
            json!({ "$ref": format!("#/$defs/{n}") })
        }
    }
}

fn prim_schema(p: Prim) -> Value {
    let int = |min: Value, max: Value| json!({ "type": "integer", "minimum": min, "maximum": max });
    match p {
        Prim::Bool => json!({ "type": "boolean" }),
        Prim::U8 => int(0.into(), u8::MAX.into()),
        Prim::U16 => int(0.into(), u16::MAX.into()),
        Prim::U32 => int(0.into(), u32::MAX.into()),
        Prim::U64 => int(0.into(), u64::MAX.into()),
        Prim::S8 => int(i8::MIN.into(), i8::MAX.into()),
        Prim::S16 => int(i16::MIN.into(), i16::MAX.into()),
        Prim::S32 => int(i32::MIN.into(), i32::MAX.into()),
        Prim::S64 => int(i64::MIN.into(), i64::MAX.into()),
        Prim::F32 | Prim::F64 => json!({
            "anyOf": [{ "type": "number" }, { "enum": ["NaN", "Infinity", "-Infinity"] }]
        }),
        Prim::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
    }
}
