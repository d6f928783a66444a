//! The Python module `isowasm_engine`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::engine::{generate, verify_tokens, Decoder, EngineError, SeqMismatch, Session};
use crate::generic::{GModel, GSession};
use crate::model::Model;

impl From<EngineError> for PyErr {
    fn from(e: EngineError) -> PyErr {
        PyRuntimeError::new_err(e.0)
    }
}

/// The loaded model (immutable; sessions share it): the construction's
/// classified heads (`model.rs`), or the generic hull engine (`generic.rs`).
enum Backend {
    Classified(Arc<Model>),
    Generic(Arc<GModel>),
}

#[pyclass(frozen, module = "isowasm_engine")]
struct Engine {
    backend: Backend,
    vocab: Vec<String>,
    index: HashMap<String, u16>,
}

#[pymethods]
impl Engine {
    /// `Engine(build_dir, generic=None)`: `generic=True` runs every head on
    /// the generic 2-D hull path (heads must use <= 2 query/key dimensions),
    /// `False` the construction's classified heads; `None` (the default)
    /// chooses generic when config.json's d_head_qk is <= 2.
    #[new]
    #[pyo3(signature = (build_dir, generic=None))]
    fn new(py: Python<'_>, build_dir: PathBuf, generic: Option<bool>) -> PyResult<Engine> {
        let use_generic = match generic {
            Some(g) => g,
            None => crate::generic::wants_generic(&build_dir).map_err(PyValueError::new_err)?,
        };
        let (backend, vocab) = if use_generic {
            let m = py
                .allow_threads(|| GModel::load(&build_dir))
                .map_err(PyValueError::new_err)?;
            let v = m.vocab.clone();
            (Backend::Generic(Arc::new(m)), v)
        } else {
            let m = py
                .allow_threads(|| Model::load(&build_dir))
                .map_err(PyValueError::new_err)?;
            let v = m.vocab.clone();
            (Backend::Classified(Arc::new(m)), v)
        };
        let index = vocab.iter().enumerate().map(|(i, t)| (t.clone(), i as u16)).collect();
        Ok(Engine { backend, vocab, index })
    }

    /// Whether this engine runs the generic hull path.
    #[getter]
    fn generic(&self) -> bool {
        matches!(self.backend, Backend::Generic(_))
    }

    fn session(&self) -> PySession {
        PySession {
            s: match &self.backend {
                Backend::Classified(m) => AnySession::C(Session::new(m.clone())),
                Backend::Generic(m) => AnySession::G(GSession::new(m.clone())),
            },
        }
    }

    /// [(layer, head name, kind, address components, values recomputed)];
    /// on the generic path kind is "hull2d" and the count is the query/key
    /// dimensions the head uses.
    fn heads(&self) -> Vec<(usize, String, String, usize, bool)> {
        match &self.backend {
            Backend::Classified(m) => m.describe(),
            Backend::Generic(m) => m.describe(),
        }
    }

    fn vocab(&self) -> Vec<String> {
        self.vocab.clone()
    }

    /// Nonzero weights per matrix family: {"attn": n, "ffn": n, "unembed": n}.
    fn nnz(&self) -> HashMap<String, usize> {
        let (a, f, u) = match &self.backend {
            Backend::Classified(model) => {
                let mut a = 0;
                let mut f = 0;
                for l in &model.layers {
                    for h in &l.heads {
                        a += h.q.nnz() + h.k.nnz() + h.v.nnz() + h.o.nnz();
                    }
                    f += l.fu.nnz() + l.fg.nnz() + l.fo.nnz();
                }
                (a, f, model.unembed.nnz())
            }
            Backend::Generic(m) => m.nnz(),
        };
        HashMap::from([("attn".into(), a), ("ffn".into(), f), ("unembed".into(), u)])
    }

