//! Build tool for C guest components (`scripts/build-c-guests`):
//!
//! - `c-guest-tool bindings WIT-DIR WORLD OUT-DIR` writes the C bindings of
//!   `WORLD` (`<world>.h`, `<world>.c` and `<world>_component_type.o`), as
//!   `wit-bindgen c WIT-DIR --world WORLD --out-dir OUT-DIR` of
//!   wit-bindgen-cli 0.63 does: the same generator crate, default options.
//! - `c-guest-tool component CORE.wasm OUT.wasm` makes a component of a
//!   wasm32-wasi (preview 1) core command module, as `wasm-tools component
//!   new CORE.wasm --adapt wasi_snapshot_preview1=<command adapter>` does.
//!   The module carries its world in a `component-type` custom section (the
//!   `_component_type.o` above, linked in: wasm-ld keeps custom sections);
//!   the command adapter serves wasi-libc's preview 1 imports with WASI 0.2
//!   and turns the module's `_start` into the `wasi:cli/run` export that
//!   `shm-host` runs.

use std::path::Path;
use std::process::ExitCode;

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER;
use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::Files;
use wit_component::ComponentEncoder;

fn bindings(wit: &str, world: &str, out_dir: &str) -> Result<(), String> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .map_err(|e| format!("reading {wit}: {e:?}"))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| format!("selecting world {world}: {e:?}"))?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(|e| format!("generating C bindings of {world}: {e:?}"))?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("creating {out_dir}: {e}"))?;
    for (name, contents) in files.iter() {
        let path = Path::new(out_dir).join(name);
        // Unchanged files keep their time stamp: nothing is recompiled.
        if std::fs::read(&path).is_ok_and(|old| old == contents) {
            continue;
        }
        std::fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn component(input: &str, output: &str) -> Result<(), String> {
    let module = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| {
            e.adapter(
                "wasi_snapshot_preview1",
                WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            )
        })
        .and_then(|e| e.encode())
        .map_err(|e| format!("making a component of {input}: {e:?}"))?;
    std::fs::write(output, component).map_err(|e| format!("writing {output}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["bindings", wit, world, out_dir] => bindings(wit, world, out_dir),
        ["component", input, output] => component(input, output),
        _ => Err(
            "usage: c-guest-tool bindings WIT-DIR WORLD OUT-DIR\n       \
                  c-guest-tool component CORE.wasm OUT.wasm"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c-guest-tool: {e}");
            ExitCode::FAILURE
        }
    }
}
