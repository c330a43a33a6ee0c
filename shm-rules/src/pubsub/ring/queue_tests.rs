//! A ring as a queue's stage: messages move from the backlog into the
//! ring, come back through the returned region, and every hold is returned
//! exactly once (released, or drained when the subscription ends).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::pubsub::{Overflow, Pushed, Queue, RingRefused, Topics};
use crate::{GuestId, HandleId};

type Shared = HeapRegion;

/// A ring of `capacity` over shared regions; handle `n` names block
/// `n % 100` with `n` bytes, handles from 1000 on are of another pool.
fn ring(capacity: u32) -> (RingStage, Shared, Shared) {
    let offered = Shared::new(offered_bytes(capacity));
    let returned = Shared::new(returned_bytes(capacity));
    let describe: Describe =
        Box::new(|h: HandleId| (h.0 < 1000).then_some(((h.0 % 100) as u32, h.0 as u32)));
    let stage = RingStage::new(
        capacity,
        Box::new(offered.clone()),
        Box::new(returned.clone()),
        describe,
    );
    (stage, offered, returned)
}

fn push(q: &Queue, h: u64, bound: usize, dropped: &Mutex<Vec<u64>>) -> Pushed {
    q.push(
        HandleId(h),
        bound,
        Overflow::Block,
        Some(Duration::from_secs(20)),
        |d| dropped.lock().unwrap().push(d.0),
    )
}

#[test]
fn published_messages_reach_the_ring_and_come_back_through_it() {
    let q = Queue::new(GuestId(1));
    let dropped = Mutex::new(Vec::new());
    assert_eq!(push(&q, 1, 4, &dropped), Pushed::Queued);
    let (stage, offered, returned) = ring(2);
    q.attach_ring(stage, |_| panic!("nothing foreign")).unwrap();
    // The message queued before the ring moved into it; two more: one in
    // the ring, one in the backlog.
    assert_eq!(push(&q, 2, 4, &dropped), Pushed::Queued);
    assert_eq!(push(&q, 3, 4, &dropped), Pushed::Queued);
    assert_eq!(q.ring_counts(), Some((2, 2, 0)));
    assert_eq!(q.try_pop(), Some(HandleId(3)), "the backlog is the queue");
    q.unpop(HandleId(3));

    let mut reader = RingReader::new(2);
    let first = reader.next(&offered).unwrap();
    assert_eq!((first.seq, first.block, first.len), (0, 1, 1));
    assert_eq!(reader.next(&offered).unwrap().block, 2);
    assert_eq!(reader.next(&offered), None);
    reader.release(&offered, &returned, 0).unwrap();
    // The host reads it back: handle 1 is released, 3 moves in.
    let mut released = Vec::new();
    assert_eq!(q.reconcile(|h| released.push(h)), 1);
    assert_eq!(released, vec![HandleId(1)]);
    assert_eq!(q.ring_counts(), Some((3, 2, 0)));
    assert_eq!(reader.next(&offered).unwrap().block, 3);
    assert!(q.attach_ring(ring(2).0, |_| ()).is_err(), "one ring only");
    // Leaving gives back what the ring still holds, and closes it.
    let topics = Topics::default();
    let topic = topics.topic("t");
    let q2 = topics.subscribe(&topic, GuestId(2));
    let (stage, offered2, _) = ring(4);
    q2.attach_ring(stage, |_| ()).unwrap();
    for h in [5, 6] {
        assert_eq!(push(&q2, h, 4, &dropped), Pushed::Queued);
    }
    let mut back = topic.leave(&q2);
    back.sort();
    assert_eq!(back, vec![HandleId(5), HandleId(6)]);
    assert_eq!(offered2.load_u64(OFFERED_CLOSED), 1);
    assert_eq!(
        q2.wait_ring(0, Duration::ZERO, |_| ()).map(|w| w.ended),
        Ok(true)
    );
    assert!(dropped.lock().unwrap().is_empty());
}

#[test]
fn a_message_of_another_pool_is_dropped_and_counted() {
    let q = Queue::new(GuestId(1));
    let (stage, _, _) = ring(2);
    let mut dropped = Vec::new();
    q.attach_ring(stage, |_| ()).unwrap();
    let pushed = q.push(HandleId(1000), 4, Overflow::Block, None, |d| {
        dropped.push(d)
    });
    assert_eq!(pushed, Pushed::Queued);
    assert_eq!(dropped, vec![HandleId(1000)]);
    assert_eq!(q.dropped(), 1);
    assert_eq!(q.ring_counts(), Some((0, 0, 0)));
}

