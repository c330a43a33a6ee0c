//! Topics across processes and hosts, over [Zenoh](https://zenoh.io)
//! (feature `zenoh`).
//!
//! A [`Bridge`] is one Zenoh session of the host. It *exports* a local
//! topic to a key expression ([`Bridge::export`]): each message published
//! locally becomes one Zenoh sample with a sequence number ([`wire`]); and
//! it *imports* a key expression as a local topic ([`Bridge::import`]):
//! each remote sample is written once into a block of a local pool and
//! then delivered to every local subscriber component zero copy, exactly as
//! a local message. Local subscribers cannot tell the two apart.
//!
//! Where copies happen: one per imported message (network buffer to pool
//! block) and one per exported message (block to the sample); none between
//! the bridge and local components. The host's statistics show them in
//! the `remote` column of the bridge's rows.
//!
//! Robustness: a remote peer may disappear and return (Zenoh reconnects;
//! a restarted publisher starts a new stream); samples larger than the
//! pool's blocks, malformed headers, replays and samples after a stream's
//! end are rejected and counted ([`ImportStats`]), never delivered; the
//! network and the local side meet in bounded buffers under the local
//! queues' [`Overflow`] policies ([`BridgeConfig::overflow`]). The remote
//! side is trusted as far as Zenoh lets it in: an end of stream closes an
//! imported topic (use Zenoh's access control to choose who may publish).
//!
//! ```no_run
//! use shm_host::bridge::{Bridge, BridgeConfig, Endpoints};
//! use shm_host::topology::{Role, Topology};
//! use shm_host::ShmHost;
//!
//! let host = ShmHost::default();
//! let zenoh = Endpoints::default().connect("tcp/127.0.0.1:7447").config()?;
//! let bridge = Bridge::open(zenoh, BridgeConfig::default())?;
//! let mut topology = Topology::new(&host)?;
//! let subscriber = topology.load("pubsub-subscriber.wasm")?;
//! topology.subscriber("first", subscriber, &[]);
//! let import = bridge.import("demo/numbers", "numbers")?;
//! topology.native(Role::Publisher, import.name(), move |host| import.run(host).into());
//! assert!(topology.run().succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
mod export;
mod import;
pub mod wire;

use std::time::Duration;

use zenoh::key_expr::KeyExpr;
use zenoh::{Session, Wait};

pub use export::{Export, ExportCounters, ExportStats};
pub use import::{Import, ImportCounters, ImportStats};

use crate::pubsub::native;
pub use crate::pubsub::Overflow;
/// The Zenoh this crate is built on, for programs that talk to a bridge
/// (a native publisher) without adding another version.
pub use zenoh;

/// How a bridge buffers and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Messages waiting between the network and the host, per export and
    /// per import, at most.
    pub buffer: usize,
    /// What happens when such a buffer is full: `Block` holds the producer
    /// back (a local publisher through its queue, as a slow local
    /// subscriber would, up to the stall limit; a remote publisher through
    /// Zenoh's congestion control); `DropOldest` drops the oldest and
    /// counts it, so that a slow network never holds up local subscribers.
    pub overflow: Overflow,
    /// Blocks in an import's pool: messages its local subscribers may hold
    /// at once.
    pub blocks: u32,
    /// The size of an import's pool blocks: the largest message it accepts.
    pub block_size: u32,
    /// How long an export waits for a remote subscriber before it
    /// subscribes to its topic (a topology starts its publisher once every
    /// subscriber subscribed, so remote subscribers miss nothing).
    pub wait_remote: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            buffer: 16,
            overflow: Overflow::DropOldest,
            blocks: 16,
            block_size: 1 << 20,
            wait_remote: Duration::from_secs(10),
        }
    }
}

/// The Zenoh session settings most bridges need, as a Zenoh
/// [`Config`](zenoh::Config): mode, endpoints, multicast scouting. (A Zenoh
/// configuration file serves the rest: [`zenoh::Config::from_file`].)
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    client: bool,
    listen: Vec<String>,
    connect: Vec<String>,
    multicast: Option<bool>,
}

impl Endpoints {
    /// Client mode (through a router) instead of peer mode (Zenoh's
    /// default).
    pub fn client(mut self) -> Self {
        self.client = true;
        self
    }

    /// Listens on `endpoint` (`tcp/127.0.0.1:7447`); repeatable.
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Connects to `endpoint`; repeatable. Zenoh retries until it answers.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }

    /// Multicast scouting on or off (Zenoh's default: on in peer mode).
    /// Explicit endpoints need none.
    pub fn multicast_scouting(mut self, on: bool) -> Self {
        self.multicast = Some(on);
        self
    }

    /// The Zenoh configuration: Zenoh's defaults with these settings.
    pub fn config(&self) -> Result<zenoh::Config, ConfigError> {
        let mut config = zenoh::Config::default();
        self.apply(&mut config)?;
        Ok(config)
    }

    /// Sets these settings in `config` (one read from a file, say); the
    /// mode only when client mode was asked for.
    pub fn apply(&self, config: &mut zenoh::Config) -> Result<(), ConfigError> {
        let json = |v: &[String]| format!("{v:?}");
        let mut set = |key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|source| ConfigError {
                    key: key.to_string(),
                    value: value.clone(),
                    source,
                })
        };
        if self.client {
            set("mode", "\"client\"".into())?;
        }
        if !self.listen.is_empty() {
            set("listen/endpoints", json(&self.listen))?;
        }
        if !self.connect.is_empty() {
            set("connect/endpoints", json(&self.connect))?;
        }
        if let Some(on) = self.multicast {
            set("scouting/multicast/enabled", on.to_string())?;
        }
        Ok(())
    }
}

