//! The generic hardmax engine: any model in the documented format
//! (transformer/MODEL_FORMAT.md) whose attention heads use at most two
//! query/key dimensions, run with no knowledge of what a head is for. Every
//! head keeps an incremental 2-D convex hull of its keys (`hull.rs`); a query
//! is answered by the set of positions with the exactly maximal score q·k,
//! their values averaged (softmax's equal weights on a tie), after checking
//! that no other position is close enough to the maximum for float64 softmax
//! at the model's scale to give it a non-zero weight (an error otherwise).

use std::path::Path;
use std::sync::Arc;

use safetensors::SafeTensors;

use crate::engine::{argmax_logits, reglu_delta, EngineError};
use crate::hull::{Hull2, NEAR_TIE};
use crate::model::{cfg_usize, pos_kind, posfeat, read_config, tensor, Config, HybridRows, PosFeat, SpCols, SpRows};

/// Positions are exact integers in every positional feature below this
/// (pos^2 < 2^52).
pub const MAX_POS: usize = 1 << 26;

pub struct GHead {
    pub name: String,
    /// the head's slot in its layer's tensors
    pub slot: usize,
    /// the query/key columns it uses (both W_q and W_k nonzero there), <= 2
    pub dims: Vec<usize>,
    /// query and key as 2 columns (a missing dimension is a zero column)
    pub q: SpCols,
    pub k: SpCols,
    pub v: SpCols,
    pub o: SpRows,
}

pub struct GLayer {
    pub heads: Vec<GHead>,
    pub f: usize,
    /// [W_u | W_v] by input row (d -> 2f)
    pub fug: HybridRows,
    pub fo: SpRows,
    /// neurons with a nonzero W_u column, W_v column and W_o row
    pub active: Vec<u32>,
    pub ffn_nnz: usize,
}

pub struct GModel {
    pub d: usize,
    pub dv: usize,
    pub vocab: Vec<String>,
    pub embed: Vec<f64>,
    pub unembed_rows: HybridRows,
    pub posf: Vec<PosFeat>,
    pub layers: Vec<GLayer>,
    pub scale: f64,
}

/// Whether a model directory asks for the generic engine by default: its
/// heads have query/key dimension (d_head_qk) at most 2.
pub fn wants_generic(dir: &Path) -> Result<bool, String> {
    Ok(cfg_usize(&read_config(dir)?, "d_head_qk")? <= 2)
}

impl GModel {
    pub fn load(dir: &Path) -> Result<GModel, String> {
        Config::load(dir, GModel::build)
    }

