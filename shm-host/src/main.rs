//! `shm-host`: runs WASI command components with zero-copy memory blocks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shm_host::link::{self, GuestState, Provider};
use shm_host::pubsub::{Overflow, PubSubConfig};
use shm_host::{Grants, Limits, ShmConfig, ShmHost, StatsSnapshot, Stopped};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context;
use wasmtime::{bail, Engine, Result};
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
    /// `zero-copy:shm/exchange` and `pub-sub` interfaces added.
    Run(RunArgs),
    /// Run a publish/subscribe topology: one publisher component and any
    /// number of subscriber components, each a `wasi:cli` command in a store
    /// of its own, the subscribers on threads of their own.
    Pubsub(PubsubArgs),
}

#[derive(Parser)]
struct RunArgs {
    #[command(flatten)]
    host: HostArgs,
    /// A component whose exports serve the imports of the components given
    /// after it (and of COMPONENT); each runs in a store of its own.
    /// May be repeated.
    #[arg(long, value_name = "COMPONENT")]
    link: Vec<PathBuf>,
    /// The command component to run.
    component: PathBuf,
    /// Arguments passed to the component.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Parser)]
struct PubsubArgs {
    #[command(flatten)]
    host: HostArgs,
    /// The publisher component (a command).
    #[arg(long, value_name = "COMPONENT")]
    publisher: PathBuf,
    /// A subscriber component (a command); repeat it for more subscribers,
    /// also of the same component.
    #[arg(long, value_name = "COMPONENT")]
    subscriber: Vec<PathBuf>,
    /// An argument for the publisher (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    publisher_arg: Vec<String>,
    /// An argument for every subscriber (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    subscriber_arg: Vec<String>,
    /// Seconds to wait for the subscribers to subscribe before starting the
    /// publisher, and for them to finish after it.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The topics of this topology: the publisher may publish them and the
    /// subscribers may subscribe to them, nothing else (a name, or a prefix
    /// ending in `*`). Repeatable; every topic when not given. Subscribers
    /// never publish.
    #[arg(long, value_name = "PATTERN")]
    topic: Vec<String>,
}

#[derive(Parser)]
struct HostArgs {
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
    /// Check after every mapped attach, in /proc/self/maps, that the guest's
    /// pages are the block's own pages (a proof of sharing; costs a read of
    /// /proc/self/maps per attach). Reported with --stats.
    #[arg(long)]
    verify_sharing: bool,
    /// Messages queued per subscription at most.
    #[arg(long, default_value_t = PubSubConfig::default().queue)]
    queue: usize,
    /// What a publisher does when a subscription's queue is full.
    #[arg(long, value_enum, default_value_t = OverflowArg::Block)]
    overflow: OverflowArg,
    /// Seconds a subscriber may keep its topic waiting (a full queue not
    /// taken, a message the publisher needs not released) before it is
    /// evicted.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    stall_limit: f64,
    /// Seconds of wasm execution each component may use (its CPU budget;
    /// time spent waiting in host calls does not count); 0 for no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    cpu_limit: f64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OverflowArg {
    /// Wait until the subscriber takes a message.
    Block,
    /// Drop the subscriber's oldest queued message.
    DropOldest,
}

impl HostArgs {
    fn host(&self) -> ShmHost {
        ShmHost::new(ShmConfig {
            limits: Limits {
                max_blocks: self.max_blocks,
                max_bytes: self.max_bytes,
                ..Limits::default()
            },
            pubsub: PubSubConfig {
                queue: self.queue.max(1),
                overflow: match self.overflow {
                    OverflowArg::Block => Overflow::Block,
                    OverflowArg::DropOldest => Overflow::DropOldest,
                },
                stall_limit: seconds(self.stall_limit),
                ..PubSubConfig::default()
            },
            verify_sharing: self.verify_sharing,
            cpu_limit: (self.cpu_limit > 0.0).then(|| seconds(self.cpu_limit)),
            ..ShmConfig::default()
        })
    }
}

/// `s` seconds (negative or not a number: zero).
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn main() -> ExitCode {
    // Warnings (refusals, evictions) are shown unless RUST_LOG says
    // otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Pubsub(args) => pubsub(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<Stopped>() {
                // The reason says it all; the wasm backtrace is noise.
                Some(stopped) => eprintln!("shm-host: stopped: {stopped}"),
                None => eprintln!("shm-host: error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn component_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".into())
}

fn wasi_for(args: &HostArgs, argv0: &str, argv: &[String]) -> Result<WasiCtxBuilder> {
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
    let host = args.host.host();
    let engine = host.engine().context("configuring wasmtime")?;
    let mut linker = link::linker(&engine)?;
    let mut linked_names = Vec::new();
    let mut providers: Vec<Arc<Provider>> = Vec::new();
    for path in &args.link {
        let component = link::load_component(&engine, path)?;
        let name = component_name(path);
        let wasi = wasi_for(&args.host, &name, &[])?;
        // A linked component serves calls: it neither publishes nor
        // subscribes.
        let state = GuestState::new(&host, &name, wasi, Grants::none());
        let store = link::new_store(&engine, state);
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
    let wasi = wasi_for(&args.host, &name, &args.args)?;
    // The command runs alone: every topic is its own.
    let state = GuestState::new(&host, &name, wasi, Grants::all());
    let result = run_command(
        &engine,
        &linker,
        &component,
        &args.component,
        state,
        &linked_names,
    );
    if args.host.stats {
        print_stats(&host);
    }
    drop(providers);
    result
}

/// Instantiates `component` as a command in a store of its own and runs it.
fn run_command(
    engine: &Engine,
    linker: &Linker<GuestState>,
    component: &Component,
    path: &Path,
    state: GuestState,
    linked_names: &[String],
) -> Result<ExitCode> {
    let name = state.shm.name().to_string();
    let mut store = link::new_store(engine, state);
    let command = Command::instantiate(&mut store, component, linker).with_context(|| {
        let linked = if linked_names.is_empty() {
            "none".to_string()
        } else {
            linked_names.join(", ")
        };
        format!(
            "{}, or exports of --link components (linked: {linked})",
            cannot_run(path, "")
        )
    })?;
    let result = command.wasi_cli_run().call_run(&mut store);
    drop(store);
    exit_code(&name, result)
}

/// Like [`run_command`], but called asynchronously on a runtime of this
/// thread's own, so that the guest may wait on component-model streams
/// (e.g. a subscription's `get-stream`).
fn run_command_async(
    engine: &Engine,
    linker: &Linker<GuestState>,
    component: &Component,
    path: &Path,
    state: GuestState,
) -> Result<ExitCode> {
    let name = &state.shm.name().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    // A component that exports a root `run: async func() -> result<_, string>`
    // (it may block on streams from it) instead of `wasi:cli/run`.
    let async_run = component.component_type().exports(engine).any(|(n, e)| {
        n == "run"
            && matches!(
                e.ty,
                wasmtime::component::types::ComponentItem::ComponentFunc(_)
            )
    });
    runtime.block_on(async {
        let mut store = link::new_store(engine, state);
        let cannot_run = || {
            cannot_run(
                path,
                " (or export `run: async func() -> result<_, string>`)",
            )
        };
        if async_run {
            let instance = linker
                .instantiate_async(&mut store, component)
                .await
                .with_context(cannot_run)?;
            let run = instance
                .get_typed_func::<(), (Result<(), String>,)>(&mut store, "run")
                .with_context(cannot_run)?;
            let result = run.call_async(&mut store, ()).await;
            drop(store);
            return match result {
                Ok((Ok(()),)) => Ok(ExitCode::SUCCESS),
                Ok((Err(message),)) => {
                    eprintln!("{name}: {message}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.context(format!("{name} trapped"))),
            };
        }
        let command =
            wasmtime_wasi::p2::bindings::Command::instantiate_async(&mut store, component, linker)
                .await
                .with_context(cannot_run)?;
        let result = command.wasi_cli_run().call_run(&mut store).await;
        drop(store);
        exit_code(name, result)
    })
}

/// Why `path` could not be instantiated: what the runner accepts.
fn cannot_run(path: &Path, alternative: &str) -> String {
    format!(
        "{} cannot be run: it must be a wasi:cli command component{alternative} whose imports are WASI p2, {}, {}",
        path.display(),
        shm_host::EXCHANGE,
        shm_host::PUB_SUB,
    )
}

/// The exit code for a command's result.
fn exit_code(name: &str, result: Result<Result<(), ()>>) -> Result<ExitCode> {
    match result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Ok(ExitCode::from(exit.0.clamp(0, 255) as u8));
            }

            Err(e.context(format!("{name} trapped")))
        }
    }
}

/// Which part of a topology a component plays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Subscriber,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        })
    }
}

