//! Publish/subscribe end to end: the seed's test as components under the
//! runner, zero copy proven, trapped and slow subscribers, queue policies,
//! and the publisher's errors.

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use common::{stat, stats_line, World, SHARED, WRITE};
use shm_host::pubsub::{Overflow, PubSubConfig};
use shm_host::ShmConfig;

const PAGE: u32 = 4096;

/// Runs `shm-host pubsub --stats ARGS` (component names are resolved to the
/// built guests); returns stdout, after checking the run succeeded.
fn run_pubsub(args: &[&str]) -> String {
    let out = common::shm_host(&[&["pubsub", "--stats"], args].concat());
    common::succeeded(&out)
}

/// The numbers subscriber `name` printed, in order.
fn numbers_received(stdout: &str, name: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: received ")))
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Checks the statistics' total line: nothing copied.
fn assert_nothing_copied(stdout: &str) {
    let total = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect(stdout);
    assert!(
        total.contains("copied      0 (         0 bytes)"),
        "{total}"
    );
}

fn world(queue: usize, overflow: Overflow) -> World {
    World::new(ShmConfig::default().pubsub(PubSubConfig::default().queue(queue).overflow(overflow)))
}

#[test]
fn two_subscriber_components_receive_all_20_in_order() {
    let stdout = run_pubsub(&[
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "numbers",
        "--subscriber-arg",
        "20",
    ]);
    for s in ["pubsub-subscriber#1", "pubsub-subscriber#2"] {
        assert_eq!(
            numbers_received(&stdout, s),
            (0..20).collect::<Vec<_>>(),
            "{s} in order:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("{s}: received 20 messages in order")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("published 20 messages of 64 bytes on numbers to 2 subscribers"));
    assert_nothing_copied(&stdout);
}

#[test]
fn pooled_subscribers_map_the_pool_once_and_read_every_message_in_place() {
    let stdout = run_pubsub(&[
        "--verify-sharing",
        "--publisher",
        "@pubsub-publisher",
        "--publisher-arg",
        "--pooled",
        "--publisher-arg",
        "40",
        "--publisher-arg",
        "12288",
        "--publisher-arg",
        "pooled",
        "--publisher-arg",
        "1",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "--pooled",
        "--subscriber-arg",
        "pooled",
        "--subscriber-arg",
        "40",
    ]);
    assert!(
        stdout.contains("published 40 messages of 12288 bytes on pooled to 2 subscribers"),
        "{stdout}"
    );
    for s in ["pubsub-subscriber#1", "pubsub-subscriber#2"] {
        assert!(
            stdout.contains(&format!(
                "{s}: received 40 messages in order (491520 bytes read in place"
            )),
            "{stdout}"
        );
        let line = stats_line(&stdout, s);
        // The pool's 4 blocks were mapped once; the 40 messages needed no
        // mapping.
        assert_eq!(stat(line, "mapped"), 4, "{line}");
        assert_eq!(stat(line, "in-pool"), 40, "{line}");
        assert_eq!(stat(line, "attaches"), 44, "{line}");
    }
    assert_nothing_copied(&stdout);
    // The publisher mapped its pool once too and wrote the 40 messages in
    // place, through write windows where this machine has protection keys,
    // else mapping each block for writing.
    let line = stats_line(&stdout, "pubsub-publisher");
    let windows = stat(line, "in-pool") == 40;
    if windows {
        assert_eq!(stat(line, "mapped"), 4, "{line}");
    } else {
        assert_eq!(stat(line, "mapped"), 44, "{line}");
    }
    // Every mapping (the publisher's, the subscribers' 8 pool blocks) is the
    // block's own memfd pages.
    let mapped = if windows { 12 } else { 52 };
    assert!(
        stdout.contains(&format!(
            "proof of sharing: {mapped} of {mapped} mapped attaches"
        )),
        "{stdout}"
    );
}

/// Lease rings: two subscribers take their subscriptions as rings of 4 and
/// read 40 messages in place, taking and releasing each without a host
/// call. The host mapped the pool's 4 blocks and the ring's 2 regions once
/// for each and attached nothing per message (no in-pool attach, unlike
/// `next-pooled`); the publisher's pool of 4 came back through the rings.
#[test]
fn ring_subscribers_take_and_release_every_message_in_place() {
    let stdout = run_pubsub(&[
        "--publisher",
        "@pubsub-publisher",
        "--publisher-arg",
        "--pooled",
        "--publisher-arg",
        "40",
        "--publisher-arg",
        "12288",
        "--publisher-arg",
        "rings",
        "--publisher-arg",
        "1",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "--ring",
        "--subscriber-arg",
        "4",
        "--subscriber-arg",
        "rings",
        "--subscriber-arg",
        "40",
    ]);
    assert!(
        stdout.contains("published 40 messages of 12288 bytes on rings to 2 subscribers"),
        "{stdout}"
    );
    for s in ["pubsub-subscriber#1", "pubsub-subscriber#2"] {
        assert!(
            stdout.contains(&format!(
                "{s}: received 40 messages in order (491520 bytes read in place, 0 dropped)"
            )),
            "{stdout}"
        );
        let line = stats_line(&stdout, s);
        assert_eq!(stat(line, "in-pool"), 0, "{line}");
        assert_eq!(stat(line, "attaches"), 6, "{line}");
        assert_eq!(stat(line, "errors"), 0, "{line}");
    }
    assert_nothing_copied(&stdout);
}

#[test]
fn a_stream_subscriber_and_a_pull_subscriber_receive_the_same_messages() {
    let stdout = run_pubsub(&[
        "--queue",
        "2",
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@pubsub_stream_subscriber",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "numbers",
        "--subscriber-arg",
        "20",
    ]);
    for s in ["pubsub_stream_subscriber#1", "pubsub-subscriber#2"] {
        assert_eq!(
            numbers_received(&stdout, s),
            (0..20).collect::<Vec<_>>(),
            "{s} in order:\n{stdout}"
        );
    }
    assert!(stdout
        .contains("pubsub_stream_subscriber#1: received 20 messages in order from the stream"));
    assert_nothing_copied(&stdout);
}

#[test]
fn subscribers_read_the_publishers_own_pages() {
    let w = World::shared();
    let mut publisher = w.probe("pages-pub");
    let mut subs: Vec<_> = (0..3).map(|i| w.probe(&format!("pages-sub{i}"))).collect();
    let queues: Vec<u32> = subs
        .iter_mut()
        .map(|s| s.subscribe("pages").unwrap())
        .collect();
    let n = publisher.optimum_size(1, 3 * PAGE);
    publisher.storage(n);
    let p = publisher.publisher("pages", 2, 3 * PAGE).unwrap();
    let (slot, initialized) = publisher.allocate(p).unwrap();
    assert_eq!(initialized, 0);
    let (addr, _) = publisher.attach(slot, WRITE).unwrap();
    publisher.fill(addr, 3 * PAGE, 0x5A).unwrap();
    let block = publisher
        .store
        .data()
        .shm
        .page_backing(addr)
        .unwrap()
        .block
        .unwrap();
    publisher.detach(slot, 3 * PAGE).unwrap();
    publisher.publish(p, slot).unwrap();
    for (s, &q) in subs.iter_mut().zip(&queues) {
        let n = s.optimum_size(1, 3 * PAGE);
        s.storage(n);
        let m = s.next(q, true).unwrap();
        let (a, size) = s.attach(m, SHARED).unwrap();
        assert_eq!(size, 3 * PAGE);
        assert_eq!(s.checksum(a, size), 0x5A * u64::from(3 * PAGE));
        // While attached, the subscriber's pages are the publisher's block.
        for page in 0..3 {
            let b = s.store.data().shm.page_backing(a + page * PAGE).unwrap();
            assert_eq!(b.block, Some(block), "page {page}: {:?}", b.maps);
            assert!(!b.maps.is_writable());
        }
        assert_eq!(s.store.data().shm.stats().bytes_copied, 0);
    }
    assert_eq!(publisher.store.data().shm.stats().bytes_copied, 0);
}

#[test]
fn a_trapped_subscriber_does_not_stop_the_others_nor_leak_the_pool() {
    let w = World::shared();
    let mut publisher = w.probe("trap-pub");
    let mut good = w.probe("trap-good");
    let mut bad = w.probe("trap-bad");
    let gq = good.subscribe("trap").unwrap();
    let bq = bad.subscribe("trap").unwrap();
    bad.storage(2 * PAGE);
    good.storage(2 * PAGE);
    publisher.storage(2 * PAGE);
    let p = publisher.publisher("trap", 2, 64).unwrap();
    publisher.publish_bytes(p, b"m0").unwrap();
    let m = bad.next(bq, true).unwrap();
    let (a, _) = bad.attach(m, SHARED).unwrap();
    assert!(bad.write(a, b"X").is_err(), "the bad subscriber traps");
    publisher.publish_bytes(p, b"m1").unwrap();
    // The trapped subscriber's store goes away: its clones and its queue go
    // with it.
    drop(bad);
    assert_eq!(good.receive(gq, true).unwrap(), b"m0");
    assert_eq!(good.receive(gq, true).unwrap(), b"m1");
    // Two pool blocks are enough while the good subscriber keeps up: the
    // trapped one holds none any more.
    for i in 2..20u32 {
        publisher
            .publish_bytes(p, format!("m{i}").as_bytes())
            .unwrap();
        assert_eq!(good.receive(gq, true).unwrap(), format!("m{i}").as_bytes());
    }
    w.host.check_invariants().unwrap();
}

#[test]
fn a_full_queue_blocks_the_publisher_until_the_subscriber_reads() {
    let w = world(2, Overflow::Block);
    let mut sub = w.probe("block-sub");
    let q = sub.subscribe("slow").unwrap();
    sub.storage(2 * PAGE);
    let mut publisher = w.probe("block-pub");
    publisher.storage(2 * PAGE);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let p = publisher.publisher("slow", 4, 64).unwrap();
            for i in 0..3u8 {
                publisher.publish_bytes(p, &[i]).unwrap();
                tx.send(i).unwrap();
            }
            publisher.drop_publisher(p);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(0));
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(1));
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the third publish waits for space"
        );
        assert_eq!(sub.receive(q, true).unwrap(), [0]);
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(2));
    });
    assert_eq!(sub.receive(q, true).unwrap(), [1]);
    assert_eq!(sub.receive(q, true).unwrap(), [2]);
    assert_eq!(
        sub.next(q, true),
        None,
        "the publisher is gone and the queue is empty"
    );
    assert_eq!(sub.dropped(q), 0);
}

