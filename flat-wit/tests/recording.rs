//! MCAP recordings written by the convention of `flat_wit::mcap` (with the
//! mcap crate's writer and messages built with the generated types): read
//! back as JSON, converted to JSON channels that validate against their
//! schemas, and the errors of truncated files and mismatched WIT; and the
//! `flat-wit dump` command line on messages and recordings.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::gen::*;
use common::*;
use flat_layout::to_vec;
use flat_wit::dynamic;
use flat_wit::mcap::{self as rec, ReadOptions, RecordingError};
use flat_wit::Width;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_flat-wit");

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recording");
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir.join(name)
}

fn frame(n: u8) -> Frame {
    Frame {
        width: 640 + u32::from(n),
        height: 480,
        tags: vec!["front".into(), format!("n{n}")],
        pixels: (0..n).collect(),
    }
}

/// (topic, type, width, messages)
fn topics() -> Vec<(&'static str, &'static str, Width, Vec<Vec<u8>>)> {
    vec![
        (
            "/camera/frames",
            "frame",
            Width::U32,
            (0..3)
                .map(|n| to_vec::<u32, _>(&frame(n)).expect("fits"))
                .collect(),
        ),
        (
            "/shapes",
            "shapes",
            Width::U8,
            vec![
                to_vec::<u8, Shapes>(&vec![
                    Shape::Circle(9),
                    Shape::Label(Label { text: "ok".into() }),
                    Shape::Empty,
                ])
                .expect("fits"),
                to_vec::<u8, Shapes>(&vec![]).expect("fits"),
            ],
        ),
        (
            "/color",
            "color",
            Width::U16,
            vec![to_vec::<u16, _>(&Color::Green).expect("fits")],
        ),
    ]
}

/// A recording of `topics()` following the convention, with the schema data
/// `wit` (the tests' WIT package by default).
fn record(wit: &str) -> Vec<u8> {
    let mut w = mcap::Writer::new(Cursor::new(Vec::new())).expect("writer");
    let mut seq = 0u32;
    for (topic, ty, width, messages) in topics() {
        let schema = w
            .add_schema(
                &rec::schema_name(None, ty),
                &rec::schema_encoding(width),
                wit.as_bytes(),
            )
            .expect("schema");
        let channel = w
            .add_channel(schema, topic, rec::MESSAGE_ENCODING, &BTreeMap::new())
            .expect("channel");
        for data in messages {
            seq += 1;
            w.write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: channel,
                    sequence: seq,
                    log_time: 1_000 * u64::from(seq),
                    publish_time: 1_000 * u64::from(seq) - 1,
                },
                &data,
            )
            .expect("write");
        }
    }
    w.finish().expect("finish");
    w.into_inner().into_inner()
}

fn wit() -> String {
    rec::wit_text(Path::new(WIT_DIR)).expect("WIT text")
}

/// What each message should decode to: (topic, sequence, JSON).
fn expected() -> Vec<(String, u32, Value)> {
    let model = model();
    let mut out = Vec::new();
    let mut seq = 0;
    for (topic, ty, width, messages) in topics() {
        for data in messages {
            seq += 1;
            let v = dynamic::decode(&model, ty, width, &data).expect("valid");
            out.push((topic.to_string(), seq, v));
        }
    }
    out
}

#[test]
fn a_recording_decodes_with_the_schema_inside_it() {
    let bytes = record(&wit());
    assert!(rec::is_mcap(&bytes));
    let got: Vec<_> = rec::decode_recording(&bytes, &ReadOptions::default())
        .expect("opens")
        .collect::<Result<_, _>>()
        .expect("every message decodes");
    let want = expected();
    assert_eq!(got.len(), want.len());
    for (g, (topic, seq, value)) in got.iter().zip(&want) {
        assert_eq!((&g.topic, g.sequence, &g.value), (topic, *seq, value));
        assert_eq!(g.log_time, 1_000 * u64::from(*seq));
        assert_eq!(g.publish_time, g.log_time - 1);
    }
    assert_eq!(
        got[0].value,
        json!({ "width": 640, "height": 480, "tags": ["front", "n0"], "pixels": [] })
    );
    assert_eq!(got[5].value, json!("green"));
    // The same WIT given explicitly matches.
    let given = ReadOptions { wit: Some(wit()) };
    let again: Vec<_> = rec::decode_recording(&bytes, &given)
        .expect("opens")
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(again, got);
}

