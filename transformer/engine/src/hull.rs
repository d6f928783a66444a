//! An incremental 2-D convex hull of attention keys that answers hardmax
//! queries exactly: for a query q, the set of positions whose key k maximises
//! q·k (every position attaining the maximum, ties included), as the count
//! and the sum of their value vectors.
//!
//! Structure (transformer/ENGINE.md, "Generic hull engine"):
//!
//! * the *upper chain*: the corners of the upper hull (the points that are the
//!   maximum for some q with q_y > 0), sorted by x in a `BTreeMap`, and the
//!   same chain's edges in a `BTreeSet` ordered by slope (strictly decreasing
//!   from left to right: collinear corners are merged, see below). A query
//!   with q_y > 0 is one ordered search in the edge set for the first edge e
//!   with q·e ≤ 0 (a "probe" edge perpendicular to q compared by slope), so
//!   O(log n) exact comparisons;
//! * the *lower chain*: the same structure on the reflected points (x, -y),
//!   for q_y < 0;
//! * for q_y = 0 the positions with the largest (q_x > 0) or smallest x
//!   (any y: they all tie), kept as two running aggregates; for q = 0 every
//!   position (all scores are 0), one running aggregate.
//!
//! Aggregates (count and sum of values) are kept per corner (every position
//! whose key is exactly that corner: duplicates) and per edge (every position
//! whose key lies strictly inside the edge: collinear points). An inserted
//! key strictly below a chain is dropped from it (it can never be a maximum
//! for that half of the directions again: the hull only grows), a key on an
//! edge joins the edge's aggregate, a key equal to a corner joins the
//! corner's, and a key outside becomes a corner: the corners it hides are
//! removed (with their edges' aggregates, now strictly inside), and a corner
//! that becomes collinear with its new neighbours is merged, with both its
//! edges, into the new edge's aggregate. When the maximum is attained on an
//! edge (two corners with equal score) the answer is both corners' and the
//! edge's aggregates together: every position with the maximal score.
//!
//! Cost: insert amortised O(log n) (each corner is created once and removed
//! at most once; each creation/removal is O(1) map operations of O(log n)),
//! query O(log n) (one ordered search of the edge set plus at most two corner
//! look-ups).
//!
//! Exactness: every comparison (orientation of three keys, slope of two
//! edges, which of two keys scores higher) is the sign of a sum of products
//! of the float64 inputs, decided by a floating-point filter with a proven
//! error bound and, when the filter cannot decide, exactly by error-free
//! transformations (two-product with FMA, two-sum) into a non-overlapping
//! expansion whose largest component carries the sign. For the
//! transformations to be exact, coordinates must be 0 or of magnitude in
//! [2^-400, 2^400] (checked: an error otherwise), so no product underflows
//! or overflows. Ties are therefore exact equalities, never a tolerance.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};

/// Coordinates must be 0 or have a magnitude in [MIN_MAG, MAX_MAG].
pub const MIN_MAG: f64 = 2.5822498780869086e-121; // 2^-400
pub const MAX_MAG: f64 = 2.5822498780869086e120; // 2^400

const U: f64 = 1.1102230246251565e-16; // 2^-53, the unit roundoff

// ---------------------------------------------------------------- exact signs

#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let x = a + b;
    let bv = x - a;
    let av = x - bv;
    (x, (a - av) + (b - bv))
}

#[inline(always)]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let x = a * b;
    (x, a.mul_add(b, -x))
}

/// The exact sign of sum_i a_i * b_i (at most 8 products), for inputs whose
/// products neither underflow nor overflow (see MIN_MAG / MAX_MAG).
fn exact_sign(terms: &[(f64, f64)]) -> i32 {
    // Shewchuk's Grow-Expansion: e stays non-overlapping, in increasing
    // magnitude (zeros interspersed), and sums exactly to what was added
    fn grow(b: f64, e: &mut [f64; 17], m: &mut usize) {
        let mut q = b;
        for i in 0..*m {
            let (s, h) = two_sum(q, e[i]);
            e[i] = h;
            q = s;
        }
        e[*m] = q;
        *m += 1;
    }
    let mut e = [0.0f64; 17];
    let mut m = 0usize;
    debug_assert!(terms.len() <= 8);
    for &(a, b) in terms {
        let (x, y) = two_prod(a, b);
        grow(y, &mut e, &mut m);
        grow(x, &mut e, &mut m);
    }
    for i in (0..m).rev() {
        if e[i] > 0.0 {
            return 1;
        }
        if e[i] < 0.0 {
            return -1;
        }
    }
    0
}

