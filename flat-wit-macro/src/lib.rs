//! `generate!`: the Rust types of a WIT package's named types, each with
//! `#[derive(Flat)]` (so with a validated view `NameView<'a, I>` and, for
//! records, an in-place builder `NameBuilder<'p, 'b, I>`), generated at
//! compile time by [flat-wit](https://docs.rs/flat-wit).
//!
//! ```ignore
//! mod messages {
//!     flat_wit_macro::generate!({
//!         path: "wit",                       // relative to the crate's Cargo.toml
//!         interface: "frames",               // optional: one interface
//!         types: ["frame"],                  // optional: these and what they use
//!         flat_crate: "shm_guest::flat_layout", // optional: default ::flat_layout
//!     });
//! }
//! let view = flat_layout::validate::<messages::Frame, u32>(&block)?;
//! ```
//!
//! The crate using it needs `flat-layout` with its `derive` feature (or the
//! crate named by `flat_crate`). Cargo rebuilds when a `.wit` file of the
//! package changes. The same code comes from `flat_wit::rust::generate_file`
//! in a `build.rs`, or the `flat-wit rust` command.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::Span;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{braced, bracketed, Ident, LitStr, Token};

/// Generates Rust types with `#[derive(Flat)]` from a WIT package; see the
/// crate documentation for the arguments.
#[proc_macro]
pub fn generate(input: TokenStream) -> TokenStream {
    match expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The macro's arguments.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    path: Option<String>,
    interface: Option<String>,
    types: Vec<String>,
    flat_crate: Option<String>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let inner: ParseStream<'_> = if input.peek(syn::token::Brace) {
            braced!(content in input);
            &content
        } else {
            input
        };
        let mut args = Args::default();
        while !inner.is_empty() {
            let key: Ident = inner.parse()?;
            inner.parse::<Token![:]>()?;
            match key.to_string().as_str() {
                "path" => args.path = Some(inner.parse::<LitStr>()?.value()),
                "interface" => args.interface = Some(inner.parse::<LitStr>()?.value()),
                "flat_crate" => args.flat_crate = Some(inner.parse::<LitStr>()?.value()),
                "types" => {
                    let list;
                    bracketed!(list in inner);
                    let names = Punctuated::<LitStr, Token![,]>::parse_terminated(&list)?;
                    args.types = names.iter().map(LitStr::value).collect();
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                        "unknown argument `{other}`; expected path, interface, types or flat_crate"
                    ),
                    ))
                }
            }
            if inner.is_empty() {
                break;
            }
            inner.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the arguments"));
        }
        Ok(args)
    }
}

fn expand(input: proc_macro2::TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    let args = Args::parse.parse2(input)?;
    let error = |msg: String| syn::Error::new(Span::call_site(), msg);
    let base = std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .map_err(|_| error("CARGO_MANIFEST_DIR is not set (run through cargo)".into()))?;
    let path = base.join(args.path.as_deref().unwrap_or("wit"));
    let selection = flat_wit::Selection {
        interface: args.interface,
        types: args.types,
    };
    let model = flat_wit::Model::load(&path, &selection).map_err(|e| error(e.to_string()))?;
    let mut options = flat_wit::rust::Options::default();
    if let Some(krate) = args.flat_crate {
        options.flat_crate = krate;
    }
    let mut code = flat_wit::rust::generate(&model, &options).map_err(|e| error(e.to_string()))?;
    // Make cargo rebuild when the WIT changes.
    for file in wit_files(&path) {
        if let Some(file) = file.to_str() {
            code.push_str(&format!("const _: &[u8] = include_bytes!({file:?});\n"));
        }
    }
    code.parse()
        .map_err(|e| error(format!("flat-wit generated code that does not parse: {e}")))
}

/// The `.wit` files of a package directory (and its `deps/`), or the file.
fn wit_files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if path.is_file() {
        out.push(path.to_path_buf());
        return out;
    }
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                dirs.push(entry);
            } else if entry.extension().is_some_and(|e| e == "wit") {
                out.push(entry);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_with_and_without_braces() -> syn::Result<()> {
        let args: Args = syn::parse_str(
            r#"{ path: "wit", interface: "frames", types: ["frame", "entry"], flat_crate: "x::flat_layout", }"#,
        )?;
        assert_eq!(
            args,
            Args {
                path: Some("wit".into()),
                interface: Some("frames".into()),
                types: vec!["frame".into(), "entry".into()],
                flat_crate: Some("x::flat_layout".into()),
            }
        );
        let bare: Args = syn::parse_str(r#"path: "w""#)?;
        assert_eq!(bare.path.as_deref(), Some("w"));
        assert!(syn::parse_str::<Args>(r#"{ colour: "red" }"#).is_err());
        assert!(syn::parse_str::<Args>(r#"{ path: 3 }"#).is_err());
        Ok(())
    }

    #[test]
    fn unsupported_wit_is_a_compile_error_naming_the_type() {
        let input: proc_macro2::TokenStream = r#"{ path: "tests/wit", interface: "other" }"#
            .parse()
            .expect("tokens");
        let err = expand(input)
            .expect_err("flags are unsupported")
            .to_string();
        assert!(err.contains("`unused`") && err.contains("flags"), "{err}");
        let tracked = expand(
            r#"{ path: "tests/wit", interface: "frames" }"#
                .parse()
                .expect("tokens"),
        )
        .expect("expands")
        .to_string();
        assert!(tracked.contains("include_bytes"), "{tracked}");
    }
}
