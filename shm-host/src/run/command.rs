//! Running a command component in a store of its own, and how it ended.
//!
//! A command is a `wasi:cli` component (`wasi:cli/run`), or one that exports
//! a root `run: async func() -> result<_, string>` (it may block on
//! component-model streams, which a synchronous `wasi:cli/run` may not).

use std::fmt;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::link::GuestState;
use crate::Stopped;

/// How a command's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It returned success (or exited with status 0).
    Succeeded,
    /// It returned an error, or exited with a non-zero status (the status;
    /// 1 for an error result), with its message when it gave one.
    Failed(i32, Option<String>),
    /// The host stopped it: evicted, or past its CPU budget.
    Stopped(Stopped),
    /// It trapped, or could not be instantiated or run (the error chain).
    Error(String),
}

/// Host code's result as a status (a native member of a topology): an
/// error is [`Status::Error`] with its message.
impl<E: fmt::Display> From<Result<(), E>> for Status {
    fn from(r: Result<(), E>) -> Status {
        match r {
            Ok(()) => Status::Succeeded,
            Err(e) => Status::Error(e.to_string()),
        }
    }
}

impl Status {
    /// Did it succeed?
    pub fn succeeded(&self) -> bool {
        *self == Status::Succeeded
    }

    /// The status a process running it alone would exit with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Status::Succeeded => 0,
            Status::Failed(code, _) => (*code).clamp(1, 255) as u8,
            Status::Stopped(_) | Status::Error(_) => 1,
        }
    }

    fn from_result(result: wasmtime::Result<Result<(), ()>>) -> Status {
        match result {
            Ok(Ok(())) => Status::Succeeded,
            Ok(Err(())) => Status::Failed(1, None),
            Err(e) => Status::from_error(e),
        }
    }

    fn from_error(e: wasmtime::Error) -> Status {
        if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return match exit.0 {
                0 => Status::Succeeded,
                code => Status::Failed(code, None),
            };
        }
        match e.downcast_ref::<Stopped>() {
            Some(stopped) => Status::Stopped(stopped.clone()),
            None => Status::Error(format!("{e:#}")),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Succeeded => f.write_str("succeeded"),
            Status::Failed(code, None) => write!(f, "failed (exit status {code})"),
            Status::Failed(code, Some(m)) => write!(f, "failed (exit status {code}): {m}"),
            Status::Stopped(s) => write!(f, "stopped: {s}"),
            Status::Error(e) => write!(f, "{e}"),
        }
    }
}

/// What the runner accepts, for the error when a component is not that.
pub fn cannot_run(name: &str, alternative: &str) -> String {
    format!(
        "{name} cannot be run: it must be a wasi:cli command component{alternative} whose imports are WASI p2, {}, {}",
        crate::EXCHANGE,
        crate::PUB_SUB,
    )
}

/// Runs `component` as a command in a store of its own for `state`
/// (synchronous WASI: `linker` from [`crate::link::linker`]). `unlinked` is added
/// to the message when instantiation fails (what else was linked).
pub fn run(
    engine: &Engine,
    linker: &Linker<GuestState>,
    component: &Component,
    state: GuestState,
    unlinked: &str,
) -> Status {
    let name = state.shm.name().to_string();
    let mut store = crate::new_store(engine, state);
    let command = match wasmtime_wasi::p2::bindings::sync::Command::instantiate(
        &mut store, component, linker,
    ) {
        Ok(c) => c,
        Err(e) => return Status::Error(format!("{}{unlinked}: {e:#}", cannot_run(&name, ""))),
    };
    Status::from_result(command.wasi_cli_run().call_run(&mut store))
}

/// Like [`run`], but called asynchronously on a runtime of this thread's
/// own (`linker` from [`crate::link::linker_async`]), so that the guest may wait on
/// component-model streams (e.g. a subscription's `get-stream`). A
/// component exporting `run: async func() -> result<_, string>` is called
/// through it.
pub fn run_async(
    engine: &Engine,
    linker: &Linker<GuestState>,
    component: &Component,
    state: GuestState,
) -> Status {
    let name = state.shm.name().to_string();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Status::Error(format!("starting an async runtime: {e}")),
    };
    let async_run = component
        .component_type()
        .exports(engine)
        .any(|(n, e)| n == "run" && matches!(e.ty, ComponentItem::ComponentFunc(_)));
    let cannot = |e: wasmtime::Error| {
        let why = cannot_run(
            &name,
            " (or export `run: async func() -> result<_, string>`)",
        );
        Status::Error(format!("{why}: {e:#}"))
    };
    runtime.block_on(async {
        let mut store = crate::new_store(engine, state);
        if async_run {
            let instance = match linker.instantiate_async(&mut store, component).await {
                Ok(i) => i,
                Err(e) => return cannot(e),
            };
            let run = match instance.get_typed_func::<(), (Result<(), String>,)>(&mut store, "run")
            {
                Ok(r) => r,
                Err(e) => return cannot(e),
            };
            return match run.call_async(&mut store, ()).await {
                Ok((Ok(()),)) => Status::Succeeded,
                Ok((Err(message),)) => Status::Failed(1, Some(message)),
                Err(e) => Status::from_error(e),
            };
        }
        let command = match wasmtime_wasi::p2::bindings::Command::instantiate_async(
            &mut store, component, linker,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return cannot(e),
        };
        Status::from_result(command.wasi_cli_run().call_run(&mut store).await)
    })
}
