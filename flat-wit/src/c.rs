//! C code generation: one self-contained C99 header per WIT package (or
//! interface) with, for every named type and every chosen index width,
//!
//! * a validator `<type>_<w>_validate(buf, len)` implementing FORMAT.md §4
//!   (claimed-bytes rule, UTF-8 as Rust's `core::str::from_utf8`, `char`,
//!   `bool`, option and variant tags, overflow-safe arithmetic, linear time,
//!   no read outside `buf`);
//! * accessors for validated buffers returning values or pointers into the
//!   block;
//! * an in-place builder writing FORMAT.md §3's canonical layout into a
//!   caller buffer, failing (never writing out of bounds) when the buffer or
//!   the index width is too small.
//!
//! Anonymous types (`list<string>`, `option<u8>`, `tuple<u16, string>`)
//! get the same accessors and builder functions under a mangled name:
//! `list_string`, `option_u8`, `tuple2_u16_string`.
//!
//! Only `stdint.h`, `stdbool.h`, `stddef.h` and `string.h` are included, so
//! the header also compiles for `wasm32-wasi` guests.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::Error;
use crate::model::{Def, Model, Prim, Ty, Width};
use crate::names::{c_ident, c_macro};

/// The shared runtime part of every header (guarded, so several generated
/// headers can be included in one translation unit).
pub const RUNTIME: &str = include_str!("runtime.h");

/// Options of the C generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The index widths to generate functions for (`_u8`, `_u16`, `_u32`).
    pub widths: Vec<Width>,
    /// Prepended to every generated name. `None` (the default): the WIT
    /// package's namespace and name (`demo:camera` gives `demo_camera_`,
    /// tag constants `DEMO_CAMERA_`), so headers of different packages never
    /// clash; `Some("cam")`: `cam_`; `Some("")`: no prefix at all.
    pub prefix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            widths: Width::ALL.to_vec(),
            prefix: None,
        }
    }
}

/// The prefix of generated names by default: the package's namespace and
/// name, without its version (`demo:camera@1.0.0` gives `demo_camera`).
pub fn default_prefix(package: &str) -> String {
    let id = package.split('@').next().unwrap_or(package);
    c_ident(&id.replace(':', "-"))
}

/// The C header for every type of `model`.
pub fn generate(model: &Model, options: &Options) -> Result<String, Error> {
    let prefix = match &options.prefix {
        Some(p) => c_ident(p).trim_end_matches('_').to_string(),
        None => default_prefix(&model.package),
    };
    let mut gen = Gen {
        model,
        prefix,
        names: HashMap::new(),
        out: String::new(),
    };
    if !gen.prefix.is_empty() {
        gen.prefix.push('_');
    }
    let items = gen.items()?;
    let mut widths = options.widths.clone();
    widths.sort();
    widths.dedup();
    gen.header(&items, &widths)?;
    Ok(gen.out)
}

/// A type that gets its own set of functions.
struct Item<'m> {
    /// C name (without prefix and width).
    cname: String,
    /// The WIT name (named types) or the WIT spelling (anonymous ones).
    wit: String,
    /// The type itself (`Ty::Named` for named types).
    ty: Ty,
    /// The shape to generate accessors and builders for.
    shape: Shape<'m>,
    named: bool,
}

