//! `shm-host`: runs WASI command components with zero-copy memory blocks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shm_host::command::{self, Status};
use shm_host::link::{self, GuestState, Provider};
use shm_host::pubsub::{Overflow, PubSubConfig};
use shm_host::topology::Topology;
use shm_host::{Grants, Limits, ShmConfig, ShmHost, Stopped};
use std::time::Duration;
use wasmtime::error::Context;
use wasmtime::{bail, Result};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

mod record;
mod stop;
#[cfg(feature = "zenoh")]
mod zenoh_cli;

#[derive(Parser)]
#[command(
    version,
    about = "A wasmtime host with zero-copy memory blocks shared between components",
    after_help = "Examples:
  shm-host run --stats --link minimal_impl.wasm minimal-main.wasm
  shm-host pubsub --stats --publisher pubsub-publisher.wasm \\
      --subscriber pubsub-subscriber.wasm --subscriber pubsub-subscriber.wasm
  shm-host pubsub --publisher complex-publisher.wasm --subscriber complex-consumer.wasm \\
      --record complex=complex.mcap --record-wit lines.wit --record-type lines
  shm-host pubsub --replay complex.mcap --subscriber complex-consumer.wasm

`pubsub` stops cleanly on SIGINT, SIGTERM or at --duration: the publishers
are stopped, the subscribers drain their queues and end, recordings are
finalized and statistics printed. Exit status: 0 when every component
succeeded (or, after --duration, every component that ended before it);
1 when one failed or did not finish; 130 after SIGINT, 143 after SIGTERM.
A second SIGINT or SIGTERM exits at once (recordings in progress are left
as FILE.mcap.tmp).

