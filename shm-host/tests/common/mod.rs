//! Shared test support: builds the guest components once, and drives the
//! probe component through dynamic calls.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use shm_host::link::{self, GuestState};
use shm_host::{Grants, ShmConfig, ShmHost};
use wasmtime::component::{Component, Func, Instance, Linker, ResourceAny, Val};
use wasmtime::{Engine, Store};

use wasmtime_wasi::WasiCtxBuilder;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory holding the guest components, built on first use with the
/// project's own script (which adds the wasm32-wasip2 target if missing).
pub fn guests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SHM_GUESTS_DIR") {
            return PathBuf::from(dir);
        }
        let status = Command::new("bash")
            .arg(root().join("scripts/build-guests"))
            .status()
            .expect("running scripts/build-guests");
        assert!(status.success(), "scripts/build-guests failed");
        root().join("target/guests/wasm32-wasip2/release")
    })
}

/// The path of guest component `name` (e.g. `shm_probe`).
pub fn guest(name: &str) -> PathBuf {
    let p = guests_dir().join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-guests",
        p.display()
    );
    p
}

/// Runs the `shm-host` binary with `args`; `@name` stands for the built
/// guest component `name`.
pub fn shm_host(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('@') {
            Some(component) => guest(component).to_str().unwrap().to_string(),
            None => a.to_string(),
        })
        .collect();
    Command::new(env!("CARGO_BIN_EXE_shm-host"))
        .args(&args)
        .output()
        .expect("running shm-host")
}

/// An engine and the compiled probe, shared by the tests of one binary.
pub struct World {
    pub host: ShmHost,
    pub engine: Engine,
    pub probe: Component,
    pub linker: Linker<GuestState>,
}

impl World {
    pub fn new(config: ShmConfig) -> World {
        let host = ShmHost::new(config);
        let engine = host.engine().unwrap();
        let probe = link::load_component(&engine, &guest("shm_probe")).unwrap();
        let linker = link::linker(&engine).unwrap();
        World {
            host,
            engine,
            probe,
            linker,
        }
    }

    /// The shared world with default limits.
    pub fn shared() -> &'static World {
        static W: OnceLock<World> = OnceLock::new();
        W.get_or_init(|| World::new(ShmConfig::default()))
    }

    /// A probe that may publish and subscribe to every topic.
    pub fn probe(&self, name: &str) -> Probe {
        self.probe_with(name, Grants::all())
    }

    /// A probe with the topic authority `grants`.
    pub fn probe_with(&self, name: &str, grants: Grants) -> Probe {
        let state = GuestState::new(&self.host, name, WasiCtxBuilder::new(), grants);
        let mut store = shm_host::new_store(&self.engine, state);
        let instance = self.linker.instantiate(&mut store, &self.probe).unwrap();
        let iface = instance
            .get_export_index(&mut store, None, "zero-copy:examples/probe@0.1.0")
            .expect("probe interface");
        let mut funcs = HashMap::new();
        for name in [
            "alloc",
            "donate",
            "create",
            "create-local",
            "clone-block",
            "partition",
            "attach",
            "detach",
            "drop-block",
            "size",
            "minimum-size",
            "optimum-size",
            "give",
            "take",
            "handle-of",
            "attach-raw",
            "write",
            "read",
            "fill",
            "checksum",
            "publisher-new",
            "publisher-allocate",
            "publisher-publish",
            "publisher-subscription",
            "publisher-drop",
            "subscribe",
            "subscriber-next",
            "subscriber-dropped",
            "subscriber-drop",
        ] {
            let idx = instance
                .get_export_index(&mut store, Some(&iface), name)
                .unwrap();
            funcs.insert(name, instance.get_func(&mut store, idx).unwrap());
        }
        Probe {
            store,
            _instance: instance,
            funcs,
        }
    }
}

/// A probe instance in a store of its own.
pub struct Probe {
    pub store: Store<GuestState>,
    _instance: Instance,
    funcs: HashMap<&'static str, Func>,
}

/// The attach flags as WIT flag names.
/// The runner's statistics line of the component whose name starts with
/// `name`.
pub fn stats_line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(name) && l.contains(" blocks "))
        .unwrap_or_else(|| panic!("no statistics line of {name}:\n{stdout}"))
}

/// The number after `word` in a line of the runner's statistics.
pub fn stat(line: &str, word: &str) -> u64 {
    let mut words = line.split_whitespace();
    words.find(|w| *w == word).expect(line);
    words.next().and_then(|n| n.parse().ok()).expect(line)
}

pub const WRITE: &[&str] = &["write"];
pub const SHARED: &[&str] = &["shared"];
pub const EXCLUSIVE: &[&str] = &[];

fn flags(f: &[&str]) -> Val {
    Val::Flags(f.iter().map(|s| s.to_string()).collect())
}

