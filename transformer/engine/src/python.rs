//! The Python module `isowasm_engine`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::engine::{EngineError, Session};
use crate::model::Model;

impl From<EngineError> for PyErr {
    fn from(e: EngineError) -> PyErr {
        PyRuntimeError::new_err(e.0)
    }
}

/// The loaded model (immutable; sessions share it).
#[pyclass(frozen, module = "isowasm_engine")]
struct Engine {
    model: Arc<Model>,
    index: HashMap<String, u16>,
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, build_dir: PathBuf) -> PyResult<Engine> {
        let model = py
            .allow_threads(|| Model::load(&build_dir))
            .map_err(PyValueError::new_err)?;
        let index = model
            .vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u16))
            .collect();
        Ok(Engine {
            model: Arc::new(model),
            index,
        })
    }

    fn session(&self) -> PySession {
        PySession {
            s: Session::new(self.model.clone()),
        }
    }

    /// [(layer, head name, kind, address components, values recomputed)]
    fn heads(&self) -> Vec<(usize, String, String, usize, bool)> {
        self.model.describe()
    }

    fn vocab(&self) -> Vec<String> {
        self.model.vocab.clone()
    }

    /// Nonzero weights per matrix family: {"attn": n, "ffn": n, "unembed": n}.
    fn nnz(&self) -> HashMap<String, usize> {
        let mut a = 0;
        let mut f = 0;
        for l in &self.model.layers {
            for h in &l.heads {
                a += h.q.nnz() + h.k.nnz() + h.v.nnz() + h.o.nnz();
            }
            f += l.fu.nnz() + l.fg.nnz() + l.fo.nnz();
        }
        HashMap::from([
            ("attn".into(), a),
            ("ffn".into(), f),
            ("unembed".into(), self.model.unembed.nnz()),
        ])
    }

    /// Teacher-forced verification: feeds `prompt` then `reference` (token
    /// ids); at every position from the prompt's last token on, the model's
    /// argmax must be the next reference token. Returns a dict.
    /// `threads`: 0 = token by token (the generation path); 1 = layer-major
    /// batches (all positions of a chunk through a layer together); n >= 2 =
    /// the layers pipelined over n threads.
    /// `cuts`: the pipeline's stage boundaries (layer indices), default: balanced by weight counts.
    #[pyo3(signature = (prompt, reference, threads=2, cuts=None))]
    fn verify_ids<'py>(
        &self,
        py: Python<'py>,
        prompt: Vec<u16>,
        reference: Vec<u16>,
        threads: usize,
        cuts: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = self.model.clone();
        let t0 = std::time::Instant::now();
        let res = py.allow_threads(move || verify_impl(model, &prompt, &reference, threads, cuts));
        let secs = t0.elapsed().as_secs_f64();
        let d = PyDict::new(py);
        let (checked, mismatch) = res?;
        d.set_item("ok", mismatch.is_none())?;
        d.set_item("checked", checked)?;
        d.set_item("seconds", secs)?;
        d.set_item("threads", threads)?;
        match mismatch {
            None => d.set_item("first_mismatch", py.None())?,
            Some((i, pos, exp, got, margin, exp_logit, got_logit)) => {
                let m = PyDict::new(py);
                m.set_item("index", i)?;
                m.set_item("position", pos)?;
                m.set_item("expected", &self.model.vocab[exp as usize])?;
                m.set_item("predicted", &self.model.vocab[got])?;
                m.set_item("margin", margin)?;
                m.set_item("expected_logit", exp_logit)?;
                m.set_item("predicted_logit", got_logit)?;
                d.set_item("first_mismatch", m)?;
            }
        }
        Ok(d)
    }

    /// `verify(program_text, reference_trace_text)`: the prompt is the program
    /// file's tokens; the reference trace's first line (the input section) must
    /// be the prompt's tail, and its remaining tokens are checked.
    #[pyo3(signature = (program_text, reference_trace_text, threads=2))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        program_text: &str,
        reference_trace_text: &str,
        threads: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = |s: &str| -> PyResult<Vec<u16>> {
            s.split_whitespace()
                .map(|t| {
                    self.index
                        .get(t)
                        .copied()
                        .ok_or_else(|| PyValueError::new_err(format!("unknown token {t:?}")))
                })
                .collect()
        };
        let prompt = ids(program_text)?;
        let (first, rest) = reference_trace_text
            .split_once('\n')
            .unwrap_or((reference_trace_text, ""));
        let head = ids(first)?;
        if head.len() > prompt.len() || prompt[prompt.len() - head.len()..] != head[..] {
            return Err(PyValueError::new_err(
                "the trace's input line is not the program file's input section",
            ));
        }
        let reference = ids(rest)?;
        self.verify_ids(py, prompt, reference, threads, None)
    }
}

