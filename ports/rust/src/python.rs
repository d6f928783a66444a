//! The Python module `isowasm_rust` (feature `python`, built by maturin).
//!
//! `run` and `run_batch` parse and execute with the GIL released; results
//! are plain dicts with the keys of spec/result.py's RunResult. A malformed
//! program raises `ValueError` with the parser's one-line message.

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::machine::{self, RunOptions, RunOutcome};
use crate::parser::{check_input, parse_program};
use crate::spec::{self, Op, Trap};
use crate::trace::TraceMode;

const SOURCE: &str = "<program>";

fn trace_mode(s: &str) -> PyResult<TraceMode> {
    TraceMode::parse(s)
        .ok_or_else(|| PyValueError::new_err(format!("trace mode {s:?} (expected none, digest or text)")))
}

fn budget(max_steps: Option<i64>) -> PyResult<u64> {
    match max_steps {
        None => Ok(spec::DEFAULT_MAX_STEPS),
        Some(n) if n >= 0 => Ok(n as u64),
        Some(n) => Err(PyValueError::new_err(format!("max_steps is {n}; it must be >= 0"))),
    }
}

/// Parse, check the input, run: everything that happens without the GIL.
fn execute(text: &str, input: Option<&[u8]>, opts: &RunOptions) -> Result<RunOutcome, String> {
    let program = parse_program(text, SOURCE).map_err(|e| e.message)?;
    if let Some(data) = input {
        check_input(data)?;
    }
    Ok(machine::run(&program, input, opts))
}

fn outcome_dict<'py>(py: Python<'py>, r: RunOutcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("status", r.status.name())?;
    d.set_item("trap", r.trap().map(Trap::name))?;
    d.set_item("trap_pc", r.trap_pc())?;
    d.set_item("output", PyBytes::new(py, &r.output))?;
    d.set_item("steps", r.steps)?;
    d.set_item("tokens", r.tokens)?;
    d.set_item("trace", r.trace)?;
    d.set_item("digest", r.digest)?;
    d.set_item("checkpoints", r.checkpoints)?;
    Ok(d)
}

/// Run one program file.
///
/// input: the input bytes, or None for the program file's own input
/// section. max_steps: the step budget (None: the machine's default).
/// trace: "none", "digest" (SHA-256 and checkpoints) or "text" (the
/// canonical trace text too). Returns a dict with the keys status, trap,
/// trap_pc, output, steps, tokens, trace, digest, checkpoints.
#[pyfunction]
#[pyo3(signature = (program_text, input=None, max_steps=None, trace="none", checkpoint_interval=spec::DEFAULT_CHECKPOINT_INTERVAL))]
fn run<'py>(
    py: Python<'py>,
    program_text: &str,
    input: Option<Cow<'_, [u8]>>,
    max_steps: Option<i64>,
    trace: &str,
    checkpoint_interval: u64,
) -> PyResult<Bound<'py, PyDict>> {
    if checkpoint_interval == 0 {
        return Err(PyValueError::new_err("checkpoint_interval must be >= 1"));
    }
    let opts = RunOptions {
        max_steps: budget(max_steps)?,
        trace: trace_mode(trace)?,
        checkpoint_interval,
    };
    let input = input.as_deref();
    let result = py.allow_threads(|| execute(program_text, input, &opts));
    outcome_dict(py, result.map_err(PyValueError::new_err)?)
}