enum Shape<'m> {
    Record(Vec<(String, &'m Ty)>),
    Tuple(&'m [Ty]),
    List(&'m Ty),
    Option(&'m Ty),
    Variant(&'m [crate::model::Case]),
    Enum(&'m [String]),
    /// An alias of a primitive, a string or another named type: only
    /// validation, size and `begin`.
    Plain,
}

/// See [`Gen::payload_setter`].
struct PayloadSetter {
    /// Parameters after `b, pos` (with their leading comma).
    params: String,
    /// The statement(s) after the tag is written.
    stmt: String,
    /// What the setter writes, for its comment.
    doc: String,
}

struct Gen<'m> {
    model: &'m Model,
    prefix: String,
    /// Generated function and macro names -> what they were made for.
    names: HashMap<String, String>,
    out: String,
}

/// The mangled C name of a type.
fn cname(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.wit_name().to_string(),
        Ty::String => "string".to_string(),
        Ty::List(t) => format!("list_{}", cname(t)),
        Ty::Option(t) => format!("option_{}", cname(t)),
        Ty::Tuple(ts) => {
            let mut s = format!("tuple{}", ts.len());
            for t in ts {
                s.push('_');
                s.push_str(&cname(t));
            }
            s
        }
        Ty::Named(n) => c_ident(n),
    }
}

/// The WIT spelling of a type, for comments.
fn wit(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.wit_name().to_string(),
        Ty::String => "string".to_string(),
        Ty::List(t) => format!("list<{}>", wit(t)),
        Ty::Option(t) => format!("option<{}>", wit(t)),
        Ty::Tuple(ts) => format!(
            "tuple<{}>",
            ts.iter().map(wit).collect::<Vec<_>>().join(", ")
        ),
        Ty::Named(n) => n.clone(),
    }
}

/// The C type of a primitive's value.
fn prim_c(p: Prim) -> &'static str {
    match p {
        Prim::Bool => "bool",
        Prim::U8 => "uint8_t",
        Prim::U16 => "uint16_t",
        Prim::U32 | Prim::Char => "uint32_t",
        Prim::U64 => "uint64_t",
        Prim::S8 => "int8_t",
        Prim::S16 => "int16_t",
        Prim::S32 => "int32_t",
        Prim::S64 => "int64_t",
        Prim::F32 => "float",
        Prim::F64 => "double",
    }
}

impl<'m> Gen<'m> {
    /// Every named type, then every anonymous composite type they use.
    fn items(&mut self) -> Result<Vec<Item<'m>>, Error> {
        let model = self.model;
        let mut items: Vec<Item<'m>> = Vec::new();
        let mut by_name: HashMap<String, String> = HashMap::new();
        let mut anon: Vec<&'m Ty> = Vec::new();
        for named in &model.types {
            let shape = match &named.def {
                Def::Record(fields) => {
                    let mut seen = HashMap::new();
                    let mut out = Vec::new();
                    for f in fields {
                        let id = c_ident(&f.name);
                        if let Some(first) = seen.insert(id.clone(), f.name.clone()) {
                            return Err(Error::NameClash {
                                name: id,
                                first: format!("field `{first}` of `{}`", named.name),
                                second: format!("field `{}`", f.name),
                                hint: "",
                            });
                        }
                        out.push((id, &f.ty));
                        collect_anon(&f.ty, &mut anon);
                    }
                    Shape::Record(out)
                }
                Def::Variant(cases) => {
                    for c in cases.iter().filter_map(|c| c.payload.as_ref()) {
                        collect_anon(c, &mut anon);
                    }
                    Shape::Variant(cases)
                }
                Def::Enum(cases) => Shape::Enum(cases),
                Def::Alias(t) => {
                    collect_anon(t, &mut anon);
                    match t {
                        Ty::List(e) => Shape::List(e),
                        Ty::Option(e) => Shape::Option(e),
                        Ty::Tuple(ts) => Shape::Tuple(ts),
                        _ => Shape::Plain,
                    }
                }
            };
            let c = c_ident(&named.name);
            if let Some(first) = by_name.insert(c.clone(), named.name.clone()) {
                return Err(Error::NameClash {
                    name: c,
                    first: format!("WIT type `{first}`"),
                    second: format!("WIT type `{}`", named.name),
                    hint: "",
                });
            }
            items.push(Item {
                cname: c,
                wit: named.name.clone(),
                ty: Ty::Named(named.name.clone()),
                shape,
                named: true,
            });
        }
        for ty in anon {
            let c = cname(ty);
            match by_name.get(&c) {
                Some(first) if *first == wit(ty) => continue,
                Some(first) => return Err(Error::NameClash {
                    name: c,
                    first: format!("`{first}`"),
                    second: format!("`{}`", wit(ty)),
                    hint:
                        " (C names of anonymous types are mangled: list_T, option_T, tupleN_T1_..)",
                }),
                None => {}
            }
            by_name.insert(c.clone(), wit(ty));
            let shape = match ty {
                Ty::List(e) => Shape::List(e),
                Ty::Option(e) => Shape::Option(e),
                Ty::Tuple(ts) => Shape::Tuple(ts),
                _ => continue,
            };
            items.push(Item {
                cname: c,
                wit: wit(ty),
                ty: ty.clone(),
                shape,
                named: false,
            });
        }
        Ok(items)
    }

    /// Registers a generated name; two items must not generate the same one.
    fn claim(&mut self, name: &str, what: &str) -> Result<(), Error> {
        if let Some(first) = self.names.get(name) {
            return Err(Error::NameClash {
                name: name.to_string(),
                first: first.clone(),
                second: what.to_string(),
                hint: " (or generate with a prefix)",
            });
        }
        self.names.insert(name.to_string(), what.to_string());
        Ok(())
    }

    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// The include guard of one part of the header: every part (the tags of
    /// a type, a type at one width) has its own, so that any set of
    /// generated headers (other widths, other types of the same package,
    /// other packages) can share a translation unit, each part defined once.
    fn guard(&self, cname: &str, part: &str) -> String {
        format!(
            "FLAT_WIT_DEFINED_{}{}_{part}",
            self.prefix.to_ascii_uppercase(),
            cname.to_ascii_uppercase()
        )
    }

    fn header(&mut self, items: &[Item<'m>], widths: &[Width]) -> Result<(), Error> {
        let _ = writeln!(
            self.out,
            "/* Generated by flat-wit {} from WIT package `{}` (prefix `{}`, index widths {}). Do not edit.",
            env!("CARGO_PKG_VERSION"),
            self.model.package,
            self.prefix,
            widths.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ")
        );
        self.line(HEADER_DOC);
        self.line("");
        self.out.push_str(RUNTIME);
        self.line("");
        // Width-independent tag constants.
        for item in items {
            let cases: Vec<String> = match &item.shape {
                Shape::Variant(cases) => cases.iter().map(|c| c.name.clone()).collect(),
                Shape::Enum(cases) => cases.to_vec(),
                _ => continue,
            };
            let guard = self.guard(&item.cname, "TAGS");
            self.claim(&guard, &format!("the tags of `{}`", item.wit))?;
            let _ = writeln!(
                self.out,
                "/* Tags of `{}`. */\n#ifndef {guard}\n#define {guard}",
                item.wit
            );
            for (i, case) in cases.iter().enumerate() {
                let m = format!(
                    "{}{}_{}",
                    self.prefix.to_ascii_uppercase(),
                    c_macro(&item.wit),
                    c_macro(case)
                );
                self.claim(&m, &format!("case `{case}` of `{}`", item.wit))?;
                let _ = writeln!(self.out, "#define {m} {i}");
            }
            let _ = writeln!(self.out, "#endif\n");
        }
        for &w in widths {
            let _ = writeln!(
                self.out,
                "/* ================================================ index width {} */\n",
                w.name()
            );
            // Declarations (repeating one is allowed), so that a type may use
            // one declared after it.
            for item in items.iter().filter(|i| i.named) {
                let p = self.p(&item.cname, w);
                let _ = writeln!(
                    self.out,
                    "static inline bool {p}check(flat_wit_validator *v, size_t pos);"
                );
            }
            self.line("");
            for item in items {
                let guard = self.guard(&item.cname, &w.name().to_ascii_uppercase());
                self.claim(&guard, &format!("`{}` at {}", item.wit, w.name()))?;
                let _ = writeln!(self.out, "#ifndef {guard}\n#define {guard}\n");
                self.item(item, w)?;
                let _ = writeln!(self.out, "#endif /* {guard} */\n");
            }
        }
        Ok(())
    }

    /// The function name prefix of `cname` at width `w`.
    fn p(&self, cname: &str, w: Width) -> String {
        format!("{}{}_{}_", self.prefix, cname, w.name())
    }

    fn size_macro(&self, cname: &str, w: Width) -> String {
        format!(
            "{}{}_{}_SIZE",
            self.prefix.to_ascii_uppercase(),
            cname.to_ascii_uppercase(),
            w.name().to_ascii_uppercase()
        )
    }

    /// Emits a function after claiming its name.
    fn func(
        &mut self,
        name: &str,
        what: &str,
        signature_rest: &str,
        body: &str,
    ) -> Result<(), Error> {
        self.claim(name, what)?;
        let _ = writeln!(self.out, "{signature_rest}\n{{\n{body}}}\n");
        Ok(())
    }

    /// The accessor's return type and expression reading a `ty` at `ptr`.
    fn read(&self, ty: &Ty, ptr: &str, w: Width) -> (String, String) {
        match ty {
            Ty::Prim(p) => (
                prim_c(*p).to_string(),
                format!("flat_wit_get_{}({ptr})", p.wit_name()),
            ),
            Ty::String => (
                "flat_wit_str".to_string(),
                format!("flat_wit_get_str({ptr}, {})", w.bytes()),
            ),
            _ => ("const uint8_t *".to_string(), ptr.to_string()),
        }
    }

    /// Parameters and statement writing a scalar or string `ty` at `pos`
    /// (`None` for composite types).
    fn setter(&self, ty: &Ty, pos: &str, w: Width) -> Option<(String, String)> {
        let (_, ty) = self.model.resolve_named(ty);
        match ty {
            Ty::Prim(p) => Some((
                format!("{} value", prim_c(*p)),
                format!("return flat_wit_put_{}(b, {pos}, value);", p.wit_name()),
            )),
            Ty::String => Some((
                "const char *s, size_t n".to_string(),
                format!("return flat_wit_put_str(b, {pos}, {}, s, n);", w.bytes()),
            )),
            _ => None,
        }
    }

    /// The rest of the parameters, the statement and the documentation of
    /// the setter of a payload (a variant case's, an option's `some`) of
    /// type `ty` at `pos`, typed by what the payload is, so that no index
    /// width is ever passed by hand: a scalar or a string is written in the
    /// same call, a list allocated (`count`, `*elems`), anything else gets
    /// its position for its own type's functions.
    fn payload_setter(&self, ty: Option<&Ty>, pos: &str, w: Width) -> PayloadSetter {
        let Some(ty) = ty else {
            return PayloadSetter {
                params: String::new(),
                stmt: "return true;".to_string(),
                doc: " (no payload)".to_string(),
            };
        };
        if let Some((params, stmt)) = self.setter(ty, pos, w) {
            return PayloadSetter {
                params: format!(", {params}"),
                stmt,
                doc: format!(" with its `{}` payload", wit(ty)),
            };
        }
        let (_, resolved) = self.model.resolve_named(ty);
        match resolved {
            Ty::List(e) => PayloadSetter {
                params: ", size_t count, size_t *elems".to_string(),
                stmt: format!(
                    "return flat_wit_alloc(b, {pos}, {}, count, {}, elems);",
                    w.bytes(),
                    self.model.size(e, w)
                ),
                doc: format!(
                    " with its `{}` payload of `count` zeroed elements at the tail;\n * `*elems` is the position of element 0 (for the list type's _at and _set)",
                    wit(ty)
                ),
            },
            _ => PayloadSetter {
                params: ", size_t *payload".to_string(),
                stmt: format!("if (payload) *payload = {pos};\n    return true;"),
                doc: format!(
                    "; `*payload` (if not NULL) is the position of its `{}` payload,\n * for that type's builder functions",
                    wit(ty)
                ),
            },
        }
    }

    fn item(&mut self, item: &Item<'m>, w: Width) -> Result<(), Error> {
        let model = self.model;
        let p = self.p(&item.cname, w);
        let size = model.size(&item.ty, w);
        let size_m = self.size_macro(&item.cname, w);
        let what = format!("`{}` at {}", item.wit, w.name());
        self.claim(&size_m, &what)?;
        let _ = writeln!(
            self.out,
            "/* ---- `{}` ({}), index width {}: inline size {size} */\n#define {size_m} ((size_t){size})\n",
            item.wit,
            if item.named { "named" } else { "anonymous" },
            w.name()
        );
        if item.named {
            let def = match model.get(&item.wit) {
                Some(named) => &named.def,
                None => return Ok(()),
            };
            let mut body = String::new();
            self.check_def(def, "pos", w, 0, "    ", &mut body);
            body.push_str("    (void)v;\n    (void)pos;\n    return true;\n");
            self.func(
                &format!("{p}check"),
                &what,
                &format!("static inline bool {p}check(flat_wit_validator *v, size_t pos)"),
                &body,
            )?;
            self.func(
                &format!("{p}validate_len"),
                &what,
                &format!("/* Validates an untrusted `{}` at the start of `buf` (FORMAT.md §4); on success\n * `*used` is the end of its last region (its size when written canonically). */\nstatic inline bool {p}validate_len(const uint8_t *buf, size_t len, size_t *used)", item.wit),
                &format!("    flat_wit_validator v;\n    if (len < {size_m} || (buf == NULL && len != 0)) return false;\n    v.buf = buf;\n    v.len = len;\n    v.claimed = {size_m};\n    if (!{p}check(&v, 0)) return false;\n    *used = v.claimed;\n    return true;\n"),
            )?;
            self.func(
                &format!("{p}validate"),
                &what,
                &format!("/* Whether `buf` holds a valid `{}` (bytes after it are ignored). */\nstatic inline bool {p}validate(const uint8_t *buf, size_t len)", item.wit),
                &format!("    size_t used;\n    return {p}validate_len(buf, len, &used);\n"),
            )?;
            self.func(
                &format!("{p}begin"),
                &what,
                &format!("/* Builder: reserves the root `{}` (zeroed) at byte 0; `*pos` is 0. */\nstatic inline bool {p}begin(flat_wit_builder *b, size_t *pos)", item.wit),
                &format!("    return flat_wit_begin(b, {size_m}, pos);\n"),
            )?;
        }
        match &item.shape {
            Shape::Record(fields) => {
                let mut off = 0;
                for (name, ty) in fields {
                    self.field(&p, name, ty, off, w, &what)?;
                    off += model.size(ty, w);
                }
            }
            Shape::Tuple(ts) => {
                let mut off = 0;
                for (i, ty) in ts.iter().enumerate() {
                    self.field(&p, &format!("f{i}"), ty, off, w, &what)?;
                    off += model.size(ty, w);
                }
            }
            Shape::List(e) => {
                let elem = model.size(e, w);
                let (ret, expr) = self.read(e, &format!("{p}data(p) + i * {elem}"), w);
                let wb = w.bytes();
                self.func(
                    &format!("{p}len"),
                    &what,
                    &format!(
                        "/* Number of elements. */\nstatic inline size_t {p}len(const uint8_t *p)"
                    ),
                    &format!("    return flat_wit_count(p, {wb});\n"),
                )?;
                self.func(&format!("{p}data"), &what, &format!("/* The element array ({elem} bytes per element). */\nstatic inline const uint8_t *{p}data(const uint8_t *p)"), &format!("    return flat_wit_region(p, {wb});\n"))?;
                self.func(&format!("{p}get"), &what, &format!("/* Element `i` (`i < len`). */\nstatic inline {ret} {p}get(const uint8_t *p, size_t i)"), &format!("    return {expr};\n"))?;
                self.func(&format!("{p}init"), &what, &format!("/* Builder: makes the list at `pos` one of `count` zeroed elements at the tail;\n * `*elems` is the position of element 0. */\nstatic inline bool {p}init(flat_wit_builder *b, size_t pos, size_t count, size_t *elems)"), &format!("    return flat_wit_alloc(b, pos, {wb}, count, {elem}, elems);\n"))?;
                self.func(&format!("{p}at"), &what, &format!("/* Builder: position of element `i` of the array at `elems`. */\nstatic inline size_t {p}at(size_t elems, size_t i)"), &format!("    return elems + i * {elem};\n"))?;
                if let Some((params, stmt)) = self.setter(e, &format!("elems + i * {elem}"), w) {
                    self.func(&format!("{p}set"), &what, &format!("/* Builder: writes element `i` of the array at `elems`. */\nstatic inline bool {p}set(flat_wit_builder *b, size_t elems, size_t i, {params})"), &format!("    {stmt}\n"))?;
                }
            }
            Shape::Option(t) => {
                let (ret, expr) = self.read(t, "p + 1", w);
                let payload = model.size(t, w);
                self.func(
                    &format!("{p}is_some"),
                    &what,
                    &format!("static inline bool {p}is_some(const uint8_t *p)"),
                    "    return p[0] == 1;\n",
                )?;
                self.func(&format!("{p}get"), &what, &format!("/* The payload (only if is_some). */\nstatic inline {ret} {p}get(const uint8_t *p)"), &format!("    return {expr};\n"))?;
                self.func(&format!("{p}set_none"), &what, &format!("static inline bool {p}set_none(flat_wit_builder *b, size_t pos)"), &format!("    return flat_wit_put_u8(b, pos, 0) && flat_wit_zero(b, pos + 1, {payload});\n"))?;
                let set = self.payload_setter(Some(t), "pos + 1", w);
                self.func(&format!("{p}set_some"), &what, &format!("/* Builder: tag `some`{}. */\nstatic inline bool {p}set_some(flat_wit_builder *b, size_t pos{})", set.doc, set.params), &format!("    if (!flat_wit_put_u8(b, pos, 1) || !flat_wit_zero(b, pos + 1, {payload})) return false;\n    {}\n", set.stmt))?;
            }
            Shape::Variant(cases) => {
                let max = model.max_payload(cases, w);
                self.func(
                    &format!("{p}tag"),
                    &what,
                    &format!("static inline uint8_t {p}tag(const uint8_t *p)"),
                    "    return p[0];\n",
                )?;
                for (i, case) in cases.iter().enumerate() {
                    let c = c_ident(&case.name);
                    if let Some(t) = &case.payload {
                        let (ret, expr) = self.read(t, "p + 1", w);
                        self.func(&format!("{p}{c}"), &what, &format!("/* The payload of case `{}` (only if tag is {i}). */\nstatic inline {ret} {p}{c}(const uint8_t *p)", case.name), &format!("    return {expr};\n"))?;
                    }
                    let set = self.payload_setter(case.payload.as_ref(), "pos + 1", w);
                    self.func(&format!("{p}set_{c}"), &what, &format!("/* Builder: case `{}`{}. */\nstatic inline bool {p}set_{c}(flat_wit_builder *b, size_t pos{})", case.name, set.doc, set.params), &format!("    if (!flat_wit_put_u8(b, pos, {i}) || !flat_wit_zero(b, pos + 1, {max})) return false;\n    {}\n", set.stmt))?;
                }
            }
            Shape::Enum(cases) => {
                self.func(
                    &format!("{p}tag"),
                    &what,
                    &format!("static inline uint8_t {p}tag(const uint8_t *p)"),
                    "    return p[0];\n",
                )?;
                self.func(&format!("{p}set"), &what, &format!("/* Builder: writes case `tag` (fails if it is not a case). */\nstatic inline bool {p}set(flat_wit_builder *b, size_t pos, unsigned tag)"), &format!("    if (tag >= {}u) return flat_wit_fail(b);\n    return flat_wit_put_u8(b, pos, (uint8_t)tag);\n", cases.len()))?;
            }
            Shape::Plain => {}
        }
        Ok(())
    }

    /// Accessor, position and (for scalars and strings) setter of a record
    /// field or tuple element.
    fn field(
        &mut self,
        p: &str,
        name: &str,
        ty: &Ty,
        off: usize,
        w: Width,
        what: &str,
    ) -> Result<(), Error> {
        let (ret, expr) = self.read(ty, &format!("p + {off}"), w);
        self.func(
            &format!("{p}{name}"),
            what,
            &format!("static inline {ret} {p}{name}(const uint8_t *p)"),
            &format!("    return {expr};\n"),
        )?;
        self.func(
            &format!("{p}{name}_at"),
            what,
            &format!("static inline size_t {p}{name}_at(size_t pos)"),
            &format!("    return pos + {off};\n"),
        )?;
        if let Some((params, stmt)) = self.setter(ty, &format!("pos + {off}"), w) {
            self.func(
                &format!("{p}set_{name}"),
                what,
                &format!(
                    "static inline bool {p}set_{name}(flat_wit_builder *b, size_t pos, {params})"
                ),
                &format!("    {stmt}\n"),
            )?;
        }
        Ok(())
    }

    /// Validation statements for a named type's definition at `pos`.
    fn check_def(&self, def: &Def, pos: &str, w: Width, depth: usize, ind: &str, out: &mut String) {
        let model = self.model;
        match def {
            Def::Record(fields) => {
                let mut off = 0;
                for f in fields {
                    self.check(&f.ty, &format!("{pos} + {off}"), w, depth, ind, out);
                    off += model.size(&f.ty, w);
                }
            }
            Def::Variant(cases) => {
                let _ = writeln!(out, "{ind}switch (v->buf[{pos}]) {{");
                for (i, case) in cases.iter().enumerate() {
                    let _ = writeln!(out, "{ind}case {i}:");
                    if let Some(t) = &case.payload {
                        self.check(
                            t,
                            &format!("{pos} + 1"),
                            w,
                            depth,
                            &format!("{ind}    "),
                            out,
                        );
                    }
                    let _ = writeln!(out, "{ind}    break;");
                }
                let _ = writeln!(out, "{ind}default:\n{ind}    return false;\n{ind}}}");
            }
            Def::Enum(cases) => {
                if cases.len() < 256 {
                    let _ = writeln!(
                        out,
                        "{ind}if (v->buf[{pos}] >= {}) return false;",
                        cases.len()
                    );
                }
            }
            Def::Alias(t) => self.check(t, pos, w, depth, ind, out),
        }
    }

    /// Validation statements for a `ty` at `pos` (FORMAT.md §4).
    fn check(&self, ty: &Ty, pos: &str, w: Width, depth: usize, ind: &str, out: &mut String) {
        let model = self.model;
        if !model.checked(ty) {
            return;
        }
        let wb = w.bytes();
        match ty {
            Ty::Prim(Prim::Bool) => {
                let _ = writeln!(out, "{ind}if (v->buf[{pos}] > 1) return false;");
            }
            Ty::Prim(Prim::Char) => {
                let _ = writeln!(
                    out,
                    "{ind}if (!flat_wit_check_char(v, {pos})) return false;"
                );
            }
            Ty::Prim(_) => {}
            Ty::String => {
                let _ = writeln!(
                    out,
                    "{ind}if (!flat_wit_check_str(v, {pos}, {wb})) return false;"
                );
            }
            Ty::List(e) => {
                let elem = model.size(e, w);
                let d = depth;
                let _ = writeln!(out, "{ind}{{\n{ind}    size_t s{d}, n{d};");
                let _ = writeln!(
                    out,
                    "{ind}    if (!flat_wit_claim(v, {pos}, {wb}, {elem}, &s{d}, &n{d})) return false;"
                );
                if model.checked(e) {
                    let _ = writeln!(
                        out,
                        "{ind}    for (size_t i{d} = 0; i{d} < n{d}; i{d}++) {{\n{ind}        size_t p{d} = s{d} + i{d} * {elem};"
                    );
                    self.check(
                        e,
                        &format!("p{d}"),
                        w,
                        depth + 1,
                        &format!("{ind}        "),
                        out,
                    );
                    let _ = writeln!(out, "{ind}    }}");
                } else {
                    let _ = writeln!(out, "{ind}    (void)s{d};\n{ind}    (void)n{d};");
                }
                let _ = writeln!(out, "{ind}}}");
            }
            Ty::Option(t) => {
                let d = depth;
                let _ = writeln!(
                    out,
                    "{ind}{{\n{ind}    uint8_t t{d} = v->buf[{pos}];\n{ind}    if (t{d} > 1) return false;"
                );
                if model.checked(t) {
                    let _ = writeln!(out, "{ind}    if (t{d} == 1) {{");
                    self.check(
                        t,
                        &format!("{pos} + 1"),
                        w,
                        depth + 1,
                        &format!("{ind}        "),
                        out,
                    );
                    let _ = writeln!(out, "{ind}    }}");
                }
                let _ = writeln!(out, "{ind}}}");
            }
            Ty::Tuple(ts) => {
                let mut off = 0;
                for t in ts {
                    self.check(t, &format!("{pos} + {off}"), w, depth, ind, out);
                    off += model.size(t, w);
                }
            }
            Ty::Named(n) => {
                let _ = writeln!(
                    out,
                    "{ind}if (!{}check(v, {pos})) return false;",
                    self.p(&c_ident(n), w)
                );
            }
        }
    }
}

/// Anonymous composite types used in `ty` (inner ones first).
fn collect_anon<'m>(ty: &'m Ty, out: &mut Vec<&'m Ty>) {
    match ty {
        Ty::List(t) | Ty::Option(t) => {
            collect_anon(t, out);
            out.push(ty);
        }
        Ty::Tuple(ts) => {
            for t in ts {
                collect_anon(t, out);
            }
            out.push(ty);
        }
        Ty::Prim(_) | Ty::String | Ty::Named(_) => {}
    }
}

const HEADER_DOC: &str = " *
 * The flat format (flat-layout FORMAT.md) for the WIT types below. Every
 * name starts with the prefix above (by default the package's namespace and
 * name; upper case for macros), left out here. For a type `T` (C name:
 * snake_case, anonymous types mangled as list_T, option_T, tupleN_T1_..)
 * and an index width `W` (u8, u16, u32):
 *
 *   T_W_SIZE                      inline size in bytes
 *   T_W_validate(buf, len)        true if buf holds a valid T (named types)
 *   T_W_validate_len(buf, len, &used)
 *
 * Reading (only after validation; `p` points at a value's inline bytes, the
 * root is `buf`): scalars are returned by value, strings as flat_wit_str
 * {ptr, len} into the buffer, everything else as a pointer to its inline
 * bytes for that type's accessors:
 *   records: T_W_<field>(p)        tuples: T_W_f0(p), T_W_f1(p), ..
 *   lists:   T_W_len(p), T_W_get(p, i), T_W_data(p)
 *   options: T_W_is_some(p), T_W_get(p)
 *   variants and enums: T_W_tag(p) (compare with the T_<CASE> constants),
 *            T_W_<case>(p) for a case's payload.
 *
 * Building in place (FORMAT.md §3): flat_wit_builder_init(&b, buf, cap), then
 * T_W_begin(&b, &pos) for the root and, in declaration order, depth first:
 *   records/tuples: T_W_set_<field>(&b, pos, value) for scalars and strings,
 *            T_W_<field>_at(pos) for the position of any field;
 *   lists:   T_W_init(&b, pos, count, &elems), then each element at
 *            T_W_at(elems, i) (T_W_set(&b, elems, i, value) for scalars and
 *            strings), element 0 completely before element 1;
 *   options: T_W_set_none(&b, pos), T_W_set_some(&b, pos, PAYLOAD);
 *   variants: T_W_set_<case>(&b, pos, PAYLOAD); enums: T_W_set(&b, pos, tag);
 * where PAYLOAD, by the payload's type, is: nothing (a case without one);
 * the value (a scalar: `value`; a string: `s, n`), written in the same call;
 * `count, &elems` (a list: allocated as by T_W_init); or `&payload` (anything
 * else: its position, for its own type's functions). A value is always
 * written through the functions of its type and width, never by hand.
 * Every function returns false when the buffer or the index width is too
 * small (nothing is written out of bounds); flat_wit_builder_finish(&b, &used)
 * reports whether every step succeeded and the size to hand on. Strings and
 * lists must be written in the order above (the validator rejects regions
 * that go backwards); scalars in any order.
 *
 * Headers generated separately (other widths, other types, other packages)
 * may be included in one translation unit: each type at each width, each
 * type's tags and the shared runtime (flat_wit_*) are guarded on their own. */";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Selection;

    #[test]
    fn names_and_sizes() -> Result<(), Error> {
        let wit = "package t:t;\ninterface i { record frame { width: u32, tags: list<string> }\nenum color { red, green } }";
        let model = Model::parse("t.wit", wit, &Selection::default())?;
        let h = generate(
            &model,
            &Options {
                widths: vec![Width::U16],
                prefix: Some(String::new()),
            },
        )?;
        assert!(h.contains("#define FRAME_U16_SIZE ((size_t)8)"));
        assert!(h.contains("static inline bool frame_u16_validate(const uint8_t *buf, size_t len)"));
        assert!(h.contains(
            "static inline flat_wit_str list_string_u16_get(const uint8_t *p, size_t i)"
        ));
        assert!(h.contains("#define COLOR_GREEN 1"));
        assert!(!h.contains("_u32_"));
        let prefixed = generate(
            &model,
            &Options {
                widths: vec![Width::U8],
                prefix: Some("cam".into()),
            },
        )?;
        assert!(prefixed.contains("static inline bool cam_frame_u8_validate("));
        assert!(prefixed.contains("#define CAM_COLOR_RED 0"));
        let default = generate(&model, &Options::default())?;
        assert!(default.contains("static inline bool t_t_frame_u32_validate("));
        assert!(default.contains("#define T_T_COLOR_RED 0"));
        assert!(default.contains("#ifndef FLAT_WIT_DEFINED_T_T_FRAME_U16"));
        assert!(default.contains("#ifndef FLAT_WIT_DEFINED_T_T_COLOR_TAGS"));
        Ok(())
    }

    #[test]
    fn default_prefix_is_the_package_without_version() {
        assert_eq!(default_prefix("demo:camera"), "demo_camera");
        assert_eq!(default_prefix("zero-copy:frames@0.1.0"), "zero_copy_frames");
    }

    #[test]
    fn payload_setters_are_typed() -> Result<(), Error> {
        let wit = "package t:t;\ninterface i { record p { x: u8 }\nvariant v { none, n(u16), s(string), l(list<u32>), r(p), o(option<string>) } }";
        let model = Model::parse("t.wit", wit, &Selection::default())?;
        let h = generate(
            &model,
            &Options {
                widths: vec![Width::U16],
                prefix: Some(String::new()),
            },
        )?;
        for signature in [
            "static inline bool v_u16_set_none(flat_wit_builder *b, size_t pos)\n",
            "static inline bool v_u16_set_n(flat_wit_builder *b, size_t pos, uint16_t value)\n",
            "static inline bool v_u16_set_s(flat_wit_builder *b, size_t pos, const char *s, size_t n)\n",
            "static inline bool v_u16_set_l(flat_wit_builder *b, size_t pos, size_t count, size_t *elems)\n",
            "static inline bool v_u16_set_r(flat_wit_builder *b, size_t pos, size_t *payload)\n",
            "static inline bool v_u16_set_o(flat_wit_builder *b, size_t pos, size_t *payload)\n",
            "static inline bool option_string_u16_set_some(flat_wit_builder *b, size_t pos, const char *s, size_t n)\n",
        ] {
            assert!(h.contains(signature), "{signature}");
        }
        Ok(())
    }

    #[test]
    fn clashing_c_names_are_rejected() -> Result<(), Error> {
        let wit = "package t:t;\ninterface i { record r { x: u8, set-x: u8 } }";
        let model = Model::parse("t.wit", wit, &Selection::default())?;
        assert!(matches!(
            generate(&model, &Options::default()),
            Err(Error::NameClash { .. })
        ));
        Ok(())
    }
}