/// A WIT `error` case name, or the text of a trap.
pub type R<T> = Result<T, String>;

impl Probe {
    /// Calls `name`; a trap becomes `Err`.
    pub fn try_call(&mut self, name: &str, args: &[Val]) -> wasmtime::Result<Option<Val>> {
        let f = self.funcs[name];
        let n = f.ty(&self.store).results().len();
        let mut out = vec![Val::Bool(false); n];
        f.call(&mut self.store, args, &mut out)?;
        Ok(out.into_iter().next())
    }

    fn call(&mut self, name: &str, args: &[Val]) -> Option<Val> {
        self.try_call(name, args)
            .unwrap_or_else(|e| panic!("probe call {name} trapped: {e:?}"))
    }

    fn result(&mut self, name: &str, args: &[Val]) -> R<Option<Val>> {
        match self.call(name, args) {
            Some(Val::Result(Ok(v))) => Ok(v.map(|b| *b)),
            Some(Val::Result(Err(Some(e)))) => match *e {
                Val::Enum(name) => Err(name),
                other => panic!("unexpected error value {other:?}"),
            },
            other => panic!("unexpected result {other:?}"),
        }
    }

    fn u32_result(&mut self, name: &str, args: &[Val]) -> R<u32> {
        self.result(name, args).map(|v| match v {
            Some(Val::U32(x)) => x,
            other => panic!("expected u32, got {other:?}"),
        })
    }

