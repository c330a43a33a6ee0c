//! Recording topics to MCAP files and replaying them (feature `record`).
//!
//! A [`Recorder`] is host code subscribed to one topic (a
//! [`NativeSubscriber`]) that writes every message of it to an MCAP file
//! under flat-wit's recording convention ([`flat_wit::mcap`]): one channel
//! per topic, message encoding `flat-layout`, a schema of encoding
//! `flat-wit/u8|u16|u32` whose name is the WIT type (`frame`, or
//! `interface.type`) and whose data is the WIT text
//! ([`flat_wit::mcap::wit_text`]). `flat-wit dump FILE.mcap` reads it.
//!
//! A recorder never slows the publisher: its subscription has a policy of
//! its own, `drop-oldest`, whatever the host's, so it is never waited for
//! and never evicted for a full queue; it loses its own oldest messages
//! instead (counted: [`RecordStats::dropped_queue`]). Off the hot path, one
//! thread takes each message (copying it out of its block once, into a
//! reused buffer) and hands it to a second thread that writes the file
//! through a bounded channel; when the writer falls behind, messages are
//! dropped and counted ([`RecordStats::dropped_writer`]). The file is
//! written as `FILE.tmp` and renamed to `FILE` once finalized (MCAP summary
//! and footer written): an error, or a recorder that was never finished,
//! leaves no half-written `FILE`.
//!
//! Times: `publish_time` is when the recorder took the message off its
//! queue (the host does not stamp messages; within the queue's latency of
//! the publish when the recorder keeps up), `log_time` when it was written;
//! both in nanoseconds since the Unix epoch; `sequence` counts from 1 per
//! channel.
//!
//! [`Recording`] ([`replay`](self::replay)) publishes a recording's
//! messages again, with a [`NativePublisher`](crate::pubsub::native::NativePublisher)
//! per topic, at the recorded pace or as fast as possible.
//!
//! ```no_run
//! use std::path::Path;
//! use shm_host::record::{RecordSchema, Recorder};
//! use shm_host::ShmHost;
//!
//! let host = ShmHost::default();
//! let schema = RecordSchema::from_wit(Path::new("examples/frames/wit"), "frame", "u32")?;
//! let recorder = Recorder::start(&host, "frames", Path::new("frames.mcap"), schema)?;
//! // ... run a topology publishing `frames` on `host` ...
//! let stats = recorder.finish()?;
//! println!("{stats}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flat_wit::mcap::{schema_encoding, MESSAGE_ENCODING};
use flat_wit::Width;

use crate::pubsub::native::{NativeSubscriber, Next, OpenError};
use crate::pubsub::Overflow;
use crate::ShmHost;

pub mod replay;

pub use replay::{Pace, Recording, ReplayError, ReplayOptions, ReplayStats, TopicInfo};

/// What a recording's channel schema says: the WIT, the type and the
/// index width of the topic's flat messages.
#[derive(Clone, Debug)]
pub struct RecordSchema {
    /// The WIT package as [`flat_wit::mcap::wit_text`] gives it.
    pub wit: String,
    /// The type: `frame`, or `interface.frame` to look it up in one
    /// interface ([`flat_wit::mcap::schema_name`]).
    pub type_name: String,
    /// The messages' index width.
    pub width: Width,
}

impl RecordSchema {
    /// The schema of type `type_name` (`frame` or `types.frame`) at index
    /// width `width` (`u8`, `u16`, `u32`) of the WIT package at `wit` (a
    /// `.wit` file or a package directory). Checks that the type exists and
    /// that flat-wit can decode it, so that a mistake shows before a run.
    pub fn from_wit(wit: &Path, type_name: &str, width: &str) -> Result<RecordSchema, RecordError> {
        let width = Width::parse(width).ok_or_else(|| RecordError::Schema {
            what: format!("index width `{width}`"),
            error: "expected u8, u16 or u32".into(),
        })?;
        let text = flat_wit::mcap::wit_text(wit).map_err(|e| RecordError::Schema {
            what: format!("WIT {}", wit.display()),
            error: e.to_string(),
        })?;
        let schema = RecordSchema {
            wit: text,
            type_name: type_name.to_string(),
            width,
        };
        schema.check()?;
        Ok(schema)
    }