#[test]
fn a_single_file_package_and_an_interface_qualified_name_work_too() {
    let text = std::fs::read_to_string(Path::new(WIT_DIR).join("messages.wit")).expect("read");
    let model = rec::model_from_wit_text(
        &text,
        &flat_wit::Selection {
            interface: Some("messages".into()),
            types: vec![],
        },
    )
    .expect("loads");
    assert!(model.get("kitchen-sink").is_some());
    assert_eq!(
        rec::parse_schema_name(&rec::schema_name(Some("messages"), "frame")),
        (Some("messages"), "frame")
    );
    assert_eq!(rec::parse_schema_encoding("flat-wit/u16"), Some(Width::U16));
    assert_eq!(rec::parse_schema_encoding("flat-wit/u64"), None);
}

fn json_messages(path: &Path) -> Vec<(String, u32, Value, Value)> {
    let bytes = std::fs::read(path).expect("read converted");
    mcap::MessageStream::new(&bytes)
        .expect("a valid MCAP file")
        .map(|m| {
            let m = m.expect("message");
            assert_eq!(m.channel.message_encoding, "json");
            let schema = m.channel.schema.as_ref().expect("a schema");
            assert_eq!(schema.encoding, "jsonschema");
            let schema: Value = serde_json::from_slice(&schema.data).expect("schema is JSON");
            let value: Value = serde_json::from_slice(&m.data).expect("message is JSON");
            (m.channel.topic.clone(), m.sequence, value, schema)
        })
        .collect()
}

#[test]
fn conversion_writes_json_messages_that_fit_their_schemas() {
    let input = record(&wit());
    let out = tmp("converted.mcap");
    let done = rec::convert_to_json(&input, &out, &ReadOptions::default()).expect("converts");
    assert_eq!((done.channels, done.messages), (3, 6));
    let got = json_messages(&out);
    let want = expected();
    assert_eq!(got.len(), want.len());
    for ((topic, seq, value, schema), (t, s, v)) in got.iter().zip(&want) {
        assert_eq!((topic, seq), (t, s));
        assert_eq!(schema["type"], "object", "Foxglove wants object messages");
        // Records as they are; other types wrapped in {"value": ...}.
        let expected = if topic == "/camera/frames" {
            v.clone()
        } else {
            json!({ "value": v })
        };
        assert_eq!(value, &expected);
        let validator = jsonschema::draft202012::new(schema).expect("schema compiles");
        if let Err(e) = validator.validate(value) {
            panic!("{topic}: {value} does not fit {schema:#}: {e}");
        }
        assert!(!validator.is_valid(&json!({ "value": 1, "other": 2 })));
    }
    // A converted file reads back through decode_recording (JSON channels).
    let bytes = std::fs::read(&out).expect("read");
    let again: Vec<Value> = rec::decode_recording(&bytes, &ReadOptions::default())
        .expect("opens")
        .map(|m| m.expect("json").value)
        .collect();
    assert_eq!(again, got.iter().map(|g| g.2.clone()).collect::<Vec<_>>());
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Only this test's outputs: the other tests convert in parallel.
        .filter(|n| {
            n.ends_with(".tmp") && (n.starts_with(".kept.") || n.starts_with(".truncated-"))
        })
        .collect()
}

