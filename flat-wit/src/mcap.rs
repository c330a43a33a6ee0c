//! MCAP recordings of flat messages: the recording convention, reading a
//! recording back as JSON, and converting it to an MCAP file of JSON
//! messages (Foxglove's `json` / `jsonschema` encodings).
//!
//! # The recording convention
//!
//! A recorder writes one MCAP channel per topic:
//!
//! * channel `topic`: the topic's name; `message_encoding`:
//!   [`MESSAGE_ENCODING`] (`"flat-layout"`); each message's `data` is one
//!   flat message, exactly the bytes a reader would validate (trailing bytes
//!   are allowed, as FORMAT.md §1 allows them);
//! * the channel's schema record: `encoding` = [`schema_encoding`]`(width)`,
//!   i.e. `"flat-wit/u8"`, `"flat-wit/u16"` or `"flat-wit/u32"` (the index
//!   width of every message on the channel); `name` = [`schema_name`]: the
//!   WIT type name (`frame`), or `interface.type` (`frames.frame`) where the
//!   type must be looked up in one interface of the package; `data` =
//!   [`wit_text`] of the WIT package: the UTF-8 text of the `.wit` file, or
//!   for a package directory every `*.wit` file of it (sorted by name), each
//!   preceded by a line [`FILE_MARKER`]` <file name>` (a WIT comment).
//!   Packages with a `deps/` directory cannot be embedded yet.
//!
//! Channels with the same type at the same width may share one schema
//! record. Times and sequence numbers are the recorder's: `log_time` when
//! it took the message, `publish_time` when it was published (nanoseconds,
//! the MCAP convention), `sequence` per channel.
//!
//! # Reading and converting
//!
//! [`decode_recording`] reads each message with the model rebuilt from the
//! schema in the file (or from a WIT given by the user, which must define
//! the same type as the file's: [`RecordingError::WitMismatch`] otherwise)
//! and decodes it with [`dynamic::Decoder`]. [`convert_to_json`] writes an
//! MCAP file whose channels have `message_encoding` `"json"` and a schema of
//! `encoding` `"jsonschema"` ([`dynamic::json_schema`]); messages whose JSON
//! is not an object (any root type but a record) are wrapped as
//! `{"value": ...}`, since Foxglove wants every JSON message to be an
//! object. Channels already in JSON are read (and copied) as they are.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::dynamic::{self, DecodeError, Decoder};
use crate::model::{Def, Model, Selection, Ty, Width};
use crate::Error;

/// The channel `message_encoding` of flat messages.
pub const MESSAGE_ENCODING: &str = "flat-layout";
/// The schema `encoding` of flat messages is this followed by the index
/// width: `flat-wit/u32` ([`schema_encoding`]).
pub const SCHEMA_ENCODING_PREFIX: &str = "flat-wit/";
/// In a schema's `data`, the line that starts each file of a multi-file WIT
/// package, followed by a space and the file name.
pub const FILE_MARKER: &str = "// flat-wit-file:";
/// The `message_encoding` of converted channels.
pub const JSON_MESSAGE_ENCODING: &str = "json";
/// The schema `encoding` of converted channels.
pub const JSON_SCHEMA_ENCODING: &str = "jsonschema";
/// The first bytes of every MCAP file.
pub const MAGIC: &[u8] = mcap::MAGIC;

/// The schema `encoding` of messages at `width`: `flat-wit/u8`, `flat-wit/u16`
/// or `flat-wit/u32`.
pub fn schema_encoding(width: Width) -> String {
    format!("{SCHEMA_ENCODING_PREFIX}{}", width.name())
}

/// The width named by a schema `encoding`, if it is one of [`schema_encoding`]'s.
pub fn parse_schema_encoding(encoding: &str) -> Option<Width> {
    encoding
        .strip_prefix(SCHEMA_ENCODING_PREFIX)
        .and_then(Width::parse)
}

/// The schema `name` of the WIT type `ty`: `ty`, or `interface.ty` if the
/// type is to be looked up in that interface only.
pub fn schema_name(interface: Option<&str>, ty: &str) -> String {
    match interface {
        Some(i) => format!("{i}.{ty}"),
        None => ty.to_string(),
    }
}

