//! Loading the analytic transformer (model.safetensors + config.json) into
//! sparse matrices, and recognising every attention head's structure.
//!
//! Nothing here approximates: a head whose weights do not have one of the
//! shapes below is refused at load time (`Err`), and the per-position checks
//! in `engine.rs` refuse any key or query that leaves the shape at run time.

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

/// Tie-break bonus per position in `latest` heads (transformer/graph.py DELTA).
pub const DELTA: f64 = 1.0 / 67_108_864.0; // 2**-26
/// `unique` heads' exclusion of non-writes (graph.py MISS).
pub const MISS: f64 = 4.0;
/// Key components of lookups are packed 21 bits each (at most 3 components).
pub const KEY_BITS: u32 = 21;

/// Sparse matrix stored by output column: y[c] = sum over (i, w) in column c of x[i] * w.
#[derive(Clone, Debug, Default)]
pub struct SpCols {
    pub ptr: Vec<u32>,
    pub idx: Vec<u32>,
    pub val: Vec<f64>,
}

impl SpCols {
    pub fn build(rows: usize, cols: usize, get: impl Fn(usize, usize) -> f64) -> SpCols {
        let mut s = SpCols {
            ptr: vec![0],
            idx: vec![],
            val: vec![],
        };
        for c in 0..cols {
            for r in 0..rows {
                let w = get(r, c);
                if w != 0.0 {
                    s.idx.push(r as u32);
                    s.val.push(w);
                }
            }
            s.ptr.push(s.idx.len() as u32);
        }
        s
    }
    #[inline]
    pub fn ncols(&self) -> usize {
        self.ptr.len() - 1
    }
    #[inline]
    pub fn col(&self, c: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.ptr[c] as usize, self.ptr[c + 1] as usize);
        (&self.idx[a..b], &self.val[a..b])
    }
    #[inline(always)]
    pub fn dot(&self, c: usize, x: &[f64]) -> f64 {
        let (a, b) = (self.ptr[c] as usize, self.ptr[c + 1] as usize);
        let mut s = 0.0;
        for (&i, &w) in self.idx[a..b].iter().zip(&self.val[a..b]) {
            debug_assert!((i as usize) < x.len());
            // SAFETY: every index is a row of the matrix (< d, checked by
            // `check_rows`) and every x passed in has length d.
            s += unsafe { *x.get_unchecked(i as usize) } * w;
        }
        s
    }
    pub fn check_rows(&self, d: usize) -> bool {
        self.idx.iter().all(|&i| (i as usize) < d)
    }
    pub fn is_empty_col(&self, c: usize) -> bool {
        self.ptr[c] == self.ptr[c + 1]
    }
    /// Column c is exactly `value * x[one]`.
    pub fn is_const(&self, c: usize, one: usize, value: f64) -> bool {
        let (i, w) = self.col(c);
        i.len() == 1 && i[0] as usize == one && w[0] == value
    }
    pub fn nnz(&self) -> usize {
        self.idx.len()
    }
}

/// Sparse matrix stored by input row (scatter form): for (o, w) in row r, y[o] += h[r] * w.
#[derive(Clone, Debug, Default)]
pub struct SpRows {
    pub ptr: Vec<u32>,
    pub idx: Vec<u32>,
    pub val: Vec<f64>,
    /// the rows with at least one entry
    pub nonempty: Vec<u32>,
}