#[test]
fn truncated_recordings_are_errors_and_leave_no_output() {
    let full = record(&wit());
    for cut in [full.len() - 1, full.len() / 2, 20, 9, 3] {
        let bytes = &full[..cut];
        let errors: Vec<RecordingError> =
            match rec::decode_recording(bytes, &ReadOptions::default()) {
                Err(e) => vec![e],
                Ok(it) => it.filter_map(Result::err).collect(),
            };
        assert!(!errors.is_empty(), "cut at {cut}: no error");
        let text = errors.last().expect("an error").to_string();
        assert!(text.contains("truncated or corrupted"), "{text}");

        let out = tmp(&format!("truncated-{cut}.mcap"));
        let _ = std::fs::remove_file(&out);
        let err = rec::convert_to_json(bytes, &out, &ReadOptions::default())
            .expect_err("a truncated input does not convert");
        assert!(err.to_string().contains("MCAP"), "{err}");
        assert!(!out.exists(), "no half-written {}", out.display());
    }
    // An existing output stays as it was.
    let out = tmp("kept.mcap");
    std::fs::write(&out, b"previous").expect("write");
    assert!(rec::convert_to_json(&full[..full.len() / 2], &out, &ReadOptions::default()).is_err());
    assert_eq!(std::fs::read(&out).expect("read"), b"previous");
    assert_eq!(leftovers(out.parent().expect("dir")), Vec::<String>::new());
}

#[test]
fn a_corrupted_message_names_its_channel_and_byte_position() {
    let mut w = mcap::Writer::new(Cursor::new(Vec::new())).expect("writer");
    let schema = w
        .add_schema(
            "strings",
            &rec::schema_encoding(Width::U8),
            wit().as_bytes(),
        )
        .expect("schema");
    let channel = w
        .add_channel(schema, "/words", rec::MESSAGE_ENCODING, &BTreeMap::new())
        .expect("channel");
    // FORMAT.md example 5: two strings aliasing one byte.
    let header = |seq| mcap::records::MessageHeader {
        channel_id: channel,
        sequence: seq,
        log_time: 5,
        publish_time: 5,
    };
    w.write_to_known_channel(&header(1), &[2, 2, 4, 1, 2, 1, b'a'])
        .expect("write");
    w.write_to_known_channel(
        &header(2),
        &to_vec::<u8, Strings>(&vec!["x".into()]).expect("fits"),
    )
    .expect("write");
    w.finish().expect("finish");
    let bytes = w.into_inner().into_inner();
    let items: Vec<_> = rec::decode_recording(&bytes, &ReadOptions::default())
        .expect("opens")
        .collect();
    let err = items[0].as_ref().expect_err("aliased strings");
    let text = err.to_string();
    assert!(
        text.contains("/words") && text.contains("message 1") && text.contains("header at byte 4"),
        "{text}"
    );
    assert_eq!(items[1].as_ref().expect("valid").value, json!(["x"]));
    // Conversion stops at it.
    let out = tmp("corrupt.mcap");
    let _ = std::fs::remove_file(&out);
    assert!(rec::convert_to_json(&bytes, &out, &ReadOptions::default()).is_err());
    assert!(!out.exists());
}