/// Splits a schema `name` into (interface, type) (WIT names have no dots).
pub fn parse_schema_name(name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once('.') {
        Some((i, t)) => (Some(i), t),
        None => (None, name),
    }
}

/// Whether `bytes` start like an MCAP file.
pub fn is_mcap(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The schema `data` of the WIT package at `path` (a `.wit` file: its text;
/// a directory: its `*.wit` files, sorted by name, each after a
/// [`FILE_MARKER`] line).
pub fn wit_text(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_dir() {
        return std::fs::read_to_string(path).map_err(io);
    }
    if path.join("deps").exists() {
        return Err(Error::Load {
            path: path.to_path_buf(),
            message: "a package with a deps/ directory cannot be embedded in a recording; \
                      merge the types it uses into the package"
                .into(),
        });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "wit") {
            files.push(p);
        }
    }
    files.sort();
    let mut text = String::new();
    for p in files {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let body = std::fs::read_to_string(&p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        text.push_str(&format!("{FILE_MARKER} {}\n", name.unwrap_or_default()));
        text.push_str(&body);
        if !body.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(text)
}

/// Rebuilds the model from a schema's `data` ([`wit_text`]'s format).
pub fn model_from_wit_text(text: &str, selection: &Selection) -> Result<Model, Error> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    let mut preamble = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix(FILE_MARKER) {
            if let Some(f) = current.take() {
                files.push(f);
            }
            current = Some((name.trim().to_string(), String::new()));
        } else {
            match &mut current {
                Some((_, body)) => body.push_str(line),
                None => preamble.push_str(line),
            }
        }
    }
    files.extend(current);
    if !preamble.trim().is_empty() {
        files.insert(0, ("schema.wit".to_string(), preamble));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Model::parse_files(&refs, selection)
}

/// Why a recording could not be read, decoded or converted.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Reading or writing a file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The MCAP reader or writer failed: a truncated or corrupted file.
    #[error("not a readable MCAP file ({what}): {error}; the file may be truncated or corrupted (an interrupted recording lacks its end: re-record, or recover it with `mcap recover`)")]
    Mcap {
        /// What was being done.
        what: &'static str,
        /// The mcap crate's error.
        error: mcap::McapError,
    },
    /// A flat channel has no schema record.
    #[error("channel `{topic}` has message encoding `{MESSAGE_ENCODING}` but no schema; the recorder must write a schema record (see the recording convention in flat_wit::mcap)")]
    NoSchema {
        /// The channel's topic.
        topic: String,
    },
    /// A flat channel's schema encoding names no index width.
    #[error("channel `{topic}` has schema encoding `{encoding}`; expected flat-wit/u8, flat-wit/u16 or flat-wit/u32")]
    SchemaEncoding {
        /// The channel's topic.
        topic: String,
        /// The encoding found.
        encoding: String,
    },
    /// A channel's message encoding is neither flat-layout nor json.
    #[error("channel `{topic}` has message encoding `{encoding}`; flat-wit reads `{MESSAGE_ENCODING}` and `json` channels only")]
    UnsupportedEncoding {
        /// The channel's topic.
        topic: String,
        /// The encoding found.
        encoding: String,
    },
    /// The WIT in a schema (or given by the user) does not load.
    #[error("the WIT of channel `{topic}` (schema `{schema}`) does not load: {error}")]
    Wit {
        /// The channel's topic.
        topic: String,
        /// The schema name.
        schema: String,
        /// Why (boxed: WIT errors are large).
        error: Box<Error>,
    },
    /// The WIT given by the user defines the recorded type differently from
    /// the schema in the file.
    #[error("channel `{topic}` was recorded with a WIT whose type `{ty}` differs from the WIT given ({detail}); give the WIT the recording was made with, or none to use the schema inside the file")]
    WitMismatch {
        /// The channel's topic.
        topic: String,
        /// The schema's type.
        ty: String,
        /// What differs.
        detail: String,
    },
    /// The schema's type cannot be decoded (missing in the WIT, too deep).
    #[error("channel `{topic}`: {error}")]
    Type {
        /// The channel's topic.
        topic: String,
        /// Why.
        error: DecodeError,
    },
    /// A message is not a valid flat message of its channel's type.
    #[error("channel `{topic}`, message {sequence} (log time {log_time}): {error}")]
    Message {
        /// The channel's topic.
        topic: String,
        /// The message's sequence number.
        sequence: u32,
        /// The message's log time.
        log_time: u64,
        /// The validator's error.
        error: DecodeError,
    },
    /// A message of a JSON channel is not JSON.
    #[error("channel `{topic}`, message {sequence}: not JSON: {error}")]
    Json {
        /// The channel's topic.
        topic: String,
        /// The message's sequence number.
        sequence: u32,
        /// The parser's error.
        error: serde_json::Error,
    },
}

/// Options of [`decode_recording`] and [`convert_to_json`].
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Decode with this WIT ([`wit_text`]'s format) instead of the schema in
    /// the file; each recorded type must be the same in both (names of
    /// types, fields and cases, and their types; documentation may differ).
    /// A schema with empty `data` is then taken on trust.
    pub wit: Option<String>,
}

/// One decoded message of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// The channel's topic.
    pub topic: String,
    /// The MCAP channel id.
    pub channel_id: u16,
    /// The message's sequence number.
    pub sequence: u32,
    /// When it was logged (nanoseconds).
    pub log_time: u64,
    /// When it was published (nanoseconds).
    pub publish_time: u64,
    /// The message as JSON ([`dynamic`]'s conventions).
    pub value: Value,
}

