//! Shared by the integration tests: the generated Rust types of
//! `tests/wit`, validation and rendering through them, the vector file and
//! the C test driver.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use flat_layout::{validate, Index};
use flat_wit::{Model, Selection, Width};

/// The Rust types generated from `tests/wit` (kept up to date by
/// `rust_codegen::generated_code_is_up_to_date`).
pub mod gen {
    include!("../generated/messages.rs");
}

use gen::*;

pub const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wit");
pub const GENERATED_RS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated/messages.rs");
pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/messages.txt");
pub const DRIVER_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/driver.c");

/// The WIT types the vectors and the driver cover, in a fixed order (their
/// index is the type byte of the fuzz input).
pub const TYPES: &[&str] = &[
    "strings",
    "frame",
    "entry",
    "example4",
    "label",
    "shape",
    "shapes",
    "nested",
    "color",
    "kitchen-sink",
];

pub fn model() -> Model {
    Model::load(Path::new(WIT_DIR), &Selection::default()).expect("tests/wit loads")
}

/// Whether flat-layout accepts `buf` as a `ty` at width `w`.
pub fn rust_valid(ty: &str, w: Width, buf: &[u8]) -> bool {
    fn v<T: flat_layout::Flat + ?Sized>(w: Width, buf: &[u8]) -> bool {
        match w {
            Width::U8 => validate::<T, u8>(buf).is_ok(),
            Width::U16 => validate::<T, u16>(buf).is_ok(),
            Width::U32 => validate::<T, u32>(buf).is_ok(),
        }
    }
    match ty {
        "strings" => v::<Strings>(w, buf),
        "frame" => v::<Frame>(w, buf),
        "entry" => v::<Entry>(w, buf),
        "example4" => v::<Example4>(w, buf),
        "label" => v::<Label>(w, buf),
        "shape" => v::<Shape>(w, buf),
        "shapes" => v::<Shapes>(w, buf),
        "nested" => v::<Nested>(w, buf),
        "color" => v::<Color>(w, buf),
        "kitchen-sink" => v::<KitchenSink>(w, buf),
        other => panic!("unknown test type {other}"),
    }
}

// ---------------------------------------------------------------- rendering
// One line per value, the same text the C driver prints with the generated
// accessors: strings as `s:<hex>`, byte lists as `b:<hex>`, floats as bits.

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn s(x: &str) -> String {
    format!("s:{}", hex(x.as_bytes()))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", it.map(s).collect::<Vec<_>>().join(" "))
}

fn frame<I: Index>(f: &FrameView<'_, I>) -> String {
    format!(
        "{{{} {} {} b:{}}}",
        f.width(),
        f.height(),
        strings(f.tags().iter()),
        hex(f.pixels().as_bytes())
    )
}

fn opt_str(o: Option<&str>) -> String {
    match o {
        Some(x) => format!("some({})", s(x)),
        None => "none".to_string(),
    }
}

fn shape<I: Index>(v: &ShapeView<'_, I>) -> String {
    match v {
        ShapeView::Empty => "#0".to_string(),
        ShapeView::Circle(r) => format!("#1({r})"),
        ShapeView::Label(l) => format!("#2({{{}}})", s(l.text())),
        ShapeView::__Marker(_, never) => match *never {},
    }
}

fn color<I: Index>(v: &ColorView<'_, I>) -> String {
    match v {
        ColorView::Red => "#0",
        ColorView::Green => "#1",
        ColorView::Blue => "#2",
        ColorView::__Marker(_, never) => match *never {},
    }
    .to_string()
}

fn render_at<I: Index>(ty: &str, buf: &[u8]) -> Option<String> {
    Some(match ty {
        "strings" => strings(validate::<Strings, I>(buf).ok()?.iter()),
        "frame" => frame(&validate::<Frame, I>(buf).ok()?),
        "entry" => {
            let e = validate::<Entry, I>(buf).ok()?;
            format!(
                "{{{} {} {} {}}}",
                e.id(),
                strings(e.tags().iter()),
                opt_str(e.note()),
                u8::from(e.ok())
            )
        }
        "example4" => {
            let (o, c, l) = validate::<Example4, I>(buf).ok()?;
            let nums: Vec<String> = l.iter().map(|n| n.to_string()).collect();
            format!("({} {} [{}])", opt_str(o), u32::from(c), nums.join(" "))
        }
        "label" => format!("{{{}}}", s(validate::<Label, I>(buf).ok()?.text())),
        "shape" => shape(&validate::<Shape, I>(buf).ok()?),
        "shapes" => {
            let l = validate::<Shapes, I>(buf).ok()?;
            format!(
                "[{}]",
                l.iter().map(|v| shape(&v)).collect::<Vec<_>>().join(" ")
            )
        }
        "nested" => {
            let l = validate::<Nested, I>(buf).ok()?;
            let parts: Vec<String> = l
                .iter()
                .map(|b| format!("b:{}", hex(b.as_bytes())))
                .collect();
            format!("[{}]", parts.join(" "))
        }
        "color" => color(&validate::<Color, I>(buf).ok()?),
        "kitchen-sink" => {
            let k = validate::<KitchenSink, I>(buf).ok()?;
            let (n, text) = k.pair();
            let frames: Vec<String> = k.frames().iter().map(|f| frame(&f)).collect();
            let words: Vec<String> = k.words().iter().map(opt_str).collect();
            let ty = match k.r#type() {
                Some(chars) => format!(
                    "some([{}])",
                    chars
                        .iter()
                        .map(|c| u32::from(c).to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                None => "none".to_string(),
            };
            format!(
                "{{{} {} {} {} {} {} {} {} f:{:08x} f:{:016x} ({} {}) {} [{}] [{}] {}}}",
                u8::from(k.flag()),
                u32::from(k.letter()),
                color(&k.color()),
                k.small(),
                k.wide(),
                k.medium(),
                k.big(),
                k.huge(),
                k.ratio().to_bits(),
                k.precise().to_bits(),
                n,
                s(text),
                match k.maybe() {
                    Some(v) => format!("some({})", shape(&v)),
                    None => "none".to_string(),
                },
                frames.join(" "),
                words.join(" "),
                ty
            )
        }
        other => panic!("unknown test type {other}"),
    })
}

/// The rendering of a valid `ty` at `w`, `None` if invalid.
pub fn render(ty: &str, w: Width, buf: &[u8]) -> Option<String> {
    match w {
        Width::U8 => render_at::<u8>(ty, buf),
        Width::U16 => render_at::<u16>(ty, buf),
        Width::U32 => render_at::<u32>(ty, buf),
    }
}

// ---------------------------------------------------------------- vectors

/// One conformance vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vector {
    pub ty: String,
    pub width: Width,
    pub valid: bool,
    pub bytes: Vec<u8>,
    pub note: String,
}

