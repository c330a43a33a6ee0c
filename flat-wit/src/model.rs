//! The flat type tree of a WIT package: named records, variants, enums and
//! aliases over primitives, strings, lists, options and tuples, with their
//! inline sizes per index width (FORMAT.md §2).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use wit_parser::{Resolve, Type, TypeDefKind, TypeId, TypeOwner};

use crate::error::Error;

/// The index type `I` of headers: 1, 2 or 4 bytes (FORMAT.md §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    /// `u8` offsets and lengths.
    U8,
    /// `u16` offsets and lengths.
    U16,
    /// `u32` offsets and lengths.
    U32,
}

impl Width {
    /// All three widths, narrowest first.
    pub const ALL: [Width; 3] = [Width::U8, Width::U16, Width::U32];

    /// Bytes of one index value.
    pub const fn bytes(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }

    /// The WIT / Rust name: `u8`, `u16`, `u32`.
    pub const fn name(self) -> &'static str {
        match self {
            Width::U8 => "u8",
            Width::U16 => "u16",
            Width::U32 => "u32",
        }
    }

    /// Parses `u8`, `u16` or `u32`.
    pub fn parse(s: &str) -> Option<Width> {
        Width::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// A primitive WIT type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prim {
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `s8`.
    S8,
    /// `s16`.
    S16,
    /// `s32`.
    S32,
    /// `s64`.
    S64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`: a Unicode scalar value as `u32`.
    Char,
}

impl Prim {
    /// Inline size in bytes (independent of the width).
    pub const fn size(self) -> usize {
        match self {
            Prim::Bool | Prim::U8 | Prim::S8 => 1,
            Prim::U16 | Prim::S16 => 2,
            Prim::U32 | Prim::S32 | Prim::F32 | Prim::Char => 4,
            Prim::U64 | Prim::S64 | Prim::F64 => 8,
        }
    }

    /// The WIT name.
    pub const fn wit_name(self) -> &'static str {
        match self {
            Prim::Bool => "bool",
            Prim::U8 => "u8",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::U64 => "u64",
            Prim::S8 => "s8",
            Prim::S16 => "s16",
            Prim::S32 => "s32",
            Prim::S64 => "s64",
            Prim::F32 => "f32",
            Prim::F64 => "f64",
            Prim::Char => "char",
        }
    }

    /// Whether validation checks its bytes (`bool`, `char`).
    pub const fn checked(self) -> bool {
        matches!(self, Prim::Bool | Prim::Char)
    }
}

/// A type as used in a field, element, payload or alias.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A primitive.
    Prim(Prim),
    /// `string`.
    String,
    /// `list<T>`.
    List(Box<Ty>),
    /// `option<T>`.
    Option(Box<Ty>),
    /// `tuple<T1, .., Tn>`.
    Tuple(Vec<Ty>),
    /// A named type of the model, by its WIT (kebab-case) name.
    Named(String),
}

/// A field of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// WIT name (kebab-case).
    pub name: String,
    /// Its type.
    pub ty: Ty,
}

/// A case of a variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// WIT name (kebab-case).
    pub name: String,
    /// The payload, if any.
    pub payload: Option<Ty>,
}

/// What a named type is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Def {
    /// `record { .. }`: fields packed in declaration order.
    Record(Vec<Field>),
    /// `variant { .. }`: a tag byte, then the case's payload, padded.
    Variant(Vec<Case>),
    /// `enum { .. }`: a tag byte.
    Enum(Vec<String>),
    /// `type name = T`: the same layout as `T`.
    Alias(Ty),
}

/// One named WIT type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// WIT name (kebab-case).
    pub name: String,
    /// The WIT documentation comment, if any.
    pub docs: Option<String>,
    /// The definition.
    pub def: Def,
}

/// The named types of a WIT package (or some of its interfaces), every type
/// after the types it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The package name (`namespace:name`, with `@version` if any).
    pub package: String,
    /// The named types, dependencies first.
    pub types: Vec<Named>,
    index: HashMap<String, usize>,
}

/// Which types of a package to take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only this interface (by name); `None`: every interface and world of
    /// the package.
    pub interface: Option<String>,
    /// Only these types (WIT names) and the types they use; empty: all.
    pub types: Vec<String>,
}

impl Model {
    /// Loads the WIT package at `path` (a directory of `*.wit` files with an
    /// optional `deps/`, or one file) and takes the selected types.
    pub fn load(path: &Path, selection: &Selection) -> Result<Model, Error> {
        let mut resolve = Resolve::default();
        let (package, _) = resolve.push_path(path).map_err(|e| Error::Load {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        Model::from_resolve(&resolve, package, selection)
    }

    /// Parses one WIT package given as text (`name` is used in messages).
    pub fn parse(name: &str, wit: &str, selection: &Selection) -> Result<Model, Error> {
        let mut resolve = Resolve::default();
        let package = resolve.push_str(name, wit).map_err(|e| Error::Load {
            path: name.into(),
            message: format!("{e:#}"),
        })?;
        Model::from_resolve(&resolve, package, selection)
    }

    /// Parses one WIT package given as several files' text (`(file name,
    /// text)`, as the `*.wit` files of a package directory without `deps/`).
    pub fn parse_files(files: &[(&str, &str)], selection: &Selection) -> Result<Model, Error> {
        let names = || {
            files
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
                .into()
        };
        let mut map = wit_parser::SourceMap::new();
        for (name, text) in files {
            map.push_str(name, *text);
        }
        let group = map.parse().map_err(|(_, e)| Error::Load {
            path: names(),
            message: e.to_string(),
        })?;
        let mut resolve = Resolve::default();
        let package = resolve.push_group(group).map_err(|e| Error::Load {
            path: names(),
            message: e.to_string(),
        })?;
        Model::from_resolve(&resolve, package, selection)
    }

    /// Takes the selected named types of `package` from a resolved WIT.
    pub fn from_resolve(
        resolve: &Resolve,
        package: wit_parser::PackageId,
        selection: &Selection,
    ) -> Result<Model, Error> {
        let pkg = &resolve.packages[package];
        let package_name = pkg.name.to_string();
        let mut roots: Vec<TypeId> = Vec::new();
        match &selection.interface {
            Some(name) => {
                let Some(&id) = pkg.interfaces.get(name) else {
                    return Err(Error::NoSuchInterface {
                        name: name.clone(),
                        package: package_name,
                        available: pkg
                            .interfaces
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                };
                roots.extend(resolve.interfaces[id].types.values().copied());
            }
            None => {
                for &id in pkg.interfaces.values() {
                    roots.extend(resolve.interfaces[id].types.values().copied());
                }
                for (_, world) in resolve
                    .worlds
                    .iter()
                    .filter(|(_, w)| w.package == Some(package))
                {
                    for item in world.imports.values().chain(world.exports.values()) {
                        if let wit_parser::WorldItem::Type { id, .. } = item {
                            roots.push(*id);
                        }
                    }
                }
            }
        }
        if !selection.types.is_empty() {
            let mut picked = Vec::new();
            for want in &selection.types {
                match roots
                    .iter()
                    .find(|&&id| resolve.types[id].name.as_deref() == Some(want.as_str()))
                {
                    Some(&id) => picked.push(id),
                    None => return Err(Error::NoSuchType { name: want.clone() }),
                }
            }
            roots = picked;
        }
        let mut reader = Reader {
            resolve,
            model: Model {
                package: package_name,
                types: Vec::new(),
                index: HashMap::new(),
            },
            done: HashMap::new(),
            visiting: HashSet::new(),
        };
        for id in roots {
            reader.named(id)?;
        }
        Ok(reader.model)
    }

    /// The named type called `name` (WIT name).
    pub fn get(&self, name: &str) -> Option<&Named> {
        self.index.get(name).map(|&i| &self.types[i])
    }

    fn def(&self, name: &str) -> &Def {
        // Every `Ty::Named` of a model names one of its types; an unknown
        // name (a hand-made `Ty`) reads as an empty record.
        static EMPTY: Def = Def::Record(Vec::new());
        match self.get(name) {
            Some(named) => &named.def,
            None => &EMPTY,
        }
    }

    /// The definition behind `ty` with aliases followed: `None` for
    /// anonymous and primitive types.
    pub fn resolve_named<'a>(&'a self, mut ty: &'a Ty) -> (Option<&'a str>, &'a Ty) {
        let mut name = None;
        while let Ty::Named(n) = ty {
            name = Some(n.as_str());
            match self.def(n) {
                Def::Alias(target) => ty = target,
                _ => break,
            }
        }
        (name, ty)
    }

    /// Inline size of `ty` at index width `width` (FORMAT.md §2).
    pub fn size(&self, ty: &Ty, width: Width) -> usize {
        match ty {
            Ty::Prim(p) => p.size(),
            Ty::String | Ty::List(_) => 2 * width.bytes(),
            Ty::Option(t) => 1 + self.size(t, width),
            Ty::Tuple(ts) => ts.iter().map(|t| self.size(t, width)).sum(),
            Ty::Named(n) => self.def_size(self.def(n), width),
        }
    }

    /// Inline size of a named type's definition at `width`.
    pub fn def_size(&self, def: &Def, width: Width) -> usize {
        match def {
            Def::Record(fields) => fields.iter().map(|f| self.size(&f.ty, width)).sum(),
            Def::Variant(cases) => 1 + self.max_payload(cases, width),
            Def::Enum(_) => 1,
            Def::Alias(t) => self.size(t, width),
        }
    }

    /// The largest payload of `cases` at `width`.
    pub fn max_payload(&self, cases: &[Case], width: Width) -> usize {
        cases
            .iter()
            .filter_map(|c| c.payload.as_ref())
            .map(|t| self.size(t, width))
            .max()
            .unwrap_or(0)
    }

    /// Whether validation has anything to check in `ty`'s inline bytes
    /// (a header, `bool`, `char`, option or variant tag; FORMAT.md §4.2).
    pub fn checked(&self, ty: &Ty) -> bool {
        match ty {
            Ty::Prim(p) => p.checked(),
            Ty::String | Ty::List(_) | Ty::Option(_) => true,
            Ty::Tuple(ts) => ts.iter().any(|t| self.checked(t)),
            Ty::Named(n) => match self.def(n) {
                Def::Record(fields) => fields.iter().any(|f| self.checked(&f.ty)),
                Def::Variant(_) | Def::Enum(_) => true,
                Def::Alias(t) => self.checked(t),
            },
        }
    }
}

/// Reads WIT type definitions into a [`Model`].
struct Reader<'r> {
    resolve: &'r Resolve,
    model: Model,
    /// Named types already read: their model name.
    done: HashMap<TypeId, String>,
    /// Named types being read (recursion check).
    visiting: HashSet<TypeId>,
}

impl Reader<'_> {
    /// Reads the named type `id` (and what it uses) into the model; returns
    /// its name.
    fn named(&mut self, id: TypeId) -> Result<String, Error> {
        if let Some(name) = self.done.get(&id) {
            return Ok(name.clone());
        }
        let def = &self.resolve.types[id];
        let name = def
            .name
            .clone()
            .unwrap_or_else(|| "<anonymous>".to_string());
        // `use iface.{t}` makes an alias of the same name in the user's
        // interface: it is the original type, not a new one.
        if let TypeDefKind::Type(Type::Id(target)) = def.kind {
            if self.resolve.types[target].name.as_deref() == Some(name.as_str()) {
                let n = self.named(target)?;
                self.done.insert(id, n.clone());
                return Ok(n);
            }
        }
        if !self.visiting.insert(id) {
            return Err(Error::Recursive { ty: name });
        }
        let parsed = match &def.kind {
            TypeDefKind::Record(r) => Def::Record(
                r.fields
                    .iter()
                    .map(|f| {
                        Ok(Field {
                            name: f.name.clone(),
                            ty: self.ty(&name, &f.ty)?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            ),
            TypeDefKind::Variant(v) => {
                if v.cases.len() > 256 {
                    return Err(Error::TooManyCases {
                        ty: name,
                        cases: v.cases.len(),
                    });
                }
                Def::Variant(
                    v.cases
                        .iter()
                        .map(|c| {
                            Ok(Case {
                                name: c.name.clone(),
                                payload: match &c.ty {
                                    Some(t) => Some(self.ty(&name, t)?),
                                    None => None,
                                },
                            })
                        })
                        .collect::<Result<_, Error>>()?,
                )
            }
            TypeDefKind::Enum(e) => {
                if e.cases.len() > 256 {
                    return Err(Error::TooManyCases {
                        ty: name,
                        cases: e.cases.len(),
                    });
                }
                Def::Enum(e.cases.iter().map(|c| c.name.clone()).collect())
            }
            TypeDefKind::Type(t) => Def::Alias(self.ty(&name, t)?),
            other => Def::Alias(self.anonymous(&name, other)?),
        };
        self.visiting.remove(&id);
        if let Some(&i) = self.model.index.get(&name) {
            return Err(Error::NameClash {
                name: name.clone(),
                first: format!("type `{}`", self.model.types[i].name),
                second: format!("another type `{name}` ({})", owner(self.resolve, def.owner)),
                hint: "; or select one interface",
            });
        }
        self.model
            .index
            .insert(name.clone(), self.model.types.len());
        self.model.types.push(Named {
            name: name.clone(),
            docs: def.docs.contents.clone(),
            def: parsed,
        });
        self.done.insert(id, name.clone());
        Ok(name)
    }

    /// Converts a use of a type inside the named type `within`.
    fn ty(&mut self, within: &str, ty: &Type) -> Result<Ty, Error> {
        Ok(match ty {
            Type::Bool => Ty::Prim(Prim::Bool),
            Type::U8 => Ty::Prim(Prim::U8),
            Type::U16 => Ty::Prim(Prim::U16),
            Type::U32 => Ty::Prim(Prim::U32),
            Type::U64 => Ty::Prim(Prim::U64),
            Type::S8 => Ty::Prim(Prim::S8),
            Type::S16 => Ty::Prim(Prim::S16),
            Type::S32 => Ty::Prim(Prim::S32),
            Type::S64 => Ty::Prim(Prim::S64),
            Type::F32 => Ty::Prim(Prim::F32),
            Type::F64 => Ty::Prim(Prim::F64),
            Type::Char => Ty::Prim(Prim::Char),
            Type::String => Ty::String,
            Type::ErrorContext => {
                return Err(Error::Unsupported {
                    ty: within.to_string(),
                    what: "error-context",
                    hint: "error contexts are handles of the component model; send a string describing the error",
                })
            }
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                if def.name.is_some() {
                    Ty::Named(self.named(*id)?)
                } else {
                    if !self.visiting.insert(*id) {
                        return Err(Error::Recursive {
                            ty: within.to_string(),
                        });
                    }
                    let t = self.anonymous(within, &def.kind)?;
                    self.visiting.remove(id);
                    t
                }
            }
        })
    }

    /// Converts an anonymous (or aliased) structural type.
    fn anonymous(&mut self, within: &str, kind: &TypeDefKind) -> Result<Ty, Error> {
        let unsupported = |what: &'static str, hint: &'static str| Error::Unsupported {
            ty: within.to_string(),
            what,
            hint,
        };
        Ok(match kind {
            TypeDefKind::List(t) => Ty::List(Box::new(self.ty(within, t)?)),
            TypeDefKind::Option(t) => Ty::Option(Box::new(self.ty(within, t)?)),
            TypeDefKind::Tuple(t) => Ty::Tuple(
                t.types
                    .iter()
                    .map(|t| self.ty(within, t))
                    .collect::<Result<_, _>>()?,
            ),
            TypeDefKind::Type(t) => self.ty(within, t)?,
            TypeDefKind::Resource => {
                return Err(unsupported(
                    "a resource",
                    "resources live in one component; pass their data as records instead",
                ))
            }
            TypeDefKind::Handle(_) => {
                return Err(unsupported(
                    "a resource handle (own/borrow)",
                    "handles cannot be shared as bytes; pass an identifier (e.g. a u64) instead",
                ))
            }
            TypeDefKind::Flags(_) => {
                return Err(unsupported(
                    "flags",
                    "use a record of bools, or an integer bit set (u8/u16/u32/u64)",
                ))
            }
            TypeDefKind::Result(_) => {
                return Err(unsupported(
                    "result",
                    "declare a variant with an ok and an error case instead",
                ))
            }
            TypeDefKind::Future(_) | TypeDefKind::Stream(_) => {
                return Err(unsupported(
                    "future/stream",
                    "asynchronous values cannot be stored in a message",
                ))
            }
            TypeDefKind::Map(..) => {
                return Err(unsupported(
                    "map",
                    "use a list of key/value tuples (list<tuple<K, V>>)",
                ))
            }
            TypeDefKind::FixedLengthList(..) => {
                return Err(unsupported(
                    "a fixed-length list",
                    "use a list<T> (or a tuple of T)",
                ))
            }
            TypeDefKind::Record(_)
            | TypeDefKind::Variant(_)
            | TypeDefKind::Enum(_)
            | TypeDefKind::Unknown => {
                return Err(unsupported(
                    "an unnamed or unresolved definition",
                    "give the type a name in an interface",
                ))
            }
        })
    }
}

/// Where a type was defined, for messages.
fn owner(resolve: &Resolve, owner: TypeOwner) -> String {
    match owner {
        TypeOwner::Interface(id) => match &resolve.interfaces[id].name {
            Some(n) => format!("interface `{n}`"),
            None => "an inline interface".to_string(),
        },
        TypeOwner::World(id) => format!("world `{}`", resolve.worlds[id].name),
        TypeOwner::None => "no owner".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(body: &str) -> Result<Model, Error> {
        let wit = format!("package t:t;\ninterface i {{\n{body}\n}}\n");
        Model::parse("t.wit", &wit, &Selection::default())
    }

    #[test]
    fn sizes_follow_format_section_2() -> Result<(), Error> {
        let m = model(
            "record entry { id: u16, tags: list<string>, note: option<string>, ok: bool }
             variant shape { empty, circle(u8), label(string) }
             type ex4 = tuple<option<string>, char, list<u32>>;
             enum color { red, green }",
        )?;
        let entry = Ty::Named("entry".into());
        let sizes: Vec<usize> = Width::ALL.iter().map(|&w| m.size(&entry, w)).collect();
        assert_eq!(sizes, [8, 12, 20]);
        let shape = Ty::Named("shape".into());
        assert_eq!(m.size(&shape, Width::U8), 3);
        assert_eq!(m.size(&shape, Width::U32), 9);
        assert_eq!(m.size(&Ty::Named("ex4".into()), Width::U8), 3 + 4 + 2);
        assert_eq!(m.size(&Ty::Named("color".into()), Width::U16), 1);
        assert!(m.checked(&Ty::Named("color".into())));
        assert!(!m.checked(&Ty::Tuple(vec![Ty::Prim(Prim::U8), Ty::Prim(Prim::F64)])));
        Ok(())
    }

    #[test]
    fn dependencies_come_first() -> Result<(), Error> {
        let m = model("record a { b: b }\nrecord b { x: u8 }")?;
        let names: Vec<&str> = m.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        Ok(())
    }

    #[test]
    fn unsupported_types_are_named() {
        for (body, what) in [
            ("flags f { a, b }\nrecord r { f: f }", "flags"),
            ("record r { x: result<u8, string> }", "result"),
            ("resource res;\nrecord r { h: own<res> }", "resource"),
            ("resource res;", "resource"),
            ("record r { s: stream<u8> }", "future/stream"),
        ] {
            match model(body) {
                Err(Error::Unsupported { what: w, ty, .. }) => {
                    assert!(w.contains(what), "{body}: {w}");
                    assert!(!ty.is_empty());
                }
                other => panic!("{body}: expected Unsupported, got {other:?}"),
            }
        }
    }

    #[test]
    fn used_types_are_the_original_and_renamed_ones_aliases() -> Result<(), Error> {
        let wit = "package t:t;\ninterface a { record r { x: u8 } }\ninterface b { use a.{r, r as q};\nrecord s { r: r, q: q } }";
        let m = Model::parse("t.wit", wit, &Selection::default())?;
        let names: Vec<&str> = m.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["r", "q", "s"]);
        assert_eq!(
            m.get("q").map(|t| &t.def),
            Some(&Def::Alias(Ty::Named("r".into())))
        );
        assert_eq!(m.size(&Ty::Named("s".into()), Width::U8), 2);
        Ok(())
    }

    #[test]
    fn selection_by_type_takes_what_it_uses() -> Result<(), Error> {
        let wit =
            "package t:t;\ninterface i { record a { b: b }\nrecord b { x: u8 }\nflags f { x }\n}";
        let sel = Selection {
            interface: Some("i".into()),
            types: vec!["a".into()],
        };
        let m = Model::parse("t.wit", wit, &sel)?;
        assert_eq!(m.types.len(), 2);
        let missing = Selection {
            interface: Some("nope".into()),
            types: vec![],
        };
        assert!(matches!(
            Model::parse("t.wit", wit, &missing),
            Err(Error::NoSuchInterface { .. })
        ));
        Ok(())
    }
}
