//! `flat-wit`: generate Rust types or a C header from a WIT package; print
//! flat messages and MCAP recordings of them as JSON.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use flat_wit::{c, dynamic, mcap, rust, Model, Selection, Width};

#[derive(Parser)]
#[command(version, about = "WIT as the schema of flat-layout messages")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Input {
    /// A WIT package: a directory of *.wit files (with an optional deps/) or one file.
    wit: PathBuf,
    /// Only the types of this interface.
    #[arg(long)]
    interface: Option<String>,
    /// Only these types (and the types they use); repeatable.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Output file; standard output if absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// A C99 header: validators, accessors and in-place builders.
    C {
        #[command(flatten)]
        input: Input,
        /// Index widths to generate (u8, u16, u32); repeatable; all three if absent.
        #[arg(long = "width", value_parser = parse_width)]
        widths: Vec<Width>,
        /// Prefix of every generated C name; by default the WIT package's
        /// namespace and name (`demo:camera` gives `demo_camera_`); `''` for none.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Rust types with #[derive(Flat)].
    Rust {
        #[command(flatten)]
        input: Input,
        /// Path of flat_layout in the generated code (e.g. shm_guest::flat_layout).
        #[arg(long, default_value = "::flat_layout")]
        flat_crate: String,
    },
    /// Print a flat message (or every message of an MCAP recording) as JSON.
    ///
    /// A message: `dump --wit DIR --type NAME --width u32 [FILE]` prints it
    /// as pretty JSON. An MCAP file (recognized by its magic bytes): one
    /// JSON line per message with topic, sequence, times and value, decoded
    /// with the schemas inside the file (or --wit, which must match them);
    /// with --to-json OUT it writes a converted MCAP file of JSON messages
    /// instead.
    Dump {
        /// The message or MCAP file; standard input if absent.
        file: Option<PathBuf>,
        /// The WIT package (a directory of *.wit files or one file).
        #[arg(long)]
        wit: Option<PathBuf>,
        /// Look types up in this interface only (where names are ambiguous).
        #[arg(long)]
        interface: Option<String>,
        /// The message's WIT type.
        #[arg(long = "type")]
        ty: Option<String>,
        /// The index width the message was written with (u8, u16, u32).
        #[arg(long, value_parser = parse_width)]
        width: Option<Width>,
        /// Print the JSON Schema of --type instead of reading a message.
        #[arg(long)]
        schema: bool,
        /// MCAP input: write a converted MCAP file (json messages,
        /// jsonschema schemas) here instead of printing.
        #[arg(long)]
        to_json: Option<PathBuf>,
    },
}

fn parse_width(s: &str) -> Result<Width, String> {
    Width::parse(s).ok_or_else(|| format!("`{s}` is not an index width (u8, u16 or u32)"))
}

fn load(input: &Input) -> anyhow::Result<Model> {
    let selection = Selection {
        interface: input.interface.clone(),
        types: input.types.clone(),
    };
    Ok(Model::load(&input.wit, &selection)?)
}

fn emit(output: &Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn read_input(file: &Option<PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match file {
        Some(path) => {
            bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
        }
    }
    Ok(bytes)
}

#[allow(clippy::too_many_arguments)]
fn dump(
    file: Option<PathBuf>,
    wit: Option<PathBuf>,
    interface: Option<String>,
    ty: Option<String>,
    width: Option<Width>,
    schema: bool,
    to_json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let load = |wit: &Option<PathBuf>| -> anyhow::Result<Model> {
        let Some(wit) = wit else {
            bail!("give the WIT package with --wit DIR");
        };
        let selection = Selection {
            interface: interface.clone(),
            types: Vec::new(),
        };
        Ok(Model::load(wit, &selection)?)
    };
    if schema {
        let model = load(&wit)?;
        let Some(ty) = ty else {
            bail!("give the type with --type NAME");
        };
        return print(&format!("{:#}\n", dynamic::json_schema(&model, &ty)?));
    }
    let bytes = read_input(&file)?;
    if mcap::is_mcap(&bytes) {
        if ty.is_some() || width.is_some() || interface.is_some() {
            bail!("--type, --width and --interface do not apply to an MCAP recording: each channel's schema names its type and width");
        }
        let options = mcap::ReadOptions {
            wit: match &wit {
                Some(path) => Some(mcap::wit_text(path)?),
                None => None,
            },
        };
        if let Some(out) = to_json {
            let done = mcap::convert_to_json(&bytes, &out, &options)?;
            eprintln!(
                "wrote {} ({} channels, {} messages)",
                out.display(),
                done.channels,
                done.messages
            );
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        let mut failed = 0usize;
        for message in mcap::decode_recording(&bytes, &options)? {
            match message {
                Ok(m) => match writeln!(stdout, "{}", m.to_json()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other?,
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {e}");
                }
            }
        }
        if failed > 0 {
            bail!("{failed} message(s) or parts of the file could not be read (see above)");
        }
        return Ok(());
    }
    if to_json.is_some() {
        bail!("--to-json converts MCAP recordings; the input is not an MCAP file (no MCAP magic bytes)");
    }
    let model = load(&wit)?;
    let (Some(ty), Some(width)) = (ty, width) else {
        bail!("give the message's type and index width: --type NAME --width u8|u16|u32");
    };
    let value = dynamic::decode(&model, &ty, width, &bytes)?;
    print(&format!("{value:#}\n"))
}

/// Writes `text` to standard output; a closed pipe (`| head`) is no error.
fn print(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::C {
            input,
            widths,
            prefix,
        } => {
            let model = load(&input)?;
            let widths = if widths.is_empty() {
                Width::ALL.to_vec()
            } else {
                widths
            };
            let header = c::generate(&model, &c::Options { widths, prefix })?;
            emit(&input.output, &header)
        }
        Command::Rust { input, flat_crate } => {
            let model = load(&input)?;
            let code = rust::generate(&model, &rust::Options { flat_crate })?;
            emit(&input.output, &code)
        }
        Command::Dump {
            file,
            wit,
            interface,
            ty,
            width,
            schema,
            to_json,
        } => dump(file, wit, interface, ty, width, schema, to_json),
    }
}