impl Vector {
    pub fn line(&self) -> String {
        let bytes = if self.bytes.is_empty() {
            "-".to_string()
        } else {
            hex(&self.bytes)
        };
        format!(
            "{} {} {} {} {}",
            self.ty,
            self.width.name(),
            if self.valid { "valid" } else { "invalid" },
            bytes,
            self.note
        )
    }
}

/// Reads the vector file (`#` lines are comments).
pub fn read_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS).expect("tests/vectors/messages.txt");
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(5, ' ');
            let mut next = || parts.next().unwrap_or_default();
            let ty = next().to_string();
            let width = Width::parse(next()).expect("width");
            let valid = match next() {
                "valid" => true,
                "invalid" => false,
                other => panic!("verdict {other}"),
            };
            let bytes = unhex(next());
            Vector {
                ty,
                width,
                valid,
                bytes,
                note: next().to_string(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------- the C driver

/// The C driver: the generated header and `tests/c/driver.c` compiled once
/// per test binary with the system C compiler (with AddressSanitizer and
/// UBSan where available); `None` if there is no C compiler.
pub fn driver() -> Option<&'static Path> {
    static DRIVER: OnceLock<Option<PathBuf>> = OnceLock::new();
    DRIVER.get_or_init(build_driver).as_deref()
}

fn build_driver() -> Option<PathBuf> {
    // Without a prefix: the driver names `frame_u8_validate` and so on.
    let header = flat_wit::c::generate(
        &model(),
        &flat_wit::c::Options {
            prefix: Some(String::new()),
            ..flat_wit::c::Options::default()
        },
    )
    .expect("C header");
    compile_c(
        "flat-wit-driver",
        &[("messages.h", header)],
        Path::new(DRIVER_C),
    )
}

/// Compiles the C program `source` with `headers` (file name, text) beside
/// it, into a directory `name` under the tests' target directory, with the
/// system C compiler (`CC`, `cc` by default) as C99, `-Wall -Wextra
/// -pedantic -Werror`, under AddressSanitizer and UBSan where the compiler
/// has them; `None` (the test is skipped, and says so) if there is no C
/// compiler.
pub fn compile_c(name: &str, headers: &[(&str, String)], source: &Path) -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("SKIPPED: no C compiler `{cc}` found (set CC); the C tests did not run");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    for (file, text) in headers {
        std::fs::write(dir.join(file), text).expect("write header");
    }
    let exe = dir.join(
        source
            .file_stem()
            .expect("a C source file name")
            .to_string_lossy()
            .into_owned(),
    );
    let compile = |sanitize: bool| {
        let mut cmd = Command::new(&cc);
        cmd.args([
            "-std=c99",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
        ]);
        if sanitize {
            cmd.arg("-fsanitize=address,undefined")
                .arg("-fno-sanitize-recover=all");
        }
        cmd.arg("-I").arg(&dir).arg(source).arg("-o").arg(&exe);
        cmd.output().expect("run the C compiler")
    };
    let out = compile(true);
    if !out.status.success() {
        let plain = compile(false);
        assert!(
            plain.status.success(),
            "{} does not compile:\n{}",
            source.display(),
            String::from_utf8_lossy(&plain.stderr)
        );
        eprintln!(
            "note: compiled without sanitizers ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Some(exe)
}

/// Runs the driver with `input` on standard input; returns standard output.
pub fn run_driver(exe: &Path, input: &[u8]) -> String {
    let dir = exe.parent().expect("driver dir");
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let file = dir.join(format!("input-{}-{run}", std::process::id()));
    std::fs::write(&file, input).expect("write input");
    let out = Command::new(exe)
        .stdin(std::fs::File::open(&file).expect("open input"))
        .output()
        .expect("run the C driver");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the C driver failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("driver output is text")
}
