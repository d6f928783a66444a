//! The wasmi interpreter as a second, independent oracle: the original
//! module, its `compute` called like the wasmtime backend calls it
//! (isowasm/backends/wasmtime_backend.py), output bytes from
//! `env.output_byte`, traps named as the machine names them.
//!
//! Fuel: wasmi charges one unit per instruction of its register-machine
//! code (which has no more instructions than the wasm it was translated
//! from, each lowered to at least one machine step), and eager compilation
//! so translation costs nothing; with fuel = the machine's step budget,
//! running out is `budget-exhausted` — inconclusive, never a different
//! value. (memory.grow is charged per 64 bytes of new memory: a program
//! that grows by many pages within a small budget can run out early, which
//! again only reads as inconclusive.)
//!
//! The wasmi release line is 1.x: 2.0.0 miscompiles
//! `local.get 0 i32.eqz drop ... local.get 4 i32.eqz select` (the select
//! picks the wrong operand), found by this oracle on its first campaign
//! against wasmtime and the machines (see ports/fuzz-native/README.md).

use std::sync::OnceLock;

use wasmi::{CompilationMode, Config, Engine, Linker, Module, Store, TrapCode, Val};

pub struct OracleRun {
    /// "halted", "trapped" or "budget-exhausted".
    pub status: &'static str,
    /// The machine's trap name (spec/machine.yaml), or "wasmi:<Code>" for a
    /// trap the machine has no name for.
    pub trap: Option<String>,
    pub output: Vec<u8>,
    /// Fuel consumed (about the wasm operators executed).
    pub fuel_used: u64,
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut c = Config::default();
        c.consume_fuel(true);
        c.compilation_mode(CompilationMode::Eager);
        // The machine's call depth is 4096 frames; wasmi's own limit may be
        // lower, which reads as a resource trap (call_depth), inconclusive.
        c.set_max_recursion_depth(8192);
        Engine::new(&c)
    })
}

fn trap_name(code: TrapCode) -> String {
    match code {
        TrapCode::UnreachableCodeReached => "unreachable".into(),
        TrapCode::MemoryOutOfBounds => "oob".into(),
        TrapCode::IntegerDivisionByZero => "div_zero".into(),
        TrapCode::IntegerOverflow => "int_overflow".into(),
        TrapCode::StackOverflow => "call_depth".into(),
        other => format!("wasmi:{other:?}"),
    }
}

fn outcome(e: &wasmi::Error) -> (&'static str, Option<String>) {
    match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => ("budget-exhausted", None),
        Some(code) => ("trapped", Some(trap_name(code))),
        None => ("trapped", Some(format!("wasmi:{}", e.to_string().lines().next().unwrap_or("error")))),
    }
}

/// Run `compute` of `wasm` with at most `fuel` units. `input` (without its
/// NUL) is written, NUL-terminated, at `addr` of the memory exported as
/// `memory_export` when given; `compute` gets `addr` when it takes a
/// parameter. Err: the module does not load or link (not a verdict).
pub fn wasmi_run(wasm: &[u8], input: &[u8], addr: u32, memory_export: Option<&str>, fuel: u64)
                 -> Result<OracleRun, String> {
    let engine = engine();
    let module = Module::new(engine, wasm).map_err(|e| format!("wasmi: cannot load the module: {e}"))?;
    let mut store: Store<Vec<u8>> = Store::new(engine, Vec::new());
    store.set_fuel(fuel).map_err(|e| e.to_string())?;
    let mut linker: Linker<Vec<u8>> = Linker::new(engine);
    linker
        .func_wrap("env", "output_byte", |mut caller: wasmi::Caller<'_, Vec<u8>>, v: i32| {
            caller.data_mut().push(v as u8);
        })
        .map_err(|e| e.to_string())?;
    let used = |store: &Store<Vec<u8>>| fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(i) => i,
        Err(e) => {
            // a data segment outside memory, or a start function that traps
            if e.as_trap_code().is_some() {
                let (status, trap) = outcome(&e);
                let fuel_used = used(&store);
                return Ok(OracleRun { status, trap, output: store.into_data(), fuel_used });
            }
            return Err(format!("wasmi: cannot instantiate: {e}"));
        }
    };
    let compute = instance
        .get_func(&store, "compute")
        .ok_or("wasmi: no exported function compute")?;
    if let Some(name) = memory_export {
        let mem = instance.get_memory(&store, name).ok_or("wasmi: no exported memory")?;
        let mut bytes = input.to_vec();
        bytes.push(0);
        if mem.write(&mut store, addr as usize, &bytes).is_err() {
            return Err("wasmi: the input does not fit in memory".into());
        }
    }
    let ty = compute.ty(&store);
    let args: Vec<Val> = if ty.params().len() == 1 { vec![Val::I32(addr as i32)] } else { vec![] };
    let mut results: Vec<Val> = ty.results().iter().map(|_| Val::I32(0)).collect();
    let r = compute.call(&mut store, &args, &mut results);
    let fuel_used = used(&store);
    let (status, trap) = match r {
        Ok(()) => ("halted", None),
        Err(e) => outcome(&e),
    };
    Ok(OracleRun { status, trap, output: store.into_data(), fuel_used })
}
