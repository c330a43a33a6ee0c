//! `#[derive(Flat)]` for [flat-layout](https://docs.rs/flat-layout) records
//! (structs with named fields) and variants (enums).
//!
//! For a struct `Name`, the derive implements `flat_layout::Flat` with the
//! fields packed in declaration order, and generates `NameView<'a, I>`, a
//! `Copy` view with one accessor method per field (returning the field's view:
//! integers by value, `&'a str`, `ListView`, `Option<..>`, nested record
//! views) and a `Debug` that prints `Name { field: value, .. }`.
//!
//! It also generates `NameBuilder<'p, 'b, I>`, which writes a `Name` in place
//! field by field (one method per field returning its `FieldSlot`), and
//! implements `flat_layout::FlatRecord` to reach it from
//! `Builder::record`, `ListBuilder::push_record` and `FieldSlot::record`.
//!
//! For an enum `Name`, the layout is a tag byte (the case index in
//! declaration order) followed by the case's fields, zero-padded to the
//! largest case; `NameView<'a, I>` is an enum with the same cases holding the
//! field views (plus one hidden, uninhabited case that carries the type
//! parameters). It also generates `NameBuilder<'s, 'b, I>`, which writes one
//! case in place (one snake_case method per case: a case without payload is
//! written by its method, a case with one unnamed field returns the
//! `FieldSlot` of its payload, a case with named or several fields returns a
//! `Name<Case>Builder` with one slot per field), and implements
//! `flat_layout::FlatVariant` to reach it from `FieldSlot::variant`,
//! `Builder::variant` and `ListBuilder::push_variant`.
//!
//! Generic types are not supported.
//!
//! The generated code names the crate `::flat_layout`. Where it is reached
//! through another crate (`shm_guest::flat_layout`), say so:
//! `#[flat(crate = "shm_guest::flat_layout")]`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields, Ident};

/// Derives `flat_layout::Flat` and a view type `<Name>View<'a, I>`.
#[proc_macro_derive(Flat, attributes(flat))]
pub fn derive_flat(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let expanded = crate_path(&input).and_then(|path| {
        let tokens = expand(&input)?;
        Ok(match path {
            Some(path) => renamed(tokens, &quote!(#path)),
            None => tokens,
        })
    });
    match expanded {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The path given by `#[flat(crate = "...")]`, if any.
fn crate_path(input: &DeriveInput) -> syn::Result<Option<syn::Path>> {
    let mut path = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("flat")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                path = Some(lit.parse::<syn::Path>()?);
                Ok(())
            } else {
                Err(meta.error("expected `crate = \"path::to::flat_layout\"`"))
            }
        })?;
    }
    Ok(path)
}

/// `tokens` with every `::flat_layout` replaced by `path`.
fn renamed(tokens: TokenStream2, path: &TokenStream2) -> TokenStream2 {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream2::new();
    let mut i = 0;
    while i < trees.len() {
        let is_colon = |t: &TokenTree| matches!(t, TokenTree::Punct(p) if p.as_char() == ':');
        if i + 2 < trees.len()
            && is_colon(&trees[i])
            && is_colon(&trees[i + 1])
            && matches!(&trees[i + 2], TokenTree::Ident(id) if id == "flat_layout")
        {
            out.extend(path.clone());
            i += 3;
            continue;
        }
        match &trees[i] {
            TokenTree::Group(g) => {
                let mut group = proc_macro2::Group::new(g.delimiter(), renamed(g.stream(), path));
                group.set_span(g.span());
                out.extend([TokenTree::Group(group)]);
            }
            other => out.extend([other.clone()]),
        }
        i += 1;
    }
    out
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Flat)] does not support generic parameters or where clauses; \
             derive it on a concrete type",
        ));
    }
    match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => Ok(expand_record(input, fields)),
            Fields::Unit => Ok(expand_record(input, &syn::parse_quote!({}))),
            Fields::Unnamed(_) => Err(syn::Error::new_spanned(
                &input.ident,
                "#[derive(Flat)] needs named fields (a record); use a struct with named fields or a tuple type",
            )),
        },
        Data::Enum(data) => expand_enum(input, data),
        Data::Union(_) => Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Flat)] does not support unions; use a struct or an enum",
        )),
    }
}

