//! Exporting a local topic: each message a local publisher (a component, or
//! host code) publishes becomes one Zenoh sample on a key expression.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zenoh::key_expr::KeyExpr;
use zenoh::qos::CongestionControl;
use zenoh::{Session, Wait};

use super::buffer::Buffer;
use super::wire::{end_key, new_stream_id, Header, Kind};
use super::{BridgeConfig, ExportError, ZenohFailed};
use crate::pubsub::native::{NativeSubscriber, Next};
use crate::ShmHost;

/// How often a waiting loop looks again (for a remote subscriber, for the
/// end of the topic).
const POLL: Duration = Duration::from_millis(10);

/// An export's counters (see [`Export::counters`]).
#[derive(Debug, Default)]
pub struct ExportCounters {
    sent: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

/// A snapshot of an export's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Samples handed to Zenoh (messages, and the end of the stream).
    pub sent: u64,
    /// Message bytes sent.
    pub bytes: u64,
    /// Messages dropped because the network did not keep up (the
    /// `drop-oldest` policy of the bridge's buffer).
    pub dropped: u64,
}

impl ExportCounters {
    /// Reads the counters.
    pub fn snapshot(&self) -> ExportStats {
        ExportStats {
            sent: self.sent.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A local topic sent to a key expression: run it (on a thread of its own,
/// or as a native subscriber of a [`crate::topology::Topology`]) until the
/// topic's publisher ends.
pub struct Export {
    pub(super) session: Session,
    pub(super) topic: String,
    pub(super) key: KeyExpr<'static>,
    pub(super) config: BridgeConfig,
    pub(super) counters: Arc<ExportCounters>,
}

/// A sample waiting to be sent.
type Outgoing = (Header, Vec<u8>);

impl Export {
    /// The name its subscription has in the host's statistics.
    pub fn name(&self) -> String {
        format!("zenoh-export {}", self.topic)
    }

    /// Its counters, to read while it runs or after.
    pub fn counters(&self) -> Arc<ExportCounters> {
        self.counters.clone()
    }

    /// Declares the key expression's publisher, waits (at most
    /// [`BridgeConfig::wait_remote`]) for a remote subscriber to match it,
    /// subscribes to the topic, and sends each message until the topic's
    /// publisher ends; then sends the end of the stream.
    ///
    /// A message is read out of its block once (into the sample) and its
    /// block released at once: a slow network never holds a local
    /// publisher's pool. Messages wait for the network in a buffer of
    /// [`BridgeConfig::buffer`] messages under [`BridgeConfig::overflow`].
    pub fn run(self, host: &ShmHost) -> Result<(), ExportError> {
        let zenoh = |e| ExportError::from(ZenohFailed::on(&self.key)(e));
        let publisher = self
            .session
            .declare_publisher(self.key.clone())
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(zenoh)?;
        let deadline = Instant::now() + self.config.wait_remote;
        while !publisher
            .matching_status()
            .wait()
            .map_err(zenoh)?
            .matching()
        {
            if Instant::now() >= deadline {
                tracing::warn!(key = %self.key, "no remote subscriber within {:?}; exporting anyway", self.config.wait_remote);
                break;
            }
            std::thread::sleep(POLL);
        }
        let mut subscriber = NativeSubscriber::new(host, &self.name(), &self.topic)?;
        let outgoing = Buffer::<Outgoing>::new(self.config.buffer, self.config.overflow);
        let stream = new_stream_id();
        let counters = &self.counters;
        std::thread::scope(|scope| {
            let sender = scope.spawn(|| {
                let sent = (|| {
                    while !outgoing.is_finished() {
                        let Some((header, payload)) = outgoing.pop_timeout(POLL) else {
                            continue;
                        };
                        let len = payload.len() as u64;
                        publisher
                            .put(payload)
                            .attachment(header.encode().to_vec())
                            .wait()
                            .map_err(zenoh)?;
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                        counters.bytes.fetch_add(len, Ordering::Relaxed);
                        counters
                            .dropped
                            .store(outgoing.dropped(), Ordering::Relaxed);
                    }
                    Ok(())
                })();
                // A failed sender ends the buffer: the reader stops too.
                outgoing.close();
                sent
            });
            let mut sequence = 0u64;
            let mut read = || -> Result<(), ExportError> {
                let mut bytes = Vec::new();
                loop {
                    let kind = match subscriber.next_into(&mut bytes, POLL)? {
                        Next::TimedOut if outgoing.is_closed() => return Ok(()),
                        Next::TimedOut => continue,
                        Next::Message => Kind::Message,
                        Next::Ended => Kind::End,
                    };
                    let header = Header {
                        kind,
                        stream,
                        sequence,
                    };
                    sequence += 1;
                    if !outgoing.push((header, std::mem::take(&mut bytes))) || kind == Kind::End {
                        return Ok(());
                    }
                }
            };
            let read = read();
            outgoing.close();
            let sent = sender.join().unwrap_or_else(|_| {
                Err(ExportError::Internal("the sending thread panicked".into()))
            });
            counters
                .dropped
                .store(outgoing.dropped(), Ordering::Relaxed);
            read.and(sent)
        })?;
        // Importing hosts confirm the end once it is through their buffers:
        // closing the session earlier could cut what is still in flight.
        let asked = Instant::now();
        let replies = self
            .session
            .get(end_key(stream))
            .timeout(self.config.wait_remote)
            .wait()
            .map_err(zenoh)?;
        let mut confirmed = 0;
        while let Ok(reply) = replies.recv() {
            confirmed += usize::from(reply.result().is_ok());
        }
        tracing::debug!(key = %self.key, confirmed, waited = ?asked.elapsed(), "end of stream");
        publisher.undeclare().wait().map_err(zenoh)?;
        Ok(())
    }
}