/// The sign of `v`, a float sum or difference of the products `l` and `r`,
/// where the filter decides it (its rounding error is below
/// 8u(|l| + |r|)); otherwise `exact()`, the sign from the exact terms.
#[inline(always)]
fn filtered_sign(v: f64, l: f64, r: f64, exact: impl FnOnce() -> i32) -> i32 {
    let bound = 8.0 * U * (l.abs() + r.abs());
    if v > bound {
        return 1;
    }
    if -v > bound {
        return -1;
    }
    exact()
}

/// Sign of the cross product (b - a) x (c - a): > 0 when a, b, c turn left.
pub fn orient(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> i32 {
    let l = (b.0 - a.0) * (c.1 - a.1);
    let r = (b.1 - a.1) * (c.0 - a.0);
    // bx cy - bx ay - ax cy - by cx + by ax + ay cx
    filtered_sign(l - r, l, r, || {
        exact_sign(&[
            (b.0, c.1),
            (-b.0, a.1),
            (-a.0, c.1),
            (-b.1, c.0),
            (b.1, a.0),
            (a.1, c.0),
        ])
    })
}

/// Sign of q·(a - b): > 0 when a scores higher than b.
pub fn cmp_score(q: (f64, f64), a: (f64, f64), b: (f64, f64)) -> i32 {
    let l = q.0 * (a.0 - b.0);
    let r = q.1 * (a.1 - b.1);
    filtered_sign(l + r, l, r, || {
        exact_sign(&[(q.0, a.0), (q.1, a.1), (-q.0, b.0), (-q.1, b.1)])
    })
}

/// Sign of (b1 - a1) x (b2 - a2).
fn cross_edges(a1: (f64, f64), b1: (f64, f64), a2: (f64, f64), b2: (f64, f64)) -> i32 {
    let l = (b1.0 - a1.0) * (b2.1 - a2.1);
    let r = (b1.1 - a1.1) * (b2.0 - a2.0);
    // (b1x - a1x)(b2y - a2y) - (b1y - a1y)(b2x - a2x)
    filtered_sign(l - r, l, r, || {
        exact_sign(&[
            (b1.0, b2.1),
            (-b1.0, a2.1),
            (-a1.0, b2.1),
            (a1.0, a2.1),
            (-b1.1, b2.0),
            (b1.1, a2.0),
            (a1.1, b2.0),
            (-a1.1, a2.0),
        ])
    })
}

/// Exponent of the lowest set bit of v (v = m 2^e with m odd); i32::MAX for 0.
pub fn lsb_exp(v: f64) -> i32 {
    if v == 0.0 {
        return i32::MAX;
    }
    let bits = v.to_bits();
    let ex = ((bits >> 52) & 0x7ff) as i32;
    let man = bits & ((1u64 << 52) - 1);
    let (e, m) = if ex == 0 {
        (-1074, man)
    } else {
        (ex - 1075, man | (1u64 << 52))
    };
    e + m.trailing_zeros() as i32
}

pub fn in_range(v: f64) -> bool {
    v == 0.0 || (v.abs() >= MIN_MAG && v.abs() <= MAX_MAG)
}

// ---------------------------------------------------------------- aggregates

/// Slots of (count, sum of dv values), recycled through a free list.
pub struct Pool {
    dv: usize,
    data: Vec<f64>,
    cnt: Vec<u64>,
    free: Vec<u32>,
}

impl Pool {
    fn new(dv: usize) -> Pool {
        Pool {
            dv,
            data: vec![],
            cnt: vec![],
            free: vec![],
        }
    }
    fn alloc(&mut self) -> u32 {
        if let Some(s) = self.free.pop() {
            let o = s as usize * self.dv;
            self.data[o..o + self.dv].iter_mut().for_each(|v| *v = 0.0);
            self.cnt[s as usize] = 0;
            s
        } else {
            let s = self.cnt.len() as u32;
            self.cnt.push(0);
            self.data.resize(self.data.len() + self.dv, 0.0);
            s
        }
    }
    fn add(&mut self, s: u32, v: &[f64]) {
        let o = s as usize * self.dv;
        for (d, &x) in self.data[o..o + self.dv].iter_mut().zip(v) {
            *d += x;
        }
        self.cnt[s as usize] += 1;
    }
    fn one(&mut self, v: &[f64]) -> u32 {
        let s = self.alloc();
        self.add(s, v);
        s
    }
    fn release(&mut self, s: Option<u32>) {
        if let Some(s) = s {
            self.free.push(s);
        }
    }
    /// a + b (b released)
    fn merge(&mut self, a: Option<u32>, b: Option<u32>) -> Option<u32> {
        match (a, b) {
            (None, b) => b,
            (a, None) => a,
            (Some(a), Some(b)) => {
                let (oa, ob) = (a as usize * self.dv, b as usize * self.dv);
                for i in 0..self.dv {
                    self.data[oa + i] += self.data[ob + i];
                }
                self.cnt[a as usize] += self.cnt[b as usize];
                self.free.push(b);
                Some(a)
            }
        }
    }
    /// out += slot's sum; returns its count
    fn read(&self, s: Option<u32>, out: &mut [f64]) -> u64 {
        match s {
            None => 0,
            Some(s) => {
                let o = s as usize * self.dv;
                for (d, &x) in out.iter_mut().zip(&self.data[o..o + self.dv]) {
                    *d += x;
                }
                self.cnt[s as usize]
            }
        }
    }
    fn live(&self) -> usize {
        self.cnt.len() - self.free.len()
    }
}

// ---------------------------------------------------------------- one chain

#[derive(Clone, Copy, PartialEq, PartialOrd)]
struct Fx(f64);
impl Eq for Fx {}
#[allow(clippy::derive_ord_xor_partial_ord)]
impl Ord for Fx {
    fn cmp(&self, o: &Fx) -> Ordering {
        self.0.partial_cmp(&o.0).expect("coordinates are never NaN")
    }
}

/// An edge (a, b) of a chain, a.x < b.x, ordered by slope, steepest first.
/// A query's probe is the edge (0, 0) -> (q_y, -q_x), perpendicular to q.
#[derive(Clone, Copy, Debug)]
struct Edge {
    a: (f64, f64),
    b: (f64, f64),
}
impl PartialEq for Edge {
    fn eq(&self, o: &Edge) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Edge {}
impl PartialOrd for Edge {
    fn partial_cmp(&self, o: &Edge) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Edge {
    fn cmp(&self, o: &Edge) -> Ordering {
        // o's direction counter-clockwise of self's: o is steeper, earlier
        match cross_edges(self.a, self.b, o.a, o.b) {
            s if s > 0 => Ordering::Greater,
            0 => Ordering::Equal,
            _ => Ordering::Less,
        }
    }
}

struct Corner {
    y: f64,
    /// positions whose key is exactly this corner
    agg: u32,
    /// positions strictly inside the edge to the next corner
    right: Option<u32>,
}

/// The upper hull: corners by x, edges by slope.
#[derive(Default)]
struct Chain {
    corners: BTreeMap<Fx, Corner>,
    edges: BTreeSet<Edge>,
}

impl Chain {
    fn prev(&self, x: f64) -> Option<(f64, f64)> {
        self.corners.range(..Fx(x)).next_back().map(|(k, c)| (k.0, c.y))
    }
    fn next(&self, x: f64) -> Option<(f64, f64)> {
        self.corners
            .range((Excluded(Fx(x)), Unbounded))
            .next()
            .map(|(k, c)| (k.0, c.y))
    }
    fn edge(a: (f64, f64), b: (f64, f64)) -> Edge {
        Edge { a, b }
    }

    fn insert(&mut self, p: (f64, f64), v: &[f64], pool: &mut Pool) {
        let key = Fx(p.0);
        // the corner at p.x (if any) and the one before, in one descent
        let (same, pred) = {
            let mut it = self.corners.range(..=key).rev();
            match it.next() {
                Some((k, c)) if k.0 == p.0 => (Some((c.y, c.agg)), it.next().map(|(k, c)| (k.0, c.y))),
                other => (None, other.map(|(k, c)| (k.0, c.y))),
            }
        };
        let succ = self.next(p.0);
        // the interior aggregate of the edge (pred, succ) or (pred, same), now inside
        let mut stale: Option<u32> = None;
        if let Some((cy, cagg)) = same {
            if p.1 < cy {
                return;
            }
            if p.1 == cy {
                pool.add(cagg, v);
                return;
            }
            // p is straight above the corner: the corner and both its edges
            // are now strictly inside
            let c = self.corners.remove(&key).unwrap();
            let cp = (p.0, c.y);
            pool.release(Some(c.agg));
            pool.release(c.right);
            if let Some(a) = pred {
                self.edges.remove(&Chain::edge(a, cp));
                stale = Some(u32::MAX); // pred's right: released below
            }
            if let Some(b) = succ {
                self.edges.remove(&Chain::edge(cp, b));
            }
        } else if let (Some(a), Some(b)) = (pred, succ) {
            let o = orient(a, b, p);
            if o < 0 {
                return;
            }
            if o == 0 {
                let ca = self.corners.get_mut(&Fx(a.0)).unwrap();
                match ca.right {
                    Some(s) => pool.add(s, v),
                    None => ca.right = Some(pool.one(v)),
                }
                return;
            }
            self.edges.remove(&Chain::edge(a, b));
            stale = Some(u32::MAX);
        }
        // p becomes a corner: remove the corners it hides on either side.
        // `l` is p's current left neighbour; its `right` aggregate is stale
        // (the old edge's interior, strictly inside now) and is replaced.
        let mut l = pred;
        let mut accl: Option<u32> = None;
        while let Some(lp) = l {
            let Some(ll) = self.prev(lp.0) else { break };
            let o = orient(ll, lp, p);
            if o < 0 {
                break;
            }
            self.edges.remove(&Chain::edge(ll, lp));
            let lc = self.corners.remove(&Fx(lp.0)).unwrap();
            if stale.take().is_some() {
                pool.release(lc.right);
            } else {
                debug_assert!(lc.right.is_none());
            }
            let llr = self.corners.get_mut(&Fx(ll.0)).unwrap().right.take();
            if o == 0 {
                // lp lies on the new edge (ll, p)
                let t = pool.merge(llr, Some(lc.agg));
                accl = pool.merge(t, accl);
            } else {
                pool.release(llr);
                pool.release(Some(lc.agg));
                pool.release(accl.take());
            }
            l = Some(ll);
        }
        let mut r = succ;
        let mut accr: Option<u32> = None;
        while let Some(rp) = r {
            let Some(rr) = self.next(rp.0) else { break };
            let o = orient(p, rp, rr);
            if o < 0 {
                break;
            }
            self.edges.remove(&Chain::edge(rp, rr));
            let rc = self.corners.remove(&Fx(rp.0)).unwrap();
            if o == 0 {
                let t = pool.merge(accr, Some(rc.agg));
                accr = pool.merge(t, rc.right);
            } else {
                pool.release(rc.right);
                pool.release(Some(rc.agg));
                pool.release(accr.take());
            }
            r = Some(rr);
        }
        let agg = pool.one(v);
        if let Some(l) = l {
            let lc = self.corners.get_mut(&Fx(l.0)).unwrap();
            let old = std::mem::replace(&mut lc.right, accl);
            if stale.is_some() {
                pool.release(old);
            } else {
                debug_assert!(old.is_none());
            }
            let fresh = self.edges.insert(Chain::edge(l, p));
            debug_assert!(fresh);
        } else {
            debug_assert!(accl.is_none());
        }
        if let Some(r) = r {
            let fresh = self.edges.insert(Chain::edge(p, r));
            debug_assert!(fresh);
        } else {
            debug_assert!(accr.is_none());
        }
        self.corners.insert(
            key,
            Corner {
                y: p.1,
                agg,
                right: accr,
            },
        );
    }

    /// q.1 > 0: the aggregates of the positions maximising q·k (up to three
    /// slots: corner, edge, corner) and one maximising key.
    fn query(&self, q: (f64, f64)) -> Option<([Option<u32>; 3], (f64, f64))> {
        debug_assert!(q.1 > 0.0);
        let probe = Edge {
            a: (0.0, 0.0),
            b: (q.1, -q.0),
        };
        match self.edges.range(probe..).next() {
            None => {
                let (x, c) = self.corners.iter().next_back()?;
                Some(([Some(c.agg), None, None], (x.0, c.y)))
            }
            Some(e) => {
                let ca = &self.corners[&Fx(e.a.0)];
                if e.cmp(&probe) == Ordering::Equal {
                    let cb = &self.corners[&Fx(e.b.0)];
                    Some(([Some(ca.agg), ca.right, Some(cb.agg)], e.a))
                } else {
                    Some(([Some(ca.agg), None, None], e.a))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the hull

/// Result of a query: how many positions attain the maximum (their values'
/// sum is written to the caller's buffer) and one maximising key.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub count: u64,
    pub witness: (f64, f64),
}

pub struct Hull2 {
    dv: usize,
    pool: Pool,
    upper: Chain,
    lower: Chain,
    xmax: Option<(f64, u32)>,
    xmin: Option<(f64, u32)>,
    all: Option<u32>,
    /// every position's key, in position order (for the near-tie scan)
    keys: Vec<(f64, f64)>,
    /// lowest set-bit exponent over every key's x and y (i32::MAX: all 0)
    gran: (i32, i32),
}

/// exp(-x) is exactly 0 in float64 for x >= NEAR_TIE (e^-745.14 already
/// rounds to 0): a position whose score is at least NEAR_TIE / scale below the
/// maximum gets softmax weight exactly 0.
pub const NEAR_TIE: f64 = 746.0;

impl Hull2 {
    pub fn new(dv: usize) -> Hull2 {
        Hull2 {
            dv,
            pool: Pool::new(dv),
            upper: Chain::default(),
            lower: Chain::default(),
            xmax: None,
            xmin: None,
            all: None,
            keys: vec![],
            gran: (i32::MAX, i32::MAX),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// corners of the upper and lower chains
    pub fn corners(&self) -> (usize, usize) {
        (self.upper.corners.len(), self.lower.corners.len())
    }
    /// aggregate slots in use
    pub fn slots(&self) -> usize {
        self.pool.live()
    }

    /// Inserts the key of the next position and its value vector.
    pub fn insert(&mut self, k: (f64, f64), v: &[f64]) -> Result<(), String> {
        if !(in_range(k.0) && in_range(k.1)) {
            return Err(format!(
                "key ({:e}, {:e}) is not finite with components 0 or of magnitude in [2^-400, 2^400]",
                k.0, k.1
            ));
        }
        debug_assert_eq!(v.len(), self.dv);
        let k = (k.0 + 0.0, k.1 + 0.0); // -0 -> +0
        self.keys.push(k);
        self.gran = (self.gran.0.min(lsb_exp(k.0)), self.gran.1.min(lsb_exp(k.1)));
        match self.all {
            Some(s) => self.pool.add(s, v),
            None => self.all = Some(self.pool.one(v)),
        }
        match self.xmax {
            Some((x, s)) if k.0 == x => self.pool.add(s, v),
            Some((x, s)) if k.0 > x => {
                self.pool.release(Some(s));
                self.xmax = Some((k.0, self.pool.one(v)));
            }
            Some(_) => {}
            None => self.xmax = Some((k.0, self.pool.one(v))),
        }
        match self.xmin {
            Some((x, s)) if k.0 == x => self.pool.add(s, v),
            Some((x, s)) if k.0 < x => {
                self.pool.release(Some(s));
                self.xmin = Some((k.0, self.pool.one(v)));
            }
            Some(_) => {}
            None => self.xmin = Some((k.0, self.pool.one(v))),
        }
        self.upper.insert(k, v, &mut self.pool);
        self.lower.insert((k.0, -k.1), v, &mut self.pool);
        Ok(())
    }

    /// The positions maximising q·k: writes the sum of their values into
    /// `sum` (dv entries) and returns their count and one maximising key.
    pub fn query(&self, q: (f64, f64), sum: &mut [f64]) -> Result<Hit, String> {
        if !(in_range(q.0) && in_range(q.1)) {
            return Err(format!(
                "query ({:e}, {:e}) is not finite with components 0 or of magnitude in [2^-400, 2^400]",
                q.0, q.1
            ));
        }
        sum[..self.dv].iter_mut().for_each(|v| *v = 0.0);
        let q = (q.0 + 0.0, q.1 + 0.0);
        let empty = || "query before any key".to_string();
        let (slots, w): ([Option<u32>; 3], (f64, f64)) = if q.1 > 0.0 {
            self.upper.query(q).ok_or_else(empty)?
        } else if q.1 < 0.0 {
            let (s, w) = self.lower.query((q.0, -q.1)).ok_or_else(empty)?;
            (s, (w.0, -w.1))
        } else if q.0 > 0.0 {
            let (x, s) = self.xmax.ok_or_else(empty)?;
            ([Some(s), None, None], (x, 0.0))
        } else if q.0 < 0.0 {
            let (x, s) = self.xmin.ok_or_else(empty)?;
            ([Some(s), None, None], (x, 0.0))
        } else {
            let s = self.all.ok_or_else(empty)?;
            ([Some(s), None, None], (0.0, 0.0))
        };
        let mut count = 0;
        for s in slots {
            count += self.pool.read(s, &mut sum[..self.dv]);
        }
        Ok(Hit { count, witness: w })
    }

    /// Whether the winner of query `q` (maximising key `w`) is a hardmax of
    /// softmax at `scale`: every position whose score is not the maximum
    /// must be at least NEAR_TIE / scale below it, else its float64 softmax
    /// weight is not 0 and the tie-averaged answer would differ from
    /// softmax. Returns the first offending position and scale·gap.
    ///
    /// Fast path, O(1): the scores are multiples of 2^G, G the smallest of
    /// lsb(q_x) + lsb(keys' x) and lsb(q_y) + lsb(keys' y) (lowest set bits
    /// over every key inserted), so two distinct scores differ by >= 2^G; if
    /// scale·2^G >= NEAR_TIE nothing can be near. Otherwise every stored key
    /// is scanned (O(n), exact signs; the gap itself from a float evaluation
    /// minus its error bound, so a doubtful case counts as near).
    /// `scans` is incremented when the scan ran.
    pub fn near_tie(&self, q: (f64, f64), w: (f64, f64), scale: f64, scans: &mut u64) -> Option<(usize, f64)> {
        let mut g = i32::MAX;
        if q.0 != 0.0 && self.gran.0 != i32::MAX {
            g = g.min(lsb_exp(q.0).saturating_add(self.gran.0));
        }
        if q.1 != 0.0 && self.gran.1 != i32::MAX {
            g = g.min(lsb_exp(q.1).saturating_add(self.gran.1));
        }
        if g == i32::MAX {
            return None; // every score is 0
        }
        let step = if g > 1000 {
            f64::INFINITY
        } else {
            (g.max(-1100) as f64).exp2()
        };
        if step * scale >= NEAR_TIE {
            return None;
        }
        *scans += 1;
        for (j, &k) in self.keys.iter().enumerate() {
            match cmp_score(q, w, k) {
                0 => continue,
                s if s < 0 => return Some((j, f64::NEG_INFINITY)), // cannot happen: w is a maximum
                _ => {}
            }
            let l = q.0 * (w.0 - k.0);
            let r = q.1 * (w.1 - k.1);
            let gap = l + r;
            let low = gap - 8.0 * U * (l.abs() + r.abs());
            if !(low * scale >= NEAR_TIE) {
                return Some((j, gap * scale));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn int(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % ((hi - lo + 1) as u64)) as i64
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
        }
    }

    /// every position with the maximal exact score: (count, sum of values)
    fn brute(keys: &[(f64, f64)], vals: &[f64], q: (f64, f64)) -> (u64, f64) {
        let mut best = 0;
        for j in 1..keys.len() {
            if cmp_score(q, keys[j], keys[best]) > 0 {
                best = j;
            }
        }
        let mut n = 0;
        let mut s = 0.0;
        for j in 0..keys.len() {
            if cmp_score(q, keys[j], keys[best]) == 0 {
                n += 1;
                s += vals[j];
            }
        }
        (n, s)
    }

    /// directions: axes, diagonals, random, and perpendicular to the
    /// difference of two keys (an edge's normal, where ties happen)
    fn directions(keys: &[(f64, f64)], rng: &mut Rng, n: usize) -> Vec<(f64, f64)> {
        let mut d = vec![
            (0.0, 0.0),
            (1.0, 0.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (1.0, 1.0),
            (-1.0, 1.0),
            (1.0, -1.0),
            (-1.0, -1.0),
            (3.0, -2.0),
        ];
        if keys.len() <= 12 {
            // every critical direction: the normals of every pair of keys
            for a in keys {
                for b in keys {
                    if a != b {
                        d.push((a.1 - b.1, b.0 - a.0));
                    }
                }
            }
        }
        for _ in 0..n {
            d.push((rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0));
            if keys.len() >= 2 {
                let a = keys[rng.next() as usize % keys.len()];
                let b = keys[rng.next() as usize % keys.len()];
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                d.push((-dy, dx));
                d.push((dy, -dx));
            }
        }
        d
    }

    fn check(keys: &[(f64, f64)], rng: &mut Rng, every: bool, ndir: usize) {
        let vals: Vec<f64> = (0..keys.len()).map(|j| (j + 1) as f64).collect();
        let mut h = Hull2::new(2);
        let mut out = [0.0; 2];
        for i in 0..keys.len() {
            h.insert(keys[i], &[vals[i], 1.0]).unwrap();
            if every || i + 1 == keys.len() {
                for q in directions(&keys[..=i], rng, ndir) {
                    let hit = h.query(q, &mut out).unwrap();
                    let (n, s) = brute(&keys[..=i], &vals[..=i], q);
                    assert_eq!(
                        (hit.count, out[0], out[1]),
                        (n, s, n as f64),
                        "q={q:?} after {} keys {:?}",
                        i + 1,
                        &keys[..=i]
                    );
                    // the witness attains the maximum
                    for &k in &keys[..=i] {
                        assert!(cmp_score(q, hit.witness, k) >= 0, "witness not maximal for {q:?}");
                    }
                }
            }
        }
    }

    fn grid(rng: &mut Rng, n: usize, r: i64) -> Vec<(f64, f64)> {
        (0..n).map(|_| (rng.int(-r, r) as f64, rng.int(-r, r) as f64)).collect()
    }

    #[test]
    fn small_grids_every_prefix() {
        // tiny grids: many duplicates, collinear points, vertical edges
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for trial in 0..300 {
            let r = 1 + trial % 4;
            let n = 1 + (trial * 7) % 40;
            let keys = grid(&mut rng, n, r as i64);
            check(&keys, &mut rng, true, 6);
        }
    }

    #[test]
    fn insert_orders() {
        let mut rng = Rng(42);
        for shape in 0..4 {
            let mut keys: Vec<(f64, f64)> = match shape {
                0 => grid(&mut rng, 200, 6),
                1 => (0..150).map(|i| (i as f64, -((i * i) as f64))).collect(), // parabola (2a, -a^2)-like
                2 => (0..150).map(|i| ((i % 30) as f64, ((i % 30) * 3 - 7) as f64)).collect(), // one line, duplicates
                _ => (0..200).map(|_| (rng.unit(), rng.unit())).collect(),
            };
            for order in 0..3 {
                match order {
                    0 => keys.sort_by(|a, b| a.partial_cmp(b).unwrap()),
                    1 => keys.sort_by(|a, b| b.partial_cmp(a).unwrap()),
                    _ => rng.shuffle(&mut keys),
                }
                check(&keys, &mut rng, true, 3);
            }
        }
    }

    #[test]
    fn parabola_latest_write() {
        // keys (2a, -a^2 + pos/1024), query (b, 1): the latest a = b wins
        let mut h = Hull2::new(1);
        let mut rng = Rng(7);
        let mut latest = std::collections::HashMap::new();
        let mut out = [0.0];
        for j in 0..2000 {
            let a = rng.int(0, 60);
            h.insert((2.0 * a as f64, -((a * a) as f64) + j as f64 / 1024.0), &[j as f64])
                .unwrap();
            latest.insert(a, j);
            let b = rng.int(0, 60);
            let hit = h.query((b as f64, 1.0), &mut out).unwrap();
            if let Some(&jb) = latest.get(&b) {
                assert_eq!((hit.count, out[0]), (1, jb as f64));
            }
            let mut scans = 0;
            assert!(h
                .near_tie((b as f64, 1.0), hit.witness, 2f64.powi(20), &mut scans)
                .is_none());
            assert_eq!(scans, 0);
        }
    }

    #[test]
    fn edge_orthogonal_and_duplicates() {
        // a horizontal top edge with many collinear points, queried straight up
        let mut h = Hull2::new(1);
        let mut out = [0.0];
        let mut n = 0;
        let mut s = 0.0;
        for j in 0..100 {
            let x = ((j * 37) % 101) as f64;
            h.insert((x, 5.0), &[j as f64]).unwrap();
            h.insert((x, 5.0), &[j as f64]).unwrap(); // duplicate
            h.insert((x, 1.0), &[1000.0]).unwrap();
            n += 2;
            s += 2.0 * j as f64;
            let hit = h.query((0.0, 3.0), &mut out).unwrap();
            assert_eq!((hit.count, out[0]), (n, s));
        }
        // the chain keeps two corners and one edge aggregate for all of them
        assert_eq!(h.corners().0, 2);
    }

    #[test]
    fn random_floats_and_exact_ties() {
        let mut rng = Rng(99);
        for _ in 0..30 {
            // general position floats, plus near-degenerate: points on a line
            // y = x/3 (inexact slope) and huge coordinates with tiny offsets
            let mut keys: Vec<(f64, f64)> = (0..80)
                .map(|_| (rng.unit() * 1e3 - 5e2, rng.unit() * 1e3 - 5e2))
                .collect();
            for _ in 0..40 {
                let t = rng.int(-50, 50) as f64;
                keys.push((t, t / 3.0));
                let big = 2f64.powi(300);
                keys.push((big + t * 2f64.powi(248), big - t * 2f64.powi(248)));
            }
            rng.shuffle(&mut keys);
            check(&keys, &mut rng, false, 40);
        }
    }

    #[test]
    fn near_tie_detection() {
        let mut h = Hull2::new(1);
        h.insert((0.0, 1.0), &[1.0]).unwrap();
        h.insert((0.0, 1.0 - 1.0 / 1024.0), &[2.0]).unwrap();
        let mut out = [0.0];
        let hit = h.query((0.0, 1.0), &mut out).unwrap();
        assert_eq!((hit.count, out[0]), (1, 1.0));
        let mut scans = 0;
        // scale 2^20: gap 2^-10 -> 1024 nats: fine, without a scan
        assert!(h.near_tie((0.0, 1.0), hit.witness, 2f64.powi(20), &mut scans).is_none());
        assert_eq!(scans, 0);
        // scale 2^19: 512 nats: position 1 gets a non-zero weight
        let r = h.near_tie((0.0, 1.0), hit.witness, 2f64.powi(19), &mut scans);
        assert_eq!(r.map(|x| x.0), Some(1));
        assert_eq!(scans, 1);
        // a non-dyadic key: the scan runs and finds nothing near
        h.insert((0.1, -3.0), &[3.0]).unwrap();
        let hit = h.query((1.0, 1.0), &mut out).unwrap();
        assert_eq!((hit.count, out[0]), (1, 1.0));
        assert!(h.near_tie((1.0, 1.0), hit.witness, 2f64.powi(20), &mut scans).is_none());
        assert_eq!(scans, 2);
    }

    /// The scan's float gap l + r is only trusted beyond its rounding error,
    /// which grows with |l| + |r|, not |l + r|: here l and r cancel (2^43 and
    /// -(2^43 - 1)) to a true gap of 1 that clears NEAR_TIE at this scale by
    /// under 1 %, less than the evaluation's doubt, so it counts as near.
    #[test]
    fn near_tie_doubt_covers_cancellation() {
        let big = 2f64.powi(43);
        let mut h = Hull2::new(1);
        h.insert((0.0, 0.0), &[1.0]).unwrap();
        h.insert((-big, big - 1.0), &[2.0]).unwrap();
        // a fine-grained key far below the maximum: forces the scan
        h.insert((-10.0 - 2f64.powi(-40), 0.0), &[3.0]).unwrap();
        let mut out = [0.0];
        let q = (1.0, 1.0);
        let hit = h.query(q, &mut out).unwrap();
        assert_eq!((hit.count, out[0]), (1, 1.0));
        let mut scans = 0;
        let r = h.near_tie(q, hit.witness, NEAR_TIE / 0.99, &mut scans);
        assert_eq!(r.map(|x| x.0), Some(1));
        assert_eq!(scans, 1);
        // the same gap without the cancellation is proven far enough
        let mut h = Hull2::new(1);
        h.insert((0.0, 0.0), &[1.0]).unwrap();
        h.insert((-1.0, 0.0), &[2.0]).unwrap();
        h.insert((-10.0 - 2f64.powi(-40), 0.0), &[3.0]).unwrap();
        let hit = h.query(q, &mut out).unwrap();
        assert!(h.near_tie(q, hit.witness, NEAR_TIE / 0.99, &mut scans).is_none());
        assert_eq!(scans, 2);
    }

    #[test]
    fn range_checks() {
        let mut h = Hull2::new(1);
        assert!(h.insert((f64::NAN, 0.0), &[0.0]).is_err());
        assert!(h.insert((1e-200, 0.0), &[0.0]).is_err());
        assert!(h.insert((1e200, 0.0), &[0.0]).is_err());
        h.insert((-0.0, 1.0), &[0.0]).unwrap();
        assert!(h.query((f64::INFINITY, 0.0), &mut [0.0]).is_err());
        assert_eq!(lsb_exp(1.0), 0);
        assert_eq!(lsb_exp(3.0), 0);
        assert_eq!(lsb_exp(0.75), -2);
        assert_eq!(lsb_exp(1024.0), 10);
        assert_eq!(lsb_exp(5e-324), -1074);
    }

    #[test]
    fn exact_sign_vs_i128() {
        let mut rng = Rng(5);
        for _ in 0..20000 {
            let n = 1 + rng.int(0, 7) as usize;
            let sh = rng.int(-30, 30) as i32;
            let mut t = vec![];
            let mut exact: i128 = 0;
            for _ in 0..n {
                let a = rng.int(-(1 << 31), 1 << 31);
                let b = rng.int(-(1 << 31), 1 << 31);
                exact += a as i128 * b as i128;
                // scaling both factors by 2^sh and 2^-sh keeps the products
                t.push((a as f64 * 2f64.powi(sh), b as f64 * 2f64.powi(-sh)));
            }
            // make a cancelling sum exactly zero half of the time
            if rng.next() & 1 == 0 {
                let (a, b) = (t[0].0, t[0].1);
                t.push((-a, b));
                exact -= (a * 2f64.powi(-sh)) as i128 * (b * 2f64.powi(sh)) as i128;
                if t.len() > 8 {
                    continue;
                }
            }
            assert_eq!(exact_sign(&t), exact.signum() as i32, "{t:?}");
        }
    }

    #[test]
    fn exact_predicates() {
        // collinear points whose float cross product is not 0
        let a = (0.1, 0.1);
        let b = (0.2, 0.2);
        let c = (0.30000000000000004, 0.30000000000000004);
        assert_eq!(orient(a, b, c), 0);
        let c2 = (0.3, 0.30000000000000004);
        assert_eq!(orient(a, b, c2), 1);
        // products that round to the same float
        // (1+e)^2 rounds to 1+2e: only the exact sign sees the e^2
        let q = (1.0 + f64::EPSILON, 1.0);
        assert_eq!(
            cmp_score(q, (1.0 + f64::EPSILON, 0.0), (0.0, 1.0 + 2.0 * f64::EPSILON)),
            1
        );
        assert_eq!(cmp_score(q, (1.0, 1.0), (1.0, 1.0)), 0);
    }
}
