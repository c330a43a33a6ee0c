//! `shm-host`: runs WASI command components with zero-copy memory blocks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shm_host::link::{self, GuestState, Provider};
use shm_host::{Limits, ShmConfig, ShmHost, StatsSnapshot};
use wasmtime::error::Context;
use wasmtime::{bail, Engine, Result, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

#[derive(Parser)]
#[command(
    version,
    about = "A wasmtime host with zero-copy memory blocks shared between components"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a `wasi:cli` command component, as `wasmtime run` would, with the
    /// `zero-copy:shm/exchange` interface added.
    Run(RunArgs),
}

#[derive(Parser)]
struct RunArgs {
    /// A component whose exports serve the imports of the components given
    /// after it (and of COMPONENT); each runs in a store of its own.
    /// May be repeated.
    #[arg(long, value_name = "COMPONENT")]
    link: Vec<PathBuf>,
    /// Print memory-block statistics (per component and in total) at exit.
    #[arg(long)]
    stats: bool,
    /// Preopen a host directory: HOST or HOST::GUEST.
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir: Vec<String>,
    /// Set an environment variable for the components: NAME=VALUE.
    #[arg(long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Largest number of live blocks one component may create.
    #[arg(long, default_value_t = Limits::default().max_blocks)]
    max_blocks: u32,
    /// Largest total size in bytes of the live blocks one component created.
    #[arg(long, default_value_t = Limits::default().max_bytes)]
    max_bytes: u64,
    /// The command component to run.
    component: PathBuf,
    /// Arguments passed to the component.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => match run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("shm-host: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn component_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".into())
}

fn wasi_for(args: &RunArgs, argv0: &str, argv: &[String]) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().arg(argv0).args(argv);
    for var in &args.env {
        let (k, v) = var
            .split_once('=')
            .with_context(|| format!("--env {var}: expected NAME=VALUE"))?;
        wasi.env(k, v);
    }
    for dir in &args.dir {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .with_context(|| format!("--dir {dir}: cannot open {host}"))?;
    }
    Ok(wasi)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let host = ShmHost::new(ShmConfig {
        limits: Limits {
            max_blocks: args.max_blocks,
            max_bytes: args.max_bytes,
            ..Limits::default()
        },
    });
    let engine = Engine::new(&host.engine_config()).context("configuring wasmtime")?;
    let mut linker = link::linker(&engine)?;
    let mut linked_names = Vec::new();
    let mut providers: Vec<Arc<Provider>> = Vec::new();
    for path in &args.link {
        let component = link::load_component(&engine, path)?;
        let name = component_name(path);
        let store = Store::new(
            &engine,
            GuestState::new(&host, &name, wasi_for(&args, &name, &[])?),
        );
        let provider = Provider::new(&name, store, &linker, &component)
            .with_context(|| format!("instantiating linked component {}", path.display()))?;
        let names = link::link_exports(&mut linker, &engine, &component, &provider)?;
        if names.is_empty() {
            bail!(
                "{} exports no interface to link (only wasi interfaces or none)",
                path.display()
            );
        }
        tracing::info!(component = %name, interfaces = ?names, "linked");
        linked_names.extend(names);
        providers.push(provider);
    }

    let component = link::load_component(&engine, &args.component)?;
    let name = component_name(&args.component);
    let mut store = Store::new(
        &engine,
        GuestState::new(&host, &name, wasi_for(&args, &name, &args.args)?),
    );
    let command = Command::instantiate(&mut store, &component, &linker).with_context(|| {
        let linked = if linked_names.is_empty() {
            "none".to_string()
        } else {
            linked_names.join(", ")
        };
        format!(
            "{} cannot be run: it must be a wasi:cli command component whose imports are WASI p2, {}, \
             or exports of --link components (linked: {linked})",
            args.component.display(),
            shm_host::EXCHANGE
        )
    })?;
    let result = command.wasi_cli_run().call_run(&mut store);

    if args.stats {
        print_stats(&host);
    }
    drop(store);
    drop(providers);
    match result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Ok(ExitCode::from(exit.0.clamp(0, 255) as u8));
            }
            Err(e.context(format!("{} trapped", args.component.display())))
        }
    }
}

fn print_stats(host: &ShmHost) {
    let line = |name: &str, s: &StatsSnapshot| {
        println!(
            "  {name:<16} blocks {:>6}  attaches {:>8}  mapped {:>8} ({:>12} bytes)  copied {:>6} ({:>10} bytes)  errors {:>4}",
            s.blocks_created, s.attaches, s.maps, s.bytes_mapped, s.copies, s.bytes_copied, s.errors
        )
    };
    println!("shm-host statistics:");
    for (name, s) in host.guest_stats() {
        line(&name, &s);
    }
    line("total", &host.totals());
}