Logs go to stderr: warnings (refusals, evictions) by default; more with
RUST_LOG=shm_host=debug (every refused operation) or RUST_LOG=trace."
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
    Pubsub(Box<PubsubArgs>),
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
    /// The publisher component (a command); optional when a topic is
    /// imported over Zenoh.
    #[arg(long, value_name = "COMPONENT")]
    publisher: Option<PathBuf>,
    /// A subscriber component (a command); repeat it for more subscribers,
    /// also of the same component.
    #[arg(long, value_name = "COMPONENT")]
    subscriber: Vec<PathBuf>,
    /// A relay component (a command that subscribes to some topics and
    /// publishes others: a pipeline stage); repeatable. It starts with the
    /// subscribers.
    #[arg(long, value_name = "COMPONENT")]
    relay: Vec<PathBuf>,
    /// An argument for every relay (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    relay_arg: Vec<String>,
    /// A topic the relays may publish (a name, or a prefix ending in `*`;
    /// repeatable). Relays publish these and nothing else; without it they
    /// only subscribe.
    #[arg(long, value_name = "PATTERN")]
    relay_topic: Vec<String>,
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
    /// Record a topic to an MCAP file: TOPIC=FILE.mcap (repeatable). Every
    /// message of the topic is written (flat-wit's recording convention:
    /// `flat-wit dump FILE.mcap` reads it) with the schema of
    /// --record-wit, --record-type and --record-width. The recorder never
    /// slows the publisher: it drops its own oldest messages instead
    /// (counted). The file appears when the run ends (written as
    /// FILE.mcap.tmp until finalized).
    #[arg(long, value_name = "TOPIC=FILE")]
    record: Vec<String>,
    /// The WIT package of the recorded messages' type (a .wit file or a
    /// package directory without deps/), embedded in each recording.
    #[arg(long, value_name = "PATH")]
    record_wit: Option<PathBuf>,
    /// The recorded messages' type in that WIT: TYPE, or INTERFACE.TYPE to
    /// look it up in one interface.
    #[arg(long, value_name = "TYPE")]
    record_type: Option<String>,
    /// The recorded messages' index width: u8, u16 or u32.
    #[arg(long, value_name = "WIDTH", default_value = "u32")]
    record_width: String,
    /// Record every message: the publisher waits for the recorders (as for
    /// a subscriber under `--overflow block`) instead of their dropping
    /// what they cannot keep up with.
    #[arg(long, requires = "record")]
    record_lossless: bool,
    /// Replay an MCAP recording in place of a publisher component: each
    /// recorded topic is published again (by host code, one copy into a
    /// pool block per message) once the subscribers subscribed.
    #[arg(long, value_name = "FILE.mcap", conflicts_with = "publisher")]
    replay: Option<PathBuf>,
    /// A topic of the recording to replay (repeatable; every topic when not
    /// given). A topic the recording lacks is an error.
    #[arg(long, value_name = "TOPIC", requires = "replay")]
    replay_topic: Vec<String>,
    /// Replay at the recorded pace times RATE (2: twice as fast).
    #[arg(long, value_name = "RATE", default_value_t = 1.0, requires = "replay")]
    replay_rate: f64,
    /// Replay every message as soon as the one before it is published.
    #[arg(long, requires = "replay", conflicts_with = "replay_rate")]
    replay_as_fast_as_possible: bool,
    /// Stop the run after SECONDS, as SIGINT or SIGTERM would (see the exit
    /// status below); for a publisher that never ends.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// The topics of this topology: the publisher may publish them, the
    /// subscribers and relays may subscribe to them, nothing else
    /// (a name, or a prefix ending in `*`). Repeatable; every topic when not
    /// given. Subscribers never publish. (Bridged topics are the bridge's:
    /// it publishes an import and subscribes to an export whatever this
    /// says.)
    #[arg(long, value_name = "PATTERN")]
    topic: Vec<String>,
    #[cfg(feature = "zenoh")]
    #[command(flatten)]
    zenoh: zenoh_cli::ZenohArgs,
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
    /// Largest view in bytes the host copies for one attach (the copy
    /// fallback, for views that cannot be mapped); larger ones fail with
    /// `limit-exceeded`. The copy's time counts against the component's
    /// CPU budget.
    #[arg(long, default_value_t = Limits::default().max_copy)]
    max_copy: u32,
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
    /// Pooled messages one subscription may hold at once (taken, not yet
    /// released); taking more fails with `limit-exceeded`.
    #[arg(long, default_value_t = PubSubConfig::default().max_held)]
    max_held: u32,
    /// Seconds of wasm execution each component may use (its CPU budget;
    /// time spent waiting in host calls does not count); 0 for no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    cpu_limit: f64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum OverflowArg {
    /// Wait until the subscriber takes a message.
    Block,
    /// Drop the subscriber's oldest queued message.
    DropOldest,
}

impl HostArgs {
    fn host(&self) -> ShmHost {
        let overflow = match self.overflow {
            OverflowArg::Block => Overflow::Block,
            OverflowArg::DropOldest => Overflow::DropOldest,
        };
        ShmHost::new(
            ShmConfig::default()
                .limits(Limits {
                    max_blocks: self.max_blocks,
                    max_bytes: self.max_bytes,
                    max_copy: self.max_copy,
                    ..Limits::default()
                })
                .pubsub(
                    PubSubConfig::default()
                        .queue(self.queue.max(1))
                        .overflow(overflow)
                        .stall_limit(seconds(self.stall_limit))
                        .max_held(self.max_held.max(1)),
                )
                .verify_sharing(self.verify_sharing)
                .cpu_limit((self.cpu_limit > 0.0).then(|| seconds(self.cpu_limit))),
        )
    }
}

/// `s` seconds (negative or not a number: zero).
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn main() -> ExitCode {
    // Warnings (refusals, evictions) are shown unless RUST_LOG says
    // otherwise.
    // (Zenoh's note that a peer started before its scouting delay ended is
    // not a warning here: the bridge's endpoints are explicit.)
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,zenoh::net::runtime::orchestrator=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Pubsub(args) => pubsub(*args),
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
    apply_env_and_dirs(&mut wasi, &args.env, &args.dir)?;
    Ok(wasi)
}