#[test]
fn a_wit_that_does_not_match_the_recording_is_an_error() {
    let bytes = record(&wit());
    let changed = wit().replace("height: u32,", "height: u16,");
    assert_ne!(changed, wit());
    let given = ReadOptions { wit: Some(changed) };
    let err = rec::decode_recording(&bytes, &given)
        .expect("opens")
        .find_map(Result::err)
        .expect("a mismatch");
    assert!(matches!(err, RecordingError::WitMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/camera/frames") && text.contains("frame") && text.contains("height: u16"),
        "{text}"
    );
    // Documentation may differ; a missing type may not.
    let redocumented = wit().replace("/// A camera frame.", "/// Frames, renamed docs.");
    let ok = ReadOptions {
        wit: Some(redocumented),
    };
    assert!(rec::decode_recording(&bytes, &ok)
        .expect("opens")
        .all(|m| m.is_ok()));
    let other = ReadOptions {
        wit: Some("package x:y;\ninterface i { record other { a: u8 } }\n".into()),
    };
    let err = rec::decode_recording(&bytes, &other)
        .expect("opens")
        .find_map(Result::err)
        .expect("a mismatch");
    assert!(err.to_string().contains("no type `frame`"), "{err}");
}

// ---------------------------------------------------------------- the CLI

fn run(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use std::io::Write as _;
    let mut cmd = Command::new(EXE);
    cmd.args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run flat-wit");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dump_prints_a_message_as_json_and_rejects_invalid_bytes() {
    let bytes = to_vec::<u16, _>(&frame(2)).expect("fits");
    let file = tmp("frame.bin");
    std::fs::write(&file, &bytes).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let (ok, out, err) = run(
        &[
            "dump", "--wit", WIT_DIR, "--type", "frame", "--width", "u16", path,
        ],
        None,
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v,
        json!({ "width": 642, "height": 480, "tags": ["front", "n2"], "pixels": [0, 1] })
    );
    assert!(out.contains("\n  \"width\""), "pretty-printed: {out}");

    // From standard input, one byte short: the validator's message and position.
    let (ok, _, err) = run(
        &[
            "dump", "--wit", WIT_DIR, "--type", "frame", "--width", "u16",
        ],
        Some(&bytes[..bytes.len() - 1]),
    );
    assert!(!ok);
    assert!(
        err.contains("invalid message") && err.contains("header at byte"),
        "{err}"
    );
    // The wrong width is caught too (here: the root is longer than the buffer).
    let (ok, _, err) = run(
        &[
            "dump",
            "--wit",
            WIT_DIR,
            "--type",
            "kitchen-sink",
            "--width",
            "u32",
        ],
        Some(&bytes),
    );
    assert!(!ok && err.contains("byte"), "{err}");
    // Missing arguments say what to give.
    let (ok, _, err) = run(&["dump", "--wit", WIT_DIR, path], None);
    assert!(!ok && err.contains("--type NAME --width"), "{err}");
    let (ok, _, err) = run(
        &[
            "dump",
            "--wit",
            WIT_DIR,
            "--interface",
            "nope",
            "--type",
            "frame",
            "--width",
            "u8",
            path,
        ],
        None,
    );
    assert!(!ok && err.contains("no interface `nope`"), "{err}");
    // --schema prints the JSON Schema.
    let (ok, out, _) = run(
        &["dump", "--wit", WIT_DIR, "--type", "frame", "--schema"],
        None,
    );
    assert!(ok);
    let schema: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        schema,
        dynamic::json_schema(&model(), "frame").expect("schema")
    );
}

#[test]
fn dump_prints_a_recording_and_converts_it() {
    let file = tmp("cli.mcap");
    std::fs::write(&file, record(&wit())).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let (ok, out, err) = run(&["dump", path], None);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let want = expected();
    assert_eq!(lines.len(), want.len());
    for (line, (topic, seq, value)) in lines.iter().zip(&want) {
        assert_eq!(
            line,
            &json!({
                "topic": topic,
                "sequence": seq,
                "log_time": 1_000 * u64::from(*seq),
                "publish_time": 1_000 * u64::from(*seq) - 1,
                "value": value,
            })
        );
    }
    // With a matching --wit; with a mismatching one: an error.
    let (ok, _, err) = run(&["dump", path, "--wit", WIT_DIR], None);
    assert!(ok, "{err}");
    let other = tmp("other.wit");
    std::fs::write(&other, wit().replace("height: u32,", "height: s32,")).expect("write");
    let (ok, _, err) = run(
        &["dump", path, "--wit", other.to_str().expect("path")],
        None,
    );
    assert!(!ok && err.contains("differs from the WIT given"), "{err}");

    let converted = tmp("cli-converted.mcap");
    let _ = std::fs::remove_file(&converted);
    let (ok, _, err) = run(
        &["dump", path, "--to-json", converted.to_str().expect("path")],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(json_messages(&converted).len(), want.len());

    // A truncated recording: non-zero, a clear message.
    let bytes = std::fs::read(&file).expect("read");
    let (ok, _, err) = run(&["dump"], Some(&bytes[..bytes.len() - 10]));
    assert!(!ok && err.contains("truncated or corrupted"), "{err}");
}
