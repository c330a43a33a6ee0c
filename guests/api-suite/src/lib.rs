//! The guest API's behavioral suite: the attach rules, errors, clones,
//! partitions, and pub-sub ordering, pool backpressure and streams, written
//! once against `shm_guest` and run against both backends so they cannot
//! drift: natively by `cargo test -p api-suite`, and on wasm as the
//! `api-suite` command component under `shm-host run` (a test of shm-host).

use shm_guest::pubsub::{PubSubError, Publisher, Subscriber};
use shm_guest::{Block, Error};

type Case = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> Option<Error> {
    r.err()
}

fn e<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Writes `bytes` at the start of `block` and commits them.
fn put(block: &Block, bytes: &[u8]) -> Case {
    let mut w = block.attach_write().map_err(e)?;
    w[..bytes.len()].copy_from_slice(bytes);
    w.commit(bytes.len()).map_err(e)
}

fn new_blocks_read_as_zeros() -> Case {
    let b = Block::new(8192).map_err(e)?;
    let w = b.attach_write().map_err(e)?;
    check!(
        w.len() == 8192 && w.iter().all(|&x| x == 0),
        "a new block is not all zeros"
    );
    Ok(())
}

fn committed_bytes_are_what_readers_see() -> Case {
    let b = Block::new(4096).map_err(e)?;
    put(&b, b"hello")?;
    let r = b.attach_read().map_err(e)?;
    check!(&*r == b"hello", "read {:?}", &*r);
    Ok(())
}

fn an_uncommitted_write_leaves_no_valid_bytes() -> Case {
    let b = Block::new(64).map_err(e)?;
    put(&b, b"old")?;
    {
        let mut w = b.attach_write().map_err(e)?;
        w[0] = b'X';
    }
    check!(
        b.attach_read().map_err(e)?.is_empty(),
        "valid bytes after a dropped write guard"
    );
    Ok(())
}

fn a_write_attach_is_exclusive() -> Case {
    let b = Block::new(64).map_err(e)?;
    let c = b.read_only_clone().map_err(e)?;
    let w = b.attach_write().map_err(e)?;
    check!(
        err(c.attach_read()) == Some(Error::Busy),
        "a read during a write"
    );
    check!(
        err(b.attach_read()) == Some(Error::AlreadyAttached),
        "a second attach of one handle"
    );
    drop(w);
    let r = c.attach_read().map_err(e)?;
    check!(
        err(b.attach_write()) == Some(Error::Busy),
        "a write during a read"
    );
    check!(
        err(b.attach_consume()) == Some(Error::Busy),
        "an exclusive read during a shared one"
    );
    let c2 = b.read_only_clone().map_err(e)?;
    c2.attach_read().map_err(e)?;
    drop(r);
    Ok(())
}

fn clones_are_read_only() -> Case {
    let b = Block::new(64).map_err(e)?;
    let c = b.read_only_clone().map_err(e)?;
    check!(
        err(c.attach_write()) == Some(Error::ReadOnly),
        "a write through a clone"
    );
    check!(
        c.partition(0, 8, true).err() == Some(Error::ReadOnly),
        "a writable partition of a clone"
    );
    check!(c.size() == 64, "clone size {}", c.size());
    Ok(())
}

fn exclusive_readers_consume() -> Case {
    let b = Block::new(64).map_err(e)?;
    put(&b, b"0123456789")?;
    let g = b.attach_consume().map_err(e)?;
    check!(&*g == b"0123456789", "consumer saw {:?}", &*g);
    g.consume(4).map_err(e)?;
    check!(
        &*b.attach_read().map_err(e)? == b"456789",
        "after consuming 4"
    );
    Ok(())
}

fn a_read_only_clone_cannot_consume() -> Case {
    let b = Block::new(64).map_err(e)?;
    put(&b, b"0123456789")?;
    let c = b.read_only_clone().map_err(e)?;
    check!(
        err(c.attach_consume()) == Some(Error::ReadOnly),
        "an exclusive read through a clone"
    );
    let r = c.attach_read().map_err(e)?;
    check!(&*r == b"0123456789", "the clone reads {:?}", &*r);
    drop(r);
    check!(
        &*b.attach_read().map_err(e)? == b"0123456789",
        "the block's bytes after the clone's read"
    );
    Ok(())
}