/// A component of a topology that ended, and how.
struct Ended {
    role: Role,
    name: String,
    result: Result<ExitCode>,
}

impl Ended {
    /// Reports the end at once; `true` if it was a failure.
    fn report(&self, publisher_running: bool) -> bool {
        let Ended { role, name, result } = self;
        match result {
            Ok(c) if *c == ExitCode::SUCCESS => {
                if *role == Role::Subscriber && publisher_running {
                    tracing::info!("{role} {name} finished while the publisher still runs");
                }
                false
            }
            Ok(_) => {
                eprintln!("shm-host: {role} {name} failed (it exited with an error status)");
                true
            }
            Err(e) => {
                match e.downcast_ref::<Stopped>() {
                    Some(stopped) => eprintln!("shm-host: {role} {name} stopped: {stopped}"),
                    None => eprintln!("shm-host: {role} {name}: {e:#}"),
                }
                true
            }
        }
    }
}

fn pubsub(args: PubsubArgs) -> Result<ExitCode> {
    if args.subscriber.is_empty() {
        bail!("give at least one --subscriber");
    }
    let host = args.host.host();
    let engine = host.engine().context("configuring wasmtime")?;
    // Asynchronous calls: a subscriber may read its messages as a stream.
    let linker = link::linker_async(&engine)?;
    let timeout = Duration::from_secs(args.timeout);
    let topics: Vec<String> = if args.topic.is_empty() {
        vec!["*".into()]
    } else {
        args.topic.clone()
    };
    let grants = |role: Role| {
        topics.iter().fold(Grants::none(), |g, t| match role {
            Role::Publisher => g.publish(t.clone()),
            Role::Subscriber => g.subscribe(t.clone()),
        })
    };
    let (done_tx, done_rx) = mpsc::channel::<Ended>();
    let start = |role: Role, path: &PathBuf, name: String, argv: &[String]| -> Result<()> {
        let component = link::load_component(&engine, path)?;
        let wasi = wasi_for(&args.host, &name, argv)?;
        let state = GuestState::new(&host, &name, wasi, grants(role));
        let (engine, linker, path, done) = (
            engine.clone(),
            linker.clone(),
            path.clone(),
            done_tx.clone(),
        );
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let result = run_command_async(&engine, &linker, &component, &path, state);
                let _ = done.send(Ended { role, name, result });
            })?;
        Ok(())
    };
    let before = host.subscriptions();
    let mut waiting: Vec<String> = Vec::new();
    for (i, path) in args.subscriber.iter().enumerate() {
        let name = format!("{}#{}", component_name(path), i + 1);
        start(Role::Subscriber, path, name.clone(), &args.subscriber_arg)?;
        waiting.push(name);
    }
    let mut code = ExitCode::SUCCESS;
    // Every subscriber component subscribes at least once before it reads:
    // start the publisher when they all have, so none misses a message. A
    // subscriber that ends before that is reported at once.
    let deadline = Instant::now() + timeout;
    let expected = before + args.subscriber.len();
    while host.subscriptions() < expected {
        match done_rx.recv_timeout(Duration::from_millis(5)) {
            Ok(ended) => {
                if ended.report(true) {
                    code = ExitCode::FAILURE;
                } else {
                    eprintln!(
                        "shm-host: {} {} exited before it subscribed",
                        ended.role, ended.name
                    );
                }
                waiting.retain(|n| *n != ended.name);
                if waiting.is_empty() {
                    break;
                }
            }
            Err(_) if Instant::now() >= deadline => {
                tracing::warn!(
                    "not every subscriber subscribed within {timeout:?}; starting the publisher anyway"
                );
                break;
            }
            Err(_) => {}
        }
    }
    let name = component_name(&args.publisher);
    start(Role::Publisher, &args.publisher, name, &args.publisher_arg)?;
    drop(done_tx);
    // The publisher's store ends with it, and so do its topics: subscribers
    // drain their queues and end.
    let mut publisher_running = true;
    let mut deadline = None;
    while publisher_running || !waiting.is_empty() {
        let left = deadline.map(|d: Instant| d.saturating_duration_since(Instant::now()));
        let ended = match left {
            None => done_rx.recv().ok(),
            Some(left) => done_rx.recv_timeout(left).ok(),
        };
        let Some(ended) = ended else {
            eprintln!(
                "shm-host: {} did not finish within {timeout:?} after the publisher",
                waiting.join(", ")
            );
            code = ExitCode::FAILURE;
            break;
        };
        if ended.role == Role::Publisher {
            publisher_running = false;
            deadline = Some(Instant::now() + timeout);
        }
        waiting.retain(|n| *n != ended.name);
        if ended.report(publisher_running) {
            code = ExitCode::FAILURE;
        }
    }
    if args.host.stats {
        print_stats(&host);
    }
    Ok(code)
}

fn print_stats(host: &ShmHost) {
    let line = |name: &str, s: &StatsSnapshot| {
        println!(
            "  {name:<20} blocks {:>6}  attaches {:>8}  mapped {:>8} ({:>12} bytes)  copied {:>6} ({:>10} bytes)  errors {:>4}  in-pool {:>8}  revoked {:>4}",
            s.blocks_created, s.attaches, s.maps, s.bytes_mapped, s.copies, s.bytes_copied, s.errors, s.in_pool, s.revoked
        )
    };
    println!("shm-host statistics:");
    for (name, s) in host.guest_stats() {
        line(&name, &s);
    }
    let total = host.totals();
    line("total", &total);
    if total.verified + total.verify_failures > 0 {
        println!(
            "proof of sharing: {} of {} mapped attaches checked in /proc/self/maps are the block's own memfd pages; bytes copied: {}",
            total.verified,
            total.verified + total.verify_failures,
            total.bytes_copied
        );
    }
}
