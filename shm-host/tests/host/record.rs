//! Recording topics to MCAP and replaying them (`shm_host::record`, the
//! runner's `--record`, `--replay`, `--duration` and its clean stop on
//! SIGTERM): the complex and the frames examples recorded, replayed into
//! fresh subscribers byte for byte, damaged files and unknown topics
//! refused.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shm_host::pubsub::native::{NativeSubscriber, Next};
use shm_host::record::{
    Pace, RecordOptions, RecordSchema, Recorder, Recording, ReplayError, ReplayOptions,
};
use shm_host::topology::{Role, Topology};
use shm_host::ShmHost;

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = common::root()
        .join("target/tmp/record-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn complex_wit() -> PathBuf {
    common::root().join("examples/complex/consumer-c/wit")
}

fn frames_wit() -> PathBuf {
    common::root().join("examples/frames/wit")
}

/// The messages of `topic` in the recording at `path`, raw, in file order,
/// with their sequence numbers.
fn recorded(path: &Path, topic: &str) -> Vec<(u32, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    mcap::MessageStream::new(&bytes)
        .unwrap()
        .map(|m| m.unwrap())
        .filter(|m| m.channel.topic == topic)
        .map(|m| (m.sequence, m.data.into_owned()))
        .collect()
}

/// Runs `publisher` (with `args`) and `subscriber` on `topic` while a
/// recorder records it to `path`; returns the recorder's statistics.
fn record(
    publisher: &str,
    args: &[&str],
    subscriber: &str,
    topic: &str,
    path: &Path,
    schema: RecordSchema,
) -> shm_host::record::RecordStats {
    let host = ShmHost::default();
    // Lossless: every message is recorded (the publisher waits for the
    // recorder), whatever the machine's load.
    let options = RecordOptions::default().lossless(true);
    let recorder = Recorder::start_with(&host, topic, path, schema, options).unwrap();
    let mut topology = Topology::new(&host).unwrap();
    let (p, s) = (
        topology.load(common::guest(publisher)).unwrap(),
        topology.load(common::guest(subscriber)).unwrap(),
    );
    topology
        .topic(topic)
        .publisher(publisher, p, args)
        .subscriber(subscriber, s, &[]);
    let report = topology.run();
    assert!(report.succeeded(), "{:?}", report.ended);
    // The topic closed with its publisher: the recording ended by itself.
    let stats = recorder.finish().unwrap();
    assert!(path.exists() && !path.with_extension("mcap.tmp").exists());
    stats
}

/// Replays `path` into a fresh subscriber component and a native
/// subscriber; returns what the native one got, in order, and the
/// component's status.
fn replay(path: &Path, topic: &str, subscriber: &str) -> Vec<Vec<u8>> {
    let host = ShmHost::default();
    let recording = Recording::open(path).unwrap();
    let mut check = NativeSubscriber::new(&host, "check", topic).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut bytes = Vec::new();
        loop {
            match check
                .next_into(&mut bytes, Duration::from_secs(120))
                .unwrap()
            {
                Next::Message => got.push(bytes.clone()),
                Next::Ended => return got,
                Next::TimedOut => panic!("no message within 120 s"),
            }
        }
    });
    let mut topology = Topology::new(&host).unwrap();
    let s = topology.load(common::guest(subscriber)).unwrap();
    topology.topic(topic).subscriber(subscriber, s, &[]);
    let options = ReplayOptions::default().pace(Pace::AsFastAsPossible);
    topology.native(Role::Publisher, "replay", move |host| {
        recording.replay(host, &options).map(drop).into()
    });
    let report = topology.run();
    assert!(report.succeeded(), "{:?}", report.ended);
    reader.join().unwrap()
}