    fn build(conf: Config, st: &SafeTensors) -> Result<GModel, String> {
        let (d, nl, nh, dk, dv, f, nv) = conf.shape();
        // MODEL_FORMAT.md's rules that `Model::load` has never enforced (so not in Config)
        let scale = conf.scale;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(format!("config.json: attn_scale {scale} is not a positive number"));
        }
        if nv == 0 {
            return Err("config.json: 0 vocab entries for vocab_size 0".into());
        }
        let mut posf = vec![];
        let mut taken = vec![false; d];
        for p in conf
            .json
            .get("pos_features")
            .and_then(|v| v.as_array())
            .ok_or("config.json: missing pos_features (use [] for none)")?
        {
            let a = p
                .as_array()
                .filter(|a| a.len() == 3)
                .ok_or("pos_features: [dim, kind, k] expected")?;
            let dim = a[0].as_u64().ok_or("pos_features: dim")? as usize;
            let name = a[1].as_str().ok_or("pos_features: kind")?;
            let kind = pos_kind(name).ok_or_else(|| format!("pos_features: unknown kind {name}"))?;
            let k = a[2].as_i64().ok_or("pos_features: k")?;
            if dim >= d || taken[dim] {
                return Err(format!("pos_features: dim {dim} out of range or used twice"));
            }
            if kind == 4 && !(0..8).contains(&k) {
                return Err(format!("pos_features: byte index {k} out of range"));
            }
            taken[dim] = true;
            posf.push(PosFeat { dim, kind, k });
        }
        let names = conf.head_names();
        let embed = tensor(st, "embed", &[nv, d])?;
        let u = tensor(st, "unembed", &[d, nv])?;
        let unembed_rows = HybridRows::build(d, nv, |r, c| u[r * nv + c]);
        let mut layers = vec![];
        for l in 0..nl {
            let [wq, wk, wv, wo] = conf.attn_tensors(st, l)?;
            let mut heads = vec![];
            for h in 0..nh {
                let name = names
                    .get(l)
                    .and_then(|x| x.get(h))
                    .cloned()
                    .unwrap_or(format!("{l}.{h}"));
                let nz = |w: &[f64], n: usize| w[h * n..(h + 1) * n].iter().any(|&x| x != 0.0);
                // as the PyTorch module: a head whose W_v or W_o is all zero adds 0
                if !(nz(&wv, d * dv) && nz(&wo, dv * d)) {
                    continue;
                }
                let col_nz = |w: &[f64], c: usize| (0..d).any(|r| w[(h * d + r) * dk + c] != 0.0);
                let dims: Vec<usize> = (0..dk).filter(|&c| col_nz(&wq, c) && col_nz(&wk, c)).collect();
                if dims.len() > 2 {
                    return Err(format!(
                        "head {name} (layer {l}, slot {h}): query and key use {} dimensions {dims:?}; \
                         the generic hull engine handles at most 2",
                        dims.len()
                    ));
                }
                let pick = |w: &[f64]| {
                    SpCols::build(d, 2, |r, c| {
                        if c < dims.len() {
                            w[(h * d + r) * dk + dims[c]]
                        } else {
                            0.0
                        }
                    })
                };
                let q = pick(&wq);
                let k = pick(&wk);
                let v = SpCols::build(d, dv, |r, c| wv[(h * d + r) * dv + c]);
                let o = SpRows::build(dv, d, |r, c| wo[(h * dv + r) * d + c]);
                heads.push(GHead {
                    name,
                    slot: h,
                    dims,
                    q,
                    k,
                    v,
                    o,
                });
            }
            let [fu, fg, fo_] = conf.ffn_tensors(st, l)?;
            let fo = SpRows::build(f, d, |r, c| fo_[r * d + c]);
            let active = (0..f)
                .filter(|&j| {
                    (0..d).any(|r| fu[r * f + j] != 0.0) && (0..d).any(|r| fg[r * f + j] != 0.0) && !fo.row_empty(j)
                })
                .map(|j| j as u32)
                .collect();
            let fug = HybridRows::build(d, 2 * f, |r, c| if c < f { fu[r * f + c] } else { fg[r * f + c - f] });
            let ffn_nnz = fug.nnz() + fo.nnz();
            layers.push(GLayer {
                heads,
                f,
                fug,
                fo,
                active,
                ffn_nnz,
            });
        }
        Ok(GModel {
            d,
            dv,
            vocab: conf.vocab,
            embed,
            unembed_rows,
            posf,
            layers,
            scale,
        })
    }

    /// [(layer, head name, "hull2d", query/key dimensions used, false)]
    pub fn describe(&self) -> Vec<(usize, String, String, usize, bool)> {
        let mut out = vec![];
        for (l, layer) in self.layers.iter().enumerate() {
            for h in &layer.heads {
                out.push((l, h.name.clone(), "hull2d".to_string(), h.dims.len(), false));
            }
        }
        out
    }

    /// (attention, ffn, unembedding) nonzero weights
    pub fn nnz(&self) -> (usize, usize, usize) {
        let mut a = 0;
        let mut f = 0;
        for l in &self.layers {
            for h in &l.heads {
                a += h.q.nnz() + h.k.nnz() + h.v.nnz() + h.o.nnz();
            }
            f += l.ffn_nnz;
        }
        (a, f, self.unembed_rows.nnz())
    }
}

type R<T> = Result<T, EngineError>;

pub struct GSession {
    pub model: Arc<GModel>,
    pub pos: usize,
    hulls: Vec<Vec<Hull2>>,
    /// per head: queries whose near-tie check needed the O(n) scan
    scans: Vec<Vec<u64>>,
    pub x: Vec<f64>,
    delta: Vec<f64>,
    vv: Vec<f64>,
    sum: Vec<f64>,
    uv: Vec<f64>,
    pub logits: Vec<f64>,
}