    /// Teacher-forced verification: feeds `prompt` then `reference` (token
    /// ids); at every position from the prompt's last token on, the model's
    /// argmax must be the next reference token. Returns a dict.
    /// `threads`: 0 = token by token (the generation path); 1 = layer-major
    /// batches (all positions of a chunk through a layer together); n >= 2 =
    /// the layers pipelined over n threads.
    /// `cuts`: the pipeline's stage boundaries (layer indices), default: balanced by weight counts.
    /// The generic path always runs token by token (`threads` is ignored).
    #[pyo3(signature = (prompt, reference, threads=2, cuts=None))]
    fn verify_ids<'py>(
        &self,
        py: Python<'py>,
        prompt: Vec<u16>,
        reference: Vec<u16>,
        threads: usize,
        cuts: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let t0 = std::time::Instant::now();
        let (res, threads) = match &self.backend {
            Backend::Classified(m) => {
                let model = m.clone();
                (
                    py.allow_threads(move || verify_impl(model, &prompt, &reference, threads, cuts)),
                    threads,
                )
            }
            Backend::Generic(m) => {
                let model = m.clone();
                (
                    py.allow_threads(move || verify_tokens(&mut GSession::new(model), &prompt, &reference)),
                    0,
                )
            }
        };
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
                m.set_item("expected", &self.vocab[exp as usize])?;
                m.set_item("predicted", &self.vocab[got])?;
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

fn verify_impl(
    model: Arc<Model>,
    prompt: &[u16],
    reference: &[u16],
    threads: usize,
    cuts: Option<Vec<usize>>,
) -> Result<(usize, Option<SeqMismatch>), EngineError> {
    if threads == 0 {
        // sequential: the same path as generation
        return verify_tokens(&mut Session::new(model), prompt, reference);
    }
    if prompt.is_empty() {
        return Err(EngineError("empty prompt".into()));
    }
    let mut s = Session::new(model);
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

enum AnySession {
    C(Session),
    G(GSession),
}

#[pyclass(module = "isowasm_engine", name = "Session")]
struct PySession {
    s: AnySession,
}

#[pymethods]
impl PySession {
    /// Feed token ids (prompt or forced tokens).
    fn feed(&mut self, py: Python<'_>, ids: Vec<u16>) -> PyResult<()> {
        let s = &mut self.s;
        py.allow_threads(|| {
            for t in ids {
                match s {
                    AnySession::C(s) => s.feed(t as usize)?,
                    AnySession::G(s) => s.feed(t as usize)?,
                }
            }
            Ok::<(), EngineError>(())
        })?;
        Ok(())
    }

    /// The argmax of the last position's logits.
    fn next_token(&mut self) -> PyResult<usize> {
        Ok(match &mut self.s {
            AnySession::C(s) => s.argmax()?.0,
            AnySession::G(s) => s.argmax()?.0,
        })
    }

    /// The last position's logits.
    fn logits(&mut self) -> PyResult<Vec<f64>> {
        Ok(match &mut self.s {
            AnySession::C(s) => {
                s.argmax()?;
                s.logits.clone()
            }
            AnySession::G(s) => {
                s.argmax()?;
                s.logits.clone()
            }
        })
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
        let nv = match &self.s {
            AnySession::C(s) => s.model.vocab.len(),
            AnySession::G(s) => s.model.vocab.len(),
        };
        if flags.len() != nv {
            return Err(PyValueError::new_err("flags: one byte per token"));
        }
        let s = &mut self.s;
        let mut out = Vec::with_capacity(max_tokens.min(1 << 20));
        let mut tx = Vec::new();
        let (stopped, steps) = py.allow_threads(|| {
            let txo = if text { Some(&mut tx) } else { None };
            match s {
                AnySession::C(s) => generate(s, max_tokens, steps_left, &flags, &mut out, txo),
                AnySession::G(s) => generate(s, max_tokens, steps_left, &flags, &mut out, txo),
            }
        })?;
        let bytes: Vec<u8> = out.iter().flat_map(|t| t.to_le_bytes()).collect();
        let tx = if text { Some(PyBytes::new(py, &tx)) } else { None };
        Ok((PyBytes::new(py, &bytes), tx, stopped, steps))
    }

    /// Residual stream value at `dim` of the last position.
    fn resid(&self, dim: usize) -> f64 {
        match &self.s {
            AnySession::C(s) => s.resid(dim),
            AnySession::G(s) => s.resid(dim),
        }
    }

    /// The last position's whole residual stream.
    fn residual(&self) -> Vec<f64> {
        match &self.s {
            AnySession::C(s) => s.x.clone(),
            AnySession::G(s) => s.x.clone(),
        }
    }

    #[getter]
    fn position(&self) -> usize {
        match &self.s {
            AnySession::C(s) => s.pos,
            AnySession::G(s) => s.pos,
        }
    }

    /// `feed_layers(ids, layers=None, keep=None)`: feeds `ids` as `feed`
    /// does and returns the residual streams it computed on the way, as
    /// little-endian float64 bytes of shape (rows, len(layers), d_model): for
    /// every fed position (or, with `keep`, only those whose session
    /// position is listed; strictly increasing), the residual at the input
    /// of each layer in `layers` (indices 0..L-1; L = the final residual,
    /// after the last layer; default 0..=L, increasing). Classified path only.
    #[pyo3(signature = (ids, layers=None, keep=None))]
    fn feed_layers<'py>(
        &mut self,
        py: Python<'py>,
        ids: Vec<u16>,
        layers: Option<Vec<usize>>,
        keep: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let s = match &mut self.s {
            AnySession::C(s) => s,
            AnySession::G(_) => {
                return Err(PyValueError::new_err("feed_layers: not available on the generic path"))
            }
        };
        let nl = s.model.layers.len();
        let layers = layers.unwrap_or_else(|| (0..=nl).collect());
        if layers.windows(2).any(|w| w[0] >= w[1]) || layers.iter().any(|&l| l > nl) {
            return Err(PyValueError::new_err(format!(
                "feed_layers: layers {layers:?} must be increasing, inside 0..={nl}"
            )));
        }
        if let Some(k) = &keep {
            if k.windows(2).any(|w| w[0] >= w[1]) {
                return Err(PyValueError::new_err("feed_layers: keep must be strictly increasing"));
            }
        }
        let mut want = vec![false; nl + 1];
        for &l in &layers {
            want[l] = true;
        }
        let rows = keep.as_ref().map_or(ids.len(), |k| k.len().min(ids.len()));
        let mut out: Vec<f64> = Vec::with_capacity(rows * layers.len() * s.model.d);
        py.allow_threads(|| {
            let mut ki = 0usize;
            if let Some(k) = &keep {
                while ki < k.len() && k[ki] < s.pos {
                    ki += 1;
                }
            }
            for t in ids {
                let take = match &keep {
                    None => true,
                    Some(k) => ki < k.len() && k[ki] == s.pos,
                };
                if take {
                    s.feed_layers(t as usize, &want, &mut out)?;
                    ki += 1;
                } else {
                    s.feed(t as usize)?;
                }
            }
            Ok::<(), EngineError>(())
        })?;
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// Per head: [(head name, cache entries, queries answered by the exact fallback)];
    /// on the generic path (head name, hull corners, near-tie checks that scanned every key).
    fn stats(&self) -> Vec<(String, usize, u64)> {
        match &self.s {
            AnySession::C(s) => s.stats(),
            AnySession::G(s) => s.stats(),
        }
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
    let e = Engine::new(py, build_dir, None)?;
    e.verify(py, program_text, reference_trace_text, threads)
}

/// `hull_bench(n, shape="parabola", queries=100000, seed=1)`: inserts n
/// keys into one `hull::Hull2` (dv = 1) in random order, then answers
/// `queries` random directions; returns (ns per insert, ns per query, hull
/// corners). shape: "parabola" (keys (2a, -a^2), all on the hull: the worst
/// case for its size), "disk" (uniform in a square: a small hull), "line"
/// (collinear keys with duplicates).
#[pyfunction]
#[pyo3(signature = (n, shape="parabola", queries=100000, seed=1))]
fn hull_bench(py: Python<'_>, n: usize, shape: &str, queries: usize, seed: u64) -> PyResult<(f64, f64, usize)> {
    let shape = shape.to_string();
    py.allow_threads(move || {
        let mut st = seed.max(1);
        let mut rnd = move || {
            st ^= st >> 12;
            st ^= st << 25;
            st ^= st >> 27;
            st.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut keys: Vec<(f64, f64)> = (0..n)
            .map(|i| match shape.as_str() {
                "parabola" => {
                    let a = i as f64;
                    (2.0 * a, -a * a)
                }
                "disk" => ((rnd() >> 11) as f64 / 9.0e15, (rnd() >> 11) as f64 / 9.0e15),
                _ => {
                    let t = (rnd() % (n as u64 / 2 + 1)) as f64;
                    (t, 3.0 * t - 7.0)
                }
            })
            .collect();
        for i in (1..keys.len()).rev() {
            let j = (rnd() % (i as u64 + 1)) as usize;
            keys.swap(i, j);
        }
        let qs: Vec<(f64, f64)> = (0..queries)
            .map(|_| {
                let a = (rnd() >> 11) as f64 / 9.0e15 - 0.5;
                let b = (rnd() >> 11) as f64 / 9.0e15 - 0.5;
                (a, b)
            })
            .collect();
        let mut h = crate::hull::Hull2::new(1);
        let t0 = std::time::Instant::now();
        for (i, &k) in keys.iter().enumerate() {
            h.insert(k, &[i as f64]).map_err(PyValueError::new_err)?;
        }
        let ti = t0.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
        let mut out = [0.0];
        let mut acc = 0u64;
        let t1 = std::time::Instant::now();
        for &q in &qs {
            acc += h.query(q, &mut out).map_err(PyValueError::new_err)?.count;
        }
        let tq = t1.elapsed().as_secs_f64() * 1e9 / queries.max(1) as f64;
        std::hint::black_box(acc);
        let (a, b) = h.corners();
        Ok((ti, tq, a + b))
    })
}

#[pymodule]
fn isowasm_engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(hull_bench, m)?)?;
    m.add_class::<Engine>()?;
    m.add_class::<PySession>()?;
    m.add("MAX_POSITIONS", crate::engine::MAX_POS)?;
    Ok(())
}
