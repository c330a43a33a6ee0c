//! WIT (kebab-case) names as Rust and C identifiers.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Rust keywords (2021 edition, strict and reserved) that need `r#`.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// C keywords and names the generated header must not shadow.
const C_KEYWORDS: &[&str] = &[
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
];

/// A Rust type or case name: `frame-info` -> `FrameInfo`.
pub fn rust_type(wit: &str) -> String {
    let name = wit.to_upper_camel_case();
    if name == "Self" {
        "Self_".to_string()
    } else {
        name
    }
}

/// A Rust field name: `frame-id` -> `frame_id`, `type` -> `r#type`.
pub fn rust_field(wit: &str) -> String {
    let name = wit.to_snake_case();
    match name.as_str() {
        "self" | "crate" | "super" | "_" => format!("{name}_"),
        n if RUST_KEYWORDS.contains(&n) => format!("r#{name}"),
        _ => name,
    }
}

/// A C identifier part: `frame-id` -> `frame_id`; C keywords get a `_`.
pub fn c_ident(wit: &str) -> String {
    let name = wit.to_snake_case();
    if C_KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// A C macro name part: `frame-id` -> `FRAME_ID`.
pub fn c_macro(wit: &str) -> String {
    wit.to_shouty_snake_case()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(rust_type("kitchen-sink"), "KitchenSink");
        assert_eq!(rust_field("frame-id"), "frame_id");
        assert_eq!(rust_field("type"), "r#type");
        assert_eq!(rust_field("self"), "self_");
        assert_eq!(c_ident("int"), "int_");
        assert_eq!(c_ident("pixel-count"), "pixel_count");
        assert_eq!(c_macro("pixel-count"), "PIXEL_COUNT");
    }
}