    /// Checks that the WIT loads and has the type, decodable at the width.
    pub fn check(&self) -> Result<(), RecordError> {
        let (interface, ty) = flat_wit::mcap::parse_schema_name(&self.type_name);
        let selection = flat_wit::Selection {
            interface: interface.map(str::to_string),
            types: Vec::new(),
        };
        let what = || format!("type `{}`", self.type_name);
        let model = flat_wit::mcap::model_from_wit_text(&self.wit, &selection).map_err(|e| {
            RecordError::Schema {
                what: what(),
                error: e.to_string(),
            }
        })?;
        flat_wit::dynamic::Decoder::new(&model, ty, self.width).map_err(|e| {
            RecordError::Schema {
                what: what(),
                error: format!("{e}; name a type of the WIT (`type` or `interface.type`)"),
            }
        })?;
        Ok(())
    }
}

/// Settings of a [`Recorder`] beyond its topic and file.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RecordOptions {
    /// Messages waiting for the writer thread at most.
    pub buffered: usize,
    /// Bytes of messages waiting for the writer thread at most (not
    /// applied when `lossless`: there at most `buffered` messages wait).
    pub buffered_bytes: usize,
    /// Record every message, at the price of making the publisher wait:
    /// the recorder's subscription is `block` (whatever the host's policy)
    /// and the taking thread waits for the writer instead of dropping. A
    /// recorder that keeps the publisher waiting past the stall limit is
    /// evicted like any subscriber (the recording ends there, finalized).
    /// Off by default: a recorder never makes the publisher wait, and
    /// counts what it drops.
    pub lossless: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            buffered: 64,
            buffered_bytes: 256 << 20,
            lossless: false,
        }
    }
}

/// Setters, each returning the changed options.
impl RecordOptions {
    /// Sets [`RecordOptions::buffered`] (at least 1).
    pub fn buffered(mut self, messages: usize) -> Self {
        self.buffered = messages.max(1);
        self
    }

    /// Sets [`RecordOptions::buffered_bytes`].
    pub fn buffered_bytes(mut self, bytes: usize) -> Self {
        self.buffered_bytes = bytes;
        self
    }

    /// Sets [`RecordOptions::lossless`].
    pub fn lossless(mut self, lossless: bool) -> Self {
        self.lossless = lossless;
        self
    }
}

/// Why a recording could not be made or finished.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The schema does not load: the WIT, the type or the width is wrong.
    #[error("the recording schema's {what} is unusable: {error}")]
    Schema {
        /// What was being loaded.
        what: String,
        /// Why it failed.
        error: String,
    },
    /// The file could not be created, written or renamed.
    #[error("cannot write the recording {path}: {error}; check that its directory exists and is writable, and that the disk has room")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The MCAP writer failed.
    #[error("the MCAP writer failed on {path}: {error}; nothing was left at that path")]
    Mcap {
        /// The file being written.
        path: PathBuf,
        /// The mcap crate's error.
        error: mcap::McapError,
    },
    /// The host refused the recorder's subscription.
    #[error("cannot record: {0}")]
    Subscribe(#[from] OpenError),
    /// A recorder thread panicked (a bug).
    #[error("a thread of the recorder of `{0}` panicked")]
    Panicked(String),
}

/// What a recorder did, from [`Recorder::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordStats {
    /// The topic.
    pub topic: String,
    /// The file written.
    pub path: PathBuf,
    /// Messages written.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages the recorder's queue lost (it drops its oldest rather than
    /// slow the publisher).
    pub dropped_queue: u64,
    /// Messages taken but dropped because the writer fell behind.
    pub dropped_writer: u64,
}

impl std::fmt::Display for RecordStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} -> {}: {} messages ({} bytes)  dropped {} (queue {}, writer {})",
            self.topic,
            self.path.display(),
            self.messages,
            self.bytes,
            self.dropped_queue + self.dropped_writer,
            self.dropped_queue,
            self.dropped_writer
        )
    }
}

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One message on its way to the writer.
struct Taken {
    publish_time: u64,
    bytes: Vec<u8>,
}

/// Counters shared by the recorder's threads.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// The writer failed: the taker stops.
    failed: AtomicBool,
    dropped_writer: AtomicU64,
    dropped_queue: AtomicU64,
    in_flight: AtomicUsize,
}

/// A topic being recorded (see the module's notes). Finish it with
/// [`Recorder::finish`]; dropping it finishes it too (errors are logged).
pub struct Recorder {
    topic: String,
    path: PathBuf,
    shared: Arc<Shared>,
    taker: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<Result<(u64, u64), RecordError>>>,
}

