//! The runner's `--zenoh-*` options (part of the `shm-host` binary, not of
//! the library): topics of a `pubsub` topology bridged over Zenoh.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shm_host::bridge::{Bridge, BridgeConfig, Endpoints, ExportCounters, ImportCounters, Overflow};
use shm_host::topology::{Role, Topology};
use wasmtime::error::Context;
use wasmtime::{bail, Result};

use crate::OverflowArg;

#[derive(clap::Args)]
pub struct ZenohArgs {
    /// Send a local topic to a Zenoh key expression, one sample per
    /// message: TOPIC=KEY (repeatable). The publisher starts once a remote
    /// subscriber matches (or --zenoh-wait passed).
    #[arg(long, value_name = "TOPIC=KEY")]
    zenoh_export: Vec<String>,
    /// Receive a Zenoh key expression as a local topic: KEY=TOPIC
    /// (repeatable). Each sample is copied once into a pool block and
    /// delivered zero copy to the local subscribers; the topic closes when
    /// the remote publisher ends its stream.
    #[arg(long, value_name = "KEY=TOPIC")]
    zenoh_import: Vec<String>,
    /// Listen for Zenoh peers on ENDPOINT (tcp/127.0.0.1:7447); repeatable.
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_listen: Vec<String>,
    /// Connect to a Zenoh peer or router at ENDPOINT; repeatable.
    #[arg(long, value_name = "ENDPOINT")]
    zenoh_connect: Vec<String>,
    /// A Zenoh configuration file (JSON5), applied before the options above.
    #[arg(long, value_name = "FILE")]
    zenoh_config: Option<PathBuf>,
    /// Zenoh client mode (through a router) instead of peer mode.
    #[arg(long)]
    zenoh_client: bool,
    /// Turn Zenoh's multicast scouting off (explicit endpoints only).
    #[arg(long)]
    zenoh_no_multicast: bool,
    /// Messages buffered between the network and the host, per bridged
    /// topic.
    #[arg(long, default_value_t = BridgeConfig::default().buffer)]
    zenoh_buffer: usize,
    /// What a full bridge buffer does: drop-oldest (the default: a slow
    /// network never holds up local subscribers) or block.
    #[arg(long, value_enum, default_value_t = OverflowArg::DropOldest)]
    zenoh_overflow: OverflowArg,
    /// Blocks in an imported topic's pool.
    #[arg(long, default_value_t = BridgeConfig::default().blocks)]
    zenoh_pool: u32,
    /// The largest imported message (the pool's block size), in bytes;
    /// larger samples are rejected and counted.
    #[arg(long, value_name = "BYTES", default_value_t = BridgeConfig::default().block_size)]
    zenoh_block_size: u32,
    /// Seconds an export waits for a remote subscriber.
    #[arg(long, value_name = "SECONDS", default_value_t = BridgeConfig::default().wait_remote.as_secs_f64())]
    zenoh_wait: f64,
}

/// What the bridge counted, printed with `--stats`.
pub enum Counters {
    Export(String, Arc<ExportCounters>),
    Import(String, Arc<ImportCounters>),
}

impl ZenohArgs {
    pub fn imports(&self) -> bool {
        !self.zenoh_import.is_empty()
    }

    pub fn exports(&self) -> bool {
        !self.zenoh_export.is_empty()
    }

    /// Opens the bridge, if any topic is bridged, and adds its exports and
    /// imports to `topology`.
    pub fn add_to(&self, topology: &mut Topology) -> Result<(Option<Bridge>, Vec<Counters>)> {
        if !self.imports() && !self.exports() {
            return Ok((None, Vec::new()));
        }
        let mut config = match &self.zenoh_config {
            Some(path) => shm_host::bridge::zenoh::Config::from_file(path)
                .map_err(|e| wasmtime::format_err!("--zenoh-config {}: {e}", path.display()))?,
            None => Default::default(),
        };
        let mut endpoints = Endpoints::default();
        for e in &self.zenoh_listen {
            endpoints = endpoints.listen(e);
        }
        for e in &self.zenoh_connect {
            endpoints = endpoints.connect(e);
        }
        if self.zenoh_client {
            endpoints = endpoints.client();
        }
        if self.zenoh_no_multicast {
            endpoints = endpoints.multicast_scouting(false);
        }
        endpoints.apply(&mut config)?;
        let bridge = Bridge::open(
            config,
            BridgeConfig {
                buffer: self.zenoh_buffer.max(1),
                overflow: match self.zenoh_overflow {
                    OverflowArg::Block => Overflow::Block,
                    OverflowArg::DropOldest => Overflow::DropOldest,
                },
                blocks: self.zenoh_pool,
                block_size: self.zenoh_block_size,
                wait_remote: Duration::try_from_secs_f64(self.zenoh_wait).unwrap_or_default(),
            },
        )?;
        let mut counters = Vec::new();
        for spec in &self.zenoh_export {
            let (topic, key) = pair(spec, "--zenoh-export", "TOPIC=KEY")?;
            let export = bridge.export(topic, key)?;
            counters.push(Counters::Export(
                format!("export {topic} -> {key}"),
                export.counters(),
            ));
            topology.native(Role::Subscriber, export.name(), move |host| {
                export.run(host).into()
            });
        }
        for spec in &self.zenoh_import {
            let (key, topic) = pair(spec, "--zenoh-import", "KEY=TOPIC")?;
            let import = bridge.import(key, topic)?;
            counters.push(Counters::Import(
                format!("import {key} -> {topic}"),
                import.counters(),
            ));
            topology.native(Role::Publisher, import.name(), move |host| {
                import.run(host).into()
            });
        }
        Ok((Some(bridge), counters))
    }
}

fn pair<'a>(spec: &'a str, option: &str, form: &str) -> Result<(&'a str, &'a str)> {
    let (a, b) = spec
        .split_once('=')
        .with_context(|| format!("{option} {spec}: expected {form}"))?;
    if a.is_empty() || b.is_empty() {
        bail!("{option} {spec}: expected {form}, both non-empty");
    }
    Ok((a, b))
}

/// The bridge's lines of the `--stats` table.
pub fn print(counters: &[Counters]) {
    if counters.is_empty() {
        return;
    }
    println!("zenoh bridge:");
    for c in counters {
        match c {
            Counters::Export(name, c) => {
                let s = c.snapshot();
                println!(
                    "  {name}: sent {} ({} bytes)  dropped {}",
                    s.sent, s.bytes, s.dropped
                );
            }
            Counters::Import(name, c) => {
                let s = c.snapshot();
                println!(
                    "  {name}: received {}  delivered {} ({} bytes)  oversized {}  malformed {}  out-of-order {}  lost {}  dropped {}",
                    s.received, s.delivered, s.bytes, s.oversized, s.malformed, s.out_of_order, s.lost, s.dropped
                );
            }
        }
    }
}
