//! `flat-wit`: generate Rust types or a C header from a WIT package.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flat_wit::{c, rust, Model, Selection, Width};

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
    }
}
