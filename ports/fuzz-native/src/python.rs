//! The Python module `isowasm_fuzz_native` (isowasm/fuzz/smith.py and
//! isowasm/backends/wasmi.py are its users).

use std::cell::RefCell;
use std::rc::Rc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::filter::Allow;
use crate::gen::GenOptions;

fn allow_of(names: Option<Vec<String>>) -> PyResult<Allow> {
    let names = names.unwrap_or_default();
    Allow::from_names(names.iter().map(|s| s.as_str())).map_err(PyValueError::new_err)
}

/// generate(seed, index, *, max_tries, allow, min_bytes, max_bytes,
/// max_funcs, max_instructions, max_globals, max_data_segments, fuel) ->
/// {"wasm": bytes | None, "tries": int, "rejected": {category: n},
/// "smith_errors": int}
#[pyfunction]
#[pyo3(signature = (seed, index, *, max_tries=None, allow=None, min_bytes=None, max_bytes=None,
                    max_funcs=None, max_instructions=None, max_globals=None,
                    max_data_segments=None, fuel=None))]
#[allow(clippy::too_many_arguments)]
fn generate<'py>(py: Python<'py>, seed: u64, index: u64, max_tries: Option<u32>,
                 allow: Option<Vec<String>>, min_bytes: Option<usize>, max_bytes: Option<usize>,
                 max_funcs: Option<usize>, max_instructions: Option<usize>,
                 max_globals: Option<usize>, max_data_segments: Option<usize>, fuel: Option<u32>)
                 -> PyResult<Bound<'py, PyDict>> {
    let d = GenOptions::default();
    let opts = GenOptions {
        max_tries: max_tries.unwrap_or(d.max_tries).max(1),
        allow: allow_of(allow)?,
        min_bytes: min_bytes.unwrap_or(d.min_bytes),
        max_bytes: max_bytes.unwrap_or(d.max_bytes).max(min_bytes.unwrap_or(d.min_bytes)),
        max_funcs: max_funcs.unwrap_or(d.max_funcs),
        max_instructions: max_instructions.unwrap_or(d.max_instructions),
        max_globals: max_globals.unwrap_or(d.max_globals),
        max_data_segments: max_data_segments.unwrap_or(d.max_data_segments),
        fuel: fuel.unwrap_or(d.fuel),
    };
    let g = py.allow_threads(|| crate::gen::generate(seed, index, &opts));
    let out = PyDict::new(py);
    match g.wasm {
        Some(w) => out.set_item("wasm", PyBytes::new(py, &w))?,
        None => out.set_item("wasm", py.None())?,
    }
    out.set_item("tries", g.tries)?;
    let rej = PyDict::new(py);
    for (k, v) in g.rejected {
        rej.set_item(k, v)?;
    }
    out.set_item("rejected", rej)?;
    out.set_item("smith_errors", g.smith_errors)?;
    Ok(out)
}

/// check(wasm, allow=None) -> None, or the first construct outside what the
/// toolchain takes.
#[pyfunction]
#[pyo3(signature = (wasm, allow=None))]
fn check(wasm: &[u8], allow: Option<Vec<String>>) -> PyResult<Option<String>> {
    Ok(crate::filter::check(wasm, allow_of(allow)?))
}

/// The category of a rejected construct ("i64", "float", ...).
#[pyfunction]
fn category(name: &str) -> &'static str {
    crate::filter::category(name)
}

/// constructs(wasm) -> sorted list of the wasm-level constructs it contains.
#[pyfunction]
fn constructs(wasm: &[u8]) -> PyResult<Vec<String>> {
    crate::filter::constructs(wasm).map(|s| s.into_iter().collect()).map_err(PyValueError::new_err)
}

/// to_wat(wasm) -> the module as WAT text (wasmprinter).
#[pyfunction]
fn to_wat(wasm: &[u8]) -> PyResult<String> {
    crate::to_wat(wasm).map_err(PyValueError::new_err)
}