    pub fn alloc(&mut self, len: u32) -> u32 {
        match self.call("alloc", &[Val::U32(len)]) {
            Some(Val::U32(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    pub fn donate(&mut self, address: u32, len: u32) -> R<()> {
        self.result("donate", &[Val::U32(address), Val::U32(len)])
            .map(drop)
    }

    /// Allocates and donates `len` bytes; returns the address.
    pub fn storage(&mut self, len: u32) -> u32 {
        let a = self.alloc(len);
        self.donate(a, len).unwrap();
        a
    }

    pub fn create(&mut self, size: u32) -> R<u32> {
        self.u32_result("create", &[Val::U32(size)])
    }

    pub fn create_local(&mut self, address: u32, len: u32) -> R<u32> {
        self.u32_result("create-local", &[Val::U32(address), Val::U32(len)])
    }

    pub fn clone_block(&mut self, slot: u32) -> R<u32> {
        self.u32_result("clone-block", &[Val::U32(slot)])
    }

    pub fn partition(&mut self, slot: u32, start: u32, size: u32, mode: &[&str]) -> R<u32> {
        self.u32_result(
            "partition",
            &[Val::U32(slot), Val::U32(start), Val::U32(size), flags(mode)],
        )
    }

    fn area(v: Option<Val>) -> (u32, u32) {
        match v {
            Some(Val::Record(fields)) => {
                let get = |n: &str| match fields.iter().find(|(k, _)| k == n) {
                    Some((_, Val::U32(x))) => *x,
                    other => panic!("{other:?}"),
                };
                (get("address"), get("size"))
            }
            other => panic!("expected a memory-area, got {other:?}"),
        }
    }

    /// Attaches; returns (address, size).
    pub fn attach(&mut self, slot: u32, mode: &[&str]) -> R<(u32, u32)> {
        self.result("attach", &[Val::U32(slot), flags(mode)])
            .map(Self::area)
    }

    pub fn detach(&mut self, slot: u32, consumed: u32) -> R<()> {
        self.result("detach", &[Val::U32(slot), Val::U32(consumed)])
            .map(drop)
    }

    pub fn drop_block(&mut self, slot: u32) {
        self.call("drop-block", &[Val::U32(slot)]);
    }

    fn u32_call(&mut self, name: &str, args: &[Val]) -> u32 {
        match self.call(name, args) {
            Some(Val::U32(x)) => x,
            other => panic!("{other:?}"),
        }
    }

    pub fn size(&mut self, slot: u32) -> u32 {
        self.u32_call("size", &[Val::U32(slot)])
    }

    pub fn minimum_size(&mut self, slot: u32) -> u32 {
        self.u32_call("minimum-size", &[Val::U32(slot)])
    }

    pub fn optimum_size(&mut self, count: u32, size: u32) -> u32 {
        self.u32_call("optimum-size", &[Val::U32(count), Val::U32(size)])
    }

    pub fn handle_of(&mut self, slot: u32) -> u32 {
        self.u32_call("handle-of", &[Val::U32(slot)])
    }

    /// Moves a block out of the probe.
    pub fn give(&mut self, slot: u32) -> ResourceAny {
        match self.call("give", &[Val::U32(slot)]) {
            Some(Val::Resource(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    /// Hands the block `r` (owned by this probe's store) to the probe.
    pub fn take(&mut self, r: ResourceAny) -> u32 {
        self.u32_call("take", &[Val::Resource(r)])
    }

    pub fn write(&mut self, address: u32, bytes: &[u8]) -> wasmtime::Result<()> {
        let list = Val::List(bytes.iter().map(|&b| Val::U8(b)).collect());
        self.try_call("write", &[Val::U32(address), list]).map(drop)
    }

    pub fn read(&mut self, address: u32, len: u32) -> Vec<u8> {
        match self.call("read", &[Val::U32(address), Val::U32(len)]) {
            Some(Val::List(xs)) => xs
                .into_iter()
                .map(|v| match v {
                    Val::U8(b) => b,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    pub fn fill(&mut self, address: u32, len: u32, value: u8) -> wasmtime::Result<()> {
        self.try_call("fill", &[Val::U32(address), Val::U32(len), Val::U8(value)])
            .map(drop)
    }

    pub fn checksum(&mut self, address: u32, len: u32) -> u64 {
        match self.call("checksum", &[Val::U32(address), Val::U32(len)]) {
            Some(Val::U64(x)) => x,
            other => panic!("{other:?}"),
        }
    }
}

impl Probe {
    pub fn publisher(&mut self, topic: &str, elements: u32, size: u32) -> R<u32> {
        self.u32_result(
            "publisher-new",
            &[
                Val::String(topic.into()),
                Val::U32(elements),
                Val::U32(size),
            ],
        )
    }

    /// Allocates a pool block: (slot, initialized bytes).
    pub fn allocate(&mut self, publisher: u32) -> R<(u32, u32)> {
        self.result("publisher-allocate", &[Val::U32(publisher)])
            .map(|v| match v {
                Some(Val::Tuple(xs)) => match xs[..] {
                    [Val::U32(a), Val::U32(b)] => (a, b),
                    _ => panic!("{xs:?}"),
                },
                other => panic!("{other:?}"),
            })
    }

    pub fn publish(&mut self, publisher: u32, slot: u32) -> R<()> {
        self.result("publisher-publish", &[Val::U32(publisher), Val::U32(slot)])
            .map(drop)
    }

    pub fn subscription(&mut self, publisher: u32) -> R<u32> {
        self.u32_result("publisher-subscription", &[Val::U32(publisher)])
    }

    pub fn drop_publisher(&mut self, publisher: u32) {
        self.call("publisher-drop", &[Val::U32(publisher)]);
    }

    pub fn subscribe(&mut self, topic: &str) -> R<u32> {
        self.u32_result("subscribe", &[Val::String(topic.into())])
    }

    /// The next message's block slot (`wait`: block until one arrives).
    pub fn next(&mut self, subscriber: u32, wait: bool) -> Option<u32> {
        match self.call("subscriber-next", &[Val::U32(subscriber), Val::Bool(wait)]) {
            Some(Val::Option(None)) => None,
            Some(Val::Option(Some(v))) => match *v {
                Val::U32(x) => Some(x),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    pub fn dropped(&mut self, subscriber: u32) -> u64 {
        match self.call("subscriber-dropped", &[Val::U32(subscriber)]) {
            Some(Val::U64(x)) => x,
            other => panic!("{other:?}"),
        }
    }

    pub fn drop_subscriber(&mut self, subscriber: u32) {
        self.call("subscriber-drop", &[Val::U32(subscriber)]);
    }

    /// Allocates, writes `bytes` at the start, commits them, publishes.
    pub fn publish_bytes(&mut self, publisher: u32, bytes: &[u8]) -> R<()> {
        let (slot, _) = self.allocate(publisher)?;
        let (addr, _) = self.attach(slot, WRITE)?;
        self.write(addr, bytes).unwrap();
        self.detach(slot, bytes.len() as u32)?;
        self.publish(publisher, slot)
    }

    /// Takes the next message and reads its valid bytes.
    pub fn receive(&mut self, subscriber: u32, wait: bool) -> Option<Vec<u8>> {
        let slot = self.next(subscriber, wait)?;
        let (addr, size) = self.attach(slot, SHARED).unwrap();
        let bytes = self.read(addr, size);
        self.detach(slot, 0).unwrap();
        self.drop_block(slot);
        Some(bytes)
    }
}

/// Moves block `slot` from probe `a` to probe `b`; returns its slot in `b`.
pub fn pass(a: &mut Probe, slot: u32, b: &mut Probe) -> u32 {
    let r = a.give(slot);
    let r = link::move_block(r, a.store.as_context_mut(), b.store.as_context_mut()).unwrap();
    b.take(r)
}

use wasmtime::AsContextMut;

/// The stdout of a finished `shm-host` run, after checking that it
/// succeeded (else the test fails showing stdout and stderr).
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