#[test]
fn a_full_queue_drops_the_oldest_for_that_subscriber_only() {
    let w = world(2, Overflow::DropOldest);
    let mut slow = w.probe("drop-slow");
    let mut fast = w.probe("drop-fast");
    let sq = slow.subscribe("drop").unwrap();
    let fq = fast.subscribe("drop").unwrap();
    slow.storage(2 * PAGE);
    fast.storage(2 * PAGE);
    let mut publisher = w.probe("drop-pub");
    publisher.storage(2 * PAGE);
    let p = publisher.publisher("drop", 4, 64).unwrap();
    for i in 0..3u8 {
        publisher.publish_bytes(p, &[i]).unwrap();
        assert_eq!(fast.receive(fq, true).unwrap(), [i]);
    }
    assert_eq!(slow.receive(sq, false).unwrap(), [1]);
    assert_eq!(slow.receive(sq, false).unwrap(), [2]);
    assert_eq!(slow.receive(sq, false), None);
    assert_eq!(slow.dropped(sq), 1);
    assert_eq!(fast.dropped(fq), 0);
}

#[test]
fn publisher_errors_are_clear() {
    let w = World::shared();
    let mut a = w.probe("err-a");
    let mut b = w.probe("err-b");
    a.storage(4 * PAGE);
    b.storage(4 * PAGE);
    let p = a.publisher("errors", 1, 64).unwrap();
    assert_eq!(a.publisher("errors", 1, 64), Err("topic-taken".into()));
    assert_eq!(
        a.publisher("errors-empty", 0, 64),
        Err("invalid-argument".into())
    );
    let (slot, _) = a.allocate(p).unwrap();
    assert_eq!(a.allocate(p), Err("pool-exhausted".into()));
    a.attach(slot, WRITE).unwrap();
    assert_eq!(a.publish(p, slot), Err("still-attached".into()));
    // The failed publish consumed the block: it went back to the pool.
    let (slot, _) = a.allocate(p).unwrap();
    let plain = a.create(64).unwrap();
    assert_eq!(a.publish(p, plain), Err("foreign-block".into()));
    let q = b.publisher("errors-other", 1, 64).unwrap();
    let (other, _) = b.allocate(q).unwrap();
    let other = common::pass(&mut b, other, &mut a);
    assert_eq!(a.publish(p, other), Err("foreign-block".into()));
    a.publish(p, slot).unwrap();
    // With no subscriber the message is dropped at once: the pool is free.
    let (_, initialized) = a.allocate(p).unwrap();
    assert_eq!(initialized, 0);
}

