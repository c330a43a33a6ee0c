//! Importing a key expression as a local topic: each remote sample is
//! written once into a block of a local pool and published to the local
//! subscribers exactly as a component's message (zero copy from there).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use zenoh::key_expr::KeyExpr;
use zenoh::query::Query;
use zenoh::sample::Sample;
use zenoh::{Session, Wait};

use super::buffer::Buffer;
use super::wire::{end_stream, Decoded, Header, Kind, END_PREFIX};
use super::{BridgeConfig, ImportError, ZenohFailed};
use crate::pubsub::native::{NativePublisher, PublishError};
use crate::ShmHost;

/// How long the import waits for a sample before looking again.
const POLL: Duration = Duration::from_millis(10);
/// How long it waits for a pool block to come free (woken as soon as one
/// may have) before trying again.
const POOL_WAIT: Duration = Duration::from_millis(10);

/// Streams whose order an import remembers at once (the most recent).
const STREAMS: usize = 16;

/// An import's counters (see [`Import::counters`]).
#[derive(Debug, Default)]
pub struct ImportCounters {
    received: AtomicU64,
    delivered: AtomicU64,
    bytes: AtomicU64,
    oversized: AtomicU64,
    malformed: AtomicU64,
    out_of_order: AtomicU64,
    lost: AtomicU64,
    dropped: AtomicU64,
}

/// A snapshot of an import's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Samples that arrived.
    pub received: u64,
    /// Messages published to the local topic (one copy each).
    pub delivered: u64,
    /// Bytes of those messages.
    pub bytes: u64,
    /// Samples larger than the pool's blocks: rejected.
    pub oversized: u64,
    /// Samples whose header was not valid, or an end with a payload:
    /// rejected.
    pub malformed: u64,
    /// Samples of a stream at or before a sequence number seen already (a
    /// replay), or after its end: rejected.
    pub out_of_order: u64,
    /// Sequence numbers a stream skipped: messages lost on the way (the
    /// exporter's buffer dropped them, or the network did).
    pub lost: u64,
    /// Samples dropped because the local side did not keep up (the
    /// `drop-oldest` policy of the bridge's buffer).
    pub dropped: u64,
}

impl ImportCounters {
    /// Reads the counters.
    pub fn snapshot(&self) -> ImportStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ImportStats {
            received: r(&self.received),
            delivered: r(&self.delivered),
            bytes: r(&self.bytes),
            oversized: r(&self.oversized),
            malformed: r(&self.malformed),
            out_of_order: r(&self.out_of_order),
            lost: r(&self.lost),
            dropped: r(&self.dropped),
        }
    }

    fn bump(&self, c: fn(&ImportCounters) -> &AtomicU64, n: u64) {
        c(self).fetch_add(n, Ordering::Relaxed);
    }
}

/// A key expression received as a local topic: run it (on a thread of its
/// own, or as a native publisher of a [`crate::topology::Topology`]) until a
/// remote publisher ends its stream.
pub struct Import {
    pub(super) session: Session,
    pub(super) key: KeyExpr<'static>,
    pub(super) topic: String,
    pub(super) config: BridgeConfig,
    pub(super) counters: Arc<ImportCounters>,
}

/// What the checks say of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Deliver,
    End,
    Reject(Rejected),
}

/// Why a sample was rejected (the counter it goes to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejected {
    Oversized,
    Malformed,
    OutOfOrder,
}

impl Rejected {
    fn counter(self) -> fn(&ImportCounters) -> &AtomicU64 {
        match self {
            Rejected::Oversized => |c| &c.oversized,
            Rejected::Malformed => |c| &c.malformed,
            Rejected::OutOfOrder => |c| &c.out_of_order,
        }
    }
}

/// The streams seen lately: each one's next sequence number, most recent
/// last.
#[derive(Default)]
struct Streams(Vec<(u64, u64)>);