impl Recorded {
    /// The line `flat-wit dump` prints: `{"topic", "sequence", "log_time",
    /// "publish_time", "value"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "topic": self.topic,
            "sequence": self.sequence,
            "log_time": self.log_time,
            "publish_time": self.publish_time,
            "value": self.value,
        })
    }
}

/// How the messages of one channel are read.
#[derive(Debug)]
enum Plan {
    Flat {
        model: Model,
        ty: String,
        width: Width,
    },
    Json,
}

/// Works out (and caches) each channel's [`Plan`].
#[derive(Default)]
struct Planner {
    options: ReadOptions,
    plans: HashMap<u16, Rc<Plan>>,
}

impl Planner {
    fn plan(&mut self, channel: &mcap::Channel<'_>) -> Result<Rc<Plan>, RecordingError> {
        if let Some(p) = self.plans.get(&channel.id) {
            return Ok(p.clone());
        }
        let plan = Rc::new(self.make(channel)?);
        self.plans.insert(channel.id, plan.clone());
        Ok(plan)
    }

    fn make(&self, channel: &mcap::Channel<'_>) -> Result<Plan, RecordingError> {
        let topic = || channel.topic.clone();
        match channel.message_encoding.as_str() {
            MESSAGE_ENCODING => {}
            JSON_MESSAGE_ENCODING => return Ok(Plan::Json),
            other => {
                return Err(RecordingError::UnsupportedEncoding {
                    topic: topic(),
                    encoding: other.to_string(),
                })
            }
        }
        let schema = channel
            .schema
            .as_ref()
            .ok_or_else(|| RecordingError::NoSchema { topic: topic() })?;
        let width = parse_schema_encoding(&schema.encoding).ok_or_else(|| {
            RecordingError::SchemaEncoding {
                topic: topic(),
                encoding: schema.encoding.clone(),
            }
        })?;
        let (interface, ty) = parse_schema_name(&schema.name);
        let selection = Selection {
            interface: interface.map(str::to_string),
            types: Vec::new(),
        };
        let load = |text: &str| {
            model_from_wit_text(text, &selection).map_err(|source| RecordingError::Wit {
                topic: topic(),
                schema: schema.name.clone(),
                error: Box::new(source),
            })
        };
        let recorded = || -> Result<Model, RecordingError> {
            let text = std::str::from_utf8(&schema.data).map_err(|e| RecordingError::Wit {
                topic: topic(),
                schema: schema.name.clone(),
                error: Box::new(Error::Load {
                    path: "the schema data".into(),
                    message: format!("not UTF-8 text: {e}"),
                }),
            })?;
            load(text)
        };
        let model = match &self.options.wit {
            None => recorded()?,
            Some(given) => {
                let given = load(given)?;
                if !schema.data.is_empty() {
                    let recorded = recorded()?;
                    if let Err(detail) = same_type(&recorded, &given, ty) {
                        return Err(RecordingError::WitMismatch {
                            topic: topic(),
                            ty: ty.to_string(),
                            detail,
                        });
                    }
                }
                given
            }
        };
        // Checks that the type exists and is decodable.
        Decoder::new(&model, ty, width).map_err(|source| RecordingError::Type {
            topic: topic(),
            error: source,
        })?;
        Ok(Plan::Flat {
            model,
            ty: ty.to_string(),
            width,
        })
    }
}