fn publish_needs_the_only_write_right() -> Case {
    let p = Publisher::new("suite-sole-writer", 2, 8192).map_err(e)?;
    let s = Subscriber::new("suite-sole-writer").map_err(e)?;
    // A writable partition kept beside the block.
    let (block, _) = p.allocate().map_err(e)?;
    let part = block.partition(0, 4096, true).map_err(e)?;
    put(&block, b"first")?;
    check!(
        p.publish(block).err() == Some(PubSubError::NotSoleWriter),
        "publish beside a writable partition"
    );
    drop(part);
    // A read-only clone published, the writable handle kept.
    let (block, _) = p.allocate().map_err(e)?;
    put(&block, b"second")?;
    let clone = block.read_only_clone().map_err(e)?;
    check!(
        p.publish(clone).err() == Some(PubSubError::NotSoleWriter),
        "publishing a clone"
    );
    drop(block);
    check!(s.try_next().is_none(), "a refused message was delivered");
    // Published properly, it arrives.
    let (block, _) = p.allocate().map_err(e)?;
    put(&block, b"third")?;
    p.publish(block).map_err(e)?;
    let m = s.try_next().ok_or("the message did not arrive")?;
    check!(&*m.attach_read().map_err(e)? == b"third", "the message");
    Ok(())
}

fn partitions_share_the_blocks_bytes() -> Case {
    let b = Block::new(8192).map_err(e)?;
    let high = b.partition(4096, 4096, true).map_err(e)?;
    check!(
        b.partition(4096, 8192, true).err() == Some(Error::WrongSize),
        "a partition past the end"
    );
    put(&high, b"high")?;
    let w = b.attach_write().map_err(e)?;
    check!(
        &w[4096..4100] == b"high",
        "the parent sees {:?}",
        &w[4096..4100]
    );
    check!(
        err(high.attach_read()) == Some(Error::Busy),
        "a partition read during a parent write"
    );
    Ok(())
}

fn messages_arrive_in_order() -> Case {
    let p = Publisher::new("suite-order", 4, 64).map_err(e)?;
    let s = Subscriber::new("suite-order").map_err(e)?;
    for i in 0..3u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i])?;
        p.publish(block).map_err(e)?;
    }
    for i in 0..3u8 {
        let m = s.try_next().ok_or("a message is missing")?;
        check!(
            *m.attach_read().map_err(e)? == [i],
            "message {i} out of order"
        );
    }
    check!(s.try_next().is_none(), "an extra message");
    Ok(())
}

fn the_pool_returns_blocks_only_when_readers_drop_them() -> Case {
    let p = Publisher::new("suite-pool", 2, 64).map_err(e)?;
    let s = Subscriber::new("suite-pool").map_err(e)?;
    for i in 0..2u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i])?;
        p.publish(block).map_err(e)?;
    }
    let first = s.try_next().ok_or("no message")?;
    let second = s.try_next().ok_or("no message")?;
    check!(
        p.allocate().err() == Some(PubSubError::PoolExhausted),
        "allocate while both are read"
    );
    drop(first);
    let (block, initialized) = p.allocate().map_err(e)?;
    check!(initialized == 1, "initialized bytes {initialized}");
    check!(
        *block.attach_write().map_err(e)? == [0u8; 64],
        "the pool block holds its last message"
    );
    drop(second);
    Ok(())
}

fn publisher_errors() -> Case {
    let p = Publisher::new("suite-errors", 1, 64).map_err(e)?;
    check!(
        Publisher::new("suite-errors", 1, 64).err() == Some(PubSubError::TopicTaken),
        "a second publisher on a topic"
    );
    check!(
        Publisher::new("suite-empty", 0, 64).err() == Some(PubSubError::InvalidArgument),
        "an empty pool"
    );
    // The default pool limit (1,024 blocks), the same on both backends.
    check!(
        Publisher::new("suite-huge", 1025, 64).err() == Some(PubSubError::InvalidArgument),
        "a pool past the limit"
    );
    let long = "t".repeat(256);
    for bad in ["", "a topic", "star*", long.as_str()] {
        check!(
            Publisher::new(bad, 1, 64).err() == Some(PubSubError::InvalidArgument),
            "a publisher of topic {bad:?}"
        );
        check!(
            Subscriber::new(bad).err() == Some(PubSubError::InvalidArgument),
            "a subscription to topic {bad:?}"
        );
    }
    let (block, _) = p.allocate().map_err(e)?;
    let plain = Block::new(64).map_err(e)?;
    check!(
        p.publish(plain).err() == Some(PubSubError::ForeignBlock),
        "publishing a foreign block"
    );
    let attached = block.read_only_clone().map_err(e)?;
    let guard = attached.attach_read().map_err(e)?;
    drop(guard);
    p.publish(block).map_err(e)?;
    Ok(())
}