/// shrink(wasm, predicate, attempts=1000, seed=42) -> (smallest, tried,
/// stopped): wasm-shrink keeping `predicate(bytes) -> bool` true. An
/// exception from the predicate stops the search (a deadline, say): the
/// smallest module found so far is returned and `stopped` is the
/// exception's text; a predicate that rejects the input gives the input
/// back with the reason.
#[pyfunction]
#[pyo3(signature = (wasm, predicate, attempts=1000, seed=42))]
fn shrink<'py>(py: Python<'py>, wasm: Vec<u8>, predicate: PyObject, attempts: u32, seed: u64)
               -> PyResult<(Bound<'py, PyBytes>, u32, Option<String>)> {
    let best = Rc::new(RefCell::new(wasm.clone()));
    let tried = Rc::new(RefCell::new(0u32));
    let py_err: Rc<RefCell<Option<PyErr>>> = Rc::new(RefCell::new(None));
    let b2 = best.clone();
    let shrinker = wasm_shrink::WasmShrink::default()
        .attempts(attempts)
        .seed(seed)
        .on_new_smallest(Some(Box::new(move |w: &[u8]| {
            *b2.borrow_mut() = w.to_vec();
            Ok(())
        })));
    let (t2, e2) = (tried.clone(), py_err.clone());
    let res = shrinker.run(wasm, move |w: &[u8]| -> anyhow::Result<bool> {
        *t2.borrow_mut() += 1;
        match predicate.call1(py, (PyBytes::new(py, w),)).and_then(|r| r.is_truthy(py)) {
            Ok(b) => Ok(b),
            Err(e) => {
                let msg = e.to_string();
                *e2.borrow_mut() = Some(e);
                Err(anyhow::anyhow!(msg))
            }
        }
    });
    let stopped = match res {
        Ok(info) => {
            if info.output.len() <= best.borrow().len() {
                *best.borrow_mut() = info.output;
            }
            None
        }
        Err(e) => {
            let pe = py_err.borrow_mut().take();
            if let Some(pe) = &pe {
                // an interrupt is not a deadline: let it through
                if pe.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    return Err(pe.clone_ref(py));
                }
            }
            Some(format!("{e:#}"))
        }
    };
    let out = best.borrow().clone();
    let n = *tried.borrow();
    Ok((PyBytes::new(py, &out), n, stopped))
}

/// reduce(wasm, predicate, allow=None) -> (smallest, calls, stopped):
/// instruction-level delta debugging (src/reduce.rs); candidates are
/// validated and checked against the subset before the predicate sees
/// them. An exception from the predicate stops it, as in `shrink`.
#[pyfunction]
#[pyo3(signature = (wasm, predicate, allow=None))]
fn reduce<'py>(py: Python<'py>, wasm: Vec<u8>, predicate: PyObject, allow: Option<Vec<String>>)
               -> PyResult<(Bound<'py, PyBytes>, u32, Option<String>)> {
    let allow = allow_of(allow)?;
    let r = crate::reduce::reduce(wasm, allow, |w: &[u8]| -> Result<bool, PyErr> {
        predicate.call1(py, (PyBytes::new(py, w),))?.is_truthy(py)
    });
    match r {
        Ok((best, calls)) => Ok((PyBytes::new(py, &best), calls, None)),
        Err((best, calls, e)) => {
            if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                return Err(e);
            }
            Ok((PyBytes::new(py, &best), calls, Some(e.to_string())))
        }
    }
}

/// wasmi_run(wasm, input, addr, memory_export, fuel) -> {"status", "trap",
/// "output", "fuel_used"}; raises ValueError when the module does not load.
#[pyfunction]
#[pyo3(signature = (wasm, input, addr, memory_export, fuel))]
fn wasmi_run<'py>(py: Python<'py>, wasm: &[u8], input: &[u8], addr: u32, memory_export: Option<String>,
                  fuel: u64) -> PyResult<Bound<'py, PyDict>> {
    let r = crate::oracle::wasmi_run(wasm, input, addr, memory_export.as_deref(), fuel)
        .map_err(PyValueError::new_err)?;
    let d = PyDict::new(py);
    d.set_item("status", r.status)?;
    d.set_item("trap", r.trap)?;
    d.set_item("output", PyBytes::new(py, &r.output))?;
    d.set_item("fuel_used", r.fuel_used)?;
    Ok(d)
}

#[pymodule]
fn isowasm_fuzz_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(category, m)?)?;
    m.add_function(wrap_pyfunction!(constructs, m)?)?;
    m.add_function(wrap_pyfunction!(to_wat, m)?)?;
    m.add_function(wrap_pyfunction!(shrink, m)?)?;
    m.add_function(wrap_pyfunction!(reduce, m)?)?;
    m.add_function(wrap_pyfunction!(wasmi_run, m)?)?;
    m.add("WASM_SMITH_VERSION", "0.263")?;
    m.add("WASMI_VERSION", "1.1")?;
    Ok(())
}