#[test]
fn wait_ring_answers_what_was_offered_and_when_it_ended() {
    let topics = Topics::default();
    let topic = topics.topic("t");
    assert!(topic.open_publisher());
    let q = topics.subscribe(&topic, GuestId(1));
    assert_eq!(
        q.wait_ring(0, Duration::ZERO, |_| ()),
        Err(RingRefused::NoRing)
    );
    let (stage, offered, _) = ring(4);
    q.attach_ring(stage, |_| ()).unwrap();
    let w = q.wait_ring(0, Duration::from_millis(1), |_| ()).unwrap();
    assert_eq!((w.published, w.ended), (0, false), "timed out");
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || q.wait_ring(0, Duration::from_secs(20), |_| ()))
    };
    let dropped = Mutex::new(Vec::new());
    assert_eq!(push(&q, 7, 4, &dropped), Pushed::Queued);
    let w = waiter.join().unwrap().unwrap();
    assert_eq!((w.published, w.ended), (1, false));
    topic.close_publisher();
    let w = q.wait_ring(1, Duration::from_secs(20), |_| ()).unwrap();
    assert_eq!((w.published, w.ended), (1, true));
    assert_eq!(offered.load_u64(OFFERED_CLOSED), 1);
}

#[test]
fn a_publisher_blocked_by_a_full_ring_goes_on_when_the_subscriber_returns_without_a_call() {
    let q = Arc::new(Queue::new(GuestId(1)));
    let (stage, offered, returned) = ring(1);
    q.attach_ring(stage, |_| ()).unwrap();
    let dropped = Mutex::new(Vec::new());
    // One in the ring, one in the backlog (bound 1): the third waits.
    assert_eq!(push(&q, 1, 1, &dropped), Pushed::Queued);
    assert_eq!(push(&q, 2, 1, &dropped), Pushed::Queued);
    let released = Arc::new(Mutex::new(Vec::new()));
    let publisher = {
        let (q, released) = (q.clone(), released.clone());
        std::thread::spawn(move || {
            q.push(
                HandleId(3),
                1,
                Overflow::Block,
                Some(Duration::from_secs(20)),
                |d| released.lock().unwrap().push(d.0),
            )
        })
    };
    // The subscriber returns message 0 in its memory only: the waiting
    // publisher reads it back by itself (it polls the returned region).
    let mut reader = RingReader::new(1);
    assert_eq!(reader.next(&offered).unwrap().block, 1);
    reader.release(&offered, &returned, 0).unwrap();
    assert_eq!(publisher.join().unwrap(), Pushed::Queued);
    assert_eq!(*released.lock().unwrap(), vec![1]);
    assert_eq!(q.ring_counts(), Some((2, 1, 0)));
}

#[test]
fn under_drop_oldest_a_full_ring_drops_from_the_backlog_never_what_was_offered() {
    let q = Queue::with_overflow(GuestId(1), Some(Overflow::DropOldest));
    let (stage, offered, _) = ring(1);
    q.attach_ring(stage, |_| ()).unwrap();
    let mut dropped = Vec::new();
    for h in 1..=3 {
        let pushed = q.push(HandleId(h), 1, Overflow::Block, None, |d| dropped.push(d.0));
        assert_eq!(pushed, Pushed::Queued);
    }
    assert_eq!(dropped, vec![2], "the backlog's oldest, not the offered 1");
    let mut reader = RingReader::new(1);
    assert_eq!(reader.next(&offered).unwrap().block, 1);
    assert_eq!(q.dropped(), 1);
}

#[test]
fn hostile_returned_values_keep_the_holds_until_the_subscription_ends() {
    let topics = Topics::default();
    let topic = topics.topic("t");
    let q = topics.subscribe(&topic, GuestId(1));
    let (stage, _, returned) = ring(4);
    q.attach_ring(stage, |_| ()).unwrap();
    let dropped = Mutex::new(Vec::new());
    for h in [1, 2] {
        assert_eq!(push(&q, h, 4, &dropped), Pushed::Queued);
    }
    // Never offered (and so repeated), and a count far ahead: the host
    // reads one region's worth (4 entries), no more.
    for k in 0..4 {
        returned.store_u64(returned_slot(k, 4), 9 + k % 2);
    }
    returned.store_u64(RETURNED_COUNT, u64::MAX);
    assert_eq!(q.reconcile(|_| ()), 0);
    let (_, held, refused) = q.ring_counts().unwrap();
    assert_eq!(held, 2);
    assert!(refused >= 3, "{refused}");
    assert!(q.in_ring(|h| h == HandleId(2)));
    let mut back = topic.leave(&q);
    back.sort();
    assert_eq!(back, vec![HandleId(1), HandleId(2)]);
}