#[test]
fn the_complex_topic_is_recorded_and_replayed_byte_for_byte() {
    let dir = scratch("complex");
    let path = dir.join("complex.mcap");
    let schema = RecordSchema::from_wit(&complex_wit(), "messages.lines", "u32").unwrap();
    let stats = record(
        "complex-publisher",
        &[],
        "complex-consumer",
        "complex",
        &path,
        schema,
    );
    assert_eq!(
        (stats.messages, stats.dropped_queue, stats.dropped_writer),
        (10, 0, 0)
    );
    let messages = recorded(&path, "complex");
    assert_eq!(messages.len(), 10);
    assert_eq!(
        messages.iter().map(|m| m.0).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<u32>>(),
        "sequence numbers count from 1"
    );
    // flat-wit reads it under the convention: the schema inside the file.
    let bytes = std::fs::read(&path).unwrap();
    let decoded: Vec<_> =
        flat_wit::mcap::decode_recording(&bytes, &flat_wit::mcap::ReadOptions::default())
            .unwrap()
            .map(|m| m.unwrap())
            .collect();
    assert_eq!(decoded.len(), 10);
    assert_eq!(decoded[0].value, serde_json::json!(["hello", "zero"]));
    assert_eq!(decoded[9].value, serde_json::json!(["hello", "nine"]));
    assert!(decoded
        .iter()
        .all(|m| m.publish_time > 0 && m.log_time >= m.publish_time));
    // Replayed into fresh subscribers: the same bytes in the same order.
    let got = replay(&path, "complex", "complex-consumer");
    let want: Vec<Vec<u8>> = messages.into_iter().map(|m| m.1).collect();
    assert_eq!(got, want);
}

#[test]
fn the_frames_topic_is_recorded_and_replayed_byte_for_byte() {
    let dir = scratch("frames");
    let path = dir.join("frames.mcap");
    let schema = RecordSchema::from_wit(&frames_wit(), "frame", "u32").unwrap();
    let stats = record(
        "frames-publisher",
        &["6", "320", "200"],
        "frames-subscriber",
        "frames",
        &path,
        schema,
    );
    assert_eq!(stats.messages, 6);
    let messages = recorded(&path, "frames");
    assert_eq!(messages.len(), 6);
    assert!(messages.iter().all(|m| m.1.len() > 320 * 200));
    let bytes = std::fs::read(&path).unwrap();
    let first = flat_wit::mcap::decode_recording(&bytes, &Default::default())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first.value["width"], 320);
    assert_eq!(first.value["height"], 200);
    let got = replay(&path, "frames", "frames-subscriber");
    let want: Vec<Vec<u8>> = messages.into_iter().map(|m| m.1).collect();
    assert_eq!(got, want);
    // The runner replays it too: the subscriber component checks every
    // pixel of every frame.
    let out = common::shm_host(&[
        "pubsub",
        "--replay",
        path.to_str().unwrap(),
        "--replay-rate",
        "10",
        "--subscriber",
        "@frames-subscriber",
    ]);
    let stdout = common::succeeded(&out);
    assert!(
        stdout.contains("received 6 frames, every pixel and tag checked in place"),
        "{stdout}"
    );
    assert!(stdout.contains("replay frames: 6 messages"), "{stdout}");
}

/// A recording of the complex example made with the runner.
fn record_with_the_runner(dir: &Path) -> PathBuf {
    let path = dir.join("complex.mcap");
    let spec = format!("complex={}", path.display());
    let out = common::shm_host(&[
        "pubsub",
        "--record",
        &spec,
        "--record-wit",
        complex_wit().to_str().unwrap(),
        "--record-type",
        "lines",
        "--publisher",
        "@complex-publisher",
        "--subscriber",
        "@complex-consumer",
    ]);
    let stdout = common::succeeded(&out);
    assert!(
        stdout.contains(&format!(
            "record complex -> {}: 10 messages (330 bytes)  dropped 0 (queue 0, writer 0)",
            path.display()
        )),
        "{stdout}"
    );
    path
}