impl SpRows {
    pub fn build(rows: usize, cols: usize, get: impl Fn(usize, usize) -> f64) -> SpRows {
        let mut s = SpRows {
            ptr: vec![0],
            idx: vec![],
            val: vec![],
            nonempty: vec![],
        };
        for r in 0..rows {
            for c in 0..cols {
                let w = get(r, c);
                if w != 0.0 {
                    s.idx.push(c as u32);
                    s.val.push(w);
                }
            }
            s.ptr.push(s.idx.len() as u32);
            if s.ptr[r + 1] > s.ptr[r] {
                s.nonempty.push(r as u32);
            }
        }
        s
    }
    #[inline(always)]
    pub fn scatter(&self, r: usize, h: f64, y: &mut [f64]) {
        let (a, b) = (self.ptr[r] as usize, self.ptr[r + 1] as usize);
        for (&i, &w) in self.idx[a..b].iter().zip(&self.val[a..b]) {
            y[i as usize] += h * w;
        }
    }
    /// y += x W over the nonzero entries of x (no dependency chains: each
    /// product lands in its own output)
    #[inline(always)]
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        for &r in &self.nonempty {
            let xr = x[r as usize];
            if xr != 0.0 {
                self.scatter(r as usize, xr, y);
            }
        }
    }
    pub fn row_empty(&self, r: usize) -> bool {
        self.ptr[r] == self.ptr[r + 1]
    }
    pub fn nnz(&self) -> usize {
        self.idx.len()
    }
}

/// y += x W with W's long rows stored dense (vectorised axpy) and the rest sparse.
#[derive(Clone, Debug, Default)]
pub struct HybridRows {
    pub cols: usize,
    pub dense: Vec<(usize, Vec<f64>)>,
    pub sparse: SpRows,
}

impl HybridRows {
    pub fn build(rows: usize, cols: usize, get: impl Fn(usize, usize) -> f64) -> HybridRows {
        let long: Vec<bool> = (0..rows)
            .map(|r| (0..cols).filter(|&c| get(r, c) != 0.0).count() * 4 > cols)
            .collect();
        let dense = (0..rows)
            .filter(|&r| long[r])
            .map(|r| (r, (0..cols).map(|c| get(r, c)).collect()))
            .collect();
        let sparse = SpRows::build(rows, cols, |r, c| if long[r] { 0.0 } else { get(r, c) });
        HybridRows { cols, dense, sparse }
    }
    #[inline(always)]
    pub fn apply(&self, x: &[f64], y: &mut [f64]) {
        let y = &mut y[..self.cols];
        for (r, row) in &self.dense {
            let xr = x[*r];
            if xr != 0.0 {
                axpy(xr, row, y);
            }
        }
        self.sparse.apply(x, y);
    }
    pub fn nnz(&self) -> usize {
        self.sparse.nnz()
            + self
                .dense
                .iter()
                .map(|(_, r)| r.iter().filter(|&&w| w != 0.0).count())
                .sum::<usize>()
    }
}