fn a_stream_delivers_the_same_messages() -> Case {
    let p = Publisher::new("suite-stream", 4, 64).map_err(e)?;
    let s = Subscriber::new("suite-stream").map_err(e)?;
    for i in 0..2u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i])?;
        p.publish(block).map_err(e)?;
    }
    // With the publisher gone the stream ends after the queued messages.
    drop(p);
    let mut messages = s.messages();
    for i in 0..2u8 {
        let m = shm_guest::block_on(messages.next()).ok_or("the stream ended early")?;
        check!(*m.attach_read().map_err(e)? == [i], "stream message {i}");
    }
    check!(
        shm_guest::block_on(messages.next()).is_none(),
        "the stream did not end"
    );
    Ok(())
}

fn subscribers_that_leave_do_not_hold_the_publisher() -> Case {
    let p = Publisher::new("suite-leave", 2, 64).map_err(e)?;
    let gone = p.subscription().map_err(e)?;
    drop(gone);
    for i in 0..20u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i])?;
        p.publish(block).map_err(e)?;
    }
    check!(
        p.subscriber_count() == 0,
        "subscribers {}",
        p.subscriber_count()
    );
    let s = Subscriber::new("suite-leave").map_err(e)?;
    drop(p);
    check!(
        s.next_message().is_none(),
        "a message after the publisher left"
    );
    Ok(())
}

fn pooled_messages_are_read_in_place() -> Case {
    let p = Publisher::pooled("suite-pooled", 2, 64).map_err(e)?;
    let s = Subscriber::new("suite-pooled").map_err(e)?;
    s.map_pool().map_err(e)?;
    for i in 0..2u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i, i])?;
        p.publish(block).map_err(e)?;
    }
    let first = s.try_next_pooled().map_err(e)?.ok_or("no message")?;
    let second = s.try_next_pooled().map_err(e)?.ok_or("no message")?;
    check!(
        *first == [0, 0] && *second == [1, 1],
        "messages {first:?} {second:?}"
    );
    check!(
        p.allocate().err() == Some(PubSubError::PoolExhausted),
        "allocate while both messages are held"
    );
    drop(first);
    let (block, initialized) = p.allocate().map_err(e)?;
    check!(initialized == 2, "initialized bytes {initialized}");
    put(&block, &[2, 2, 2])?;
    p.publish(block).map_err(e)?;
    check!(*second == [1, 1], "a held message changed: {:?}", &*second);
    let third = s.try_next_pooled().map_err(e)?.ok_or("no third message")?;
    check!(*third == [2, 2, 2], "third message {:?}", &*third);
    drop((second, third));
    check!(
        s.try_next_pooled().map_err(e)?.is_none(),
        "an extra message"
    );
    drop(p);
    check!(
        s.next_pooled().map_err(e)?.is_none(),
        "the end of the topic"
    );
    Ok(())
}

/// A subscription holds at most four pooled messages at once (the host's
/// default `max_held`, the native backend's bound): taking a fifth fails
/// with `limit-exceeded` and leaves it queued; releasing one lets it come.
fn a_subscriber_holds_a_bounded_number_of_messages() -> Case {
    let p = Publisher::pooled("suite-held", 6, 64).map_err(e)?;
    let s = Subscriber::new("suite-held").map_err(e)?;
    s.map_pool().map_err(e)?;
    for i in 0..5u8 {
        let (block, _) = p.allocate().map_err(e)?;
        put(&block, &[i])?;
        p.publish(block).map_err(e)?;
    }
    let mut held = Vec::new();
    for i in 0..4u8 {
        let m = s.try_next_pooled().map_err(e)?.ok_or("a message missing")?;
        check!(*m == [i], "message {i}: {:?}", &*m);
        held.push(m);
    }
    check!(
        s.try_next_pooled().err() == Some(PubSubError::LimitExceeded),
        "a fifth message held"
    );
    drop(held.remove(0));
    let fifth = s.try_next_pooled().map_err(e)?.ok_or("the fifth message")?;
    check!(*fifth == [4], "the fifth message: {:?}", &*fifth);
    Ok(())
}