#[test]
fn truncated_or_corrupted_recordings_are_refused_and_nothing_is_replayed() {
    let dir = scratch("damaged");
    let good = record_with_the_runner(&dir);
    let bytes = std::fs::read(&good).unwrap();
    assert!(Recording::open(&good).is_ok());
    let truncated = dir.join("truncated.mcap");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    // A byte of the message `["hello", "five"]` changed: the chunk's CRC no
    // longer matches.
    let corrupted = dir.join("corrupted.mcap");
    let mut damaged = bytes.clone();
    let at = damaged
        .windows(4)
        .position(|w| w == b"five")
        .expect("the recording holds message five");
    damaged[at] ^= 0x20;
    std::fs::write(&corrupted, &damaged).unwrap();
    for path in [&truncated, &corrupted] {
        let error = Recording::open(path).err().expect("refused");
        assert!(matches!(error, ReplayError::Mcap { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("truncated or corrupted") && message.contains("record it again"),
            "{message}"
        );
        // The runner refuses it before anything runs: the subscriber never
        // starts, nothing is published.
        let out = common::shm_host(&[
            "pubsub",
            "--replay",
            path.to_str().unwrap(),
            "--subscriber",
            "@complex-consumer",
        ]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("truncated or corrupted"), "{stderr}");
        assert!(!stdout.contains("complex-consumer"), "{stdout}");
    }
}

#[test]
fn a_recording_whose_schema_differs_from_the_given_wit_is_refused() {
    let dir = scratch("mismatch");
    let path = record_with_the_runner(&dir);
    let bytes = std::fs::read(&path).unwrap();
    // The same type name, defined otherwise.
    let wit = "package zero-copy:complex;\ninterface messages {\n    type lines = list<u32>;\n}\n";
    let options = flat_wit::mcap::ReadOptions {
        wit: Some(wit.to_string()),
    };
    let first = flat_wit::mcap::decode_recording(&bytes, &options)
        .unwrap()
        .next()
        .unwrap();
    let error = first.expect_err("a mismatch");
    assert!(
        matches!(error, flat_wit::mcap::RecordingError::WitMismatch { .. }),
        "{error}"
    );
    // The WIT it was recorded with decodes it.
    let options = flat_wit::mcap::ReadOptions {
        wit: Some(flat_wit::mcap::wit_text(&complex_wit()).unwrap()),
    };
    let all: Result<Vec<_>, _> = flat_wit::mcap::decode_recording(&bytes, &options)
        .unwrap()
        .collect();
    assert_eq!(all.unwrap().len(), 10);
}

#[test]
fn unknown_topics_and_types_are_refused() {
    let dir = scratch("unknown");
    let path = record_with_the_runner(&dir);
    let recording = Recording::open(&path).unwrap();
    assert_eq!(recording.topics().len(), 1);
    assert_eq!(recording.topics()[0].topic, "complex");
    assert_eq!(recording.topics()[0].schema.as_deref(), Some("lines"));
    let error = recording
        .check_options(&ReplayOptions::default().topic("nope"))
        .expect_err("refused");
    assert!(
        matches!(&error, ReplayError::UnknownTopic { topic, .. } if topic == "nope"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("its topics: `complex`"),
        "{error}"
    );
    let out = common::shm_host(&[
        "pubsub",
        "--replay",
        path.to_str().unwrap(),
        "--replay-topic",
        "nope",
        "--subscriber",
        "@complex-consumer",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has no topic `nope`"), "{stderr}");
    // Recording a topic outside the topology's, or a type the WIT lacks.
    let other = dir.join("other.mcap");
    let spec = format!("nope={}", other.display());
    let wit = complex_wit();
    for (extra, expected) in [
        (
            &["--topic", "complex"][..],
            "is not a topic of this topology",
        ),
        (&[][..], "no type `nope`"),
    ] {
        let ty = if extra.is_empty() { "nope" } else { "lines" };
        let mut args = vec![
            "pubsub",
            "--record",
            &spec,
            "--record-wit",
            wit.to_str().unwrap(),
            "--record-type",
            ty,
            "--publisher",
            "@complex-publisher",
            "--subscriber",
            "@complex-consumer",
        ];
        args.extend_from_slice(extra);
        let out = common::shm_host(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!other.exists() && !dir.join("other.mcap.tmp").exists());
    }
}

/// Spawns the runner with `args`; returns the child and a channel of its
/// stdout lines.
fn spawn(args: &[String]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shm-host"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits at most `timeout` for `child` to exit; kills it (and fails) if it
/// does not.
fn exit_within(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("shm-host did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut s = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

/// A publisher that does not end by itself: a million messages, one every
/// 10 ms (almost three hours).
fn endless(path: &Path) -> Vec<String> {
    let arg = |s: &str| s.to_string();
    vec![
        arg("pubsub"),
        arg("--stats"),
        arg("--record"),
        format!("complex={}", path.display()),
        arg("--record-wit"),
        complex_wit().display().to_string(),
        arg("--record-type"),
        arg("lines"),
        arg("--publisher"),
        common::guest("complex-publisher").display().to_string(),
        arg("--publisher-arg"),
        arg("--messages"),
        arg("--publisher-arg"),
        arg("1000000"),
        arg("--publisher-arg"),
        arg("--wait-ms"),
        arg("--publisher-arg"),
        arg("10"),
        arg("--subscriber"),
        common::guest("complex-consumer").display().to_string(),
    ]
}

/// Checks that the recording at `path` is complete and readable, with at
/// least `at_least` messages, numbered in order.
fn check_finalized(path: &Path, at_least: usize) -> usize {
    assert!(path.exists(), "{} is missing", path.display());
    assert!(!path.with_extension("mcap.tmp").exists());
    let recording = Recording::open(path).unwrap();
    let messages = recorded(path, "complex");
    assert!(
        messages.len() >= at_least,
        "{} < {at_least}",
        messages.len()
    );
    assert_eq!(recording.topics()[0].messages as usize, messages.len());
    for (i, (sequence, _)) in messages.iter().enumerate() {
        assert_eq!(*sequence as usize, i + 1);
    }
    messages.len()
}

#[test]
fn sigterm_finalizes_the_recording_and_prints_statistics() {
    let dir = scratch("sigterm");
    let path = dir.join("complex.mcap");
    let (mut child, lines) = spawn(&endless(&path));
    // Running: the consumer printed three messages.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with("complex-consumer#1: [\"hello\"") => seen += 1,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("the consumer printed {seen} messages within 120 s");
            }
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "it ended by itself");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = exit_within(&mut child, Duration::from_secs(60));
    let stderr = stderr_of(&mut child);
    // The reader ends at the pipe's end.
    let stdout: Vec<String> = lines.iter().collect();
    let stdout = stdout.join("\n");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(stdout.contains("shm-host statistics:"), "{stdout}");
    let written = check_finalized(&path, 3);
    assert!(
        stdout.contains(&format!(
            "record complex -> {}: {written} messages",
            path.display()
        )),
        "{stdout}"
    );
}

#[test]
fn duration_ends_a_run_whose_publisher_never_ends() {
    let dir = scratch("duration");
    let path = dir.join("complex.mcap");
    let mut args = endless(&path);
    args.extend(["--duration".to_string(), "3".to_string()]);
    let started = Instant::now();
    let (mut child, lines) = spawn(&args);
    let status = exit_within(&mut child, Duration::from_secs(120));
    let stderr = stderr_of(&mut child);
    let stdout: Vec<String> = lines.iter().collect();
    let stdout = stdout.join("\n");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(stderr.contains("--duration of 3 s reached"), "{stderr}");
    assert!(stdout.contains("shm-host statistics:"), "{stdout}");
    // Finalized and readable; how many messages came before the end depends
    // on how fast a loaded machine started the components.
    check_finalized(&path, 0);
}