impl Streams {
    /// Checks `header` against its stream's order and records it.
    fn check(&mut self, header: &Header, counters: &ImportCounters) -> Verdict {
        let known = self.0.iter().position(|&(s, _)| s == header.stream);
        if let Some(i) = known {
            let (_, next) = self.0[i];
            if header.sequence < next {
                return Verdict::Reject(Rejected::OutOfOrder);
            }
            counters.bump(|c| &c.lost, header.sequence - next);
            self.0.remove(i);
        } else if self.0.len() == STREAMS {
            self.0.remove(0);
        }
        // Past the end (u64::MAX) nothing of the stream is accepted again.
        let next = match header.kind {
            Kind::Message => header.sequence.saturating_add(1),
            Kind::End => u64::MAX,
        };
        self.0.push((header.stream, next));
        match header.kind {
            Kind::Message => Verdict::Deliver,
            Kind::End => Verdict::End,
        }
    }
}

impl Import {
    /// The name its publisher has in the host's statistics.
    pub fn name(&self) -> String {
        format!("zenoh-import {}", self.topic)
    }

    /// Its counters, to read while it runs or after.
    pub fn counters(&self) -> Arc<ImportCounters> {
        self.counters.clone()
    }

    /// Becomes the local topic's publisher (a pooled one: a pool of
    /// [`BridgeConfig::blocks`] blocks of [`BridgeConfig::block_size`]
    /// bytes), subscribes to the key expression, and publishes each valid
    /// sample until a remote publisher ends its stream; then the topic
    /// closes (local subscribers drain their queues and end).
    ///
    /// Samples wait in a buffer of [`BridgeConfig::buffer`] under
    /// [`BridgeConfig::overflow`]: `block` holds the remote publisher back
    /// (Zenoh's congestion control), `drop-oldest` drops and counts.
    /// Rejected samples (see [`ImportStats`]) never reach the topic.
    pub fn run(self, host: &ShmHost) -> Result<(), ImportError> {
        let mut publisher = NativePublisher::new(
            host,
            &self.name(),
            &self.topic,
            self.config.blocks,
            self.config.block_size,
        )?;
        let incoming = Arc::new(Buffer::<Sample>::new(
            self.config.buffer,
            self.config.overflow,
        ));
        let subscriber = {
            let (incoming, counters) = (incoming.clone(), self.counters.clone());
            self.session
                .declare_subscriber(self.key.clone())
                .callback(move |sample| {
                    counters.bump(|c| &c.received, 1);
                    incoming.push(sample);
                    counters
                        .dropped
                        .store(incoming.dropped(), Ordering::Relaxed);
                })
                .wait()
                .map_err(ZenohFailed::on(&self.key))?
        };
        let ends = Arc::new(Mutex::new(Ends::default()));
        let _acknowledge = {
            let ends = ends.clone();
            self.session
                .declare_queryable(format!("{END_PREFIX}/*"))
                .callback(move |query| {
                    let stream = end_stream(query.key_expr().as_str());
                    if let Some(stream) = stream {
                        lock(&ends).ask(stream, query);
                    }
                })
                .wait()
                .map_err(ZenohFailed::on(&END_PREFIX))?
        };
        tracing::debug!(key = %self.key, topic = %self.topic, "importing");
        let mut streams = Streams::default();
        let result = loop {
            let Some(sample) = incoming.pop_timeout(POLL) else {
                // Stopped by the host (a runner ending on a signal): the
                // topic closes.
                if publisher.is_stopped() {
                    break Err(PublishError::Stopped("the host stopped the import".into()).into());
                }
                continue;
            };
            match self.admit(&sample, &mut streams) {
                Verdict::Deliver => {}
                Verdict::End => {
                    let stream = match decode(&sample) {
                        Decoded::Header(h) => h.stream,
                        _ => unreachable!("an end has a header"),
                    };
                    // Closing the topic first: what the exporter waits for
                    // is the end being through.
                    drop(publisher);
                    lock(&ends).ended(stream);
                    break Ok(());
                }
                Verdict::Reject(why) => {
                    self.counters.bump(why.counter(), 1);
                    continue;
                }
            }
            if let Err(e) = self.deliver(&mut publisher, &sample) {
                break Err(e);
            }
        };
        incoming.close();
        drop(subscriber);
        result
    }