/// One call per side per message: a loan published while the next is lent,
/// and each message released by the call that takes the next.
fn loans_and_next_after_take_one_call_per_message() -> Case {
    let p = Publisher::pooled("suite-loans", 3, 64).map_err(e)?;
    let s = Subscriber::new("suite-loans").map_err(e)?;
    s.map_pool().map_err(e)?;
    let mut loan = p.loan().map_err(e)?;
    check!(loan.len() == 64, "a loan of {} bytes", loan.len());
    loan[..2].copy_from_slice(&[7, 7]);
    let mut loan = loan.publish_and_loan(2).map_err(e)?.ok_or("no next loan")?;
    loan[..3].copy_from_slice(&[8, 8, 8]);
    // A size past the block is refused, and the loan is given back.
    let mut refused = p.loan().map_err(e)?;
    refused[0] = 9;
    check!(
        refused.publish(65).err() == Some(PubSubError::InvalidArgument),
        "a size past the block"
    );
    let first = s.try_next_pooled().map_err(e)?.ok_or("no first message")?;
    check!(*first == [7, 7], "first message {:?}", &*first);
    // The subscriber holds one block and the publisher lends one: a third
    // loan in the same call is free, the pool (3) then exhausted.
    let next = loan.publish_and_loan(3).map_err(e)?;
    check!(next.is_some(), "no loan while a block was free");
    check!(
        p.loan().err() == Some(PubSubError::PoolExhausted),
        "a loan past the pool"
    );
    drop(next); // dropped unpublished: nothing of it is sent
    let second = s
        .try_next_pooled_after(first)
        .map_err(e)?
        .ok_or("no second message")?;
    check!(*second == [8, 8, 8], "second message {:?}", &*second);
    check!(
        s.try_next_pooled_after(second).map_err(e)?.is_none(),
        "a message from a dropped loan"
    );
    // Every block is free again: three loans at once.
    let all: Vec<_> = (0..3)
        .map(|_| p.loan())
        .collect::<Result<_, _>>()
        .map_err(e)?;
    drop(all);
    drop(p);
    check!(
        s.next_pooled().map_err(e)?.is_none(),
        "the end of the topic"
    );
    Ok(())
}

/// Lease rings: messages taken and released in the ring (no host call
/// while they wait), the pool coming back through it, a batch published in
/// one call, the ring's end, and its limits.
fn ring_messages_come_and_go_without_a_call() -> Case {
    let p = Publisher::pooled("suite-ring", 4, 64).map_err(e)?;
    let s = Subscriber::new("suite-ring").map_err(e)?;
    check!(
        Subscriber::new("suite-ring")
            .map_err(e)?
            .into_ring(1000)
            .err()
            == Some(PubSubError::LimitExceeded),
        "a ring past the host's budget"
    );
    let ring = s.into_ring(3).map_err(e)?;
    check!(ring.try_next().is_none(), "a message before any was sent");
    // Two loans published in one call; the call lends the next two.
    let mut loans = p.loan_many(2).map_err(e)?;
    check!(loans.len() == 2, "{} loans of 2", loans.len());
    for (i, loan) in loans.iter_mut().enumerate() {
        loan[0] = 10 + i as u8;
    }
    let next = p
        .publish_batch(loans.into_iter().map(|l| (l, 1)), 2)
        .map_err(e)?;
    check!(next.len() == 2, "{} next loans of 2", next.len());
    let a = ring.try_next().ok_or("no first message")?;
    let b = ring.try_next().ok_or("no second message")?;
    check!(
        (a.seq(), &*a, b.seq(), &*b) == (0, &[10][..], 1, &[11][..]),
        "read {:?} {:?}",
        &*a,
        &*b
    );
    // Held by the ring: the pool (4) has nothing left for a fifth loan.
    check!(
        p.loan().err() == Some(PubSubError::PoolExhausted),
        "a block held in the ring was lent"
    );
    drop((a, b)); // released in the ring, without a call
    let again = p.loan().map_err(e)?;
    drop((again, next));
    // The same through the one-message path, then the end.
    let mut loan = p.loan().map_err(e)?;
    loan[0] = 12;
    loan.publish(1).map_err(e)?;
    let c = ring.next().map_err(e)?.ok_or("no third message")?;
    check!(*c == [12] && c.seq() == 2, "third message {:?}", &*c);
    drop(c);
    drop(p);
    check!(ring.next().map_err(e)?.is_none(), "the end of the topic");
    check!(ring.is_ended(), "the ring did not say it ended");
    Ok(())
}