/// `--env NAME=VALUE` and `--dir HOST[::GUEST]`.
fn apply_env_and_dirs(wasi: &mut WasiCtxBuilder, env: &[String], dirs: &[String]) -> Result<()> {
    for var in env {
        let (k, v) = var
            .split_once('=')
            .with_context(|| format!("--env {var}: expected NAME=VALUE"))?;
        wasi.env(k, v);
    }
    for dir in dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .with_context(|| format!("--dir {dir}: cannot open {host}"))?;
    }
    Ok(())
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
        let store = shm_host::new_store(&engine, state);
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
    let linked = if linked_names.is_empty() {
        "none".to_string()
    } else {
        linked_names.join(", ")
    };
    let unlinked = format!(", or exports of --link components (linked: {linked})");
    let status = command::run(&engine, &linker, &component, state, &unlinked);
    if args.host.stats {
        print!("{}", host.statistics());
    }
    drop(providers);
    Ok(match status {
        Status::Succeeded => ExitCode::SUCCESS,
        Status::Failed(..) => ExitCode::from(status.exit_code()),
        Status::Stopped(stopped) => {
            eprintln!("shm-host: stopped: {stopped}");
            ExitCode::FAILURE
        }
        Status::Error(e) => {
            eprintln!("shm-host: error: {e}");
            ExitCode::FAILURE
        }
    })
}

