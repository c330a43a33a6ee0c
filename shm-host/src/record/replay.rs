//! Replaying a recording: each topic's messages published again, by a
//! [`NativePublisher`] per topic (a pooled publisher; the host copies each
//! message into a pool block once), to whoever subscribes.
//!
//! [`Recording::open`] reads the whole file and checks every record of it
//! before anything is published: a truncated or corrupted file is a
//! [`ReplayError::Mcap`], and no subscriber gets a message of it.
//!
//! ```no_run
//! use std::path::Path;
//! use shm_host::record::{Pace, Recording, ReplayOptions};
//! use shm_host::ShmHost;
//!
//! let host = ShmHost::default();
//! let recording = Recording::open(Path::new("frames.mcap"))?;
//! let options = ReplayOptions::default().pace(Pace::AsFastAsPossible).subscribers(1);
//! // ... subscribers on `host` ...
//! let stats = recording.replay(&host, &options)?;
//! println!("{stats}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pubsub::native::{NativePublisher, OpenError, PublishError};
use crate::ShmHost;

/// How fast [`Recording::replay`] publishes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// At the recorded pace scaled by the rate (2.0: twice as fast): the
    /// gaps between messages' publish times (their log times where a
    /// publish time is 0) divided by the rate.
    Rate(f64),
    /// Each message as soon as the one before it is published.
    AsFastAsPossible,
}

/// Settings of [`Recording::replay`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// The topics to replay; every topic of the recording when empty.
    pub topics: Vec<String>,
    /// How fast.
    pub pace: Pace,
    /// Blocks in each topic's pool.
    pub blocks: u32,
    /// Subscriptions each replayed topic must have before the first message
    /// (0: none waited for; a topology waits for its subscribers itself).
    pub subscribers: usize,
    /// How long to wait for them (then it replays anyway) and, per message,
    /// for a free pool block.
    pub timeout: Duration,
    /// Stops the replay when set (checked between messages and while
    /// waiting for the next one's time).
    pub stop: Option<Arc<AtomicBool>>,
    /// The publishers' names in statistics: `NAME TOPIC`.
    pub name: String,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            topics: Vec::new(),
            pace: Pace::Rate(1.0),
            blocks: 8,
            subscribers: 0,
            timeout: Duration::from_secs(60),
            stop: None,
            name: "replay".into(),
        }
    }
}

impl ReplayOptions {
    /// Replays `topic` (may be called several times); every topic if never.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Sets [`ReplayOptions::pace`].
    pub fn pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }

    /// Sets [`ReplayOptions::blocks`] (at least 1).
    pub fn blocks(mut self, blocks: u32) -> Self {
        self.blocks = blocks.max(1);
        self
    }

    /// Sets [`ReplayOptions::subscribers`].
    pub fn subscribers(mut self, subscribers: usize) -> Self {
        self.subscribers = subscribers;
        self
    }

    /// Sets [`ReplayOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ReplayOptions::stop`].
    pub fn stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Sets [`ReplayOptions::name`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// Why a recording could not be opened or replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read the recording {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not a complete, intact MCAP file.
    #[error("{path} is not a readable MCAP recording ({error}): the file is truncated or corrupted (a recording interrupted before it was finalized lacks its end); nothing was replayed: record it again, or try `mcap recover` on it")]
    Mcap {
        /// The file.
        path: PathBuf,
        /// The mcap crate's error.
        error: mcap::McapError,
    },
    /// A topic asked for is not in the recording.
    #[error("the recording {path} has no topic `{topic}`; its topics: {available}")]
    UnknownTopic {
        /// The file.
        path: PathBuf,
        /// The topic asked for.
        topic: String,
        /// The topics it has.
        available: String,
    },
    /// A recorded message is larger than a pool block can be.
    #[error("message {sequence} of topic `{topic}` has {len} bytes: more than a pool block may hold (4 GiB)")]
    TooLarge {
        /// The topic.
        topic: String,
        /// The message's sequence number.
        sequence: u32,
        /// Its length.
        len: usize,
    },
    /// The host refused a publisher (the topic has one already).
    #[error("cannot replay: {0}")]
    Open(#[from] OpenError),
    /// Publishing failed (the publisher was stopped, no block came free
    /// within the timeout).
    #[error("replaying message {sequence} of topic `{topic}`: {error}")]
    Publish {
        /// The topic.
        topic: String,
        /// The message's sequence number.
        sequence: u32,
        /// Why.
        error: PublishError,
    },
}

/// A topic of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub topic: String,
    /// The channel's message encoding (`flat-layout` for a recorder's).
    pub message_encoding: String,
    /// The schema's name (the WIT type), if it has a schema.
    pub schema: Option<String>,
    /// Its messages.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The largest message.
    pub largest: u64,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Per topic: (topic, messages published, bytes).
    pub topics: Vec<(String, u64, u64)>,
    /// Whether it was stopped before the end of the recording.
    pub stopped: bool,
}

