//! A host's settings: [`ShmConfig`], built from its default.

use std::time::Duration;

use crate::pubsub::PubSubConfig;
use crate::rules::{Limits, ProcessLimits};
#[cfg(doc)]
use crate::{ShmHost, StatsSnapshot, Stopped};

/// Settings of a [`ShmHost`].
///
/// Start from the default and change what you need; new settings may come
/// in later versions without breaking this:
///
/// ```
/// use std::time::Duration;
/// use shm_host::{ShmConfig, ShmHost};
/// use shm_host::pubsub::{Overflow, PubSubConfig};
///
/// let config = ShmConfig::default()
///     .cpu_limit(Some(Duration::from_secs(30)))
///     .pubsub(PubSubConfig::default().queue(4).overflow(Overflow::DropOldest));
/// let host = ShmHost::new(config);
/// assert_eq!(host.config().pubsub.queue, 4);
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ShmConfig {
    /// Limits applied to every guest.
    pub limits: Limits,
    /// Publish/subscribe settings.
    pub pubsub: PubSubConfig,
    /// After every mapped attach, check in `/proc/self/maps` that the
    /// guest's pages are a mapping of the block's own memfd at the right
    /// offset, and count the result ([`StatsSnapshot::verified`]). Costs a
    /// read of `/proc/self/maps` per attach: for demonstrations and tests.
    pub verify_sharing: bool,
    /// Wasm execution time each guest may use in all (its CPU budget), to
    /// an epoch tick's precision; `None` for no limit. A guest past it traps
    /// ([`Stopped::CpuLimit`]).
    pub cpu_limit: Option<Duration>,
    /// How often engines made by [`ShmHost::engine`] advance their epoch:
    /// how soon a stopped or evicted guest that runs wasm traps.
    pub epoch_tick: Duration,
    /// Limits for all guests together; `None`: from what this process may
    /// hold (its descriptor and mapping limits).
    pub process_limits: Option<ProcessLimits>,
    /// Engines support concurrent (WASI 0.3 style) execution: streams and
    /// futures, such as `subscriber.get-stream` (default). Without it
    /// every component call is cheaper (wasmtime sets up no task state:
    /// an empty host-to-guest call costs about a third), but components
    /// that use streams or futures do not run.
    pub concurrency: bool,
}

impl Default for ShmConfig {
    fn default() -> Self {
        ShmConfig {
            limits: Limits::default(),
            pubsub: PubSubConfig::default(),
            verify_sharing: false,
            cpu_limit: None,
            epoch_tick: Duration::from_millis(10),
            process_limits: None,
            concurrency: true,
        }
    }
}

/// Setters, one per setting, each returning the changed configuration.
impl ShmConfig {
    /// Sets [`ShmConfig::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`ShmConfig::pubsub`].
    pub fn pubsub(mut self, pubsub: PubSubConfig) -> Self {
        self.pubsub = pubsub;
        self
    }

    /// Sets [`ShmConfig::verify_sharing`].
    pub fn verify_sharing(mut self, verify: bool) -> Self {
        self.verify_sharing = verify;
        self
    }

    /// Sets [`ShmConfig::cpu_limit`].
    pub fn cpu_limit(mut self, limit: Option<Duration>) -> Self {
        self.cpu_limit = limit;
        self
    }

    /// Sets [`ShmConfig::epoch_tick`].
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick;
        self
    }

    /// Sets [`ShmConfig::process_limits`].
    pub fn process_limits(mut self, limits: Option<ProcessLimits>) -> Self {
        self.process_limits = limits;
        self
    }

    /// Sets [`ShmConfig::concurrency`].
    pub fn concurrency(mut self, on: bool) -> Self {
        self.concurrency = on;
        self
    }
}