#[test]
fn subscribers_join_and_leave_while_messages_flow() {
    let w = world(1, Overflow::Block);
    let mut publisher = w.probe("flow-pub");
    let mut early = w.probe("flow-early");
    let mut late = w.probe("flow-late");
    publisher.storage(4 * PAGE);
    early.storage(2 * PAGE);
    late.storage(2 * PAGE);
    let p = publisher.publisher("flow", 4, 64).unwrap();
    let eq = early.subscribe("flow").unwrap();
    publisher.publish_bytes(p, b"1").unwrap();
    assert_eq!(early.receive(eq, true).unwrap(), b"1");
    let lq = late.subscribe("flow").unwrap();
    publisher.publish_bytes(p, b"2").unwrap();
    // The early subscriber leaves with a message queued: with a queue of
    // one and the block policy, the publisher must not wait for it.
    early.drop_subscriber(eq);
    assert_eq!(late.receive(lq, true).unwrap(), b"2");
    publisher.publish_bytes(p, b"3").unwrap();
    assert_eq!(late.receive(lq, true).unwrap(), b"3");
    // A subscription handed out by the publisher works the same way.
    let s = publisher.subscription(p).unwrap();
    publisher.publish_bytes(p, b"4").unwrap();
    assert_eq!(late.receive(lq, true).unwrap(), b"4");
    assert_eq!(publisher.receive(s, false).unwrap(), b"4");
    publisher.drop_publisher(p);
    assert_eq!(late.next(lq, true), None);
}

