//! Publish/subscribe topologies: one publisher component and any number of
//! subscriber components, each a command in a store of its own, on threads
//! of their own, with the grants, limits and time limits of the host.
//!
//! ```no_run
//! use shm_host::topology::Topology;
//! use shm_host::ShmHost;
//!
//! let host = ShmHost::default();
//! let mut topology = Topology::new(&host)?;
//! let publisher = topology.load("pubsub-publisher.wasm")?;
//! let subscriber = topology.load("pubsub-subscriber.wasm")?;
//! topology
//!     .topic("numbers")
//!     .publisher("publisher", publisher, &["20"])
//!     .subscriber("first", subscriber.clone(), &[])
//!     .subscriber("second", subscriber, &[]);
//! let report = topology.run();
//! for ended in &report.ended {
//!     println!("{} {}: {}", ended.role, ended.name, ended.status);
//! }
//! println!("{}", report.statistics);
//! assert!(report.succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The publisher starts once every subscriber has subscribed (or ended, or
//! the timeout passed), so that none misses a message; it may publish the
//! topology's topics (every topic unless [`Topology::topic`] names some),
//! the subscribers may subscribe to them, and nobody else may do either.
//! When the publisher ends its topics close, and the subscribers drain their
//! queues and end; those that do not within the timeout are reported.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wasmtime_wasi::WasiCtxBuilder;

use crate::command::{self, Status};
use crate::link::{self, GuestState, LoadError};
use crate::{Grants, ShmHost, Statistics};

/// Which part of a topology a component plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A publisher: starts once every subscriber has subscribed.
    Publisher,
    /// A subscriber.
    Subscriber,
    /// A stage of a pipeline: subscribes (and starts) as a subscriber does,
    /// and may publish too (grants for both).
    Relay,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Relay => "relay",
        })
    }
}

/// A component of a topology that ended, and how.
#[derive(Clone, Debug)]
pub struct Ended {
    /// Publisher or subscriber.
    pub role: Role,
    /// The name it was given.
    pub name: String,
    /// How its run ended.
    pub status: Status,
    /// A subscriber that ended before the publisher started (before every
    /// subscriber subscribed): it may have missed messages, or never
    /// subscribed.
    pub before_publisher: bool,
}

/// How a topology's run went.
#[derive(Debug)]
pub struct Report {
    /// The components, in the order they ended.
    pub ended: Vec<Ended>,
    /// Subscribers that had not ended when the timeout passed.
    pub unfinished: Vec<String>,
    /// The host's counters after the run.
    pub statistics: Statistics,
}

impl Report {
    /// Did every component succeed, and every subscriber end?
    pub fn succeeded(&self) -> bool {
        self.unfinished.is_empty() && self.ended.iter().all(|e| e.status.succeeded())
    }
}

/// Sets up each component's WASI context after its arguments (environment,
/// preopened directories, standard streams).
pub type WasiSetup = dyn Fn(&str, &mut WasiCtxBuilder) -> wasmtime::Result<()> + Send + Sync;

/// Host code run as a member of a topology (see [`Topology::native`]).
pub type NativeRun = Box<dyn FnOnce(&ShmHost) -> Status + Send>;

enum Run {
    Component(Component, Vec<String>),
    Native(NativeRun),
}

struct Member {
    role: Role,
    name: String,
    run: Run,
}

/// A publish/subscribe topology to run (see the module's example).
pub struct Topology {
    host: ShmHost,
    engine: Engine,
    linker: Linker<GuestState>,
    topics: Vec<String>,
    /// The topics relays may publish (and nothing else).
    relay_outputs: Vec<String>,
    timeout: Duration,
    members: Vec<Member>,
    wasi: Arc<WasiSetup>,
}

impl Topology {
    /// A topology on `host`: an engine of its own ([`ShmHost::engine`]) and
    /// a linker with asynchronous WASI p2 and both interfaces, so that
    /// subscribers may read their messages as streams. Standard streams are
    /// inherited; the timeout is 60 s.
    pub fn new(host: &ShmHost) -> wasmtime::Result<Topology> {
        let engine = host.engine()?;
        let linker = link::linker_async(&engine)?;
        Ok(Topology {
            host: host.clone(),
            engine,
            linker,
            topics: Vec::new(),
            relay_outputs: Vec::new(),
            timeout: Duration::from_secs(60),
            members: Vec::new(),
            wasi: Arc::new(|_, wasi: &mut WasiCtxBuilder| {
                wasi.inherit_stdio();
                Ok(())
            }),
        })
    }