/// A Zenoh setting was refused.
#[derive(Debug, thiserror::Error)]
#[error("Zenoh refused the setting {key} = {value}: {source}")]
pub struct ConfigError {
    /// The setting.
    pub key: String,
    /// Its value (JSON5).
    pub value: String,
    /// Zenoh's reason.
    #[source]
    pub source: zenoh::Error,
}

/// Why a bridge could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("opening the Zenoh session failed (check the endpoints: is one already in use, or unreachable?): {0}")]
pub struct OpenError(#[source] pub zenoh::Error);

/// Why an export or an import could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// Not a valid Zenoh key expression.
    #[error("`{key}` is not a Zenoh key expression ({source}): use `/`-separated chunks such as `demo/numbers`")]
    KeyExpr {
        /// The key expression given.
        key: String,
        /// Zenoh's reason.
        #[source]
        source: zenoh::Error,
    },
    /// An empty topic name.
    #[error("an empty topic name: give the local topic to bridge")]
    EmptyTopic,
    /// A pool the host could never make (no blocks, or empty ones).
    #[error("an import needs a pool of at least one block of at least one byte")]
    EmptyPool,
}

/// A Zenoh operation on a key expression failed.
#[derive(Debug, thiserror::Error)]
#[error("Zenoh failed on {key}: {source}")]
pub struct ZenohFailed {
    /// The key expression.
    pub key: String,
    /// Zenoh's reason.
    #[source]
    pub source: zenoh::Error,
}

impl ZenohFailed {
    /// A closure making the error for `key` from Zenoh's.
    fn on(key: &impl std::fmt::Display) -> impl Fn(zenoh::Error) -> ZenohFailed + '_ {
        move |source| ZenohFailed {
            key: key.to_string(),
            source,
        }
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Zenoh failed (declaring the publisher, sending).
    #[error(transparent)]
    Zenoh(#[from] ZenohFailed),
    /// The host refused the subscription.
    #[error(transparent)]
    Subscribe(#[from] native::OpenError),
    /// The subscription ended badly (evicted: the export did not keep up
    /// under the `block` policy).
    #[error(transparent)]
    Receive(#[from] native::ReceiveError),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Zenoh failed (declaring the subscriber or the end's queryable).
    #[error(transparent)]
    Zenoh(#[from] ZenohFailed),
    /// The host refused the publisher (the topic has one already).
    #[error(transparent)]
    Open(#[from] native::OpenError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] native::PublishError),
}

/// One Zenoh session of the host, and its settings (see the module).
pub struct Bridge {
    session: Session,
    config: BridgeConfig,
}

impl Bridge {
    /// Opens the Zenoh session.
    pub fn open(zenoh: zenoh::Config, config: BridgeConfig) -> Result<Bridge, OpenError> {
        let session = zenoh::open(zenoh).wait().map_err(OpenError)?;
        tracing::info!(zid = %session.zid(), "zenoh session open");
        Ok(Bridge { session, config })
    }

    /// The Zenoh session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The bridge's settings.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    fn key(key: &str) -> Result<KeyExpr<'static>, DeclareError> {
        KeyExpr::try_from(key.to_string()).map_err(|source| DeclareError::KeyExpr {
            key: key.to_string(),
            source,
        })
    }

    /// Sends the local `topic` to the key expression `key` (see
    /// [`Export::run`]).
    pub fn export(&self, topic: &str, key: &str) -> Result<Export, DeclareError> {
        if topic.is_empty() {
            return Err(DeclareError::EmptyTopic);
        }
        Ok(Export {
            session: self.session.clone(),
            topic: topic.to_string(),
            key: Self::key(key)?,
            config: self.config,
            counters: Default::default(),
        })
    }

    /// Receives the key expression `key` as the local `topic` (see
    /// [`Import::run`]).
    pub fn import(&self, key: &str, topic: &str) -> Result<Import, DeclareError> {
        if topic.is_empty() {
            return Err(DeclareError::EmptyTopic);
        }
        if self.config.blocks == 0 || self.config.block_size == 0 {
            return Err(DeclareError::EmptyPool);
        }
        Ok(Import {
            session: self.session.clone(),
            key: Self::key(key)?,
            topic: topic.to_string(),
            config: self.config,
            counters: Default::default(),
        })
    }

    /// Closes the session (after the exports and imports ended).
    pub fn close(self) -> Result<(), OpenError> {
        self.session.close().wait().map_err(OpenError)
    }
}
