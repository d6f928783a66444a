//! Greedy decoding and teacher-forced verification with per-head caches that
//! answer every attention query as the float64 model's hardmax does, in O(1)
//! (hash of the exact key) or O(1) arithmetic (positional keys), instead of
//! O(n) dot products. See transformer/ENGINE.md for the exactness argument.
//!
//! Undefined answers (a `unique` query that matches no write, two writes of
//! one key, a non-integral `latest` query) are NaN: the float model would
//! return some blend there, which the construction never relies on. NaN
//! propagates through every later operation (relu included), so it can only
//! vanish by being unused; a NaN in a write flag, a stored key or value, a
//! running sum, or the logits of a position whose argmax is used is an error.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::model::{HybridRows, Kind, Model, SpRows, DELTA, KEY_BITS, MISS};

/// Positions must stay below this (positional byte features are 3 bytes; the
/// `latest` heads' default beats an exact-match non-write only while
/// DELTA * pos < 1/2).
pub const MAX_POS: usize = 1 << 24;
/// Positions whose full key/value vectors `unique` keyed heads keep for the
/// exact (brute-force) answer to a query that matches no write.
pub const FULL_KV: usize = 1 << 16;

#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);
impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (i ^ (i >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
type IntMap<V> = HashMap<u64, V, BuildHasherDefault<IntHasher>>;

#[derive(Clone, Copy)]
struct Entry {
    off: u32,
    dup: bool,
}

#[derive(Clone, Default)]
pub struct HeadState {
    /// every position's full key and value vectors, for positions < FULL_KV
    /// (exact fallback of `unique` heads on a miss; see `miss`)
    full_k: Vec<f64>,
    full_v: Vec<f64>,
    misses: u64,
    sum: Vec<f64>,
    map: IntMap<Entry>,
    arena: Vec<f64>,
    default: Vec<f64>,
    latest: Vec<f64>,
    has_latest: bool,
}

#[derive(Debug)]
pub struct EngineError(pub String);
type R<T> = Result<T, EngineError>;
fn fail<T>(s: String) -> R<T> {
    Err(EngineError(s))
}

#[inline]
/// Packs a write's integer key components into one integer (KEY_BITS each)
/// and returns it with the sum of their squares, which the key's square
/// column must equal: the 2-D hull key (2a, -a^2) of the design, checked.
fn pack_key(components: &[f64], head: &str, p: usize) -> R<(u64, i128)> {
    let mut a: u64 = 0;
    let mut sq: i128 = 0;
    for (c, &kc) in components.iter().enumerate() {
        match int_of(kc) {
            Some(i) if i >= 0 && i < (1 << KEY_BITS) => {
                a |= (i as u64) << (KEY_BITS * c as u32);
                sq += (i as i128) * (i as i128);
            }
            _ => {
                return fail(format!(
                    "head {head}: key component {kc} at position {p} is not an integer in [0, 2**21)"
                ))
            }
        }
    }
    Ok((a, sq))
}

fn int_of(v: f64) -> Option<i64> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 4.0e15 {
        Some(v as i64)
    } else {
        None
    }
}

pub struct Session {
    pub model: Arc<Model>,
    pub pos: usize,
    pub toks: Vec<u16>,
    heads: Vec<Vec<HeadState>>,
    pub x: Vec<f64>,
    delta: Vec<f64>,
    sc: Scratch,
    pub logits: Vec<f64>,
    uv: Vec<f64>,
}

/// A session that decodes token by token: `Session` (classified heads) and
/// `generic::GSession` (hull heads), so that greedy generation and
/// token-by-token verification are one loop (`generate`, `verify_tokens`).
pub trait Decoder {
    /// the forward pass of `tok` at the next position
    fn feed(&mut self, tok: usize) -> R<()>;
    /// (argmax, margin) of the last fed position; fills `logits`
    fn argmax(&mut self) -> R<(usize, f64)>;
    /// the logits `argmax` computed last
    fn logits(&self) -> &[f64];
    /// positions fed so far
    fn pos(&self) -> usize;
    /// token `t`'s text
    fn token(&self, t: usize) -> &str;
    /// residual stream value at `dim` of the last fed position
    fn resid(&self, dim: usize) -> f64;
}

/// `impl Decoder` for a session type with the inherent `feed` and `argmax`
/// and the fields `logits`, `pos`, `x` and `model.vocab` (both sessions have
/// them), so that the impl is written once.
macro_rules! impl_decoder {
    ($t:ty) => {
        impl $crate::engine::Decoder for $t {
            fn feed(&mut self, tok: usize) -> Result<(), $crate::engine::EngineError> {
                <$t>::feed(self, tok)
            }
            fn argmax(&mut self) -> Result<(usize, f64), $crate::engine::EngineError> {
                <$t>::argmax(self)
            }
            fn logits(&self) -> &[f64] {
                &self.logits
            }
            fn pos(&self) -> usize {
                self.pos
            }
            fn token(&self, t: usize) -> &str {
                &self.model.vocab[t]
            }
            fn resid(&self, dim: usize) -> f64 {
                self.x[dim]
            }
        }
    };
}
pub(crate) use impl_decoder;
impl_decoder!(Session);

/// Greedy generation: up to `max_tokens` tokens, stopping after a halt or
/// trap token (not fed) or when `steps_left` step-ending tokens have been
/// emitted. Returns whether a halt/trap ended it and the step-ending tokens
/// emitted; the ids go to `out`, their text (if asked) to `text`.
pub fn generate<D: Decoder>(
    s: &mut D,
    max_tokens: usize,
    steps_left: u64,
    flags: &[u8],
    out: &mut Vec<u16>,
    text: Option<&mut Vec<u8>>,
) -> R<(bool, u64)> {
    let mut steps = 0u64;
    let mut text = text;
    for _ in 0..max_tokens {
        if steps >= steps_left {
            break;
        }
        let (t, _) = s.argmax()?;
        out.push(t as u16);
        let f = flags[t];
        if let Some(tx) = text.as_deref_mut() {
            tx.extend_from_slice(s.token(t).as_bytes());
            tx.push(if f & F_LINE_END != 0 { b'\n' } else { b' ' });
        }
        if f & F_STEP_END != 0 {
            steps += 1;
        }
        if f & (F_HALT | F_TRAP) != 0 {
            return Ok((true, steps));
        }
        s.feed(t)?;
    }
    Ok((false, steps))
}

/// (index among the checked tokens, position, expected, predicted, margin,
/// expected token's logit, predicted token's logit)
pub type SeqMismatch = (usize, usize, u16, usize, f64, f64, f64);

/// Teacher-forced verification token by token (the generation path): feeds
/// `prompt` into the fresh session `s`, then at every position from the
/// prompt's last token on, the argmax must be the next `reference` token.
/// Returns (tokens checked, first mismatch).
pub fn verify_tokens<D: Decoder>(s: &mut D, prompt: &[u16], reference: &[u16]) -> R<(usize, Option<SeqMismatch>)> {
    if prompt.is_empty() {
        return fail("empty prompt".into());
    }
    for &t in prompt {
        s.feed(t as usize)?;
    }
    let mut checked = 0;
    for (i, &r) in reference.iter().enumerate() {
        let (got, margin) = s.argmax()?;
        checked += 1;
        if got != r as usize {
            let lg = s.logits();
            return Ok((checked, Some((i, s.pos() - 1, r, got, margin, lg[r as usize], lg[got]))));
        }
        if i + 1 < reference.len() {
            s.feed(r as usize)?;
        }
    }
    Ok((checked, None))
}

/// What stops generation (per token class, from the Python side).
pub const F_STEP_END: u8 = 1;
pub const F_HALT: u8 = 2;
pub const F_TRAP: u8 = 4;
pub const F_LINE_END: u8 = 8;

impl Session {
    pub fn new(model: Arc<Model>) -> Session {
        let heads = model
            .layers
            .iter()
            .map(|l| {
                l.heads
                    .iter()
                    .map(|_| HeadState {
                        sum: vec![0.0; model.dv],
                        default: vec![0.0; model.dv],
                        latest: vec![0.0; model.dv],
                        ..Default::default()
                    })
                    .collect()
            })
            .collect();
        let d = model.d;
        let dk = model.dk;
        let dv = model.dv;
        let nv = model.vocab.len();
        let fmax = model.layers.iter().map(|l| l.f).max().unwrap_or(0);
        Session {
            model,
            pos: 0,
            toks: vec![],
            heads,
            x: vec![0.0; d],
            delta: vec![0.0; d],
            sc: Scratch::new(dk.max(dv)),
            logits: vec![0.0; nv],
            uv: vec![0.0; 2 * fmax],
        }
    }

    /// Runs the forward pass for `tok` at the next position; leaves the final
    /// residual in `self.x`.
    pub fn feed(&mut self, tok: usize) -> R<()> {
        self.forward(tok, None)
    }

    /// The forward pass of `feed`; with `capture = (want, out)` it also
    /// appends to `out` the residual at the input of every layer l with
    /// `want[l]`, and the final residual when `want[L]`.
    fn forward(&mut self, tok: usize, mut capture: Option<(&[bool], &mut Vec<f64>)>) -> R<()> {
        let model = self.model.clone();
        let m = &*model;
        if tok >= m.vocab.len() {
            return fail(format!("token id {tok} out of range"));
        }
        let p = self.pos;
        if p >= MAX_POS {
            return fail(format!("position {p} is past the engine's horizon (2**24)"));
        }
        let pi = p as i64;

        self.toks.push(tok as u16);
        let d = m.d;
        self.x.copy_from_slice(&m.embed[tok * d..(tok + 1) * d]);
        for f in &m.posf {
            self.x[f.dim] += crate::model::posfeat(f.kind, f.k, pi);
        }
        let toks = &self.toks;
        let mut bufs = Bufs {
            sc: &mut self.sc,
            delta: &mut self.delta,
            uv: &mut self.uv,
        };
        for (l, st) in self.heads.iter_mut().enumerate() {
            if let Some((want, out)) = capture.as_mut() {
                if want[l] {
                    out.extend_from_slice(&self.x);
                }
            }
            layer_forward(m, l, st, &mut self.x, tok, p, toks, &mut bufs)?;
        }
        if let Some((want, out)) = capture {
            if want[m.layers.len()] {
                out.extend_from_slice(&self.x);
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// Logits of the last fed position; returns (argmax, margin over the runner-up).
    pub fn argmax(&mut self) -> R<(usize, f64)> {
        argmax_row(&self.model, &self.x, &mut self.logits, self.pos.saturating_sub(1))
    }

    /// What both verification forms require: a fresh session, a sequence
    /// inside the horizon, and token ids of the vocabulary.
    fn check_verify_input(&self, seq: &[u16], what: &str) -> R<()> {
        if self.pos != 0 {
            return fail(format!("{what} needs a fresh session"));
        }
        if seq.len() > MAX_POS {
            return fail(format!("{} positions: past the engine's horizon (2**24)", seq.len()));
        }
        let nv = self.model.vocab.len();
        if let Some(&t) = seq.iter().find(|&&t| t as usize >= nv) {
            return fail(format!("token id {t} out of range"));
        }
        Ok(())
    }

    /// Teacher-forced verification in layer-major batches: `seq[i]` is fed at
    /// position i (the session must be fresh); for every i >= `check_from`
    /// with i + 1 < len, the argmax at position i must be seq[i + 1]. All
    /// positions of a chunk go through a layer together: each head sweeps the
    /// chunk's positions in order (insert, then query, as in `feed`), heads
    /// and FFN rows are spread over `threads` threads. Returns (positions
    /// checked, first mismatch (position, predicted, margin, expected logit,
    /// predicted logit)).
    pub fn verify_batch(&mut self, seq: &[u16], check_from: usize, threads: usize) -> R<(usize, Option<Mismatch>)> {
        const CHUNK: usize = 8192;
        self.check_verify_input(seq, "verify_batch")?;
        let model = self.model.clone();
        let m = &*model;
        let nv = m.vocab.len();
        let d = m.d;
        let threads = threads.clamp(1, 16);
        let mut checked = 0usize;
        let mut x = vec![];
        let mut dbufs: Vec<Vec<f64>> = (0..threads).map(|_| vec![]).collect();
        let mut a = 0;
        while a < seq.len() {
            let b = (a + CHUNK).min(seq.len());
            let n = b - a;
            self.toks.extend_from_slice(&seq[a..b]);
            x.clear();
            x.resize(n * d, 0.0);
            for i in 0..n {
                let t = seq[a + i] as usize;
                let row = &mut x[i * d..(i + 1) * d];
                row.copy_from_slice(&m.embed[t * d..(t + 1) * d]);
                for f in &m.posf {
                    row[f.dim] += crate::model::posfeat(f.kind, f.k, (a + i) as i64);
                }
            }
            for (l, layer) in m.layers.iter().enumerate() {
                // attention: heads over threads, one delta buffer per thread
                let toks = &self.toks;
                let xs = &x;
                let mut groups: Vec<Vec<(usize, &mut HeadState)>> = (0..threads).map(|_| vec![]).collect();
                for (hi, st) in self.heads[l].iter_mut().enumerate() {
                    groups[hi % threads].push((hi, st));
                }
                let results: Vec<R<()>> = std::thread::scope(|sc| {
                    let handles: Vec<_> = groups
                        .into_iter()
                        .zip(dbufs.iter_mut())
                        .map(|(g, db)| {
                            sc.spawn(move || -> R<()> {
                                db.clear();
                                db.resize(n * d, 0.0);
                                let mut scr = Scratch::new(m.dk.max(m.dv));
                                for (hi, st) in g {
                                    let h = &layer.heads[hi];
                                    let dv = h.v.ncols();
                                    for i in 0..n {
                                        let p = a + i;
                                        head_step(
                                            m,
                                            l,
                                            h,
                                            st,
                                            &xs[i * d..(i + 1) * d],
                                            seq[p] as usize,
                                            p,
                                            toks,
                                            &mut scr,
                                        )?;
                                        let row = &mut db[i * d..(i + 1) * d];
                                        for c in 0..dv {
                                            let o = scr.ov[c];
                                            if o != 0.0 {
                                                h.o.scatter(c, o, row);
                                            }
                                        }
                                    }
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("engine thread panicked"))
                        .collect()
                });
                for r in results {
                    r?;
                }
                for db in &dbufs {
                    for (xi, di) in x.iter_mut().zip(db) {
                        *xi += *di;
                    }
                }
                // FFN: rows over threads
                let per = n.div_ceil(threads);
                std::thread::scope(|sc| {
                    for rows in x.chunks_mut(per * d) {
                        sc.spawn(move || {
                            let mut uv = vec![0.0; 2 * layer.f];
                            let mut delta = vec![0.0; d];
                            for row in rows.chunks_mut(d) {
                                delta.iter_mut().for_each(|v| *v = 0.0);
                                ffn_delta(layer, row, &mut uv, &mut delta);
                                for (xi, di) in row.iter_mut().zip(&delta) {
                                    *xi += *di;
                                }
                            }
                        });
                    }
                });
            }
            // argmax of the rows to check
            let lo = check_from.max(a).min(b);
            let hi = b.min(seq.len().saturating_sub(1)).max(lo);
            if hi > lo {
                let per = (hi - lo).div_ceil(threads);
                let xs = &x;
                let found: Vec<R<Option<Mismatch>>> = std::thread::scope(|sc| {
                    let hs: Vec<_> = (lo..hi)
                        .step_by(per)
                        .map(|s0| {
                            let e0 = (s0 + per).min(hi);
                            sc.spawn(move || -> R<Option<Mismatch>> {
                                let mut logits = vec![0.0; nv];
                                for p in s0..e0 {
                                    let row = &xs[(p - a) * d..(p - a + 1) * d];
                                    let (got, margin) = argmax_row(m, row, &mut logits, p)?;
                                    let exp = seq[p + 1] as usize;
                                    if got != exp {
                                        return Ok(Some((p, got, margin, logits[exp], logits[got])));
                                    }
                                }
                                Ok(None)
                            })
                        })
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().expect("engine thread panicked"))
                        .collect()
                });
                for r in found {
                    if let Some(mm) = r? {
                        checked += mm.0 - lo + 1;
                        self.pos = b;
                        return Ok((checked, Some(mm)));
                    }
                }
                checked += hi - lo;
            }
            self.pos = b;
            a = b;
        }
        Ok((checked, None))
    }

    /// Teacher-forced verification pipelined over threads: the layers are cut
    /// into `stages` groups, one thread each; a thread runs its layers token by
    /// token over a block of positions and hands the block's residual rows to
    /// the next stage; the last stage also takes the argmax. Same semantics
    /// and result as `verify_batch`.
    pub fn verify_pipeline(
        &mut self,
        seq: &[u16],
        check_from: usize,
        stages: usize,
        cut_at: Option<Vec<usize>>,
    ) -> R<(usize, Option<Mismatch>)> {
        use std::sync::mpsc::sync_channel;
        const BLOCK: usize = 512;
        self.check_verify_input(seq, "verify_pipeline")?;
        let model = self.model.clone();
        let m = &*model;
        let nv = m.vocab.len();
        let d = m.d;
        let nl = m.layers.len();
        let stages = stages.clamp(1, nl);
        // cut points balancing an estimate of each layer's work: FFN weights
        // plus 150 per head; the argmax as 0.3 per unembedding weight (its long
        // rows are vectorised). Calibrated on 2 cores: the default cuts this
        // model after layer 3 (layers 0-2 | 3-4 + argmax), the fastest cut.
        let cost: Vec<f64> = m
            .layers
            .iter()
            .map(|l| (l.fug.nnz() + l.fo.nnz()) as f64 + 150.0 * l.heads.len() as f64)
            .collect();
        let total: f64 = cost.iter().sum::<f64>() + m.unembed_rows.nnz() as f64 * 0.3;
        let mut cuts = vec![0usize];
        let mut acc = 0.0;
        for (l, c) in cost.iter().enumerate() {
            acc += c;
            if cuts.len() < stages && acc >= total * cuts.len() as f64 / stages as f64 && l + 1 < nl {
                cuts.push(l + 1);
            }
        }
        if let Some(c) = cut_at {
            if c.windows(2).any(|w| w[0] >= w[1]) || c.iter().any(|&x| x == 0 || x >= nl) {
                return fail(format!("cut points {c:?}: increasing, inside 1..{nl}"));
            }
            cuts = vec![0];
            cuts.extend(c);
        }
        cuts.push(nl);
        let ns = cuts.len() - 1;
        let mut heads_rest: &mut [Vec<HeadState>] = &mut self.heads;
        let mut groups = vec![];
        for s in 0..ns {
            let (g, rest) = heads_rest.split_at_mut(cuts[s + 1] - cuts[s]);
            groups.push(g);
            heads_rest = rest;
        }
        let result: R<(usize, Option<Mismatch>)> = std::thread::scope(|sc| {
            let mut rx_prev: Option<std::sync::mpsc::Receiver<(usize, Vec<f64>)>> = None;
            let mut handles = vec![];
            for (s, g) in groups.into_iter().enumerate() {
                let (lo, hi) = (cuts[s], cuts[s + 1]);
                let last = s + 1 == ns;
                let (tx, rx) = sync_channel::<(usize, Vec<f64>)>(8);
                let rx_in = rx_prev.take();
                rx_prev = Some(rx);
                handles.push(sc.spawn(move || -> R<(usize, Option<Mismatch>)> {
                    let mut scr = Scratch::new(m.dk.max(m.dv));
                    let mut delta = vec![0.0; d];
                    let fmax = m.layers.iter().map(|l| l.f).max().unwrap_or(0);
                    let mut uv = vec![0.0; 2 * fmax];
                    let mut logits = vec![0.0; nv];
                    let mut checked = 0usize;
                    let mut a = 0;
                    loop {
                        let (a0, mut rows) = match &rx_in {
                            None => {
                                if a >= seq.len() {
                                    break;
                                }
                                let b = (a + BLOCK).min(seq.len());
                                let mut rows = vec![0.0; (b - a) * d];
                                for (i, row) in rows.chunks_mut(d).enumerate() {
                                    let t = seq[a + i] as usize;
                                    row.copy_from_slice(&m.embed[t * d..(t + 1) * d]);
                                    for f in &m.posf {
                                        row[f.dim] += crate::model::posfeat(f.kind, f.k, (a + i) as i64);
                                    }
                                }
                                let a0 = a;
                                a = b;
                                (a0, rows)
                            }
                            Some(r) => match r.recv() {
                                Ok(v) => v,
                                Err(_) => break,
                            },
                        };
                        let n = rows.len() / d;
                        let mut bufs = Bufs {
                            sc: &mut scr,
                            delta: &mut delta,
                            uv: &mut uv,
                        };
                        for (i, row) in rows.chunks_mut(d).enumerate() {
                            let p = a0 + i;
                            for l in lo..hi {
                                // an error ends this stage; the later stages finish the blocks
                                // already handed on (an earlier mismatch there takes precedence)
                                layer_forward(m, l, &mut g[l - lo], row, seq[p] as usize, p, seq, &mut bufs)?;
                            }
                        }
                        if last {
                            let c0 = check_from.max(a0);
                            let c1 = (a0 + n).min(seq.len() - 1);
                            for p in c0..c1.max(c0) {
                                let row = &rows[(p - a0) * d..(p - a0 + 1) * d];
                                let (got, margin) = argmax_row(m, row, &mut logits, p)?;
                                checked += 1;
                                let exp = seq[p + 1] as usize;
                                if got != exp {
                                    return Ok((checked, Some((p, got, margin, logits[exp], logits[got]))));
                                }
                            }
                        } else if tx.send((a0, rows)).is_err() {
                            break;
                        }
                    }
                    Ok((checked, None))
                }));
            }
            drop(rx_prev);
            let results: Vec<R<(usize, Option<Mismatch>)>> = handles
                .into_iter()
                .map(|h| h.join().expect("engine thread panicked"))
                .collect();
            let mut results = results.into_iter().rev();
            let last = results.next().expect("at least one stage");
            match last {
                Ok((c, Some(mm))) => Ok((c, Some(mm))),
                Err(e) => Err(e),
                Ok(v) => {
                    // an earlier stage's error (it stopped the pipeline before the end)
                    for r in results {
                        r?;
                    }
                    Ok(v)
                }
            }
        });
        self.toks.extend_from_slice(seq);
        self.pos = seq.len();
        result
    }

    pub fn stats(&self) -> Vec<(String, usize, u64)> {
        let mut v = vec![];
        for (l, layer) in self.model.layers.iter().enumerate() {
            for (hi, h) in layer.heads.iter().enumerate() {
                v.push((h.name.clone(), self.heads[l][hi].map.len(), self.heads[l][hi].misses));
            }
        }
        v
    }
}

/// The float64 model's attention output, computed over every stored position
/// (scores q.k * scale, softmax, weighted sum of the values).
fn softmax_brute(keys: &[f64], vals: &[f64], n: usize, dv: usize, q: &[f64], scale: f64, out: &mut [f64]) {
    let np = keys.len() / n;
    let mut s: Vec<f64> = (0..np)
        .map(|j| (0..n).map(|c| q[c] * keys[j * n + c]).sum::<f64>() * scale)
        .collect();
    let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut tot = 0.0;
    for v in s.iter_mut() {
        *v = (*v - mx).exp();
        tot += *v;
    }
    out[..dv].iter_mut().for_each(|v| *v = 0.0);
    for j in 0..np {
        let a = s[j] / tot;
        if a != 0.0 {
            for c in 0..dv {
                out[c] += a * vals[j * dv + c];
            }
        }
    }
}

#[inline]
fn values(h: &crate::model::HeadDef, x: &[f64], out: &mut [f64]) {
    for c in 0..h.v.ncols() {
        out[c] = h.v.dot(c, x);
    }
}

#[inline]
fn store(st: &mut HeadState, a: u64, vals: &[f64], dup: bool) {
    let dv = vals.len();
    match st.map.get_mut(&a) {
        Some(e) => {
            let o = e.off as usize;
            st.arena[o..o + dv].copy_from_slice(vals);
            e.dup |= dup;
        }
        None => {
            let off = st.arena.len() as u32;
            st.arena.extend_from_slice(vals);
            st.map.insert(a, Entry { off, dup });
        }
    }
}

/// Scratch vectors of one head evaluation.
pub struct Scratch {
    kv: Vec<f64>,
    vv: Vec<f64>,
    pub ov: Vec<f64>,
}

impl Scratch {
    pub fn new(n: usize) -> Scratch {
        Scratch {
            kv: vec![0.0; n],
            vv: vec![0.0; n],
            ov: vec![0.0; n],
        }
    }
}

/// One head at position `p` (token `tok`, residual `x` at this layer):
/// inserts the position's key/value into the head's cache, then answers the
/// position's query into `sc.ov`. `toks` holds the tokens of positions < p
/// (at least).
#[allow(clippy::too_many_arguments)]
fn head_step(
    m: &Model,
    l: usize,
    h: &crate::model::HeadDef,
    st: &mut HeadState,
    x: &[f64],
    tok: usize,
    p: usize,
    toks: &[u16],
    sc: &mut Scratch,
) -> R<()> {
    let pi = p as i64;
    let pf = p as f64;
    let dv = h.v.ncols();
    match h.kind {
        Kind::Avg => {
            let inv = (p + 1) as f64;
            for c in 0..dv {
                if h.v.is_empty_col(c) {
                    sc.ov[c] = 0.0;
                    continue;
                }
                let v = h.v.dot(c, x);
                if int_of(v).is_none() {
                    return fail(format!(
                        "avg head {}: value {v} at position {p} is not an integer",
                        h.name
                    ));
                }
                st.sum[c] += v;
                sc.ov[c] = st.sum[c] / inv;
            }
        }
        Kind::Latest0 => {
            let r = h.k.dot(0, x) - DELTA * pf;
            if p == 0 {
                if r != -0.5 {
                    return fail(format!("head {}: the default key scores {r}, not -1/2", h.name));
                }
                values(h, x, &mut st.default);
            } else {
                let w = r + 1.0;
                if w == 1.0 {
                    values(h, x, &mut st.latest);
                    if st.latest.iter().any(|v| v.is_nan()) {
                        return fail(format!("head {}: undefined value written at {p}", h.name));
                    }
                    st.has_latest = true;
                } else if w != 0.0 {
                    return fail(format!("head {}: write flag {w} at position {p}", h.name));
                }
            }
            let src = if st.has_latest { &st.latest } else { &st.default };
            sc.ov[..dv].copy_from_slice(&src[..dv]);
        }
        Kind::Latest => {
            let mm = h.m;
            for c in 0..mm + 3 {
                sc.kv[c] = h.k.dot(c, x);
            }
            let nlb = sc.kv[mm + 1];
            let lb = if nlb == 1.0 {
                0.0
            } else if nlb == 0.0 {
                1.0
            } else {
                return fail(format!("head {}: 1 - lb = {nlb} at position {p}", h.name));
            };
            if (lb == 1.0) != (p == 0) {
                return fail(format!("head {}: the `{{` marker at position {p}", h.name));
            }
            let w = sc.kv[mm + 2] - DELTA * pf + 1.0 - 0.5 * lb;
            if p == 0 {
                if w != 0.0 || sc.kv[..mm + 1].iter().any(|&v| v != 0.0) {
                    return fail(format!("head {}: the default key is not (0, .., -1/2)", h.name));
                }
                values(h, x, &mut st.default);
            } else if w == 1.0 {
                let (a, sq) = pack_key(&sc.kv[..mm], &h.name, p)?;
                if int_of(sc.kv[mm]).map(|v| v as i128) != Some(sq) {
                    return fail(format!(
                        "head {}: key's square term {} != {sq} at position {p}",
                        h.name, sc.kv[mm]
                    ));
                }
                values(h, x, &mut sc.vv);
                if sc.vv[..dv].iter().any(|v| v.is_nan()) {
                    return fail(format!("head {}: undefined value written at {p}", h.name));
                }
                store(st, a, &sc.vv[..dv], false);
            } else if w != 0.0 {
                return fail(format!("head {}: write flag {w} at position {p}", h.name));
            }
            // query [2b.., -1, -sum b^2, 1]
            let mut a: u64 = 0;
            let mut sq: i128 = 0;
            let mut defined = true;
            let mut in_range = true;
            for c in 0..mm {
                let b = h.q.dot(c, x) * 0.5;
                match int_of(b) {
                    Some(i) => {
                        if i >= 0 && i < (1 << KEY_BITS) {
                            a |= (i as u64) << (KEY_BITS * c as u32);
                        } else {
                            in_range = false;
                        }
                        sq += (i as i128) * (i as i128);
                    }
                    None => defined = false,
                }
            }
            if defined {
                let qsq = h.q.dot(mm + 1, x);
                if int_of(-qsq).map(|v| v as i128) != Some(sq) {
                    defined = false;
                }
            }
            if !defined {
                sc.ov[..dv].iter_mut().for_each(|v| *v = f64::NAN);
            } else {
                let e = if in_range { st.map.get(&a).copied() } else { None };
                match e {
                    Some(e) => {
                        let o = e.off as usize;
                        sc.ov[..dv].copy_from_slice(&st.arena[o..o + dv]);
                    }
                    None => sc.ov[..dv].copy_from_slice(&st.default[..dv]),
                }
            }
        }
        Kind::UniquePos => {
            let k0 = h.k.dot(0, x);
            let k1 = h.k.dot(1, x);
            if k0 != pf || k1 != pf * pf {
                return fail(format!("head {}: positional key ({k0}, {k1}) at position {p}", h.name));
            }
            if l > 0 {
                for &dd in &h.vdims {
                    if x[dd] != m.x0(tok, pi, dd) {
                        return fail(format!(
                            "head {}: value dim {dd} no longer holds its layer-0 feature at position {p}",
                            h.name
                        ));
                    }
                }
            }
            let b = h.q.dot(0, x) * 0.5;
            let r = b.round();
            let j = if b.is_nan() {
                None
            } else if r < 0.0 {
                Some(0usize)
            } else if r > pf {
                Some(p)
            } else if (b - r).abs() <= 0.25 {
                Some(r as usize)
            } else {
                None
            };
            match j {
                None => sc.ov[..dv].iter_mut().for_each(|v| *v = f64::NAN),
                Some(j) => {
                    let tj = if j == p { tok } else { toks[j] as usize };
                    let ji = j as i64;
                    for c in 0..dv {
                        let (ii, ww) = h.v.col(c);
                        let mut s = 0.0;
                        for (&i, &w) in ii.iter().zip(ww) {
                            s += m.x0(tj, ji, i as usize) * w;
                        }
                        sc.ov[c] = s;
                    }
                }
            }
        }
        Kind::UniqueKeyed => {
            let mm = h.m;
            let n = mm + 1 + h.has_w as usize;
            for c in 0..n {
                sc.kv[c] = h.k.dot(c, x);
            }
            let w = if h.has_w { sc.kv[mm + 1] / MISS + 1.0 } else { 1.0 };
            if p < FULL_KV {
                st.full_k.extend_from_slice(&sc.kv[..n]);
                values(h, x, &mut sc.vv);
                st.full_v.extend_from_slice(&sc.vv[..dv]);
            }
            if w == 1.0 {
                let (a, sq) = pack_key(&sc.kv[..mm], &h.name, p)?;
                if int_of(sc.kv[mm]).map(|v| v as i128) != Some(sq) {
                    return fail(format!("head {}: key's square term at position {p}", h.name));
                }
                values(h, x, &mut sc.vv);
                if sc.vv[..dv].iter().any(|v| v.is_nan()) {
                    return fail(format!("head {}: undefined value written at {p}", h.name));
                }
                let dup = st.map.contains_key(&a);
                store(st, a, &sc.vv[..dv], dup);
            } else if w != 0.0 {
                return fail(format!("head {}: write flag {w} at position {p}", h.name));
            }
            let mut a: u64 = 0;
            let mut ok = true;
            for c in 0..mm {
                let b = h.q.dot(c, x) * 0.5;
                let r = b.round();
                if !((b - r).abs() <= 0.25) || r < 0.0 || r >= (1u64 << KEY_BITS) as f64 {
                    ok = false;
                    break;
                }
                a |= (r as u64) << (KEY_BITS * c as u32);
            }
            let e = if ok { st.map.get(&a).copied() } else { None };
            match e {
                Some(e) if !e.dup => {
                    let o = e.off as usize;
                    sc.ov[..dv].copy_from_slice(&st.arena[o..o + dv]);
                }
                _ => {
                    st.misses += 1;
                    if p < FULL_KV {
                        for c in 0..n {
                            sc.kv[c] = h.q.dot(c, x);
                        }
                        softmax_brute(&st.full_k, &st.full_v, n, dv, &sc.kv[..n], m.scale, &mut sc.ov);
                    } else {
                        sc.ov[..dv].iter_mut().for_each(|v| *v = f64::NAN);
                    }
                }
            }
        }
    }
    Ok(())
}

/// (position, predicted token, margin, expected token's logit, predicted token's logit)
pub type Mismatch = (usize, usize, f64, f64, f64);

/// Logits of one final residual row; (argmax (first of equal maxima), margin over the runner-up).
fn argmax_row(m: &Model, x: &[f64], logits: &mut [f64], p: usize) -> R<(usize, f64)> {
    argmax_logits(&m.unembed_rows, x, logits, p)
}

/// `logits` = x · unembed (position `p`, for the error); (argmax (the first
/// maximum, as torch.argmax, so token 0 when every logit is -inf), margin
/// over the runner-up). A NaN logit is an error. Shared with `generic.rs`.
pub fn argmax_logits(unembed_rows: &HybridRows, x: &[f64], logits: &mut [f64], p: usize) -> R<(usize, f64)> {
    let mut best = f64::NEG_INFINITY;
    let mut second = f64::NEG_INFINITY;
    let mut bi = usize::MAX;
    logits.iter_mut().for_each(|v| *v = 0.0);
    unembed_rows.apply(x, logits);
    for (t, &s) in logits.iter().enumerate() {
        if s.is_nan() {
            return fail(format!("undefined logit for token {t} at position {p}"));
        }
        if s > best || bi == usize::MAX {
            second = best;
            best = s;
            bi = t;
        } else if s > second {
            second = s;
        }
    }
    Ok((bi, best - second))
}

/// Scratch buffers of one forward pass.
/// The FFN of one residual row, added into `delta`: h = relu(x Wu) * (x Wv),
/// delta += h Wo (NaN propagates through relu). `uv`: scratch of 2·f.
fn ffn_delta(layer: &crate::model::Layer, x: &[f64], uv: &mut [f64], delta: &mut [f64]) {
    reglu_delta(layer.f, &layer.fug, &layer.active, &layer.fo, x, uv, delta);
}

/// `ffn_delta` on the FFN's parts, shared with `generic.rs` (whose layers
/// are another type): `fug` = [W_u | W_v] by input row, `active` the neurons
/// that can be nonzero, `fo` = W_o.
pub fn reglu_delta(
    f: usize,
    fug: &HybridRows,
    active: &[u32],
    fo: &SpRows,
    x: &[f64],
    uv: &mut [f64],
    delta: &mut [f64],
) {
    uv[..2 * f].iter_mut().for_each(|v| *v = 0.0);
    fug.apply(x, uv);
    for &j in active {
        let j = j as usize;
        let u = uv[j];
        let hv = if u > 0.0 {
            u * uv[f + j]
        } else if u.is_nan() {
            f64::NAN
        } else {
            0.0
        };
        if hv != 0.0 {
            fo.scatter(j, hv, delta);
        }
    }
}

pub struct Bufs<'a> {
    pub sc: &'a mut Scratch,
    pub delta: &'a mut Vec<f64>,
    pub uv: &'a mut Vec<f64>,
}

/// Layer `l` at position `p` (token `tok`): attention (every head inserts
/// then queries its cache; outputs through W_o added to x together), then the
/// FFN. `toks[j]` must be the token at position j for every j <= p.
#[allow(clippy::too_many_arguments)]
pub fn layer_forward(
    m: &Model,
    l: usize,
    heads: &mut [HeadState],
    x: &mut [f64],
    tok: usize,
    p: usize,
    toks: &[u16],
    b: &mut Bufs,
) -> R<()> {
    let layer = &m.layers[l];
    let delta = &mut **b.delta;
    delta.iter_mut().for_each(|v| *v = 0.0);
    for (hi, h) in layer.heads.iter().enumerate() {
        let dv = h.v.ncols();
        head_step(m, l, h, &mut heads[hi], x, tok, p, toks, b.sc)?;
        for c in 0..dv {
            let o = b.sc.ov[c];
            if o != 0.0 {
                h.o.scatter(c, o, delta);
            }
        }
    }
    for (xi, di) in x.iter_mut().zip(delta.iter()) {
        *xi += *di;
    }
    delta.iter_mut().for_each(|v| *v = 0.0);
    ffn_delta(layer, x, &mut **b.uv, delta);
    for (xi, di) in x.iter_mut().zip(delta.iter()) {
        *xi += *di;
    }
    Ok(())
}

impl Session {
    /// `feed` of `tok` that also appends to `out` the residual stream at the
    /// input of every layer l with `want[l]` (l = 0..L-1, in order), and the
    /// final residual (after the last layer) when `want[L]`: the values
    /// `feed` computes, copied out as they pass (for the dense-attention
    /// check of the PyTorch module, `transformer/torch_check.py`).
    pub fn feed_layers(&mut self, tok: usize, want: &[bool], out: &mut Vec<f64>) -> R<()> {
        let nl = self.model.layers.len();
        if want.len() != nl + 1 {
            return fail(format!("feed_layers: {} layer flags, expected {}", want.len(), nl + 1));
        }
        self.forward(tok, Some((want, out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact fallback of a keyed lookup is the float64 model itself:
    /// softmax over every stored position, then the weighted sum of values.
    #[test]
    fn softmax_brute_is_the_softmax_average() {
        let (n, dv) = (2, 3);
        let keys = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, -1.0, 2.0];
        let vals = [1.0, 2.0, 3.0, -4.0, 5.0, 0.25, 8.0, -1.5, 0.0, 2.0, 2.0, 7.0];
        let q = [0.75, -0.5];
        for scale in [0.5, 1.0, 3.0] {
            let mut out = [f64::NAN; 3];
            softmax_brute(&keys, &vals, n, dv, &q, scale, &mut out);
            let s: Vec<f64> = (0..4).map(|j| (q[0] * keys[2 * j] + q[1] * keys[2 * j + 1]) * scale).collect();
            let z: f64 = s.iter().map(|v| v.exp()).sum();
            for c in 0..dv {
                let want: f64 = (0..4).map(|j| s[j].exp() / z * vals[j * dv + c]).sum();
                assert!((out[c] - want).abs() < 1e-12, "scale {scale} column {c}: {} vs {want}", out[c]);
            }
        }
        // a hardmax at a large scale: the one best key's value, exactly
        let mut out = [0.0; 3];
        softmax_brute(&keys, &vals, n, dv, &[1.0, 0.0], 1e6, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
    }
}