    /// Checks a sample: size, header, order.
    fn admit(&self, sample: &Sample, streams: &mut Streams) -> Verdict {
        let len = sample.payload().len();
        if len > self.config.block_size as usize {
            return Verdict::Reject(Rejected::Oversized);
        }
        match decode(sample) {
            Decoded::Plain => Verdict::Deliver,
            Decoded::Malformed => Verdict::Reject(Rejected::Malformed),
            Decoded::Header(h) if h.kind == Kind::End && len > 0 => {
                Verdict::Reject(Rejected::Malformed)
            }
            Decoded::Header(h) => streams.check(&h, &self.counters),
        }
    }

    /// Publishes a sample's payload (one copy into a free pool block),
    /// waiting while every block is still being read.
    fn deliver(&self, publisher: &mut NativePublisher, sample: &Sample) -> Result<(), ImportError> {
        let payload = sample.payload();
        let parts: Vec<&[u8]> = payload.slices().collect();
        loop {
            match publisher.publish_within(&parts, POOL_WAIT) {
                Ok(()) => {
                    self.counters.bump(|c| &c.delivered, 1);
                    self.counters.bump(|c| &c.bytes, payload.len() as u64);
                    return Ok(());
                }
                // Retried: each attempt also lets the host reclaim blocks
                // that stalling subscribers keep.
                Err(PublishError::PoolExhausted) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A sample's header.
fn decode(sample: &Sample) -> Decoded {
    let attachment = sample.attachment().map(|a| a.to_bytes());
    Header::decode(attachment.as_deref())
}

fn lock(ends: &Mutex<Ends>) -> MutexGuard<'_, Ends> {
    ends.lock().unwrap_or_else(|e| e.into_inner())
}

/// Exporters' questions "is stream S's end through?" and the answer: a
/// question about an end not seen yet waits for it (a bounded number of
/// them; more are not answered, and their exporters time out).
#[derive(Default)]
struct Ends {
    ended: Vec<u64>,
    asked: Vec<(u64, Query)>,
}

impl Ends {
    const ASKED: usize = 64;

    fn ask(&mut self, stream: u64, query: Query) {
        if self.ended.contains(&stream) {
            reply(&query);
        } else if self.asked.len() < Self::ASKED {
            self.asked.push((stream, query));
        }
    }

    fn ended(&mut self, stream: u64) {
        self.ended.push(stream);
        for (_, query) in self.asked.extract_if(.., |(s, _)| *s == stream) {
            reply(&query);
        }
    }
}

fn reply(query: &Query) {
    if let Err(e) = query.reply(query.key_expr().clone(), "ended").wait() {
        tracing::debug!("acknowledging an end of stream failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(stream: u64, sequence: u64, kind: Kind) -> Header {
        Header {
            kind,
            stream,
            sequence,
        }
    }

    #[test]
    fn streams_reject_replays_count_gaps_and_end() {
        let c = ImportCounters::default();
        let mut s = Streams::default();
        assert_eq!(s.check(&header(1, 5, Kind::Message), &c), Verdict::Deliver);
        assert_eq!(s.check(&header(1, 6, Kind::Message), &c), Verdict::Deliver);
        assert_eq!(
            s.check(&header(1, 6, Kind::Message), &c),
            Verdict::Reject(Rejected::OutOfOrder)
        );
        assert_eq!(
            s.check(&header(1, 2, Kind::Message), &c),
            Verdict::Reject(Rejected::OutOfOrder)
        );
        assert_eq!(s.check(&header(1, 9, Kind::Message), &c), Verdict::Deliver);
        assert_eq!(c.snapshot().lost, 2);
        // Another stream (a restarted publisher) starts anywhere.
        assert_eq!(s.check(&header(2, 0, Kind::Message), &c), Verdict::Deliver);
        assert_eq!(s.check(&header(1, 10, Kind::End), &c), Verdict::End);
        assert_eq!(
            s.check(&header(1, 11, Kind::Message), &c),
            Verdict::Reject(Rejected::OutOfOrder)
        );
        // Only the latest streams are remembered.
        for i in 0..STREAMS as u64 * 2 {
            s.check(&header(100 + i, 0, Kind::Message), &c);
        }
        assert_eq!(s.0.len(), STREAMS);
    }
}
