//! The topics of one host: who subscribes where, and the pools of closed
//! publishers kept while their messages live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use shm_rules::pubsub::{Overflow, Queue, SharedPool, Topic, Topics};

use super::PubSubConfig;
use crate::rules::{GuestId, HandleId, PubSubError};
use crate::ShmHost;

/// A subscription as the broker remembers it (it lives in its guest).
type Subscription = (Weak<Topic>, Weak<Queue>);

/// The pool of a closed pooled publisher, kept (and offered for mapping)
/// while messages of it live: a subscriber that had not mapped the pool
/// when the publisher ended must still be able to read what was queued
/// for it.
struct Draining {
    pub(crate) topic: Arc<Topic>,
    pub(crate) shared: Arc<SharedPool>,
}

/// The topics of one host. Pool blocks and queued messages are held by a
/// ledger guest of its own.
pub(crate) struct Broker {
    pub(crate) guest: GuestId,
    pub(crate) config: PubSubConfig,
    pub(crate) topics: Topics,
    /// Each guest's subscriptions, to end them when it is evicted.
    pub(crate) subscribed: Mutex<HashMap<GuestId, Vec<Subscription>>>,
    /// Pools of closed publishers whose messages still live.
    draining: Mutex<Vec<Draining>>,
    /// `draining.len()`, read without the lock on every take.
    pub(crate) draining_count: AtomicUsize,
}

impl Broker {
    pub(crate) fn new(guest: GuestId, config: PubSubConfig) -> Broker {
        Broker {
            guest,
            config,
            topics: Topics::default(),
            subscribed: Mutex::default(),
            draining: Mutex::default(),
            draining_count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.topics.subscriptions()
    }

    /// A new subscription of `guest` to `topic`, within its limit; its
    /// full queue follows `overflow` where given, the host's policy
    /// otherwise.
    pub(crate) fn subscribe(
        &self,
        guest: GuestId,
        topic: &Arc<Topic>,
        overflow: Option<Overflow>,
    ) -> Result<Arc<Queue>, PubSubError> {
        let mut subscribed = self.subscribed.lock().unwrap_or_else(|e| e.into_inner());
        let mine = subscribed.entry(guest).or_default();
        mine.retain(|(_, q)| q.strong_count() > 0);
        if mine.len() >= self.config.max_subscriptions as usize {
            return Err(PubSubError::LimitExceeded);
        }
        let queue = self.topics.subscribe_with_overflow(topic, guest, overflow);
        mine.push((Arc::downgrade(topic), Arc::downgrade(&queue)));
        Ok(queue)
    }

    /// Keeps a closed publisher's pool while messages of it live (see
    /// [`Draining`]); drops its handles once none does.
    pub(crate) fn drain(&self, host: &ShmHost, topic: Arc<Topic>, shared: Arc<SharedPool>) {
        let mut draining = self.draining.lock().unwrap_or_else(|e| e.into_inner());
        draining.push(Draining { topic, shared });
        self.sweep_locked(host, &mut draining);
    }

    /// Drops the handles of draining pools no message of which lives.
    pub(crate) fn sweep(&self, host: &ShmHost) {
        if self.draining_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut draining = self.draining.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep_locked(host, &mut draining);
    }

    fn sweep_locked(&self, host: &ShmHost, draining: &mut Vec<Draining>) {
        draining.retain(|d| {
            // A pool handle is the only handle of its block unless a message
            // of it lives (queued, being taken, read) or a subscriber still
            // maps it.
            let live = d
                .shared
                .blocks
                .iter()
                .any(|&h| host.handles_of_block(h) > 1);
            if !live {
                d.topic.withdraw_pool(&d.shared);
                for &h in &d.shared.blocks {
                    host.drop_detached(h);
                }
            }
            live
        });
        self.draining_count.store(draining.len(), Ordering::Relaxed);
    }

    /// Ends every subscription of `guest`; returns the messages that were
    /// queued for it, to drop.
    pub(crate) fn leave_all(&self, guest: GuestId) -> Vec<HandleId> {
        let mine = self
            .subscribed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&guest)
            .unwrap_or_default();
        let mut queued = Vec::new();
        for (topic, queue) in mine {
            if let (Some(t), Some(q)) = (topic.upgrade(), queue.upgrade()) {
                queued.extend(t.leave(&q));
            }
        }
        queued
    }
}