impl std::fmt::Display for ReplayStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (topic, messages, bytes)) in self.topics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "replay {topic}: {messages} messages ({bytes} bytes)")?;
        }
        if self.stopped {
            write!(f, " (stopped before the end)")?;
        }
        Ok(())
    }
}

/// A recording read into memory and checked (see the module's notes).
pub struct Recording {
    path: PathBuf,
    bytes: Vec<u8>,
    topics: Vec<TopicInfo>,
}

impl Recording {
    /// Reads the MCAP file at `path` and checks every record (the chunks'
    /// CRCs, the summary and the footer).
    pub fn open(path: &Path) -> Result<Recording, ReplayError> {
        let bytes = std::fs::read(path).map_err(|error| ReplayError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let topics = check(&bytes).map_err(|error| ReplayError::Mcap {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Recording {
            path: path.to_path_buf(),
            bytes,
            topics,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its topics, by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// The topics `options` selects (all when it names none); an unknown
    /// one is an error.
    fn selected(&self, options: &ReplayOptions) -> Result<Vec<&TopicInfo>, ReplayError> {
        if options.topics.is_empty() {
            return Ok(self.topics.iter().collect());
        }
        options
            .topics
            .iter()
            .map(|t| {
                self.topics.iter().find(|i| i.topic == *t).ok_or_else(|| {
                    ReplayError::UnknownTopic {
                        path: self.path.clone(),
                        topic: t.clone(),
                        available: self.topic_names(),
                    }
                })
            })
            .collect()
    }

    fn topic_names(&self) -> String {
        if self.topics.is_empty() {
            return "none (no channel)".into();
        }
        self.topics
            .iter()
            .map(|t| format!("`{}`", t.topic))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks `options` against the recording (unknown topics) without
    /// publishing anything.
    pub fn check_options(&self, options: &ReplayOptions) -> Result<(), ReplayError> {
        self.selected(options).map(drop)
    }

    /// Publishes the messages of the selected topics on `host`, in file
    /// order, at `options.pace`; each topic's publisher is `NAME TOPIC`
    /// (`replay frames`) and ends with the replay, which closes the topic.
    /// Returns when every message was published (or the replay stopped).
    pub fn replay(
        &self,
        host: &ShmHost,
        options: &ReplayOptions,
    ) -> Result<ReplayStats, ReplayError> {
        let selected = self.selected(options)?;
        let mut publishers: BTreeMap<&str, (NativePublisher, u64, u64)> = BTreeMap::new();
        for info in &selected {
            let block = u32::try_from(info.largest.max(1)).map_err(|_| ReplayError::TooLarge {
                topic: info.topic.clone(),
                sequence: 0,
                len: info.largest as usize,
            })?;
            let name = format!("{} {}", options.name, info.topic);
            let publisher = NativePublisher::new(host, &name, &info.topic, options.blocks, block)?;
            publishers.insert(info.topic.as_str(), (publisher, 0, 0));
        }
        let stopped = || {
            options
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
        };
        if options.subscribers > 0 {
            super::wait_until(options.timeout, || {
                stopped()
                    || publishers
                        .values()
                        .all(|(p, ..)| p.subscriber_count() >= options.subscribers)
            });
        }
        let stream = stream(&self.bytes).map_err(|error| self.damaged(error))?;
        let mut clock: Option<(u64, Instant)> = None;
        let mut was_stopped = false;
        for message in stream {
            let message = message.map_err(|error| self.damaged(error))?;
            let Some((publisher, count, bytes)) =
                publishers.get_mut(message.channel.topic.as_str())
            else {
                continue;
            };
            if stopped() || publisher.is_stopped() {
                was_stopped = true;
                break;
            }
            if let Pace::Rate(rate) = options.pace {
                let at = if message.publish_time != 0 {
                    message.publish_time
                } else {
                    message.log_time
                };
                let (first, started) = *clock.get_or_insert((at, Instant::now()));
                let rate = if rate.is_finite() && rate > 0.0 {
                    rate
                } else {
                    1.0
                };
                let gap = Duration::from_nanos(at.saturating_sub(first)).div_f64(rate);
                let due = started + gap;
                // Waits in short steps, so that a stop is seen promptly.
                while Instant::now() < due {
                    if stopped() || publisher.is_stopped() {
                        break;
                    }
                    let left = due.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(20)));
                }
                if stopped() || publisher.is_stopped() {
                    was_stopped = true;
                    break;
                }
            }
            publisher
                .publish_within(&[&message.data], options.timeout)
                .map_err(|error| ReplayError::Publish {
                    topic: message.channel.topic.clone(),
                    sequence: message.sequence,
                    error,
                })?;
            *count += 1;
            *bytes += message.data.len() as u64;
        }
        Ok(ReplayStats {
            topics: publishers
                .into_iter()
                .map(|(t, (_, count, bytes))| (t.to_string(), count, bytes))
                .collect(),
            stopped: was_stopped,
        })
    }

    fn damaged(&self, error: mcap::McapError) -> ReplayError {
        ReplayError::Mcap {
            path: self.path.clone(),
            error,
        }
    }
}

/// The messages of `bytes`, each chunk's CRC checked.
fn stream(bytes: &[u8]) -> Result<mcap::MessageStream<'_>, mcap::McapError> {
    mcap::MessageStream::new_with_options(bytes, mcap::read::Options::ValidateChunkCrcs.into())
}

/// Reads every record of `bytes` (and the summary and footer), and counts
/// each channel's messages.
fn check(bytes: &[u8]) -> Result<Vec<TopicInfo>, mcap::McapError> {
    // The footer and summary first: a truncated file has none.
    let summary = mcap::Summary::read(bytes)?;
    let mut topics: BTreeMap<String, TopicInfo> = BTreeMap::new();
    fn add<'t>(
        topics: &'t mut BTreeMap<String, TopicInfo>,
        channel: &mcap::Channel<'_>,
    ) -> &'t mut TopicInfo {
        topics
            .entry(channel.topic.clone())
            .or_insert_with(|| TopicInfo {
                topic: channel.topic.clone(),
                message_encoding: channel.message_encoding.clone(),
                schema: channel.schema.as_ref().map(|s| s.name.clone()),
                messages: 0,
                bytes: 0,
                largest: 0,
            })
    }
    if let Some(summary) = &summary {
        for channel in summary.channels.values() {
            add(&mut topics, channel);
        }
    }
    for message in stream(bytes)? {
        let message = message?;
        let info = add(&mut topics, &message.channel);
        let len = message.data.len() as u64;
        info.messages += 1;
        info.bytes += len;
        info.largest = info.largest.max(len);
    }
    Ok(topics.into_values().collect())
}
