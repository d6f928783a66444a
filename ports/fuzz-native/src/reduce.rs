//! A wasm-level reducer of our own, beside wasm-shrink: delta debugging on
//! each function body's instruction sequence. A candidate deletes a run of
//! instructions, or replaces it by `i32.const 0`, or sets an `i32.const` to
//! 0 or 1; it is validated (wasmparser) and checked against the toolchain's
//! subset here, and only then offered to the predicate (a Python callable
//! in the module's use). wasm-shrink removes whole items (functions,
//! globals, segments) and rewrites expressions well, but rarely deletes
//! single instructions; this does exactly that, deterministically.

use wasmparser::{Operator, Parser, Payload, Validator};

use crate::filter::{check, Allow};

fn leb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n != 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
}

fn read_leb(b: &[u8]) -> Option<u64> {
    let (mut n, mut shift) = (0u64, 0);
    for &x in b {
        n |= ((x & 0x7f) as u64) << shift;
        shift += 7;
        if x & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// Where a module's code section and its bodies lie.
struct Layout {
    /// Offset of the code section's id byte, and the end of the section.
    section: (usize, usize),
    /// Each body: (start of its locals, end), and its instructions.
    bodies: Vec<((usize, usize), Vec<Op>)>,
}

#[derive(Clone, Copy)]
struct Op {
    at: usize,
    /// 1: block/loop/if, 2: end, 3: else, 0: anything else
    kind: u8,
    /// the value of an i32.const
    konst: Option<i32>,
}

fn layout(wasm: &[u8]) -> Option<Layout> {
    let mut section = None;
    let mut bodies = Vec::new();
    for p in Parser::new(0).parse_all(wasm) {
        match p.ok()? {
            Payload::CodeSectionStart { unchecked_range, .. } => {
                let range = unchecked_range.start as usize..unchecked_range.end as usize;
                let size = (range.end - range.start) as u64;
                // the id byte (10) and the size's LEB before the contents
                let id = (1..=5).map(|k| range.start.checked_sub(k + 1)).find_map(|i| {
                    let i = i?;
                    (wasm[i] == 10 && read_leb(&wasm[i + 1..range.start]) == Some(size)).then_some(i)
                })?;
                section = Some((id, range.end));
            }
            Payload::CodeSectionEntry(body) => {
                let r = body.range();
                let r = r.start as usize..r.end as usize;
                let mut ops = Vec::new();
                let mut rd = body.get_operators_reader().ok()?;
                while !rd.eof() {
                    let at = rd.original_position() as usize;
                    let op = rd.read().ok()?;
                    let (kind, konst) = match op {
                        Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => (1, None),
                        Operator::End => (2, None),
                        Operator::Else => (3, None),
                        Operator::I32Const { value } => (0, Some(value)),
                        _ => (0, None),
                    };
                    ops.push(Op { at, kind, konst });
                }
                ops.push(Op { at: r.end, kind: 0, konst: None }); // sentinel: the end of the body
                bodies.push(((r.start, r.end), ops));
            }
            _ => {}
        }
    }
    Some(Layout { section: section?, bodies })
}

/// The module with body `f`'s byte ranges `cuts` (ascending, disjoint)
/// replaced by their texts.
fn splice(wasm: &[u8], lay: &Layout, f: usize, cuts: &[(usize, usize, &[u8])]) -> Vec<u8> {
    let mut sec = Vec::new();
    leb(lay.bodies.len() as u64, &mut sec);
    for (i, ((s, e), _)) in lay.bodies.iter().enumerate() {
        if i == f {
            let mut body = Vec::new();
            let mut pos = *s;
            for (a, b, with) in cuts {
                body.extend_from_slice(&wasm[pos..*a]);
                body.extend_from_slice(with);
                pos = *b;
            }
            body.extend_from_slice(&wasm[pos..*e]);
            leb(body.len() as u64, &mut sec);
            sec.extend(body);
        } else {
            leb((e - s) as u64, &mut sec);
            sec.extend_from_slice(&wasm[*s..*e]);
        }
    }
    let mut out = wasm[..lay.section.0].to_vec();
    out.push(10);
    leb(sec.len() as u64, &mut out);
    out.extend(sec);
    out.extend_from_slice(&wasm[lay.section.1..]);
    out
}

fn valid(wasm: &[u8], allow: Allow) -> bool {
    Validator::new().validate_all(wasm).is_ok() && check(wasm, allow).is_none()
}

const ZERO: &[u8] = &[0x41, 0x00];

/// Every one-step smaller variant of `wasm`, coarse first: (candidate, may
/// it be as long as `wasm`). Many are invalid; the caller validates.
fn candidates(wasm: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let lay = match layout(wasm) {
        Some(l) => l,
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    for f in 0..lay.bodies.len() {
        let ops = &lay.bodies[f].1;
        let n = ops.len().saturating_sub(2); // the body's last `end` stays; ops has a sentinel
        // matching ends (and elses) of blocks
        let mut close = vec![usize::MAX; ops.len()];
        let mut mid = vec![usize::MAX; ops.len()];
        let mut stack = Vec::new();
        for (i, op) in ops.iter().enumerate().take(n) {
            match op.kind {
                1 => stack.push(i),
                3 => {
                    if let Some(&o) = stack.last() {
                        mid[o] = i;
                    }
                }
                2 => {
                    if let Some(o) = stack.pop() {
                        close[o] = i;
                    }
                }
                _ => {}
            }
        }
        // whole structured blocks, then their bodies kept without the block
        for i in 0..n {
            if close[i] != usize::MAX {
                let (a, b) = (ops[i].at, ops[close[i] + 1].at);
                out.push((splice(wasm, &lay, f, &[(a, b, &[])]), false));
                out.push((splice(wasm, &lay, f, &[(a, b, ZERO)]), false));
            }
        }
        for i in 0..n {
            if close[i] != usize::MAX {
                let c = close[i];
                let head = (ops[i].at, ops[i + 1].at, &[][..]);
                let tail = (ops[c].at, ops[c + 1].at, &[][..]);
                if mid[i] != usize::MAX {
                    // if/else: keep the then-arm, or the else-arm
                    let m = mid[i];
                    out.push((splice(wasm, &lay, f, &[head, (ops[m].at, ops[c + 1].at, &[])]), false));
                    out.push((splice(wasm, &lay, f, &[(ops[i].at, ops[m + 1].at, &[]), tail]), false));
                } else {
                    out.push((splice(wasm, &lay, f, &[head, tail]), false));
                }
            }
        }
        // runs of instructions: halvings of the body, and every length to 8
        let mut sizes: Vec<usize> = std::iter::successors(Some(n.max(1)), |s| (*s > 1).then(|| s / 2)).collect();
        sizes.extend((1..=8).filter(|s| *s <= n));
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        for size in sizes {
            let step = if size <= 8 { 1 } else { size };
            let mut start = 0;
            while start < n {
                let end = (start + size).min(n);
                let (a, b) = (ops[start].at, ops[end].at);
                out.push((splice(wasm, &lay, f, &[(a, b, &[])]), false));
                if b - a > ZERO.len() {
                    out.push((splice(wasm, &lay, f, &[(a, b, ZERO)]), false));
                }
                start += step;
            }
        }
        // constants towards 0 (a smaller value, not always fewer bytes)
        for i in 0..n {
            if let Some(k) = ops[i].konst {
                for v in [0i32, 1] {
                    if k != v && k != 0 {
                        let mut c = vec![0x41];
                        leb_signed(v as i64, &mut c);
                        out.push((splice(wasm, &lay, f, &[(ops[i].at, ops[i + 1].at, &c)]), true));
                    }
                }
            }
        }
    }
    out
}

/// Shrink `wasm` keeping `interesting` true: first-improvement hill
/// climbing over `candidates` until none is smaller and still interesting.
/// Candidates are validated and checked against the subset before the
/// predicate sees them, and each is offered at most once. `interesting`
/// returns Err to stop (a deadline). Returns the smallest module and the
/// number of predicate calls.
pub fn reduce<E>(wasm: Vec<u8>, allow: Allow, mut interesting: impl FnMut(&[u8]) -> Result<bool, E>)
                 -> Result<(Vec<u8>, u32), (Vec<u8>, u32, E)> {
    use std::collections::hash_map::DefaultHasher;
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};

    let mut best = wasm;
    let mut calls = 0u32;
    if !valid(&best, allow) {
        return Ok((best, 0));
    }
    let mut seen: HashSet<u64> = HashSet::new();
    'round: loop {
        for (c, same_ok) in candidates(&best) {
            if c.len() > best.len() || (c.len() == best.len() && !same_ok) {
                continue;
            }
            let mut h = DefaultHasher::new();
            c.hash(&mut h);
            if !seen.insert(h.finish()) || !valid(&c, allow) {
                continue;
            }
            calls += 1;
            match interesting(&c) {
                Ok(true) => {
                    best = c;
                    continue 'round;
                }
                Ok(false) => {}
                Err(e) => return Err((best, calls, e)),
            }
        }
        return Ok((best, calls));
    }
}

fn leb_signed(mut v: i64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        out.push(if done { b } else { b | 0x80 });
        if done {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_down_to_the_interesting_op() {
        // compute: lots of dead arithmetic, then one i32.rem_u that matters
        let mut b = Vec::new();
        b.extend_from_slice(b"\0asm\x01\0\0\0");
        b.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type () -> ()
        b.extend_from_slice(&[3, 2, 1, 0]);
        b.extend_from_slice(&[7, 11, 1, 7]);
        b.extend_from_slice(b"compute");
        b.extend_from_slice(&[0, 0]);
        let body: Vec<u8> = vec![
            0, // no locals
            0x41, 5, 0x41, 7, 0x6a, 0x1a, // 5 + 7, drop
            0x41, 9, 0x41, 3, 0x70, 0x1a, // 9 rem_u 3, drop
            0x41, 1, 0x41, 2, 0x6b, 0x1a, // 1 - 2, drop
            0x0b,
        ];
        b.extend_from_slice(&[10, (body.len() + 2) as u8, 1, body.len() as u8]);
        b.extend(body);
        Validator::new().validate_all(&b).unwrap();
        let has_rem = |w: &[u8]| -> Result<bool, ()> {
            let mut found = false;
            for p in Parser::new(0).parse_all(w) {
                if let Ok(Payload::CodeSectionEntry(body)) = p {
                    let mut rd = body.get_operators_reader().unwrap();
                    while !rd.eof() {
                        if matches!(rd.read().unwrap(), Operator::I32RemU) {
                            found = true;
                        }
                    }
                }
            }
            Ok(found)
        };
        let (small, _calls) = reduce(b.clone(), Allow::default(), has_rem).unwrap();
        assert!(small.len() < b.len());
        assert!(has_rem(&small).unwrap());
        Validator::new().validate_all(&small).unwrap();
        // only the rem_u expression (its operands replaced or kept) and drop remain
        let wat = crate::to_wat(&small).unwrap();
        assert!(!wat.contains("i32.add") && !wat.contains("i32.sub"), "{wat}");
    }
}