/// A publisher that ends right after publishing (here host code, a native
/// publisher) must not take its pool with it: a pooled subscriber woken by
/// the first message maps the pool only then, after the publisher is gone,
/// and must still read every message queued for it in place.
#[test]
fn pooled_subscribers_read_what_a_publisher_queued_before_it_ended() {
    use shm_host::pubsub::native::NativePublisher;
    use shm_host::topology::{Role, Topology};
    for round in 0..3 {
        let host = shm_host::ShmHost::default();
        let mut topology = Topology::new(&host).unwrap();
        let subscriber = topology.load(common::guest("pubsub-subscriber")).unwrap();
        topology
            .subscriber("first", subscriber.clone(), &["--pooled", "numbers", "3"])
            .subscriber("second", subscriber, &["--pooled", "numbers", "3"])
            .native(Role::Publisher, "native", |host| {
                let mut publisher = NativePublisher::new(host, "native", "numbers", 4, 4096)
                    .expect("the topic is free");
                for n in 0u32..3 {
                    let mut message = vec![(n % 251) as u8; 100];
                    message[..4].copy_from_slice(&n.to_le_bytes());
                    publisher.publish(&[&message]).expect("a free block");
                }
                // Ends at once: the topic closes with three messages queued.
                shm_host::command::Status::Succeeded
            });
        let report = topology.run();
        assert!(report.succeeded(), "round {round}: {:?}", report.ended);
        for name in ["first", "second"] {
            let s = report.statistics.guest(name).unwrap();
            assert_eq!(s.in_pool, 3, "round {round}: {name} read in place");
            assert_eq!(s.bytes_copied, 0);
        }
        assert_eq!(report.statistics.guest("native").unwrap().remote, 3);
        // Once the subscribers are gone, so is the pool.
        assert_eq!(host.live_blocks(), 0, "round {round}");
    }
}

/// A native publisher whose only pool block is queued for a subscriber
/// waits for it with `publish_within`: with nobody reading it gives up at
/// its timeout; once the subscriber reads (and so releases) the message,
/// the waiting publish goes through (that the release wakes it is the
/// unit test `native::tests::a_release_wakes_who_waits_for_a_block`).
#[test]
fn a_native_publisher_waits_for_a_block_to_come_free() {
    use shm_host::pubsub::native::{NativePublisher, NativeSubscriber, Next, PublishError};
    let host = shm_host::ShmHost::default();
    let mut subscriber = NativeSubscriber::new(&host, "reader", "one-block").unwrap();
    let mut publisher = NativePublisher::new(&host, "writer", "one-block", 1, 4096).unwrap();
    publisher.publish(&[b"first"]).unwrap();
    assert!(matches!(
        publisher.publish(&[b"second"]),
        Err(PublishError::PoolExhausted)
    ));
    assert!(matches!(
        publisher.publish_within(&[b"second"], Duration::from_millis(20)),
        Err(PublishError::PoolExhausted)
    ));
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut got = Vec::new();
        for _ in 0..2 {
            let next = subscriber.next_into(&mut bytes, Duration::from_secs(60));
            assert_eq!(next.unwrap(), Next::Message);
            got.push(bytes.clone());
        }
        got
    });
    publisher
        .publish_within(&[b"second"], Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        reader.join().unwrap(),
        [b"first".to_vec(), b"second".to_vec()]
    );
}