/// `Cons<<A as Flat>::Repr, Cons<.., Nil>>` for the given field types.
fn repr_of(types: &[&syn::Type]) -> TokenStream2 {
    let mut repr = quote!(::flat_layout::Nil);
    for ty in types.iter().rev() {
        repr = quote!(::flat_layout::Cons<<#ty as ::flat_layout::Flat>::Repr, #repr>);
    }
    repr
}

/// Destructures a `(a, (b, ()))` repr view into `let` bindings named `names`.
fn destructure(value: TokenStream2, names: &[Ident]) -> TokenStream2 {
    let rest = Ident::new("__flat_rest", Span::mixed_site());
    let steps = names.iter().map(|n| quote!(let (#n, #rest) = #rest;));
    quote! {
        let #rest = #value;
        #(#steps)*
        let () = #rest;
    }
}

/// Statements encoding `fields` (expressions of type `&T`) one after the
/// other starting at `at`.
fn encode_fields(fields: &[(TokenStream2, &syn::Type)], at: &Ident) -> TokenStream2 {
    let steps = fields.iter().map(|(expr, ty)| {
        quote! {
            <#ty as ::flat_layout::Flat>::encode(#expr, enc, #at)?;
            #at += ::flat_layout::inline_size::<#ty, I>();
        }
    });
    quote!(#(#steps)*)
}

fn expand_record(input: &DeriveInput, fields: &syn::FieldsNamed) -> TokenStream2 {
    let name = &input.ident;
    let vis = &input.vis;
    let view = format_ident!("{}View", name);
    let names: Vec<Ident> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.clone())
        .collect();
    let types: Vec<&syn::Type> = fields.named.iter().map(|f| &f.ty).collect();
    let repr = repr_of(&types);
    let name_str = name.to_string();
    let names_str = names.iter().map(|n| n.to_string());
    let doc = format!("Zero-copy view of a validated [`{name}`], generated by `#[derive(Flat)]`.");
    let at = Ident::new("__flat_at", Span::mixed_site());
    let encode = encode_fields(
        &names
            .iter()
            .zip(&types)
            .map(|(n, ty)| (quote!(&self.#n), *ty))
            .collect::<Vec<_>>(),
        &at,
    );
    let take = destructure(quote!(repr), &names);
    let accessors = names.iter().zip(&types).map(|(n, ty)| {
        let doc = format!("The `{n}` field.");
        quote! {
            #[doc = #doc]
            #[inline]
            pub fn #n(&self) -> <#ty as ::flat_layout::Flat>::View<'a, I> {
                self.#n
            }
        }
    });

    let builder = format_ident!("{}Builder", name);
    let builder_doc = format!(
        "Writes a [`{name}`] in place, field by field, generated by `#[derive(Flat)]`: \
         each method returns the field's `FieldSlot` (see `flat_layout::FlatRecord`)."
    );
    let slots = names.iter().zip(&types).enumerate().map(|(k, (n, ty))| {
        let doc = format!("The slot of the `{n}` field.");
        let before = &types[..k];
        quote! {
            #[doc = #doc]
            #[inline]
            pub fn #n(&mut self) -> ::flat_layout::FieldSlot<'_, 'b, <#ty as ::flat_layout::Flat>::Repr, I> {
                self.0.field::<<#ty as ::flat_layout::Flat>::Repr>(
                    #k,
                    0 #( + ::flat_layout::inline_size::<#before, I>() )*,
                )
            }
        }
    });

    quote! {
        #[doc = #builder_doc]
        #vis struct #builder<'p, 'b, I: ::flat_layout::Index>(
            ::flat_layout::RecordBuilder<'p, 'b, I>,
        );

        impl<'p, 'b, I: ::flat_layout::Index> #builder<'p, 'b, I> {
            #(#slots)*
        }

        impl ::flat_layout::FlatRecord for #name {
            type Builder<'p, 'b: 'p, I: ::flat_layout::Index> = #builder<'p, 'b, I>;

            #[inline]
            fn builder<'p, 'b: 'p, I: ::flat_layout::Index>(
                record: ::flat_layout::RecordBuilder<'p, 'b, I>,
            ) -> Self::Builder<'p, 'b, I> {
                #builder(record)
            }
        }

        #[doc = #doc]
        #[derive(Clone, Copy)]
        #vis struct #view<'a, I: ::flat_layout::Index> {
            #( #names: <#types as ::flat_layout::Flat>::View<'a, I>, )*
            _marker: ::core::marker::PhantomData<(&'a (), fn() -> I)>,
        }

        impl<'a, I: ::flat_layout::Index> #view<'a, I> {
            #(#accessors)*
        }

        impl<'a, I: ::flat_layout::Index> ::core::fmt::Debug for #view<'a, I> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_str)
                    #( .field(#names_str, &self.#names) )*
                    .finish()
            }
        }

        impl ::flat_layout::Flat for #name {
            type Repr = #repr;
            type View<'a, I: ::flat_layout::Index> = #view<'a, I>;

            #[inline]
            fn wrap_view<'a, I: ::flat_layout::Index>(
                repr: <Self::Repr as ::flat_layout::Flat>::View<'a, I>,
            ) -> Self::View<'a, I> {
                #take
                #view {
                    #( #names: <#types as ::flat_layout::Flat>::wrap_view::<I>(#names), )*
                    _marker: ::core::marker::PhantomData,
                }
            }

            #[inline]
            fn encode<I: ::flat_layout::Index>(
                &self,
                enc: &mut ::flat_layout::Encoder<'_, I>,
                pos: usize,
            ) -> ::core::result::Result<(), ::flat_layout::BuildError> {
                #[allow(unused_mut)]
                let mut #at = pos;
                #encode
                let _ = #at;
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// Rust keywords that cannot name a method without `r#`.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// The builder method of an enum case: `FrameReady` -> `frame_ready`,
/// `Type` -> `r#type`, `Self_` -> `self_`.
fn case_method(case: &Ident) -> Ident {
    let name = case.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let mut snake = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let after_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let before_lower = i > 0
                && chars[i - 1].is_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if (after_lower || before_lower) && !snake.ends_with('_') {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
        } else {
            snake.push(c);
        }
    }
    match snake.as_str() {
        "self" | "super" | "crate" | "_" => format_ident!("{}_", snake, span = case.span()),
        k if KEYWORDS.contains(&k) => Ident::new_raw(&snake, case.span()),
        _ => Ident::new(&snake, case.span()),
    }
}