/// `FILE.tmp` beside `FILE`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

impl Recorder {
    /// Subscribes to `topic` on `host` (as `record TOPIC` in statistics) and
    /// records every message from now on to `path` with `schema`, with the
    /// default [`RecordOptions`]. Start it before the topic's publisher so
    /// that it misses nothing (a topology's publisher starts once every
    /// subscription, this one included, exists).
    pub fn start(
        host: &ShmHost,
        topic: &str,
        path: &Path,
        schema: RecordSchema,
    ) -> Result<Recorder, RecordError> {
        Recorder::start_with(host, topic, path, schema, RecordOptions::default())
    }

    /// [`Recorder::start`] with `options`.
    pub fn start_with(
        host: &ShmHost,
        topic: &str,
        path: &Path,
        schema: RecordSchema,
        options: RecordOptions,
    ) -> Result<Recorder, RecordError> {
        let tmp = tmp_path(path);
        let io = |error| RecordError::Io {
            path: tmp.clone(),
            error,
        };
        let file = File::create(&tmp).map_err(io)?;
        let opened = open_writer(BufWriter::new(file), topic, &schema).map_err(|error| {
            let _ = std::fs::remove_file(&tmp);
            RecordError::Mcap {
                path: tmp.clone(),
                error,
            }
        });
        let (writer, channel) = opened?;
        let policy = if options.lossless {
            Overflow::Block
        } else {
            Overflow::DropOldest
        };
        let subscriber = match NativeSubscriber::with_overflow(
            host,
            &format!("record {topic}"),
            topic,
            policy,
        ) {
            Ok(s) => s,
            Err(e) => {
                drop(writer);
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        let shared = Arc::new(Shared::default());
        let (to_writer, from_taker) = mpsc::sync_channel::<Taken>(options.buffered.max(1));
        // Buffers the writer is done with go back to the taker.
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(options.buffered.max(1) + 2);
        let taker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("record {topic} (take)"))
                .spawn(move || take(subscriber, to_writer, spare_rx, &shared, options))
                .map_err(io)?
        };
        let writer = {
            let shared = shared.clone();
            let (path, tmp) = (path.to_path_buf(), tmp.clone());
            std::thread::Builder::new()
                .name(format!("record {topic} (write)"))
                .spawn(move || write(writer, channel, from_taker, spare_tx, &shared, &tmp, &path))
                .map_err(io)?
        };
        Ok(Recorder {
            topic: topic.to_string(),
            path: path.to_path_buf(),
            shared,
            taker: Some(taker),
            writer: Some(writer),
        })
    }

