//! The runner's `--record*` and `--replay*` options (part of the `shm-host`
//! binary): topics recorded to MCAP files, a recording replayed in place
//! of a publisher.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shm_host::command::Status;
use shm_host::record::{
    Pace, RecordOptions, RecordSchema, Recorder, Recording, ReplayOptions, ReplayStats,
};
use shm_host::topology::{Role, Topology};
use shm_host::{ShmHost, TopicPattern};
use wasmtime::error::Context;
use wasmtime::{bail, Result};

use crate::PubsubArgs;

/// One `--record TOPIC=FILE`, with the schema.
pub struct Spec {
    topic: String,
    path: PathBuf,
    schema: RecordSchema,
}

/// The `--record`s, checked: each names a topic of the topology, a file of
/// its own, and the schema loads.
pub fn specs(args: &PubsubArgs) -> Result<Vec<Spec>> {
    if args.record.is_empty() {
        return Ok(Vec::new());
    }
    let (Some(wit), Some(ty)) = (&args.record_wit, &args.record_type) else {
        bail!("--record needs --record-wit PATH and --record-type TYPE: the schema written into the recording (flat-wit's convention)");
    };
    let schema = RecordSchema::from_wit(wit, ty, &args.record_width)?;
    let mut specs: Vec<Spec> = Vec::new();
    for spec in &args.record {
        let (topic, file) = spec
            .split_once('=')
            .filter(|(t, f)| !t.is_empty() && !f.is_empty())
            .with_context(|| format!("--record {spec}: expected TOPIC=FILE"))?;
        if !args.topic.is_empty()
            && !args
                .topic
                .iter()
                .any(|p| TopicPattern::new(p.clone()).matches(topic))
        {
            bail!(
                "--record {spec}: `{topic}` is not a topic of this topology (--topic {})",
                args.topic.join(", --topic ")
            );
        }
        if specs.iter().any(|s| s.topic == topic) {
            bail!("--record {spec}: topic `{topic}` is recorded twice");
        }
        if specs.iter().any(|s| s.path == Path::new(file)) {
            bail!("--record {spec}: {file} is written twice");
        }
        specs.push(Spec {
            topic: topic.to_string(),
            path: PathBuf::from(file),
            schema: schema.clone(),
        });
    }
    Ok(specs)
}

/// Starts the recorders (before the topology runs: its publishers wait for
/// every subscription, the recorders' included).
pub fn start(host: &ShmHost, specs: Vec<Spec>, lossless: bool) -> Result<Vec<Recorder>> {
    let options = RecordOptions::default().lossless(lossless);
    specs
        .into_iter()
        .map(|s| {
            Recorder::start_with(host, &s.topic, &s.path, s.schema, options)
                .with_context(|| format!("--record {}={}", s.topic, s.path.display()))
        })
        .collect()
}

/// A recording to replay, checked.
pub struct Replay {
    recording: Recording,
    options: ReplayOptions,
}

/// Opens and checks `--replay FILE` and its `--replay-topic`s.
pub fn replay(path: &Path, args: &PubsubArgs) -> Result<Replay> {
    let recording = Recording::open(path)?;
    let pace = if args.replay_as_fast_as_possible {
        Pace::AsFastAsPossible
    } else if args.replay_rate.is_finite() && args.replay_rate > 0.0 {
        Pace::Rate(args.replay_rate)
    } else {
        bail!(
            "--replay-rate {}: expected a positive number",
            args.replay_rate
        );
    };
    let options = args
        .replay_topic
        .iter()
        .fold(ReplayOptions::default(), |o, t| o.topic(t.clone()))
        .pace(pace)
        .timeout(crate::seconds(args.host.stall_limit).max(std::time::Duration::from_secs(1)));
    recording.check_options(&options)?;
    Ok(Replay { recording, options })
}

impl Replay {
    /// Adds the replay to `topology` as its publisher (it starts once the
    /// subscribers subscribed); its statistics land in the slot returned.
    pub fn add_to(self, topology: &mut Topology) -> Arc<Mutex<Option<ReplayStats>>> {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        topology.native(Role::Publisher, "replay", move |host| {
            match self.recording.replay(host, &self.options) {
                Ok(stats) => {
                    *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
                    Status::Succeeded
                }
                Err(e) => Status::Error(e.to_string()),
            }
        });
        slot
    }
}
