//! Isolation, attack by attack: each test runs a hostile component of the
//! project's red team (`guests/red-team`) beside honest ones, and checks
//! that the attack fails with an error or a trap of the attacker only, and
//! that the honest components get every message intact and in order. The
//! stalling attacks end within the configured limits (two seconds).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{pass, shm_host, World, EXCLUSIVE, SHARED, WRITE};
use shm_host::{Grants, Limits, ProcessLimits, ShmConfig};

const PAGE: u32 = 4096;

/// The red-team command copied as `red-team-ATTACK.wasm`: its name selects
/// the attack, so that it can share `--subscriber-arg`s with honest
/// subscribers.
fn red_team(attack: &str) -> String {
    // Under target/ (Cargo's directory for tests' files), not /tmp: one
    // directory per test process, so that a rebuilt red team is copied anew.
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shm-red-team-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("red-team-{attack}.wasm"));
    if !path.exists() {
        std::fs::copy(common::guest("red-team"), &path).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The red team's verdicts: how many attempts were refused; fails on any
/// that succeeded.
fn refusals(stdout: &str) -> usize {
    assert!(
        !stdout.contains("SUCCEEDED"),
        "an attack succeeded:\n{stdout}"
    );
    stdout.matches(": REFUSED ").count()
}

/// The honest subscriber `name` received all 20 messages, in order, every
/// byte as published.
fn honest_got_everything(stdout: &str, name: &str) {
    assert!(
        stdout.contains(&format!("{name}: received 20 messages in order")),
        "{name}:\n{stdout}"
    );
}

/// Runs the honest publisher to the honest subscriber and the red-team
/// subscriber `attack`; checks the run succeeded; returns stdout and
/// stderr.
fn beside_an_honest_subscriber(attack: &str) -> (String, String) {
    let out = shm_host(&[
        "pubsub",
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        &red_team(attack),
        "--subscriber-arg",
        "numbers",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{attack}: {stdout}\n{stderr}");
    (stdout, stderr)
}

/// Runs `shm-host pubsub` with `options` (host settings, publisher
/// arguments), the honest publisher, the honest subscriber expecting 20
/// messages and the red-team subscriber `attack`; returns the run, its
/// stdout and stderr.
fn attack_beside_the_honest_pair(options: &[&str], attack: &str) -> (Output, String, String) {
    let attacker = red_team(attack);
    let mut args = vec!["pubsub"];
    args.extend_from_slice(options);
    args.extend_from_slice(&[
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        &attacker,
        "--subscriber-arg",
        "numbers",
        "--subscriber-arg",
        "20",
    ]);
    let out = shm_host(&args);
    let (stdout, stderr) = text(&out);
    (out, stdout, stderr)
}

#[test]
fn a_reader_cannot_consume_or_shut_out_the_others() {
    let (stdout, _) = beside_an_honest_subscriber("consume");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    // Two attempts per message: an exclusive read, a consuming detach.
    assert_eq!(refusals(&stdout), 40, "{stdout}");
    assert!(stdout.contains("red-team-consume#2: received 20 messages"));
}

/// Runs the red-team publisher `attack` to two honest subscribers, each
/// expecting 20 messages.
fn red_team_publisher_to_two_honest_subscribers(attack: &str) -> Output {
    shm_host(&[
        "pubsub",
        "--publisher",
        "@red-team",
        "--publisher-arg",
        "--attack",
        "--publisher-arg",
        attack,
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "numbers",
        "--subscriber-arg",
        "20",
    ])
}

#[test]
fn a_publisher_cannot_change_a_published_message() {
    for attack in ["rewrite-partition", "publish-clone"] {
        let out = red_team_publisher_to_two_honest_subscribers(attack);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{attack}: {stdout}\n{stderr}");
        assert_eq!(refusals(&stdout), 20, "{attack}: {stdout}");
        honest_got_everything(&stdout, "pubsub-subscriber#1");
        honest_got_everything(&stdout, "pubsub-subscriber#2");
    }
}

#[test]
fn only_the_granted_publisher_publishes() {
    let (stdout, stderr) = beside_an_honest_subscriber("squat");
    assert_eq!(refusals(&stdout), 2, "{stdout}");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(stderr.contains("not permitted to publish"), "{stderr}");

    // A publisher granted another topic only cannot squat this one either.
    let out = shm_host(&[
        "pubsub",
        "--topic",
        "other",
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@hello-wasi",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("not permitted"), "{stderr}");
}

#[test]
fn topic_grants_are_the_hosts() {
    let w = World::shared();
    let mut nobody = w.probe_with("grants-none", Grants::none());
    assert_eq!(nobody.subscribe("g"), Err("not-permitted".into()));
    assert_eq!(nobody.publisher("g", 2, 64), Err("not-permitted".into()));
    let mut reader = w.probe_with("grants-reader", Grants::none().subscribe("g"));
    assert_eq!(reader.publisher("g", 2, 64), Err("not-permitted".into()));
    let q = reader.subscribe("g").unwrap();
    reader.storage(4 * PAGE);
    let mut writer = w.probe_with("grants-writer", Grants::none().publish("g*"));
    assert_eq!(writer.subscribe("g"), Err("not-permitted".into()));
    let p = writer.publisher("g", 2, 64).unwrap();
    writer.storage(4 * PAGE);
    writer.publish_bytes(p, b"granted").unwrap();
    assert_eq!(reader.receive(q, false).unwrap(), b"granted");
}

#[test]
fn a_borrow_does_not_outlive_its_call() {
    let out = shm_host(&["run", "--stats", "--link", "@red_team", "@minimal-main"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Eight calls; from the second on, three attempts each with what the
    // worker kept: a clone, a writable partition, a mapping.
    assert_eq!(refusals(&stdout), 21, "{stdout}");
    assert_eq!(
        stdout
            .matches("REFUSED writing through a partition kept from the last call: revoked")
            .count(),
        7
    );
    assert_eq!(
        stdout
            .matches("REFUSED reading the mapping kept from the last call: it reads as zeros")
            .count(),
        7
    );
    // The lender checks every byte of its block in place.
    assert!(
        stdout.contains("the worker made 8 increments at 6 positions; all 65536 bytes verified"),
        "{stdout}"
    );
}

/// Runs a pub-sub topology with a stalling red-team subscriber beside an
/// honest one, with a two-second stall limit (generous for the honest one
/// on a loaded machine).
fn stalled(attack: &str, extra: &[&str]) -> (Output, String, String) {
    let red = red_team(attack);
    let mut args = vec![
        "pubsub",
        "--stats",
        "--stall-limit",
        "2",
        "--timeout",
        "30",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber",
        &red,
    ];
    args.extend_from_slice(extra);
    let out = shm_host(&args);
    let (stdout, stderr) = text(&out);
    (out, stdout, stderr)
}

#[test]
fn a_spinning_subscriber_is_evicted_and_the_others_go_on() {
    let (out, stdout, stderr) = stalled(
        "spin",
        &[
            "--queue",
            "2",
            "--publisher",
            "@pubsub-publisher",
            "--subscriber-arg",
            "numbers",
        ],
    );
    assert!(
        !out.status.success(),
        "the evicted subscriber fails the run"
    );
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        stderr.contains("red-team-spin#2 stopped: red-team-spin#2 was evicted: left its full queue of topic `numbers` untaken"),
        "{stderr}"
    );
}

#[test]
fn a_subscriber_that_does_not_take_is_evicted_or_loses_messages() {
    // Blocking policy: the pool runs dry while it sleeps; it is evicted.
    let (out, stdout, stderr) = stalled(
        "stall",
        &[
            "--publisher",
            "@pubsub-publisher",
            "--subscriber-arg",
            "numbers",
        ],
    );
    assert!(!out.status.success());
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        stderr.contains("red-team-stall#2 was evicted: did not take a message of topic `numbers` within the stall limit"),
        "{stderr}"
    );
    assert!(!stdout.contains("took"), "it never took after eviction");

    // Drop-oldest: its oldest messages are dropped instead; nobody waits.
    let (out, stdout, stderr) = stalled(
        "stall",
        &[
            "--overflow",
            "drop-oldest",
            "--publisher",
            "@pubsub-publisher",
            "--subscriber-arg",
            "numbers",
        ],
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("red-team-stall#2: took"))
        .expect(&stdout);
    let dropped: u32 = line
        .rsplit(", ")
        .next()
        .and_then(|d| d.strip_suffix(" dropped"))
        .and_then(|d| d.parse().ok())
        .expect(line);
    assert!(dropped > 0, "{line}");
}

#[test]
fn a_subscriber_holding_a_pooled_message_is_evicted() {
    let (out, stdout, stderr) = stalled(
        "hold",
        &[
            "--publisher",
            "@pubsub-publisher",
            "--publisher-arg",
            "--pooled",
            "--subscriber-arg",
            "--pooled",
            "--subscriber-arg",
            "numbers",
        ],
    );
    assert!(!out.status.success());
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        stderr.contains("red-team-hold#2 was evicted: held a message of topic `numbers` for longer than the stall limit"),
        "{stderr}"
    );
    // What it held was revoked: its mappings and its message.
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("red-team-hold#2"))
        .expect(&stdout);
    assert!(!row.ends_with("revoked    0"), "{row}");
}

#[test]
fn a_spinning_command_ends_at_its_cpu_budget() {
    let out = shm_host(&[
        "run",
        "--cpu-limit",
        "1",
        "@red-team",
        "--attack",
        "spin-alone",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("red-team ran wasm for longer than its CPU budget of 1s"),
        "{stderr}"
    );
}

#[test]
fn failures_and_early_exits_are_reported_at_once() {
    // A subscriber that ends without subscribing does not hold the
    // topology for the whole timeout (60 s): the publisher starts at once.
    let out = shm_host(&[
        "pubsub",
        "--publisher",
        "@pubsub-publisher",
        "--subscriber",
        "@hello-wasi",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("subscriber hello-wasi#1 exited before it subscribed"),
        "{stderr}"
    );
    assert!(stdout.contains("publisher: published 20 messages"));
    // A failing publisher is named.
    let out = shm_host(&[
        "pubsub",
        "--publisher",
        "@red-team",
        "--publisher-arg",
        "--attack",
        "--publisher-arg",
        "fail",
        "--subscriber",
        "@hello-wasi",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("publisher red-team failed"), "{stderr}");
}

#[test]
fn mappings_are_limited_per_guest_and_for_the_process() {
    let w = World::new(
        ShmConfig::default()
            .limits(Limits {
                max_mappings: 4,
                ..Limits::default()
            })
            .process_limits(Some(ProcessLimits {
                max_blocks: 6,
                max_mappings: 6,
            })),
    );
    let mut a = w.probe("map-flood");
    let mut b = w.probe("map-neighbour");
    let n = a.optimum_size(8, PAGE);
    a.storage(n);
    let n = b.optimum_size(8, PAGE);
    b.storage(n);
    let block = a.create(PAGE).unwrap();
    a.attach(block, WRITE).unwrap();
    a.detach(block, 10).unwrap();
    let clones: Vec<u32> = (0..5).map(|_| a.clone_block(block).unwrap()).collect();
    for &c in &clones[..4] {
        a.attach(c, SHARED).unwrap();
    }
    // The guest's own limit, reported before anything of the process runs
    // out.
    assert_eq!(a.attach(clones[4], SHARED), Err("limit-exceeded".into()));
    // Another guest still maps, up to what the process allows.
    let own = b.create(PAGE).unwrap();
    let c2 = b.clone_block(own).unwrap();
    b.attach(own, WRITE).unwrap();
    b.detach(own, 10).unwrap();
    b.attach(c2, SHARED).unwrap();
    let c3 = b.clone_block(own).unwrap();
    b.attach(c3, SHARED).unwrap();
    let c4 = b.clone_block(own).unwrap();
    assert_eq!(b.attach(c4, SHARED), Err("limit-exceeded".into()));
    // Blocks: the process's count (file descriptors), not a failed system
    // call.
    let made: Vec<_> = (0..8).map(|_| b.create(PAGE)).collect();
    assert!(made.contains(&Err("limit-exceeded".into())), "{made:?}");
    assert!(!made.iter().any(|m| m == &Err("internal".into())));
    w.host.check_invariants().unwrap();
}

#[test]
fn an_abandoned_write_commits_nothing_mapped_or_copied() {
    let w = World::shared();
    let mut p = w.probe("abandon");
    let n = p.optimum_size(4, 4 * PAGE);
    p.storage(n);
    // Mapped (a whole block) and copied (an unaligned partition) alike.
    for (start, size) in [(0, 2 * PAGE), (100, 50)] {
        let b = p.create(2 * PAGE).unwrap();
        let (addr, _) = p.attach(b, WRITE).unwrap();
        p.write(addr, &[7; 200]).unwrap();
        p.detach(b, 200).unwrap();
        let reader = p.clone_block(b).unwrap();
        let part = p.partition(b, start, size, WRITE).unwrap();
        let (addr, _) = p.attach(part, WRITE).unwrap();
        p.fill(addr, size.min(PAGE), 0xEE).unwrap();
        // Dropped while attached: no detach, no commit.
        p.drop_block(part);
        let (_, rsize) = p.attach(reader, SHARED).unwrap();
        assert_eq!(rsize, 0, "start {start}: uncommitted bytes became visible");
        p.detach(reader, 0).unwrap();
        p.drop_block(reader);
        p.drop_block(b);
    }
}

#[test]
fn a_clone_cannot_read_exclusively() {
    let w = World::shared();
    let mut p = w.probe("clone-exclusive");
    let n = p.optimum_size(2, PAGE);
    p.storage(n);
    let b = p.create(PAGE).unwrap();
    let (addr, _) = p.attach(b, WRITE).unwrap();
    p.write(addr, b"0123456789").unwrap();
    p.detach(b, 10).unwrap();
    let c = p.clone_block(b).unwrap();
    assert_eq!(p.attach(c, EXCLUSIVE), Err("read-only".into()));
    let mut other = w.probe("clone-exclusive-other");
    let c = pass(&mut p, c, &mut other);
    let n = other.optimum_size(1, PAGE);
    other.storage(n);
    assert_eq!(other.attach(c, EXCLUSIVE), Err("read-only".into()));
    let (_, size) = other.attach(c, SHARED).unwrap();
    other.detach(c, size).unwrap();
    let (addr, size) = p.attach(b, SHARED).unwrap();
    assert_eq!(&p.read(addr, size), b"0123456789");
}

/// A loan is a number in the interface, so a guest can make one up: the
/// red-team publisher publishes and gives back loans it was never given,
/// its own loan past the block, and each published loan a second time,
/// between 20 honest messages; then it writes 0xEE over a last loan and
/// ends without publishing or giving it back. Every made-up or spent loan
/// is refused with `unknown-lease` (nothing sent), the oversized one with
/// `invalid-argument`; the honest subscribers get exactly the 20 messages,
/// intact and in order (the open loan ends unsent); and once the topology
/// has ended no block of it is left.
#[test]
fn a_publisher_cannot_forge_or_reuse_a_loan_and_an_open_loan_ends_unsent() {
    let out = red_team_publisher_to_two_honest_subscribers("forge-loan");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let refused = refusals(&stdout);
    let unknown = stdout.matches(": unknown-lease").count();
    // Made-up loans (published and given back), then per message its
    // loan published again and given back after publishing.
    assert!(unknown >= 2 * 4 + 2 * 20, "{stdout}");
    assert!(
        stdout.contains("REFUSED publishing its loan past the block: invalid-argument"),
        "{stdout}"
    );
    assert_eq!(refused, unknown + 1, "{stdout}");
    assert!(stdout.contains("written, unpublished"), "{stdout}");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    honest_got_everything(&stdout, "pubsub-subscriber#2");

    // The same topology from the library: afterwards the host holds no
    // block (the open loan, the pool and the messages are all freed).
    use shm_host::topology::Topology;
    let host = shm_host::ShmHost::default();
    let mut topology = Topology::new(&host).unwrap();
    let red_team = topology.load(common::guest("red-team")).unwrap();
    let subscriber = topology.load(common::guest("pubsub-subscriber")).unwrap();
    topology
        .topic("numbers")
        .publisher("red-team", red_team, &["--attack", "forge-loan"])
        .subscriber("first", subscriber.clone(), &["numbers", "20"])
        .subscriber("second", subscriber, &["numbers", "20"]);
    let report = topology.run();
    assert!(report.succeeded(), "{:?}", report.ended);
    assert_eq!(host.live_blocks(), 0);
}

/// Runs the red-team `attack` as a pooled publisher beside an honest
/// subscriber. Returns the run, its stdout and stderr, and whether the
/// publisher wrote through write windows (in-pool attaches: this machine
/// has protection keys) rather than a mapping per message.
fn pooled_red_team_publisher(attack: &str) -> (Output, String, String, bool) {
    let out = shm_host(&[
        "pubsub",
        "--stats",
        "--publisher",
        "@red-team",
        "--publisher-arg",
        "--attack",
        "--publisher-arg",
        attack,
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "numbers",
    ]);
    let (stdout, stderr) = text(&out);
    let windows = common::stat(common::stats_line(&stdout, "red-team"), "in-pool") > 0;
    (out, stdout, stderr, windows)
}

/// The red-team publisher's store trapped at a write into its pool.
fn publisher_trapped_at_its_write(stdout: &str, stderr: &str) {
    assert!(!stdout.contains("did not trap"), "{stdout}");
    assert!(
        stderr.contains("publisher red-team") && stderr.contains("memory fault at wasm address"),
        "{stderr}"
    );
}

/// A pooled publisher writes a message it just published where its own
/// pool mapping shows it, while a write window onto another block is open:
/// with write windows (this machine has protection keys) its store traps at
/// that write, and the subscriber has the message intact; without them the
/// address is a per-message mapping already gone, the write lands in its
/// own fresh pages, and every message arrives intact.
#[test]
fn a_publisher_cannot_write_a_published_message_through_its_pool_mapping() {
    write_into_a_published_message_is_refused("write-outside-window");
}

/// The same attack through loans: a pooled publisher publishes a loan and
/// takes the next in one call (`publish-and-loan`), then writes through
/// the published loan's pointer: `publish-loan` closes that window before
/// the message is sent, so with write windows its store traps and the
/// subscriber has message 0 intact; without them every message arrives
/// intact.
#[test]
fn a_publisher_cannot_write_a_message_after_publishing_its_loan() {
    write_into_a_published_message_is_refused("write-after-publish-loan");
}

/// Runs a red-team publisher `attack` that writes into message 0 after
/// publishing it: with write windows its store traps and the subscriber has
/// message 0 intact; without them every message arrives intact.
fn write_into_a_published_message_is_refused(attack: &str) {
    let (out, stdout, stderr, windows) = pooled_red_team_publisher(attack);
    assert!(
        stdout.contains("red-team: writing into published message 0"),
        "{stdout}"
    );
    if windows {
        publisher_trapped_at_its_write(&stdout, &stderr);
        assert!(
            stdout.contains("pubsub-subscriber#1: received 1 messages in order"),
            "{stdout}"
        );
    } else {
        assert!(out.status.success(), "{stdout}\n{stderr}");
        honest_got_everything(&stdout, "pubsub-subscriber#1");
    }
}

/// A pooled publisher has the host write a call's result into a committed
/// message, through its own pool mapping outside any window, publishes it,
/// then stores there itself: with write windows the host's write is
/// absorbed into a private copy of that page (no crash; the block intact:
/// the subscriber reads it after the write) and the publisher's own store
/// traps it; without windows the place is its own fresh pages. Either way
/// the subscriber reads message 0 as committed.
#[test]
fn a_publisher_cannot_have_the_host_write_a_committed_message() {
    let (_, stdout, stderr, windows) = pooled_red_team_publisher("host-write-into-pool");
    assert!(
        stdout.contains("red-team: published message 0 as committed"),
        "the host call returned and the block came back committed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("pubsub-subscriber#1: received 1 messages in order"),
        "{stdout}"
    );
    if windows {
        publisher_trapped_at_its_write(&stdout, &stderr);
    } else {
        assert!(stdout.contains("did not trap"), "{stdout}");
    }
}

/// A subscriber has the host write a call's result into each message's
/// read-only attachment, then attaches the next message at the same
/// address and has the host write there again, while a clone of that
/// message shows the block's shared pages: every host write must stay in
/// the attacker's private page. (The fault handler once remembered the
/// page it made private by address alone; the second write then made the
/// new *shared* mapping writable and landed in the block.)
#[test]
fn a_host_write_into_a_reattached_read_only_page_stays_private() {
    // 20 messages of two pages: mapped, not copied.
    let (out, stdout, stderr) = attack_beside_the_honest_pair(
        &["--publisher-arg", "20", "--publisher-arg", "8192"],
        "alias-after-detach",
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(refusals(&stdout), 20, "{stdout}");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    // The attack reached the case it is about: a later message attached
    // where an earlier one (whose page the host made private) was.
    let again: u32 = stdout
        .lines()
        .find_map(|l| {
            l.split(" messages, ")
                .nth(1)?
                .strip_suffix(" attached where the last one was")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no summary from the attacker:\n{stdout}"));
    assert!(again >= 10, "only {again} reattached in place:\n{stdout}");
}

/// A subscriber makes the host handle names of a megabyte, subscribes to
/// and leaves 5,000 made-up topics, and makes 2,000 refused calls: the
/// long names are refused with `invalid-argument` (nothing of them is
/// stored; the rules forget a topic when its last member leaves:
/// shm-rules `topics_are_forgotten_when_their_last_member_leaves`), the
/// log gets a bounded number of lines, each showing at most a short prefix
/// of a name, and the honest subscriber is not disturbed.
#[test]
fn a_subscriber_cannot_grow_the_host_or_flood_its_log_with_topics() {
    let (out, stdout, stderr) =
        attack_beside_the_honest_pair(&["--topic", "numbers", "--topic", "flood/*"], "topic-flood");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(refusals(&stdout), 65, "{stdout}");
    assert!(
        stdout.contains("red-team-topic-flood#2: made and left 5000 topics; received 20 messages"),
        "{stdout}"
    );
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    // 2,064 refusals: a burst of lines and about one a second, each short.
    let refusal_lines = stderr.lines().filter(|l| l.contains("refused")).count();
    assert!(
        (1..=40).contains(&refusal_lines),
        "{refusal_lines} refusal lines:\n{stderr}"
    );
    assert!(stderr.len() < 16 * 1024, "{} bytes of log", stderr.len());
}

/// A relay (granted to read the topology's topics) tries to take the
/// publisher's topic before the publisher starts: relays publish only the
/// topics named for them (`--relay-topic`), so both attempts are refused
/// and the honest publisher and subscriber run as without it.
#[test]
fn a_relay_cannot_take_the_publishers_topic() {
    let out = shm_host(&[
        "pubsub",
        "--topic",
        "numbers",
        "--relay-topic",
        "acks",
        "--publisher",
        "@pubsub-publisher",
        "--relay",
        &red_team("squat"),
        "--relay-arg",
        "numbers",
        "--subscriber",
        "@pubsub-subscriber",
        "--subscriber-arg",
        "numbers",
        "--subscriber-arg",
        "20",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(refusals(&stdout), 2, "{stdout}");
    assert!(
        stdout.contains("red-team-squat#1: received 20 messages"),
        "{stdout}"
    );
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(stderr.contains("not permitted to publish"), "{stderr}");
}

/// A subscriber makes the host copy for it: an unaligned partition just
/// past the copy limit is refused (`limit-exceeded`), and a loop of
/// 256 MiB copies (just within the limit the test sets) is host work
/// charged to its CPU budget (three seconds here), so it is stopped before
/// its 12 s loop ends (the charge itself: watchdog unit test
/// `host_time_charged_to_a_guest_stops_it_at_its_budget`). The copies run
/// outside the ledger's lock: the honest pair gets every message
/// meanwhile.
#[test]
fn a_guest_making_the_host_copy_pays_with_its_own_budget() {
    let max_copy = (256u32 << 20).to_string();
    let (out, stdout, stderr) = attack_beside_the_honest_pair(
        &[
            "--cpu-limit",
            "3",
            "--max-copy",
            &max_copy,
            "--env",
            "COPY_FLOOD_MIB=256",
            "--overflow",
            "drop-oldest",
        ],
        "copy-flood",
    );
    assert!(!out.status.success(), "the stopped attacker fails the run");
    assert_eq!(refusals(&stdout), 1, "{stdout}");
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        !stdout.contains("times in 12 s"),
        "the attacker ran its whole loop:\n{stdout}"
    );
    assert!(
        stderr.contains("red-team-copy-flood#2 stopped: red-team-copy-flood#2 ran wasm for longer than its CPU budget"),
        "{stderr}"
    );
}

/// Under `drop-oldest` a slow pooled subscriber costs only itself: the
/// red-team `slow-hold` takes the first message and holds it for 6 s
/// (the stall limit is 10 minutes: it is never evicted), while its queue
/// (one message) holds a second block of a pool of two. The publisher, a
/// native member that gives each publish at most 4 s, must never wait for
/// it: when the pool runs dry the slow one's queued message is dropped at
/// once. (Before, the host waited for the queued message to pass the
/// stall limit: the third publish failed after 4 s.)
#[test]
fn a_slow_subscriber_costs_only_itself_under_drop_oldest() {
    use shm_host::command::Status;
    use shm_host::pubsub::native::NativePublisher;
    use shm_host::pubsub::{Overflow, PubSubConfig};
    use shm_host::topology::{Role, Topology};
    use std::time::Duration;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

    let host = shm_host::ShmHost::new(
        ShmConfig::default().pubsub(
            PubSubConfig::default()
                .queue(1)
                .overflow(Overflow::DropOldest)
                .stall_limit(Duration::from_secs(600)),
        ),
    );
    let mut topology = Topology::new(&host).unwrap();
    let honest = topology.load(common::guest("pubsub-subscriber")).unwrap();
    let slow = topology.load(common::guest("red-team")).unwrap();
    let outputs: std::sync::Arc<std::sync::Mutex<Vec<MemoryOutputPipe>>> = Default::default();
    let kept = outputs.clone();
    topology.wasi(move |name, wasi| {
        let pipe = MemoryOutputPipe::new(1 << 16);
        wasi.stdout(pipe.clone());
        if name == "slow" {
            wasi.env("SLOW_HOLD_MS", "6000");
        }
        kept.lock().unwrap().push(pipe);
        Ok(())
    });
    topology
        .topic("numbers")
        .subscriber("honest", honest, &["numbers", "--pooled"])
        .subscriber("slow", slow, &["--attack", "slow-hold", "numbers"])
        .native(Role::Publisher, "publisher", |host| {
            let run = || -> Result<(), String> {
                let mut p = NativePublisher::new(host, "publisher", "numbers", 2, 64)
                    .map_err(|e| e.to_string())?;
                for i in 0u32..20 {
                    let mut message = [0u8; 64];
                    message[..4].copy_from_slice(&i.to_le_bytes());
                    message[4..].fill((i % 251) as u8);
                    p.publish_within(&[&message], Duration::from_secs(4))
                        .map_err(|e| format!("message {i}: {e}"))?;
                    std::thread::sleep(Duration::from_millis(if i == 0 { 300 } else { 10 }));
                }
                Ok(())
            };
            Status::from(run())
        });
    let report = topology.run();
    let text: String = outputs
        .lock()
        .unwrap()
        .iter()
        .map(|p| String::from_utf8_lossy(&p.contents()).into_owned())
        .collect();
    assert!(report.succeeded(), "{:?}\n{text}", report.ended);
    assert!(text.contains("honest: received"), "{text}");
    assert!(text.contains("messages in order"), "{text}");
    assert!(text.contains("slow: held"), "{text}");
}

/// The pooled honest publisher and subscriber, and a red-team ring
/// subscriber, under the two-second stall limit.
fn beside_a_ring_attacker(attack: &str) -> (Output, String, String) {
    stalled(
        attack,
        &[
            "--publisher",
            "@pubsub-publisher",
            "--publisher-arg",
            "--pooled",
            "--subscriber-arg",
            "--pooled",
            "--subscriber-arg",
            "numbers",
        ],
    )
}

/// A ring subscriber writes hostile values into its ring's returned region
/// (counts backwards and far ahead, sequence numbers never offered, from
/// the future, twice, an entry rewritten after its count) and never
/// returns a message honestly: the host refuses every value, frees no
/// block early (the honest subscriber reads every byte as published), and
/// once the attacker has held the publisher's blocks past the stall limit
/// evicts it, and the publisher goes on.
#[test]
fn a_ring_subscriber_scribbling_its_returned_region_costs_only_itself() {
    let (out, stdout, stderr) = beside_a_ring_attacker("ring-scribble");
    assert!(
        !out.status.success(),
        "the evicted subscriber fails the run"
    );
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        stdout.contains("published 20 messages of 64 bytes on numbers"),
        "{stdout}"
    );
    assert!(
        stderr.contains("red-team-ring-scribble#2 was evicted: held a message of topic `numbers` for longer than the stall limit"),
        "{stderr}"
    );
    // Every hostile value was refused (and counted, the log bounded).
    assert!(
        stderr.contains("values of its lease ring's returned region"),
        "{stderr}"
    );
    let line = common::stats_line(&stdout, "red-team-ring-scribble#2");
    assert!(common::stat(line, "errors") > 0, "{line}");
}

/// A ring subscriber writes into the region the host offers messages in
/// (mapped read-only into it): its store traps at that write; the honest
/// subscriber has every message.
#[test]
fn a_ring_subscriber_cannot_write_its_offered_region() {
    let (out, stdout, stderr) = beside_a_ring_attacker("ring-write-offered");
    assert!(!out.status.success());
    assert!(
        stdout.contains("writing into the offered region"),
        "{stdout}"
    );
    assert!(!stdout.contains("SUCCEEDED"), "{stdout}");
    assert!(
        stderr.contains("red-team-ring-write-offered#2") && stderr.contains("memory fault"),
        "{stderr}"
    );
    honest_got_everything(&stdout, "pubsub-subscriber#1");
}

/// A ring subscriber takes every message offered and never returns one:
/// evicted past the stall limit, its messages come back to the publisher.
#[test]
fn a_ring_subscriber_holding_its_messages_is_evicted() {
    let (out, stdout, stderr) = beside_a_ring_attacker("ring-hold");
    assert!(!out.status.success());
    honest_got_everything(&stdout, "pubsub-subscriber#1");
    assert!(
        stderr.contains("red-team-ring-hold#2 was evicted: held a message of topic `numbers` for longer than the stall limit"),
        "{stderr}"
    );
}