/// Whether `ty` and every named type it uses are defined alike in `a` (the
/// recording's) and `b` (the given WIT): `Err` says the first difference.
fn same_type(a: &Model, b: &Model, ty: &str) -> Result<(), String> {
    let mut todo = vec![ty.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let (da, db) = match (a.get(&name), b.get(&name)) {
            (Some(x), Some(y)) => (&x.def, &y.def),
            (Some(_), None) => return Err(format!("the given WIT has no type `{name}`")),
            (None, _) => return Err(format!("the recording's WIT has no type `{name}`")),
        };
        if da != db {
            return Err(format!(
                "type `{name}` is {} in the recording, {} in the given WIT",
                describe(da),
                describe(db)
            ));
        }
        let mut push = |t: &Ty| named_in(t, &mut todo);
        match da {
            Def::Record(fields) => fields.iter().for_each(|f| push(&f.ty)),
            Def::Variant(cases) => cases
                .iter()
                .filter_map(|c| c.payload.as_ref())
                .for_each(push),
            Def::Enum(_) => {}
            Def::Alias(t) => push(t),
        }
    }
    Ok(())
}

fn named_in(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Prim(_) | Ty::String => {}
        Ty::List(t) | Ty::Option(t) => named_in(t, out),
        Ty::Tuple(ts) => ts.iter().for_each(|t| named_in(t, out)),
        Ty::Named(n) => out.push(n.clone()),
    }
}

fn describe(def: &Def) -> String {
    match def {
        Def::Record(fields) => format!(
            "record {{ {} }}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name, ty_text(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Def::Variant(cases) => format!(
            "variant {{ {} }}",
            cases
                .iter()
                .map(|c| match &c.payload {
                    Some(p) => format!("{}({})", c.name, ty_text(p)),
                    None => c.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Def::Enum(names) => format!("enum {{ {} }}", names.join(", ")),
        Def::Alias(t) => format!("type = {}", ty_text(t)),
    }
}

fn ty_text(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.wit_name().to_string(),
        Ty::String => "string".into(),
        Ty::List(t) => format!("list<{}>", ty_text(t)),
        Ty::Option(t) => format!("option<{}>", ty_text(t)),
        Ty::Tuple(ts) => format!(
            "tuple<{}>",
            ts.iter().map(ty_text).collect::<Vec<_>>().join(", ")
        ),
        Ty::Named(n) => n.clone(),
    }
}

/// The messages of a recording, decoded one by one ([`decode_recording`]).
pub struct Messages<'a> {
    stream: mcap::MessageStream<'a>,
    planner: Planner,
    done: bool,
}

/// Reads the MCAP file `mcap` (its whole bytes) and decodes every message
/// in file order: flat channels with the schema inside the file (or
/// `options.wit`), JSON channels as they are. The iterator yields an error
/// for a message that does not decode and goes on; an error of the file
/// itself (truncated, corrupted) is its last item.
pub fn decode_recording<'a>(
    mcap: &'a [u8],
    options: &ReadOptions,
) -> Result<Messages<'a>, RecordingError> {
    let stream = mcap::MessageStream::new(mcap).map_err(|source| RecordingError::Mcap {
        what: "opening",
        error: source,
    })?;
    Ok(Messages {
        stream,
        planner: Planner {
            options: options.clone(),
            plans: HashMap::new(),
        },
        done: false,
    })
}