fn pubsub(args: PubsubArgs) -> Result<ExitCode> {
    #[cfg(feature = "zenoh")]
    let (imports, exports) = (args.zenoh.imports(), args.zenoh.exports());
    #[cfg(not(feature = "zenoh"))]
    let (imports, exports) = (false, false);
    if args.subscriber.is_empty() && args.relay.is_empty() && !exports && args.record.is_empty() {
        bail!("give at least one --subscriber (or --relay, --record, or --zenoh-export)");
    }
    if args.publisher.is_none() && args.replay.is_none() && !imports {
        bail!("give the --publisher (or --replay a recording, or --zenoh-import a topic)");
    }
    // Recordings and the replay are checked before anything runs.
    let records = record::specs(&args)?;
    let replay = match &args.replay {
        Some(path) => Some(record::replay(path, &args)?),
        None => None,
    };
    let host = args.host.host();
    let mut topology = Topology::new(&host).context("configuring wasmtime")?;
    topology.timeout(Duration::from_secs(args.timeout));
    for t in &args.topic {
        topology.topic(t.clone());
    }
    for t in &args.relay_topic {
        topology.relay_output(t.clone());
    }
    if !args.relay.is_empty() && args.relay_topic.is_empty() {
        tracing::info!("the relays publish nothing: name their output topics with --relay-topic");
    }
    let (env, dirs) = (args.host.env.clone(), args.host.dir.clone());
    // Checked here, so that a mistake is reported once, not per component.
    wasi_for(&args.host, "check", &[])?;
    topology.wasi(move |_, wasi| {
        wasi.inherit_stdio();
        apply_env_and_dirs(wasi, &env, &dirs)
    });
    let publisher_args: Vec<&str> = args.publisher_arg.iter().map(String::as_str).collect();
    let subscriber_args: Vec<&str> = args.subscriber_arg.iter().map(String::as_str).collect();
    let relay_args: Vec<&str> = args.relay_arg.iter().map(String::as_str).collect();
    for (i, path) in args.subscriber.iter().enumerate() {
        let component = topology.load(path)?;
        let name = format!("{}#{}", component_name(path), i + 1);
        topology.subscriber(name, component, &subscriber_args);
    }
    for (i, path) in args.relay.iter().enumerate() {
        let component = topology.load(path)?;
        let name = format!("{}#{}", component_name(path), i + 1);
        topology.relay(name, component, &relay_args);
    }
    // The members a stop ends first: their topics close, and everyone
    // else drains and ends.
    let mut publishers: Vec<String> = Vec::new();
    if let Some(path) = &args.publisher {
        let component = topology.load(path)?;
        publishers.push(component_name(path));
        topology.publisher(component_name(path), component, &publisher_args);
    }
    // Signals are caught before anything subscribes (a Zenoh import, a
    // recorder): once a peer can see this process, SIGTERM stops it cleanly.
    let stop = stop::Stop::install(args.duration.map(seconds))?;
    let replayed = replay.map(|r| r.add_to(&mut topology));
    #[cfg(feature = "zenoh")]
    let (bridge, bridged) = args.zenoh.add_to(&mut topology)?;
    // Recorders subscribe now: the publishers start after them.
    let recorders = record::start(&host, records, args.record_lossless)?;
    let timeout = Duration::from_secs(args.timeout);
    // Failures, evictions and early ends are reported as they happen; once
    // a stop was asked for, what it stops is not a failure.
    let failed = Arc::new(AtomicBool::new(false));
    let report = {
        let (failed, stopping) = (failed.clone(), stop.stopping());
        std::thread::Builder::new()
            .name("topology".into())
            .spawn(move || {
                topology.run_with(|e| {
                    if !e.status.succeeded() && !stopping.load(Ordering::SeqCst) {
                        failed.store(true, Ordering::SeqCst);
                    }
                    report_end(e)
                })
            })
            .context("starting the topology's thread")?
    };
    let stopped_by = stop.wait(&report);
    let report = match stopped_by {
        None => report.join().ok(),
        Some(why) => {
            eprintln!("shm-host: {why}: stopping (publishers first, then the rest)");
            let is_publisher = |n: &str| {
                publishers.iter().any(|p| p == n)
                    || n.starts_with("replay ")
                    || n.starts_with("zenoh-import ")
            };
            host.evict_where(is_publisher, &format!("the run was stopped ({why})"));
            let grace = timeout.min(Duration::from_secs(10));
            if !stop::finished_within(&report, grace) {
                // Whoever is left (a subscriber that does not end with its
                // topic) is stopped too; recorders finish below.
                host.evict_where(
                    |n| !n.starts_with("record "),
                    &format!("the run was stopped ({why})"),
                );
                stop::finished_within(&report, Duration::from_secs(5));
            }
            report.is_finished().then(|| report.join().ok()).flatten()
        }
    };
    let mut recording_failed = false;
    for recorder in recorders {
        match recorder.finish() {
            Ok(stats) => println!("{stats}"),
            Err(e) => {
                eprintln!("shm-host: recording failed: {e}");
                recording_failed = true;
            }
        }
    }
    if let Some(replayed) = replayed {
        if let Some(stats) = replayed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            println!("{stats}");
        }
    }
    let succeeded = match &report {
        Some(report) => {
            if !report.unfinished.is_empty() {
                eprintln!(
                    "shm-host: {} did not finish within {timeout:?} after the publisher",
                    report.unfinished.join(", ")
                );
            }
            report.unfinished.is_empty() && !failed.load(Ordering::SeqCst)
        }
        None => {
            eprintln!("shm-host: the topology did not end after the stop; exiting anyway");
            false
        }
    };
    if args.host.stats {
        match &report {
            Some(report) => print!("{}", report.statistics),
            None => print!("{}", host.statistics()),
        }
        #[cfg(feature = "zenoh")]
        zenoh_cli::print(&bridged);
    }
    #[cfg(feature = "zenoh")]
    if let Some(bridge) = bridge {
        bridge.close()?;
    }
    Ok(match stopped_by {
        Some(stop::Why::Signal(signal)) => ExitCode::from(128 + signal as u8),
        _ if succeeded && !recording_failed => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Reports a component's end as it happens.
fn report_end(e: &shm_host::topology::Ended) {
    match &e.status {
        Status::Succeeded if e.before_publisher => {
            eprintln!(
                "shm-host: {} {} exited before it subscribed",
                e.role, e.name
            )
        }
        Status::Succeeded => {}
        Status::Failed(_, message) => {
            if let Some(m) = message {
                eprintln!("{}: {m}", e.name);
            }
            eprintln!(
                "shm-host: {} {} failed (it exited with an error status)",
                e.role, e.name
            )
        }
        Status::Stopped(stopped) => eprintln!("shm-host: {} {} stopped: {stopped}", e.role, e.name),
        Status::Error(why) => eprintln!("shm-host: {} {}: {why}", e.role, e.name),
    }
}