    /// The engine components must be compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads and compiles the component at `path`.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Component, LoadError> {
        link::load_component(&self.engine, path.as_ref())
    }

    /// Limits the topology to the topics `pattern` matches (a name, or a
    /// prefix ending in `*`); may be given several times. Without it, every
    /// topic.
    pub fn topic(&mut self, pattern: impl Into<String>) -> &mut Self {
        self.topics.push(pattern.into());
        self
    }

    /// Lets the relays publish the topics `pattern` matches (a name, or a
    /// prefix ending in `*`); may be given several times. A relay
    /// publishes these and nothing else: without this call, relays only
    /// subscribe. Relays subscribe to the topology's topics
    /// ([`Topology::topic`]) and to these.
    pub fn relay_output(&mut self, pattern: impl Into<String>) -> &mut Self {
        self.relay_outputs.push(pattern.into());
        self
    }

    /// How long to wait for the subscribers to subscribe, and for them to
    /// end after the publisher.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Sets up each component's WASI context (after its arguments): `setup`
    /// gets the component's name. Replaces the default, which inherits the
    /// standard streams.
    pub fn wasi(
        &mut self,
        setup: impl Fn(&str, &mut WasiCtxBuilder) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        self.wasi = Arc::new(setup);
        self
    }

    /// The publisher component, `name` in statistics and logs, run with
    /// `args` (its `argv[0]` is `name`). A second call replaces the first
    /// (native publishers, [`Topology::native`], are kept).
    pub fn publisher(
        &mut self,
        name: impl Into<String>,
        component: Component,
        args: &[&str],
    ) -> &mut Self {
        self.members
            .retain(|m| !(m.role == Role::Publisher && matches!(m.run, Run::Component(..))));
        self.add(Role::Publisher, name.into(), component, args)
    }

    /// Adds a relay, `name` in statistics and logs, run with `args`: a
    /// component that subscribes to some of the topology's topics and
    /// publishes others (a stage of a pipeline).
    pub fn relay(
        &mut self,
        name: impl Into<String>,
        component: Component,
        args: &[&str],
    ) -> &mut Self {
        self.add(Role::Relay, name.into(), component, args)
    }

    /// Adds host code playing `role`, `name` in logs: `run` is called on a
    /// thread of its own, as a component's run would be, and its status
    /// reported as a component's. A native publisher (a bridge importing a
    /// remote topic, a camera driver) starts once every subscriber has
    /// subscribed, and the topology waits for it to end as for a publisher
    /// component; a native subscriber (a bridge exporting a topic) must
    /// subscribe before the publishers start, and end when its topic does.
    /// Its grants are its own (see [`crate::pubsub::native`]).
    pub fn native(
        &mut self,
        role: Role,
        name: impl Into<String>,
        run: impl FnOnce(&ShmHost) -> Status + Send + 'static,
    ) -> &mut Self {
        self.members.push(Member {
            role,
            name: name.into(),
            run: Run::Native(Box::new(run)),
        });
        self
    }

    /// Adds a subscriber, `name` in statistics and logs, run with `args`.
    pub fn subscriber(
        &mut self,
        name: impl Into<String>,
        component: Component,
        args: &[&str],
    ) -> &mut Self {
        self.add(Role::Subscriber, name.into(), component, args)
    }

    fn add(&mut self, role: Role, name: String, component: Component, args: &[&str]) -> &mut Self {
        let args = args.iter().map(|a| a.to_string()).collect();
        self.members.push(Member {
            role,
            name,
            run: Run::Component(component, args),
        });
        self
    }

    /// The grants of a component playing `role`.
    fn grants(&self, role: Role) -> Grants {
        let all = ["*".to_string()];
        let topics = if self.topics.is_empty() {
            &all[..]
        } else {
            &self.topics[..]
        };
        let grants = topics.iter().fold(Grants::none(), |g, t| match role {
            Role::Publisher => g.publish(t.clone()),
            Role::Subscriber | Role::Relay => g.subscribe(t.clone()),
        });
        // A relay publishes its declared outputs only: never a topic of the
        // topology's publisher that it was not named for.
        match role {
            Role::Relay => self
                .relay_outputs
                .iter()
                .fold(grants, |g, t| g.publish(t.clone()).subscribe(t.clone())),
            Role::Publisher | Role::Subscriber => grants,
        }
    }

    /// Runs the topology to its end; see [`Topology::run_with`].
    pub fn run(self) -> Report {
        self.run_with(|_| {})
    }

    /// Runs the topology to its end, calling `on_end` as soon as each
    /// component ends (a runner reports failures at once with it).
    pub fn run_with(mut self, mut on_end: impl FnMut(&Ended)) -> Report {
        let (done_tx, done_rx) = mpsc::channel::<(Role, String, Status)>();
        let members = std::mem::take(&mut self.members);
        let start = |m: Member| {
            let (role, name) = (m.role, m.name.clone());
            let job: Box<dyn FnOnce() -> Status + Send> = match m.run {
                Run::Component(component, args) => {
                    let mut wasi = WasiCtxBuilder::new();
                    wasi.arg(&m.name).args(&args);
                    let status = (self.wasi)(&m.name, &mut wasi).map_err(|e| format!("{e:#}"));
                    let state = GuestState::new(&self.host, &m.name, wasi, self.grants(m.role));
                    let (engine, linker) = (self.engine.clone(), self.linker.clone());
                    Box::new(move || match status {
                        Ok(()) => command::run_async(&engine, &linker, &component, state),
                        Err(e) => Status::Error(format!("setting up WASI: {e}")),
                    })
                }
                Run::Native(run) => {
                    let host = self.host.clone();
                    Box::new(move || run(&host))
                }
            };
            let done = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(m.name.clone())
                .spawn(move || {
                    let status = job();
                    let _ = done.send((role, name, status));
                });
            if let Err(e) = spawned {
                let status = Status::Error(format!("starting a thread: {e}"));
                let _ = done_tx.send((m.role, m.name, status));
            }
        };
        let mut ended = Vec::new();
        let mut record = |ended: &mut Vec<Ended>, (role, name, status), before_publisher| {
            let e = Ended {
                role,
                name,
                status,
                before_publisher,
            };
            on_end(&e);
            ended.push(e);
        };
        let (publishers, subscribers): (Vec<Member>, Vec<Member>) =
            members.into_iter().partition(|m| m.role == Role::Publisher);
        let mut waiting: Vec<String> = subscribers.iter().map(|m| m.name.clone()).collect();
        let count = subscribers.len();
        let before = self.host.subscriptions();
        for m in subscribers {
            start(m);
        }
        // Every subscriber subscribes at least once before it reads: start
        // the publishers when they all have (or ended, or time ran out).
        let deadline = Instant::now() + self.timeout;
        while self.host.subscriptions() < before + count && !waiting.is_empty() {
            match done_rx.recv_timeout(Duration::from_millis(5)) {
                Ok(end) => {
                    waiting.retain(|n| *n != end.1);
                    record(&mut ended, end, true);
                }
                Err(_) if Instant::now() >= deadline => {
                    let topics = if self.topics.is_empty() {
                        "any topic".to_string()
                    } else {
                        self.topics.join(", ")
                    };
                    tracing::warn!(
                        "not every subscriber ({}) subscribed to {topics} within {:?}; starting the publishers anyway",
                        waiting.join(", "),
                        self.timeout
                    );
                    break;
                }
                Err(_) => {}
            }
        }
        let mut publishers_running = publishers.len();
        for p in publishers {
            start(p);
        }
        drop(done_tx);
        // A publisher's store ends with it, and so do its topics: the
        // subscribers drain their queues and end.
        let mut deadline = (publishers_running == 0).then(|| Instant::now() + self.timeout);
        while publishers_running > 0 || !waiting.is_empty() {
            let end = match deadline {
                None => done_rx.recv().ok(),
                Some(d) => done_rx
                    .recv_timeout(d.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            let Some(end) = end else { break };
            if end.0 == Role::Publisher {
                publishers_running -= 1;
                if publishers_running == 0 {
                    deadline = Some(Instant::now() + self.timeout);
                }
            }
            waiting.retain(|n| *n != end.1);
            record(&mut ended, end, false);
        }
        Report {
            ended,
            unfinished: waiting,
            statistics: self.host.statistics(),
        }
    }
}