/// A pool larger than the write windows a host has (at most 15 protection
/// keys): the blocks past them are lent mapped on their own, and the
/// publisher's loop does not notice.
fn loans_past_the_write_windows_still_work() -> Case {
    let p = Publisher::pooled("suite-many-loans", 20, 4096).map_err(e)?;
    let s = Subscriber::new("suite-many-loans").map_err(e)?;
    s.map_pool().map_err(e)?;
    let mut loan = Some(p.loan().map_err(e)?);
    let mut held = None;
    for i in 0..60u8 {
        let mut l = match loan.take() {
            Some(l) => l,
            None => p.loan().map_err(e)?,
        };
        l[0] = i;
        loan = l.publish_and_loan(1).map_err(e)?;
        let next = match held.take() {
            Some(previous) => s.try_next_pooled_after(previous),
            None => s.try_next_pooled(),
        };
        let message = next.map_err(e)?.ok_or("a message missing")?;
        check!(*message == [i], "message {i} read {:?}", &*message);
        held = Some(message);
    }
    Ok(())
}

/// `loan_within` lends at once while a block is free; while the only
/// block is held it gives up at its timeout; once the reader releases it,
/// the block is lent again.
fn a_loan_within_waits_for_a_block_and_gives_up_in_time() -> Case {
    use std::time::Duration;
    let p = Publisher::pooled("suite-loan-within", 1, 64).map_err(e)?;
    let s = Subscriber::new("suite-loan-within").map_err(e)?;
    let mut loan = p.loan_within(Duration::from_secs(5)).map_err(e)?;
    loan[..4].copy_from_slice(b"held");
    loan.publish(4).map_err(e)?;
    let held = s.try_next_pooled().map_err(e)?.ok_or("no message")?;
    check!(
        p.loan_within(Duration::from_millis(20)).err() == Some(PubSubError::PoolExhausted),
        "a loan while the only block is held"
    );
    check!(*held == *b"held", "the held message changed");
    drop(held);
    let again = p.loan_within(Duration::from_secs(5)).map_err(e)?;
    check!(
        again.len() == 64,
        "the block came back with {} bytes",
        again.len()
    );
    Ok(())
}

/// `allocate_within` gives a free block at once; while the only block is
/// queued and held it gives up at its timeout; once the reader drops the
/// message, the block comes back.
fn an_allocate_within_waits_for_a_block_and_gives_up_in_time() -> Case {
    use std::time::Duration;
    let p = Publisher::new("suite-allocate-within", 1, 64).map_err(e)?;
    let s = Subscriber::new("suite-allocate-within").map_err(e)?;
    let (block, _) = p.allocate_within(Duration::from_secs(5)).map_err(e)?;
    put(&block, b"held")?;
    p.publish(block).map_err(e)?;
    let held = s.try_next().ok_or("no message")?;
    check!(
        p.allocate_within(Duration::from_millis(20)).err() == Some(PubSubError::PoolExhausted),
        "an allocation while the only block is held"
    );
    drop(held);
    let (_, valid) = p.allocate_within(Duration::from_secs(5)).map_err(e)?;
    check!(valid == 4, "the block came back with {valid} valid bytes");
    Ok(())
}

fn a_replaced_pool_is_mapped_again() -> Case {
    let s = Subscriber::new("suite-replaced").map_err(e)?;
    let old = Publisher::pooled("suite-replaced", 1, 64).map_err(e)?;
    let (block, _) = old.allocate().map_err(e)?;
    put(&block, b"old")?;
    old.publish(block).map_err(e)?;
    // Mapped on first use.
    let held = s.try_next_pooled().map_err(e)?.ok_or("no message")?;
    drop(old);
    let new = Publisher::pooled("suite-replaced", 1, 64).map_err(e)?;
    let (block, _) = new.allocate().map_err(e)?;
    put(&block, b"new")?;
    new.publish(block).map_err(e)?;
    check!(
        s.try_next_pooled().err() == Some(PubSubError::MessagesHeld),
        "remapping while a message of the old pool is held"
    );
    check!(*held == *b"old", "the held message changed");
    drop(held);
    let m = s
        .try_next_pooled()
        .map_err(e)?
        .ok_or("the message stayed queued")?;
    check!(*m == *b"new", "message {:?}", &*m);
    Ok(())
}

fn a_leaving_pooled_subscriber_releases_everything() -> Case {
    let p = Publisher::pooled("suite-pooled-leave", 1, 64).map_err(e)?;
    let s = Subscriber::new("suite-pooled-leave").map_err(e)?;
    let (block, _) = p.allocate().map_err(e)?;
    put(&block, b"held")?;
    p.publish(block).map_err(e)?;
    let held = s.try_next_pooled().map_err(e)?.ok_or("no message")?;
    // Never released by the subscriber itself...
    std::mem::forget(held);
    check!(
        p.allocate().err() == Some(PubSubError::PoolExhausted),
        "allocate while the message is held"
    );
    // ...but leaving releases it, and the pool mapping.
    drop(s);
    let (block, _) = p.allocate().map_err(e)?;
    drop(block);
    Ok(())
}