impl Iterator for Messages<'_> {
    type Item = Result<Recorded, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let message = match self.stream.next()? {
            Ok(m) => m,
            Err(source) => {
                self.done = true;
                return Some(Err(RecordingError::Mcap {
                    what: "reading messages",
                    error: source,
                }));
            }
        };
        Some(decode_message(&mut self.planner, &message))
    }
}

fn decode_message(
    planner: &mut Planner,
    message: &mcap::Message<'_>,
) -> Result<Recorded, RecordingError> {
    let channel = &message.channel;
    let plan = planner.plan(channel)?;
    let value = match &*plan {
        Plan::Json => {
            serde_json::from_slice(&message.data).map_err(|source| RecordingError::Json {
                topic: channel.topic.clone(),
                sequence: message.sequence,
                error: source,
            })?
        }
        Plan::Flat { model, ty, width } => Decoder::new(model, ty, *width)
            .and_then(|d| d.decode(&message.data))
            .map_err(|source| RecordingError::Message {
                topic: channel.topic.clone(),
                sequence: message.sequence,
                log_time: message.log_time,
                error: source,
            })?,
    };
    Ok(Recorded {
        topic: channel.topic.clone(),
        channel_id: channel.id,
        sequence: message.sequence,
        log_time: message.log_time,
        publish_time: message.publish_time,
        value,
    })
}

/// Whether the JSON of `ty` is always an object (a record, through aliases).
fn is_object(model: &Model, ty: &str) -> bool {
    let mut t = Ty::Named(ty.to_string());
    for _ in 0..=dynamic::MAX_DEPTH {
        match &t {
            Ty::Named(n) => match model.get(n).map(|x| &x.def) {
                Some(Def::Record(_)) => return true,
                Some(Def::Alias(target)) => t = target.clone(),
                _ => return false,
            },
            _ => return false,
        }
    }
    false
}

/// The JSON Schema of converted messages of `ty`: [`dynamic::json_schema`],
/// wrapped as `{"value": ...}` unless the type is a record.
pub fn converted_schema(model: &Model, ty: &str) -> Result<Value, DecodeError> {
    let schema = dynamic::json_schema(model, ty)?;
    if is_object(model, ty) {
        return Ok(schema);
    }
    let Value::Object(mut inner) = schema else {
        return Ok(schema);
    };
    let dialect = inner.remove("$schema");
    let defs = inner.remove("$defs");
    let mut top = Map::new();
    if let Some(d) = dialect {
        top.insert("$schema".into(), d);
    }
    top.insert("title".into(), ty.into());
    top.insert("type".into(), "object".into());
    top.insert("properties".into(), json!({ "value": inner }));
    top.insert("required".into(), json!(["value"]));
    top.insert("additionalProperties".into(), false.into());
    if let Some(d) = defs {
        top.insert("$defs".into(), d);
    }
    Ok(Value::Object(top))
}

/// What [`convert_to_json`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Converted {
    /// Channels written.
    pub channels: usize,
    /// Messages written.
    pub messages: usize,
}