type Mismatch = (usize, usize, u16, usize, f64, f64, f64);

fn verify_impl(
    model: Arc<Model>,
    prompt: &[u16],
    reference: &[u16],
    threads: usize,
    cuts: Option<Vec<usize>>,
) -> Result<(usize, Option<Mismatch>), EngineError> {
    let mut s = Session::new(model);
    if prompt.is_empty() {
        return Err(EngineError("empty prompt".into()));
    }
    if threads == 0 {
        // sequential: the same path as generation
        for &t in prompt {
            s.feed(t as usize)?;
        }
        let mut checked = 0;
        for (i, &r) in reference.iter().enumerate() {
            let (got, margin) = s.argmax()?;
            checked += 1;
            if got != r as usize {
                return Ok((
                    checked,
                    Some((i, s.pos - 1, r, got, margin, s.logits[r as usize], s.logits[got])),
                ));
            }
            if i + 1 < reference.len() {
                s.feed(r as usize)?;
            }
        }
        return Ok((checked, None));
    }
    let mut seq = prompt.to_vec();
    seq.extend_from_slice(reference);
    let base = prompt.len() - 1;
    let (checked, mm) = if threads == 1 {
        s.verify_batch(&seq, base, 1)?
    } else {
        s.verify_pipeline(&seq, base, threads, cuts)?
    };
    Ok((
        checked,
        mm.map(|(p, got, margin, el, gl)| (p - base, p, seq[p + 1], got, margin, el, gl)),
    ))
}

#[pyclass(module = "isowasm_engine", name = "Session")]
struct PySession {
    s: Session,
}

#[pymethods]
impl PySession {
    /// Feed token ids (prompt or forced tokens).
    fn feed(&mut self, py: Python<'_>, ids: Vec<u16>) -> PyResult<()> {
        let s = &mut self.s;
        py.allow_threads(|| {
            for t in ids {
                s.feed(t as usize)?;
            }
            Ok::<(), EngineError>(())
        })?;
        Ok(())
    }

    /// The argmax of the last position's logits.
    fn next_token(&mut self) -> PyResult<usize> {
        Ok(self.s.argmax()?.0)
    }

    /// Generate up to `max_tokens` tokens (see engine.rs `generate`); `flags`:
    /// one byte per vocabulary entry (1 step end, 2 halt, 4 trap, 8 line end).
    /// Returns (emitted ids as little-endian u16 bytes, trace text of the
    /// emitted tokens or None, stopped by halt/trap, step-ending tokens emitted).
    #[pyo3(signature = (max_tokens, steps_left, flags, text=false))]
    fn generate<'py>(
        &mut self,
        py: Python<'py>,
        max_tokens: usize,
        steps_left: u64,
        flags: Vec<u8>,
        text: bool,
    ) -> PyResult<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>, bool, u64)> {
        if flags.len() != self.s.model.vocab.len() {
            return Err(PyValueError::new_err("flags: one byte per token"));
        }
        let s = &mut self.s;
        let mut out = Vec::with_capacity(max_tokens.min(1 << 20));
        let mut tx = Vec::new();
        let (stopped, steps) = py.allow_threads(|| {
            s.generate(
                max_tokens,
                steps_left,
                &flags,
                &mut out,
                if text { Some(&mut tx) } else { None },
            )
        })?;
        let bytes: Vec<u8> = out.iter().flat_map(|t| t.to_le_bytes()).collect();
        let tx = if text { Some(PyBytes::new(py, &tx)) } else { None };
        Ok((PyBytes::new(py, &bytes), tx, stopped, steps))
    }

    /// Residual stream value at `dim` of the last position.
    fn resid(&self, dim: usize) -> f64 {
        self.s.resid(dim)
    }

    #[getter]
    fn position(&self) -> usize {
        self.s.pos
    }

    /// Per head: [(head name, cache entries, queries answered by the exact fallback)]
    fn stats(&self) -> Vec<(String, usize, u64)> {
        self.s.stats()
    }
}

/// `verify(program_text, reference_trace_text, build_dir="transformer/build", threads=2)`:
/// loads the model from `build_dir` and runs `Engine.verify`.
#[pyfunction]
#[pyo3(signature = (program_text, reference_trace_text, build_dir=PathBuf::from("transformer/build"), threads=2))]
fn verify<'py>(
    py: Python<'py>,
    program_text: &str,
    reference_trace_text: &str,
    build_dir: PathBuf,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let e = Engine::new(py, build_dir)?;
    e.verify(py, program_text, reference_trace_text, threads)
}

#[pymodule]
fn isowasm_engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_class::<Engine>()?;
    m.add_class::<PySession>()?;
    m.add("MAX_POSITIONS", crate::engine::MAX_POS)?;
    Ok(())
}