/// y += a * w (separate multiply and add, no FMA: the same rounding everywhere).
#[inline(always)]
fn axpy(a: f64, w: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { axpy_avx2(a, w, y) };
            return;
        }
    }
    for (yi, &wi) in y.iter_mut().zip(w) {
        *yi += a * wi;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(a: f64, w: &[f64], y: &mut [f64]) {
    for (yi, &wi) in y.iter_mut().zip(w) {
        *yi += a * wi;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Constant keys: the uniform average over positions 0..i (running sums).
    Avg,
    /// `latest` with no address: the latest write, else the default (position 0).
    Latest0,
    /// `latest` exact-match lookup on m integer components (latest write wins;
    /// default at position 0 when no write matches).
    Latest,
    /// `unique` lookup whose keys are the positions themselves (every position
    /// writes key j): the winner is the position nearest the (real) query.
    UniquePos,
    /// `unique` lookup with a write flag and m integer components: the one
    /// write whose key is the query rounded.
    UniqueKeyed,
}

#[derive(Clone, Debug)]
pub struct HeadDef {
    pub name: String,
    pub kind: Kind,
    pub m: usize,
    pub has_w: bool,
    pub q: SpCols,
    pub k: SpCols,
    pub v: SpCols,
    pub o: SpRows,
    /// residual dimensions the values read
    pub vdims: Vec<usize>,
    /// values recomputed from (token, position) at the winning position (no
    /// storage); verified at every insert for heads past layer 0
    pub recompute: bool,
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub heads: Vec<HeadDef>,
    pub fu: SpCols,
    pub fg: SpCols,
    pub fo: SpRows,
    pub f: usize,
    /// the neurons with a nonzero gate input and output (the rest are padding)
    pub active: Vec<u32>,
    /// [Wu | Wv] by input row (d -> 2F)
    pub fug: HybridRows,
}

#[derive(Clone, Copy, Debug)]
pub struct PosFeat {
    pub dim: usize,
    pub kind: u8, // 0 pos, 1 sq, 2 lo, 3 hi, 4 byte
    pub k: i64,
}

/// PosFeat.kind of a config.json pos_features kind name (both loaders).
pub fn pos_kind(name: &str) -> Option<u8> {
    Some(match name {
        "pos" => 0,
        "sq" => 1,
        "lo" => 2,
        "hi" => 3,
        "byte" => 4,
        _ => return None,
    })
}

#[inline]
pub fn posfeat(kind: u8, k: i64, p: i64) -> f64 {
    (match kind {
        0 => p + k,
        1 => p * p,
        2 => {
            if p >= k {
                (p - k) & 255
            } else {
                0
            }
        }
        3 => {
            if p >= k {
                (p - k) >> 8
            } else {
                0
            }
        }
        _ => (p >> (8 * k)) & 255,
    }) as f64
}

pub struct Model {
    pub d: usize,
    pub dk: usize,
    pub dv: usize,
    pub vocab: Vec<String>,
    pub embed: Vec<f64>, // V x d
    pub unembed: SpCols, // d -> V
    pub unembed_rows: HybridRows,
    pub posf: Vec<PosFeat>,
    /// per residual dim: index into posf, if a positional feature lives there at layer 0
    pub pos_of_dim: Vec<Option<usize>>,
    pub layers: Vec<Layer>,
    pub one: usize,
    pub pos_dim: usize,
    pub sq_dim: usize,
    pub scale: f64,
    pub config: Value,
}

pub(crate) fn tensor(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f64>, String> {
    let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    if t.dtype() != Dtype::F64 {
        return Err(format!("{name}: dtype {:?}, expected F64", t.dtype()));
    }
    if t.shape() != shape {
        return Err(format!("{name}: shape {:?}, expected {:?}", t.shape(), shape));
    }
    let b = t.data();
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

pub(crate) fn cfg_usize(c: &Value, k: &str) -> Result<usize, String> {
    c.get(k)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .ok_or_else(|| format!("config.json: missing or non-integer {k}"))
}

pub(crate) fn read_config(dir: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| format!("config.json: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("config.json: {e}"))
}

/// What both loaders (`Model::load` here, `generic::GModel::load`) read the
/// same way from config.json (transformer/MODEL_FORMAT.md): the shapes, the
/// softmax scale and the vocabulary. Checks only one loader makes stay there.
pub struct Config {
    /// config.json as parsed, for the fields only one loader reads
    pub json: Value,
    pub d: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub dk: usize,
    pub dv: usize,
    pub f: usize,
    pub nv: usize,
    pub scale: f64,
    pub vocab: Vec<String>,
}

impl Config {
    /// Reads `dir`'s config.json and model.safetensors and hands both to
    /// `build` (a callback because the tensors borrow the file's bytes).
    pub fn load<T>(dir: &Path, build: impl FnOnce(Config, &SafeTensors) -> Result<T, String>) -> Result<T, String> {
        let json = read_config(dir)?;
        let bytes = std::fs::read(dir.join("model.safetensors")).map_err(|e| format!("model.safetensors: {e}"))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("model.safetensors: {e}"))?;
        let cfg = Config::parse(json)?;
        build(cfg, &st)
    }

    fn parse(json: Value) -> Result<Config, String> {
        let d = cfg_usize(&json, "d_model")?;
        let n_layers = cfg_usize(&json, "n_layers")?;
        let n_heads = cfg_usize(&json, "n_heads")?;
        let dk = cfg_usize(&json, "d_head_qk")?;
        let dv = cfg_usize(&json, "d_head_v")?;
        let f = cfg_usize(&json, "d_ffn")?;
        let nv = cfg_usize(&json, "vocab_size")?;
        let scale = json
            .get("attn_scale")
            .and_then(|v| v.as_f64())
            .ok_or("config.json: missing attn_scale")?;
        let vocab: Vec<String> = json
            .get("vocab")
            .and_then(|v| v.as_array())
            .ok_or("config.json: missing vocab")?
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or("config.json: vocab entries must be strings")
            })
            .collect::<Result<_, _>>()?;
        if vocab.len() != nv || nv > u16::MAX as usize {
            return Err(format!(
                "config.json: {} vocab entries for vocab_size {nv}",
                vocab.len()
            ));
        }
        Ok(Config {
            json,
            d,
            n_layers,
            n_heads,
            dk,
            dv,
            f,
            nv,
            scale,
            vocab,
        })
    }

    /// (d_model, n_layers, n_heads, d_head_qk, d_head_v, d_ffn, vocab_size)
    pub fn shape(&self) -> (usize, usize, usize, usize, usize, usize, usize) {
        (self.d, self.n_layers, self.n_heads, self.dk, self.dv, self.f, self.nv)
    }

    /// head_names[layer][i] (empty where config.json has none)
    pub fn head_names(&self) -> Vec<Vec<String>> {
        self.json
            .get("head_names")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|l| {
                        l.as_array()
                            .map(|x| x.iter().map(|s| s.as_str().unwrap_or("?").to_string()).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Layer `l`'s attention weights [W_q, W_k, W_v, W_o] (heads x d x dk, ..., heads x dv x d).
    pub fn attn_tensors(&self, st: &SafeTensors, l: usize) -> Result<[Vec<f64>; 4], String> {
        let (nh, d, dk, dv) = (self.n_heads, self.d, self.dk, self.dv);
        Ok([
            tensor(st, &format!("layers.{l}.attn.wq"), &[nh, d, dk])?,
            tensor(st, &format!("layers.{l}.attn.wk"), &[nh, d, dk])?,
            tensor(st, &format!("layers.{l}.attn.wv"), &[nh, d, dv])?,
            tensor(st, &format!("layers.{l}.attn.wo"), &[nh, dv, d])?,
        ])
    }

    /// Layer `l`'s FFN weights [W_u, W_v, W_o] (d x f, d x f, f x d).
    pub fn ffn_tensors(&self, st: &SafeTensors, l: usize) -> Result<[Vec<f64>; 3], String> {
        let (d, f) = (self.d, self.f);
        Ok([
            tensor(st, &format!("layers.{l}.ffn.wu"), &[d, f])?,
            tensor(st, &format!("layers.{l}.ffn.wv"), &[d, f])?,
            tensor(st, &format!("layers.{l}.ffn.wo"), &[f, d])?,
        ])
    }
}

impl Model {
    pub fn load(dir: &Path) -> Result<Model, String> {
        Config::load(dir, Model::build)
    }

    fn build(conf: Config, st: &SafeTensors) -> Result<Model, String> {
        let (d, nl, nh, dk, dv, f, nv) = conf.shape();
        let cfg = &conf.json;
        let one = cfg_usize(cfg, "one_dim")?;
        let mut posf = vec![];
        for p in cfg
            .get("pos_features")
            .and_then(|v| v.as_array())
            .ok_or("config: pos_features")?
        {
            let a = p.as_array().ok_or("pos_features")?;
            let dim = a[0].as_u64().ok_or("pos_features dim")? as usize;
            let name = a[1].as_str().ok_or("pos_features kind")?;
            let kind = pos_kind(name).ok_or_else(|| format!("unknown positional feature {name}"))?;
            let k = a[2].as_i64().ok_or("pos_features k")?;
            posf.push(PosFeat { dim, kind, k });
        }
        let mut pos_of_dim = vec![None; d];
        for (i, p) in posf.iter().enumerate() {
            if pos_of_dim[p.dim].is_some() {
                return Err(format!("two positional features in dim {}", p.dim));
            }
            pos_of_dim[p.dim] = Some(i);
        }
        let pos_dim = posf
            .iter()
            .find(|p| p.kind == 0 && p.k == 0)
            .ok_or("no position feature")?
            .dim;
        let sq_dim = posf.iter().find(|p| p.kind == 1).ok_or("no pos**2 feature")?.dim;
        let embed = tensor(st, "embed", &[nv, d])?;
        for t in 0..nv {
            if embed[t * d + one] != 1.0 {
                return Err("embedding: the constant-one dimension is not 1".into());
            }
            for p in &posf {
                if embed[t * d + p.dim] != 0.0 {
                    return Err("embedding writes into a positional dimension".into());
                }
            }
        }
        let u = tensor(st, "unembed", &[d, nv])?;
        let unembed = SpCols::build(d, nv, |r, c| u[r * nv + c]);
        let unembed_rows = HybridRows::build(d, nv, |r, c| u[r * nv + c]);
        if !unembed.check_rows(d) {
            return Err("unembed: row index out of range".into());
        }
        let names = conf.head_names();
        let mut layers = vec![];
        for l in 0..nl {
            let [wq, wk, wv, wo] = conf.attn_tensors(st, l)?;
            let mut heads = vec![];
            for h in 0..nh {
                let q = SpCols::build(d, dk, |r, c| wq[(h * d + r) * dk + c]);
                let k = SpCols::build(d, dk, |r, c| wk[(h * d + r) * dk + c]);
                let v = SpCols::build(d, dv, |r, c| wv[(h * d + r) * dv + c]);
                let o = SpRows::build(dv, d, |r, c| wo[(h * dv + r) * d + c]);
                if q.nnz() + k.nnz() + v.nnz() + o.nnz() == 0 {
                    continue; // an unused head slot
                }
                let name = names
                    .get(l)
                    .and_then(|x| x.get(heads.len()))
                    .cloned()
                    .unwrap_or(format!("{l}.{h}"));
                heads.push(analyse(name, l, q, k, v, o, one, pos_dim, sq_dim)?);
            }
            let [fu_, fg_, fo_] = conf.ffn_tensors(st, l)?;
            let fu = SpCols::build(d, f, |r, c| fu_[r * f + c]);
            let fg = SpCols::build(d, f, |r, c| fg_[r * f + c]);
            let fo = SpRows::build(f, d, |r, c| fo_[r * d + c]);
            let active = (0..f)
                .filter(|&j| !fu.is_empty_col(j) && !fg.is_empty_col(j) && !fo.row_empty(j))
                .map(|j| j as u32)
                .collect();
            if !(fu.check_rows(d) && fg.check_rows(d)) {
                return Err("ffn: row index out of range".into());
            }
            for h in &heads {
                if !(h.q.check_rows(d) && h.k.check_rows(d) && h.v.check_rows(d)) {
                    return Err("attention: row index out of range".into());
                }
            }
            let fug = HybridRows::build(d, 2 * f, |r, c| if c < f { fu_[r * f + c] } else { fg_[r * f + c - f] });
            layers.push(Layer {
                heads,
                fu,
                fg,
                fo,
                f,
                active,
                fug,
            });
        }
        Ok(Model {
            d,
            dk,
            dv,
            vocab: conf.vocab,
            embed,
            unembed,
            unembed_rows,
            posf,
            pos_of_dim,
            layers,
            one,
            pos_dim,
            sq_dim,
            scale: conf.scale,
            config: conf.json,
        })
    }

    /// Layer-0 residual value of dim `dim` for token `tok` at position `p`.
    #[inline]
    pub fn x0(&self, tok: usize, p: i64, dim: usize) -> f64 {
        let mut v = self.embed[tok * self.d + dim];
        if let Some(i) = self.pos_of_dim[dim] {
            let f = self.posf[i];
            v += posfeat(f.kind, f.k, p);
        }
        v
    }

    pub fn describe(&self) -> Vec<(usize, String, String, usize, bool)> {
        let mut out = vec![];
        for (l, layer) in self.layers.iter().enumerate() {
            for h in &layer.heads {
                out.push((l, h.name.clone(), format!("{:?}", h.kind), h.m, h.recompute));
            }
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    name: String,
    layer: usize,
    q: SpCols,
    k: SpCols,
    v: SpCols,
    o: SpRows,
    one: usize,
    pos_dim: usize,
    sq_dim: usize,
) -> Result<HeadDef, String> {
    let dk = q.ncols();
    let used = |s: &SpCols| {
        (0..dk)
            .filter(|&c| !s.is_empty_col(c))
            .max()
            .map(|c| c + 1)
            .unwrap_or(0)
    };
    let nq = used(&q);
    let nk = used(&k);
    let n = nq.max(nk);
    let has_delta = |c: usize| {
        let (i, w) = k.col(c);
        i.iter().zip(w).any(|(&i, &w)| i as usize == pos_dim && w == DELTA)
    };
    let vdims: Vec<usize> = {
        let s: BTreeSet<usize> = v.idx.iter().map(|&i| i as usize).collect();
        s.into_iter().collect()
    };
    let err = |why: &str| {
        Err(format!(
            "head {name} (layer {layer}): weights not of a supported shape: {why}"
        ))
    };
    let mut def = HeadDef {
        name: name.clone(),
        kind: Kind::Avg,
        m: 0,
        has_w: false,
        q: q.clone(),
        k: k.clone(),
        v,
        o,
        vdims,
        recompute: false,
    };
    if n == 0 {
        def.kind = Kind::Avg;
        return Ok(def);
    }
    // the query column that is the constant -1 (pairs with the key's sum of squares)
    let cm = (0..n).find(|&c| q.is_const(c, one, -1.0));
    if n == 1 {
        if !(q.is_const(0, one, 1.0) && has_delta(0)) {
            return err("one column but not the latest-write form");
        }
        def.kind = Kind::Latest0;
        return Ok(def);
    }
    let m = match cm {
        Some(m) => m,
        None => return err("no constant -1 query column"),
    };
    if m == 0 && !(n == 2 || n == 3) {
        return err("no address components");
    }
    if m > 3 {
        return err("more than 3 address components");
    }
    def.m = m;
    for c in 0..m {
        if k.is_empty_col(c) {
            return err("empty key component");
        }
    }
    if n == m + 3 && has_delta(m + 2) {
        // latest: key [K.., sum K^2, 1 - lb, DELTA pos + w - 1 + lb/2], query [2b.., -1, -sum b^2, 1]
        if !q.is_const(m + 2, one, 1.0) {
            return err("latest: last query column is not the constant 1");
        }
        let (ki, kw) = k.col(m + 1);
        if !(ki.len() == 2
            && ki.iter().zip(kw).any(|(&i, &w)| i as usize == one && w == 1.0)
            && kw.iter().any(|&w| w == -1.0))
        {
            return err("latest: key column m+1 is not 1 - lb");
        }
        if q.is_empty_col(m + 1) {
            return err("latest: no -sum(b^2) query column");
        }
        def.kind = Kind::Latest;
        if m == 0 {
            return err("latest with m = 0 in the long form");
        }
        return Ok(def);
    }
    // unique: key [K.., sum K^2, (MISS (w - 1))], query [2b.., -1, (1)]
    if (0..n).any(has_delta) {
        return err("position tie-break in a unique head");
    }
    if n == m + 2 {
        if !q.is_const(m + 1, one, 1.0) {
            return err("unique: write column's query is not the constant 1");
        }
        def.has_w = true;
    } else if n != m + 1 {
        return err("unique: unexpected columns");
    }
    if m == 0 {
        return err("unique with no address");
    }
    let kcol_is = |c: usize, dim: usize| {
        let (i, w) = k.col(c);
        i.len() == 1 && i[0] as usize == dim && w[0] == 1.0
    };
    if m == 1 && !def.has_w && kcol_is(0, pos_dim) && kcol_is(1, sq_dim) {
        def.kind = Kind::UniquePos;
        def.recompute = true;
    } else {
        def.kind = Kind::UniqueKeyed;
    }
    Ok(def)
}