impl GSession {
    pub fn new(model: Arc<GModel>) -> GSession {
        let dv = model.dv;
        let hulls = model
            .layers
            .iter()
            .map(|l| l.heads.iter().map(|_| Hull2::new(dv)).collect())
            .collect();
        let scans = model.layers.iter().map(|l| vec![0; l.heads.len()]).collect();
        let fmax = model.layers.iter().map(|l| l.f).max().unwrap_or(0);
        GSession {
            pos: 0,
            hulls,
            scans,
            x: vec![0.0; model.d],
            delta: vec![0.0; model.d],
            vv: vec![0.0; dv],
            sum: vec![0.0; dv],
            uv: vec![0.0; 2 * fmax],
            logits: vec![0.0; model.vocab.len()],
            model,
        }
    }

    /// The forward pass of token `tok` at the next position (the final
    /// residual is left in `self.x`).
    pub fn feed(&mut self, tok: usize) -> R<()> {
        let model = self.model.clone();
        let m = &*model;
        if tok >= m.vocab.len() {
            return Err(EngineError(format!("token id {tok} out of range")));
        }
        let p = self.pos;
        if p >= MAX_POS {
            return Err(EngineError(format!(
                "position {p} is past the generic engine's horizon (2**26)"
            )));
        }
        let d = m.d;
        self.x.copy_from_slice(&m.embed[tok * d..(tok + 1) * d]);
        for f in &m.posf {
            self.x[f.dim] += posfeat(f.kind, f.k, p as i64);
        }
        for (l, layer) in m.layers.iter().enumerate() {
            // attention: every head reads the same x; the outputs are added together
            self.delta.iter_mut().for_each(|v| *v = 0.0);
            for (hi, h) in layer.heads.iter().enumerate() {
                let hull = &mut self.hulls[l][hi];
                let ctx = |e: String| EngineError(format!("head {} (layer {l}) at position {p}: {e}", h.name));
                let k = (h.k.dot(0, &self.x), h.k.dot(1, &self.x));
                let q = (h.q.dot(0, &self.x), h.q.dot(1, &self.x));
                for c in 0..m.dv {
                    self.vv[c] = h.v.dot(c, &self.x);
                }
                hull.insert(k, &self.vv).map_err(ctx)?;
                let hit = hull.query(q, &mut self.sum).map_err(ctx)?;
                if let Some((j, g)) = hull.near_tie(q, hit.witness, m.scale, &mut self.scans[l][hi]) {
                    return Err(ctx(format!(
                        "near-tie: position {j} scores within {:.4e} of the maximum (scale x gap = {g:.3} < {NEAR_TIE} nats): \
                         float64 softmax gives it a non-zero weight, so the hardmax answer would differ from softmax",
                        g / m.scale
                    )));
                }
                let n = hit.count as f64;
                for c in 0..m.dv {
                    let o = self.sum[c] / n;
                    if o != 0.0 {
                        h.o.scatter(c, o, &mut self.delta);
                    }
                }
            }
            for (xi, di) in self.x.iter_mut().zip(&self.delta) {
                *xi += *di;
            }
            // FFN (ReGLU): x += (relu(x W_u) * (x W_v)) W_o
            self.delta.iter_mut().for_each(|v| *v = 0.0);
            reglu_delta(
                layer.f,
                &layer.fug,
                &layer.active,
                &layer.fo,
                &self.x,
                &mut self.uv,
                &mut self.delta,
            );
            for (xi, di) in self.x.iter_mut().zip(&self.delta) {
                *xi += *di;
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// Logits of the last fed position: (argmax (the first maximum, as
    /// torch.argmax), margin over the runner-up). A NaN logit is an error.
    pub fn argmax(&mut self) -> R<(usize, f64)> {
        let p = self.pos.saturating_sub(1);
        argmax_logits(&self.model.unembed_rows, &self.x, &mut self.logits, p)
    }

    /// Per head: (name, upper + lower hull corners, near-tie scans run)
    pub fn stats(&self) -> Vec<(String, usize, u64)> {
        let mut v = vec![];
        for (l, layer) in self.model.layers.iter().enumerate() {
            for (hi, h) in layer.heads.iter().enumerate() {
                let (a, b) = self.hulls[l][hi].corners();
                v.push((h.name.clone(), a + b, self.scans[l][hi]));
            }
        }
        v
    }
}

crate::engine::impl_decoder!(GSession);