fn pooled_errors() -> Case {
    check!(
        Publisher::pooled("suite-pooled-empty", 1, 0).err() == Some(PubSubError::InvalidArgument),
        "a pool of empty blocks"
    );
    let p = Publisher::new("suite-not-pooled", 1, 64).map_err(e)?;
    let s = Subscriber::new("suite-not-pooled").map_err(e)?;
    check!(
        s.map_pool().err() == Some(PubSubError::NotPooled),
        "mapping the pool of a topic that does not share it"
    );
    let (block, _) = p.allocate().map_err(e)?;
    put(&block, b"x")?;
    p.publish(block).map_err(e)?;
    check!(
        s.try_next_pooled().err() == Some(PubSubError::NotPooled),
        "a pooled read of a plain topic"
    );
    let m = s.try_next().ok_or("the message was lost")?;
    check!(*m.attach_read().map_err(e)? == *b"x", "the plain message");
    Ok(())
}

/// A named case.
pub type NamedCase = (&'static str, fn() -> Case);

/// Every case, by name.
pub const CASES: &[NamedCase] = &[
    ("new_blocks_read_as_zeros", new_blocks_read_as_zeros),
    (
        "committed_bytes_are_what_readers_see",
        committed_bytes_are_what_readers_see,
    ),
    (
        "an_uncommitted_write_leaves_no_valid_bytes",
        an_uncommitted_write_leaves_no_valid_bytes,
    ),
    ("a_write_attach_is_exclusive", a_write_attach_is_exclusive),
    ("clones_are_read_only", clones_are_read_only),
    ("exclusive_readers_consume", exclusive_readers_consume),
    (
        "a_read_only_clone_cannot_consume",
        a_read_only_clone_cannot_consume,
    ),
    (
        "publish_needs_the_only_write_right",
        publish_needs_the_only_write_right,
    ),
    (
        "partitions_share_the_blocks_bytes",
        partitions_share_the_blocks_bytes,
    ),
    ("messages_arrive_in_order", messages_arrive_in_order),
    (
        "the_pool_returns_blocks_only_when_readers_drop_them",
        the_pool_returns_blocks_only_when_readers_drop_them,
    ),
    ("publisher_errors", publisher_errors),
    (
        "a_stream_delivers_the_same_messages",
        a_stream_delivers_the_same_messages,
    ),
    (
        "subscribers_that_leave_do_not_hold_the_publisher",
        subscribers_that_leave_do_not_hold_the_publisher,
    ),
    (
        "pooled_messages_are_read_in_place",
        pooled_messages_are_read_in_place,
    ),
    (
        "a_subscriber_holds_a_bounded_number_of_messages",
        a_subscriber_holds_a_bounded_number_of_messages,
    ),
    (
        "loans_and_next_after_take_one_call_per_message",
        loans_and_next_after_take_one_call_per_message,
    ),
    (
        "loans_past_the_write_windows_still_work",
        loans_past_the_write_windows_still_work,
    ),
    (
        "an_allocate_within_waits_for_a_block_and_gives_up_in_time",
        an_allocate_within_waits_for_a_block_and_gives_up_in_time,
    ),
    (
        "a_loan_within_waits_for_a_block_and_gives_up_in_time",
        a_loan_within_waits_for_a_block_and_gives_up_in_time,
    ),
    (
        "a_replaced_pool_is_mapped_again",
        a_replaced_pool_is_mapped_again,
    ),
    (
        "a_leaving_pooled_subscriber_releases_everything",
        a_leaving_pooled_subscriber_releases_everything,
    ),
    ("pooled_errors", pooled_errors),
    (
        "ring_messages_come_and_go_without_a_call",
        ring_messages_come_and_go_without_a_call,
    ),
];

/// Runs every case; returns the failures as `(name, reason)`.
pub fn run_all(mut report: impl FnMut(&str, &Case)) -> Vec<(&'static str, String)> {
    let mut failures = Vec::new();
    for &(name, case) in CASES {
        let result = case();
        report(name, &result);
        if let Err(why) = result {
            failures.push((name, why));
        }
    }
    failures
}