/// Converts the MCAP file `mcap` (its bytes) to an MCAP file at `out` whose
/// channels have message encoding `json` and schemas of encoding
/// `jsonschema` (see the [module documentation](self)). Same topics,
/// channel metadata, times and sequence numbers.
///
/// The file is written to a temporary file in `out`'s directory and renamed
/// to `out` only when complete: on any error (a message that does not
/// decode, a truncated input) `out` is left as it was and the temporary
/// file is removed.
pub fn convert_to_json(
    mcap: &[u8],
    out: &Path,
    options: &ReadOptions,
) -> Result<Converted, RecordingError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.mcap".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordingError::Io {
            path,
            error: source,
        }
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let result = write_json(mcap, BufWriter::new(file), options, &tmp);
    match result {
        Ok(converted) => match std::fs::rename(&tmp, out) {
            Ok(()) => Ok(converted),
            Err(source) => {
                let _ = std::fs::remove_file(&tmp);
                Err(RecordingError::Io {
                    path: out.to_path_buf(),
                    error: source,
                })
            }
        },
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_json(
    input: &[u8],
    file: BufWriter<std::fs::File>,
    options: &ReadOptions,
    tmp: &Path,
) -> Result<Converted, RecordingError> {
    let write_err = |source| RecordingError::Mcap {
        what: "writing the converted file",
        error: source,
    };
    // Uncompressed chunks (with their CRCs): any MCAP reader, also one
    // without zstd or lz4 (scripts/plot-recording), reads the result.
    let mut writer = mcap::WriteOptions::new()
        .compression(None)
        .library(concat!("flat-wit ", env!("CARGO_PKG_VERSION")))
        .create(file)
        .map_err(write_err)?;
    let stream = mcap::MessageStream::new(input).map_err(|source| RecordingError::Mcap {
        what: "opening",
        error: source,
    })?;
    let mut planner = Planner {
        options: options.clone(),
        plans: HashMap::new(),
    };
    // Input channel id -> output channel id; (schema name, id) of schemas written.
    let mut channels: HashMap<u16, u16> = HashMap::new();
    let mut schemas: HashMap<(String, Vec<u8>), u16> = HashMap::new();
    let mut converted = Converted::default();
    for message in stream {
        let message = message.map_err(|source| RecordingError::Mcap {
            what: "reading messages",
            error: source,
        })?;
        let channel = &message.channel;
        let plan = planner.plan(channel)?;
        let recorded = decode_message(&mut planner, &message)?;
        let id = match channels.get(&channel.id) {
            Some(&id) => id,
            None => {
                let (schema_name, schema_data): (String, Vec<u8>) = match &*plan {
                    Plan::Flat { model, ty, .. } => {
                        let s =
                            converted_schema(model, ty).map_err(|source| RecordingError::Type {
                                topic: channel.topic.clone(),
                                error: source,
                            })?;
                        (ty.clone(), s.to_string().into_bytes())
                    }
                    Plan::Json => match &channel.schema {
                        Some(s) if s.encoding == JSON_SCHEMA_ENCODING => {
                            (s.name.clone(), s.data.to_vec())
                        }
                        _ => (String::new(), Vec::new()),
                    },
                };
                let schema_id = if schema_data.is_empty() {
                    0
                } else {
                    let key = (schema_name.clone(), schema_data.clone());
                    match schemas.get(&key) {
                        Some(&id) => id,
                        None => {
                            let id = writer
                                .add_schema(&schema_name, JSON_SCHEMA_ENCODING, &schema_data)
                                .map_err(write_err)?;
                            schemas.insert(key, id);
                            id
                        }
                    }
                };
                let metadata: BTreeMap<String, String> = channel.metadata.clone();
                let id = writer
                    .add_channel(schema_id, &channel.topic, JSON_MESSAGE_ENCODING, &metadata)
                    .map_err(write_err)?;
                channels.insert(channel.id, id);
                converted.channels += 1;
                id
            }
        };
        let value = match &*plan {
            Plan::Flat { model, ty, .. } if !is_object(model, ty) => {
                json!({ "value": recorded.value })
            }
            _ => recorded.value,
        };
        let data = serde_json::to_vec(&value).map_err(|source| RecordingError::Json {
            topic: channel.topic.clone(),
            sequence: message.sequence,
            error: source,
        })?;
        writer
            .write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: id,
                    sequence: message.sequence,
                    log_time: message.log_time,
                    publish_time: message.publish_time,
                },
                &data,
            )
            .map_err(write_err)?;
        converted.messages += 1;
    }
    writer.finish().map_err(write_err)?;
    let mut file = writer.into_inner();
    file.flush().map_err(|source| RecordingError::Io {
        path: tmp.to_path_buf(),
        error: source,
    })?;
    let file = file.into_inner().map_err(|e| RecordingError::Io {
        path: tmp.to_path_buf(),
        error: e.into_error(),
    })?;
    file.sync_all().map_err(|source| RecordingError::Io {
        path: tmp.to_path_buf(),
        error: source,
    })?;
    Ok(converted)
}