fn expand_enum(input: &DeriveInput, data: &syn::DataEnum) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let vis = &input.vis;
    let view = format_ident!("{}View", name);
    if data.variants.len() > 256 {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Flat)] supports at most 256 enum cases (the tag is one byte)",
        ));
    }
    let at = Ident::new("__flat_at", Span::mixed_site());

    let mut cases_ty = quote!(::flat_layout::NoCase);
    let mut view_variants = Vec::new();
    let mut wrap_arms = Vec::new();
    let mut encode_arms = Vec::new();
    let builder = format_ident!("{}Builder", name);
    let mut case_methods = Vec::new();
    let mut case_builders = Vec::new();
    let mut methods_seen: Vec<(String, &Ident)> = Vec::new();
    // The type-level index of the current case (`CaseAt`).
    let mut case_index = quote!(::flat_layout::CaseZero);

    for (tag, variant) in data.variants.iter().enumerate() {
        let tag_u8 = u8::try_from(tag).unwrap_or(u8::MAX);
        let vname = &variant.ident;
        let types: Vec<&syn::Type> = variant.fields.iter().map(|f| &f.ty).collect();
        let binds: Vec<Ident> = (0..types.len())
            .map(|i| format_ident!("__flat_f{}", i))
            .collect();
        let take = destructure(quote!(payload), &binds);
        let wrapped = binds
            .iter()
            .zip(&types)
            .map(|(b, ty)| quote!(<#ty as ::flat_layout::Flat>::wrap_view::<I>(#b)))
            .collect::<Vec<_>>();
        let encode = encode_fields(
            &binds
                .iter()
                .zip(&types)
                .map(|(b, ty)| (quote!(#b), *ty))
                .collect::<Vec<_>>(),
            &at,
        );
        let (view_variant, construct, pattern) = match &variant.fields {
            Fields::Named(named) => {
                let fnames: Vec<&Ident> = named
                    .named
                    .iter()
                    .filter_map(|f| f.ident.as_ref())
                    .collect();
                (
                    quote!(#vname { #( #fnames: <#types as ::flat_layout::Flat>::View<'a, I>, )* }),
                    quote!(#view::#vname { #( #fnames: #wrapped, )* }),
                    quote!(#name::#vname { #( #fnames: #binds, )* }),
                )
            }
            Fields::Unnamed(_) => (
                quote!(#vname( #( <#types as ::flat_layout::Flat>::View<'a, I>, )* )),
                quote!(#view::#vname( #( #wrapped, )* )),
                quote!(#name::#vname( #( #binds, )* )),
            ),
            Fields::Unit => (quote!(#vname), quote!(#view::#vname), quote!(#name::#vname)),
        };
        view_variants.push(view_variant);

        let method = case_method(vname);
        let method_str = method.to_string();
        let method_str = method_str
            .strip_prefix("r#")
            .unwrap_or(&method_str)
            .to_string();
        if let Some((_, first)) = methods_seen.iter().find(|(m, _)| *m == method_str) {
            return Err(syn::Error::new_spanned(
                vname,
                format!(
                    "#[derive(Flat)]: cases `{first}` and `{vname}` get the same builder method `{method_str}`; rename one"
                ),
            ));
        }
        methods_seen.push((method_str, vname));
        let name_str = name.to_string();
        match &variant.fields {
            _ if types.is_empty() => {
                let doc = format!("Writes case `{vname}` (no payload).");
                case_methods.push(quote! {
                    #[doc = #doc]
                    #[inline]
                    pub fn #method(self) -> ::core::result::Result<(), ::flat_layout::BuildError> {
                        self.0.case::<#case_index>().map(|_| ())
                    }
                });
            }
            Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => {
                let ty = types[0];
                let doc = format!(
                    "Writes case `{vname}`'s tag and returns the slot of its payload, to write in place."
                );
                case_methods.push(quote! {
                    #[doc = #doc]
                    #[inline]
                    pub fn #method(
                        self,
                    ) -> ::core::result::Result<
                        ::flat_layout::FieldSlot<'s, 'b, <#ty as ::flat_layout::Flat>::Repr, I>,
                        ::flat_layout::BuildError,
                    > {
                        ::core::result::Result::Ok(self.0.case::<#case_index>()?.first())
                    }
                });
            }
            fields => {
                let case_builder = format_ident!("{}{}Builder", name, vname);
                let field_names: Vec<Ident> = match fields {
                    Fields::Named(named) => {
                        named.named.iter().filter_map(|f| f.ident.clone()).collect()
                    }
                    _ => (0..types.len()).map(|i| format_ident!("f{}", i)).collect(),
                };
                let slots = field_names.iter().zip(&types).enumerate().map(|(k, (n, ty))| {
                    let doc = format!("The slot of the `{n}` field.");
                    let before = &types[..k];
                    quote! {
                        #[doc = #doc]
                        #[inline]
                        pub fn #n(&mut self) -> ::flat_layout::FieldSlot<'_, 'b, <#ty as ::flat_layout::Flat>::Repr, I> {
                            self.0.field::<<#ty as ::flat_layout::Flat>::Repr>(
                                #k,
                                0 #( + ::flat_layout::inline_size::<#before, I>() )*,
                            )
                        }
                    }
                });
                let builder_doc = format!(
                    "Writes the fields of case `{vname}` of a [`{name_str}`] in place, generated by `#[derive(Flat)]`."
                );
                case_builders.push(quote! {
                    #[doc = #builder_doc]
                    #vis struct #case_builder<'s, 'b, I: ::flat_layout::Index>(
                        ::flat_layout::RecordBuilder<'s, 'b, I>,
                    );

                    impl<'s, 'b, I: ::flat_layout::Index> #case_builder<'s, 'b, I> {
                        #(#slots)*
                    }
                });
                let doc =
                    format!("Writes case `{vname}`'s tag and returns the builder of its fields.");
                case_methods.push(quote! {
                    #[doc = #doc]
                    #[inline]
                    pub fn #method(
                        self,
                    ) -> ::core::result::Result<#case_builder<'s, 'b, I>, ::flat_layout::BuildError> {
                        ::core::result::Result::Ok(#case_builder(self.0.case::<#case_index>()?.fields()?))
                    }
                });
            }
        }
        case_index = quote!(::flat_layout::CaseNext<#case_index>);

        // Case `tag` of the view is `Later^tag(Here(payload))`.
        let mut pat = quote!(::flat_layout::Either::Here(payload));
        for _ in 0..tag {
            pat = quote!(::flat_layout::Either::Later(#pat));
        }
        wrap_arms.push(quote!(#pat => { #take #construct }));

        encode_arms.push(quote! {
            #pattern => {
                <u8 as ::flat_layout::Flat>::encode(&#tag_u8, enc, pos)?;
                #[allow(unused_mut)]
                let mut #at = pos + 1;
                #encode
                enc.pad(#at, (pos + 1 + max_payload).saturating_sub(#at))?;
            }
        });
    }
    for variant in data.variants.iter().rev() {
        let types: Vec<&syn::Type> = variant.fields.iter().map(|f| &f.ty).collect();
        let payload = repr_of(&types);
        cases_ty = quote!(::flat_layout::Case<#payload, #cases_ty>);
    }
    let mut never = quote!(::flat_layout::Either::Later(never));
    for _ in 1..data.variants.len() {
        never = quote!(::flat_layout::Either::Later(#never));
    }
    if data.variants.is_empty() {
        never = quote!(never);
    }
    let doc = format!("Zero-copy view of a validated [`{name}`], generated by `#[derive(Flat)]`.");
    let builder_doc = format!(
        "Writes one case of a [`{name}`] in place, generated by `#[derive(Flat)]`: \
         one method per case (see `flat_layout::FlatVariant`)."
    );

    Ok(quote! {
        #[doc = #builder_doc]
        #vis struct #builder<'s, 'b, I: ::flat_layout::Index>(
            ::flat_layout::FieldSlot<'s, 'b, <#name as ::flat_layout::Flat>::Repr, I>,
        );

        impl<'s, 'b, I: ::flat_layout::Index> #builder<'s, 'b, I> {
            #(#case_methods)*
        }

        #(#case_builders)*

        impl ::flat_layout::FlatVariant for #name {
            type Builder<'s, 'b: 's, I: ::flat_layout::Index> = #builder<'s, 'b, I>;

            #[inline]
            fn builder<'s, 'b: 's, I: ::flat_layout::Index>(
                slot: ::flat_layout::FieldSlot<'s, 'b, <Self as ::flat_layout::Flat>::Repr, I>,
            ) -> Self::Builder<'s, 'b, I> {
                #builder(slot)
            }
        }

        #[doc = #doc]
        #[derive(Clone, Copy, Debug)]
        #vis enum #view<'a, I: ::flat_layout::Index> {
            #( #view_variants, )*
            #[doc(hidden)]
            __Marker(::core::marker::PhantomData<(&'a (), fn() -> I)>, ::flat_layout::Never),
        }

        impl ::flat_layout::Flat for #name {
            type Repr = ::flat_layout::Variant<#cases_ty>;
            type View<'a, I: ::flat_layout::Index> = #view<'a, I>;

            #[inline]
            fn wrap_view<'a, I: ::flat_layout::Index>(
                repr: <Self::Repr as ::flat_layout::Flat>::View<'a, I>,
            ) -> Self::View<'a, I> {
                match repr {
                    #( #wrap_arms )*
                    #never => match never {},
                }
            }

            #[inline]
            fn encode<I: ::flat_layout::Index>(
                &self,
                enc: &mut ::flat_layout::Encoder<'_, I>,
                pos: usize,
            ) -> ::core::result::Result<(), ::flat_layout::BuildError> {
                let max_payload =
                    <#cases_ty as ::flat_layout::Cases>::MAX_PAYLOAD.get::<I>();
                let _ = max_payload;
                match self {
                    #( #encode_arms )*
                }
                #[allow(unreachable_code)]
                ::core::result::Result::Ok(())
            }
        }
    })
}