/// Run many programs in one call: `items` is a list of
/// (program_text, input_or_None, max_steps) tuples. Returns a list of
/// result dicts, in order. A malformed item raises ValueError naming its
/// index, before anything runs.
///
/// coverage=True adds to each dict `coverage`: {cell: count} of the
/// machine coverage cells the run reached (layout: `coverage_layout()`).
#[pyfunction]
#[pyo3(signature = (items, trace="none", checkpoint_interval=spec::DEFAULT_CHECKPOINT_INTERVAL, coverage=false))]
fn run_batch<'py>(
    py: Python<'py>,
    items: Vec<Bound<'py, PyAny>>,
    trace: &str,
    checkpoint_interval: u64,
    coverage: bool,
) -> PyResult<Bound<'py, PyList>> {
    if checkpoint_interval == 0 {
        return Err(PyValueError::new_err("checkpoint_interval must be >= 1"));
    }
    let mode = trace_mode(trace)?;
    let mut jobs: Vec<(String, Option<Vec<u8>>, u64)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (text, input, max_steps): (String, Option<Bound<'py, PyAny>>, Option<i64>) =
            item.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "batch item {i}: expected (program_text, input or None, max_steps)"
                ))
            })?;
        let input = match input {
            Some(obj) => Some(obj.extract::<Cow<'_, [u8]>>()?.into_owned()),
            None => None,
        };
        jobs.push((text, input, budget(max_steps)?));
    }
    let results = py.allow_threads(|| {
        let programs = jobs
            .iter()
            .enumerate()
            .map(|(i, (text, input, _))| {
                let p = parse_program(text, SOURCE).map_err(|e| format!("batch item {i}: {e}"))?;
                if let Some(data) = input {
                    check_input(data).map_err(|e| format!("batch item {i}: {e}"))?;
                }
                Ok(p)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok::<_, String>(
            programs
                .iter()
                .zip(&jobs)
                .map(|(p, (_, input, max_steps))| {
                    let opts = RunOptions {
                        max_steps: *max_steps,
                        trace: mode,
                        checkpoint_interval,
                    };
                    if coverage {
                        let mut cov = vec![0u64; machine::coverage::SIZE];
                        let r = machine::run_with(p, input.as_deref(), &opts, Some(&mut cov));
                        let cells: Vec<(usize, u64)> = cov
                            .iter()
                            .enumerate()
                            .filter(|(_, &n)| n > 0)
                            .map(|(i, &n)| (i, n))
                            .collect();
                        (r, Some(cells))
                    } else {
                        (machine::run(p, input.as_deref(), &opts), None)
                    }
                })
                .collect::<Vec<_>>(),
        )
    });
    let list = PyList::empty(py);
    for (r, cells) in results.map_err(PyValueError::new_err)? {
        let d = outcome_dict(py, r)?;
        if let Some(cells) = cells {
            let c = PyDict::new(py);
            for (i, n) in cells {
                c.set_item(i, n)?;
            }
            d.set_item("coverage", c)?;
        }
        list.append(d)?;
    }
    Ok(list)
}

/// The machine coverage cells' layout: (classes, ops, traps, statuses);
/// cell (op × class a × class b) is (op * classes + a) * classes + b, then
/// one cell per trap, then one per final status.
#[pyfunction]
fn coverage_layout() -> (
    Vec<&'static str>,
    Vec<(&'static str, u8)>,
    Vec<&'static str>,
    Vec<&'static str>,
) {
    (
        vec!["zero", "one", "sign", "max", "other"],
        Op::ALL.iter().map(|op| (op.name(), op.pops())).collect(),
        Trap::ALL.iter().map(|t| t.name()).collect(),
        vec!["halted", "trapped", "budget_exhausted"],
    )
}

/// Parse and check a program file without running it: returns
/// (opcode names, immediates, input bytes); ValueError when malformed.
#[pyfunction]
fn parse<'py>(py: Python<'py>, program_text: &str) -> PyResult<(Vec<&'static str>, Vec<u32>, Bound<'py, PyBytes>)> {
    let p = py
        .allow_threads(|| parse_program(program_text, SOURCE))
        .map_err(|e| PyValueError::new_err(e.message))?;
    let names = p.code.iter().map(|i| i.op.name()).collect();
    let imms = p.code.iter().map(|i| i.imm).collect();
    Ok((names, imms, PyBytes::new(py, &p.input)))
}

/// The limits this build enforces (machine.yaml's `limits`).
#[pyfunction]
fn limits(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("max_instructions", spec::MAX_INSTRUCTIONS)?;
    d.set_item("locals_per_frame", spec::LOCALS_PER_FRAME)?;
    d.set_item("globals", spec::GLOBALS)?;
    d.set_item("call_depth", spec::CALL_DEPTH)?;
    d.set_item("operand_stack", spec::OPERAND_STACK)?;
    d.set_item("memory_bytes", spec::MEMORY_BYTES)?;
    d.set_item("input_bytes", spec::INPUT_BYTES)?;
    d.set_item("default_max_steps", spec::DEFAULT_MAX_STEPS)?;
    Ok(d)
}

/// Opcode names in table order (`input_base` last).
#[pyfunction]
fn op_names() -> Vec<&'static str> {
    Op::ALL.iter().map(|op| op.name()).collect()
}

/// (name, halt code or None, resource) for every trap, in table order.
#[pyfunction]
fn traps() -> Vec<(&'static str, Option<u32>, bool)> {
    Trap::ALL
        .iter()
        .map(|t| (t.name(), t.code(), t.is_resource()))
        .collect()
}

#[pymodule]
fn isowasm_rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(run_batch, m)?)?;
    m.add_function(wrap_pyfunction!(parse, m)?)?;
    m.add_function(wrap_pyfunction!(limits, m)?)?;
    m.add_function(wrap_pyfunction!(op_names, m)?)?;
    m.add_function(wrap_pyfunction!(traps, m)?)?;
    m.add_function(wrap_pyfunction!(coverage_layout, m)?)?;
    Ok(())
}