    /// The topic recorded.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether the recording ended by itself (the topic's publisher ended
    /// and every message was taken, or writing failed): [`Recorder::finish`]
    /// then returns at once.
    pub fn is_done(&self) -> bool {
        self.taker.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops recording: takes what is still queued, writes it, finalizes
    /// the file (MCAP summary and footer) and renames `FILE.tmp` to `FILE`.
    /// On error no `FILE` is left (nor the `.tmp`).
    pub fn finish(mut self) -> Result<RecordStats, RecordError> {
        self.end()
    }

    fn end(&mut self) -> Result<RecordStats, RecordError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let panicked = || RecordError::Panicked(self.topic.clone());
        if let Some(t) = self.taker.take() {
            t.join().map_err(|_| panicked())?;
        }
        let (messages, bytes) = match self.writer.take() {
            Some(w) => w.join().map_err(|_| panicked())??,
            None => (0, 0),
        };
        Ok(RecordStats {
            topic: self.topic.clone(),
            path: self.path.clone(),
            messages,
            bytes,
            dropped_queue: self.shared.dropped_queue.load(Ordering::SeqCst),
            dropped_writer: self.shared.dropped_writer.load(Ordering::SeqCst),
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.writer.is_some() {
            if let Err(e) = self.end() {
                tracing::error!(topic = %self.topic, "recording failed: {e}");
            }
        }
    }
}

/// An MCAP writer with the topic's schema and channel.
fn open_writer<W: Write + Seek>(
    out: W,
    topic: &str,
    schema: &RecordSchema,
) -> Result<(mcap::Writer<W>, u16), mcap::McapError> {
    // Flat messages are written as they are: no compression, so that the
    // writer keeps up with large messages (chunk CRCs still catch damage).
    let mut writer = mcap::WriteOptions::new()
        .compression(None)
        .library(concat!("shm-host ", env!("CARGO_PKG_VERSION")))
        .create(out)?;
    let schema_id = writer.add_schema(
        &schema.type_name,
        &schema_encoding(schema.width),
        schema.wit.as_bytes(),
    )?;
    let channel = writer.add_channel(schema_id, topic, MESSAGE_ENCODING, &BTreeMap::new())?;
    Ok((writer, channel))
}

/// The taking thread: each message copied out of its block once, into a
/// buffer handed to the writer (or dropped and counted if it is behind).
fn take(
    mut subscriber: NativeSubscriber,
    to_writer: SyncSender<Taken>,
    spare: Receiver<Vec<u8>>,
    shared: &Shared,
    options: RecordOptions,
) {
    let mut buffer = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::SeqCst);
        if shared.failed.load(Ordering::SeqCst) {
            break;
        }
        // Once stopping, only what is queued already is taken.
        let wait = if stopping {
            Duration::ZERO
        } else {
            Duration::from_millis(50)
        };
        match subscriber.next_into(&mut buffer, wait) {
            Ok(Next::Message) => {}
            Ok(Next::TimedOut) if !stopping => continue,
            Ok(Next::TimedOut | Next::Ended) => break,
            Err(e) => {
                tracing::warn!("recorder: {e}");
                break;
            }
        }
        let publish_time = now_ns();
        let len = buffer.len();
        let fits = options.lossless
            || shared.in_flight.load(Ordering::SeqCst) + len <= options.buffered_bytes;
        let next = spare.try_recv().unwrap_or_default();
        let bytes = std::mem::replace(&mut buffer, next);
        if !fits {
            shared.dropped_writer.fetch_add(1, Ordering::SeqCst);
            buffer = bytes;
            continue;
        }
        shared.in_flight.fetch_add(len, Ordering::SeqCst);
        let taken = Taken {
            publish_time,
            bytes,
        };
        // Lossless: wait for the writer (it only stops on failure).
        let sent = if options.lossless {
            to_writer
                .send(taken)
                .map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            to_writer.try_send(taken)
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(t) | TrySendError::Disconnected(t)) => {
                shared.in_flight.fetch_sub(len, Ordering::SeqCst);
                shared.dropped_writer.fetch_add(1, Ordering::SeqCst);
                buffer = t.bytes;
            }
        }
    }
    shared
        .dropped_queue
        .store(subscriber.dropped(), Ordering::SeqCst);
}

/// The writing thread: every message handed over, then the summary and
/// footer, then the rename. Returns the messages and bytes written.
fn write(
    mut writer: mcap::Writer<BufWriter<File>>,
    channel: u16,
    from_taker: Receiver<Taken>,
    spare: SyncSender<Vec<u8>>,
    shared: &Shared,
    tmp: &Path,
    path: &Path,
) -> Result<(u64, u64), RecordError> {
    let mcap_error = |error| RecordError::Mcap {
        path: path.to_path_buf(),
        error,
    };
    let io = |error| RecordError::Io {
        path: tmp.to_path_buf(),
        error,
    };
    let mut written = (0u64, 0u64);
    let mut sequence = 0u32;
    let result = (|| {
        for taken in from_taker.iter() {
            let len = taken.bytes.len();
            sequence = sequence.wrapping_add(1);
            let header = mcap::records::MessageHeader {
                channel_id: channel,
                sequence,
                log_time: now_ns(),
                publish_time: taken.publish_time,
            };
            let wrote = writer.write_to_known_channel(&header, &taken.bytes);
            shared.in_flight.fetch_sub(len, Ordering::SeqCst);
            let _ = spare.try_send(taken.bytes);
            wrote.map_err(mcap_error)?;
            written.0 += 1;
            written.1 += len as u64;
        }
        writer.finish().map_err(mcap_error)?;
        let file = writer
            .into_inner()
            .into_inner()
            .map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(tmp, path).map_err(|error| RecordError::Io {
            path: path.to_path_buf(),
            error,
        })
    })();
    if let Err(e) = result {
        shared.failed.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(tmp);
        // Lets the taker go on to its end (it stops on `failed`).
        drop(from_taker);
        return Err(e);
    }
    Ok(written)
}

/// How long [`wait_until`] sleeps between looks.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `ready` holds or `timeout` passed; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
