//! wasm-smith configured to the machine's ABI (spec/MACHINE.md §8), driven
//! by bytes that are a pure function of (seed, index, try), filtered until
//! a module passes `filter::check`.
//!
//! The configuration turns off every proposal the toolchain cannot take
//! (floats, SIMD, reference types and tables, bulk memory, multi-value,
//! exceptions, GC, threads, tail calls, memory64, extended constants,
//! custom page sizes, compact imports, wide arithmetic), offers exactly one
//! import (`env.output_byte : (i32) -> ()`), asks for exactly one export
//! (`compute`, of one of the three shapes the ABI allows), and bounds the
//! memory by the machine's 160 pages. wasm-smith has no switch for i64
//! (it is in every configuration), so modules with i64 are generated and
//! rejected by the filter — unless `Allow::i64` relaxes it. Every module
//! gets wasm-smith's `ensure_termination` fuel, so none loops forever.

use arbitrary::Unstructured;
use wasm_smith::{Config, InstructionKind, InstructionKinds, Module};

use crate::filter::{category, check, Allow, MACHINE_PAGES};

#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Modules tried before giving up on program `index`.
    pub max_tries: u32,
    /// Constructs beyond the i32 subset the filter lets through.
    pub allow: Allow,
    /// Bytes of wasm-smith input per try: drawn in [min_bytes, max_bytes].
    pub min_bytes: usize,
    pub max_bytes: usize,
    /// wasm-smith's size limits.
    pub max_funcs: usize,
    pub max_instructions: usize,
    pub max_globals: usize,
    pub max_data_segments: usize,
    /// The fuel of `ensure_termination`: loop iterations plus function
    /// entries a run may take before it traps `unreachable`.
    pub fuel: u32,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tries: 5000,
            allow: Allow::default(),
            min_bytes: 64,
            max_bytes: 384,
            max_funcs: 4,
            max_instructions: 20,
            max_globals: 6,
            max_data_segments: 3,
            fuel: 200,
        }
    }
}

pub struct Generated {
    pub wasm: Option<Vec<u8>>,
    /// Tries made (the accepted one included).
    pub tries: u32,
    /// Rejections by category (i64, float, ...), one per rejected try.
    pub rejected: Vec<(String, u32)>,
    /// Tries where wasm-smith itself failed (ran out of bytes in a way it
    /// reports as an error, or could not honour the configuration).
    pub smith_errors: u32,
}

/// SplitMix64: a small, well-mixed generator; the stream for (seed, index,
/// try) depends on nothing else.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn stream(seed: u64, index: u64, try_: u32) -> SplitMix {
    let mut s = SplitMix(seed ^ 0x6973_6f77_6173_6d21); // "isowasm!"
    let a = s.next();
    let mut s = SplitMix(a ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let b = s.next();
    SplitMix(b ^ (try_ as u64).wrapping_mul(0xA076_1D64_78BD_642F))
}

/// A minimal module: types, then functions (and their code), then exports.
fn tiny_module(types: &[(&[u8], &[u8])], imports: &[(&str, &str, u32)], funcs: &[u32],
               exports: &[(&str, u32)]) -> Vec<u8> {
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
    fn name(s: &str, out: &mut Vec<u8>) {
        leb(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }
    fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u64, out);
        out.extend(body);
    }
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let mut b = Vec::new();
    leb(types.len() as u64, &mut b);
    for (p, r) in types {
        b.push(0x60);
        leb(p.len() as u64, &mut b);
        b.extend_from_slice(p);
        leb(r.len() as u64, &mut b);
        b.extend_from_slice(r);
    }
    section(1, b, &mut m);
    if !imports.is_empty() {
        let mut b = Vec::new();
        leb(imports.len() as u64, &mut b);
        for (md, nm, t) in imports {
            name(md, &mut b);
            name(nm, &mut b);
            b.push(0);
            leb(*t as u64, &mut b);
        }
        section(2, b, &mut m);
    }
    if !funcs.is_empty() {
        let mut b = Vec::new();
        leb(funcs.len() as u64, &mut b);
        for t in funcs {
            leb(*t as u64, &mut b);
        }
        section(3, b, &mut m);
    }
    if !exports.is_empty() {
        let mut b = Vec::new();
        leb(exports.len() as u64, &mut b);
        for (nm, f) in exports {
            name(nm, &mut b);
            b.push(0);
            leb(*f as u64, &mut b);
        }
        section(7, b, &mut m);
    }
    if !funcs.is_empty() {
        let mut b = Vec::new();
        leb(funcs.len() as u64, &mut b);
        for _ in funcs {
            b.extend_from_slice(&[3, 0, 0x00, 0x0b]); // no locals; unreachable end
        }
        section(10, b, &mut m);
    }
    m
}

const I32: u8 = 0x7f;

/// `env.output_byte : (i32) -> ()`, the one import (spec §8).
pub fn imports_module() -> Vec<u8> {
    tiny_module(&[(&[I32], &[])], &[("env", "output_byte", 0)], &[], &[])
}

/// The `compute` export of shape 0: () -> (), 1: (i32) -> (), 2: () -> i32.
pub fn exports_module(shape: u64) -> Vec<u8> {
    let t: (&[u8], &[u8]) = match shape % 3 {
        0 => (&[], &[]),
        1 => (&[I32], &[]),
        _ => (&[], &[I32]),
    };
    tiny_module(&[t], &[], &[0], &[("compute", 0)])
}

fn config(opts: &GenOptions, rng: &mut SplitMix) -> Config {
    let mut c = Config::default();
    c.available_imports = Some(imports_module());
    c.exports = Some(exports_module(rng.next()));
    c.allow_floats = false;
    c.simd_enabled = false;
    c.relaxed_simd_enabled = false;
    c.reference_types_enabled = false;
    c.bulk_memory_enabled = false;
    c.multi_value_enabled = false;
    c.exceptions_enabled = false;
    c.gc_enabled = false;
    c.threads_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.tail_call_enabled = false;
    c.memory64_enabled = false;
    c.extended_const_enabled = false;
    c.custom_page_sizes_enabled = false;
    c.compact_imports_enabled = false;
    c.wide_arithmetic_enabled = false;
    c.saturating_float_to_int_enabled = false;
    c.custom_descriptors_enabled = false;
    c.sign_extension_ops_enabled = true;
    c.allowed_instructions = InstructionKinds::new(&[
        InstructionKind::NumericInt,
        InstructionKind::Parametric,
        InstructionKind::Variable,
        InstructionKind::MemoryInt,
        InstructionKind::Control,
    ]);
    c.max_imports = 1;
    c.max_tables = 0;
    c.max_tags = 0;
    c.max_element_segments = 0;
    c.max_memories = 1;
    c.max_memory32_bytes = MACHINE_PAGES * 65536;
    c.max_types = 6;
    c.max_funcs = opts.max_funcs;
    c.max_instructions = opts.max_instructions;
    c.max_globals = opts.max_globals;
    c.max_data_segments = opts.max_data_segments;
    c.generate_custom_sections = false;
    // Swarm testing: a few knobs drawn per try. Every global and every
    // function type draws i32 or i64 at even odds, so the counts are drawn
    // too (uniformly up to their maximum): the filter then rejects far
    // fewer candidates for i64 than with the maxima fixed.
    let k = rng.next();
    c.disallow_traps = k & 1 == 0;
    c.memory_max_size_required = k & 2 == 0;
    c.min_memories = ((k >> 2) & 3 != 0) as u32; // 3 in 4 have a memory
    c.max_globals = ((k >> 8) % (opts.max_globals as u64 + 1)) as usize;
    c.max_types = 1 + ((k >> 16) % 4) as usize;
    c.max_funcs = 1 + ((k >> 24) % opts.max_funcs.max(1) as u64) as usize;
    c
}

/// Program `index` of the campaign with this seed.
pub fn generate(seed: u64, index: u64, opts: &GenOptions) -> Generated {
    let mut rejected: Vec<(String, u32)> = Vec::new();
    let mut smith_errors = 0;
    let bump = |cat: &str, rejected: &mut Vec<(String, u32)>| {
        if let Some(e) = rejected.iter_mut().find(|(c, _)| c == cat) {
            e.1 += 1;
        } else {
            rejected.push((cat.to_string(), 1));
        }
    };
    let span = opts.max_bytes.saturating_sub(opts.min_bytes) as u64 + 1;
    let mut data = Vec::with_capacity(opts.max_bytes);
    for t in 0..opts.max_tries {
        let mut rng = stream(seed, index, t);
        let cfg = config(opts, &mut rng);
        let len = opts.min_bytes + (rng.next() % span) as usize;
        data.clear();
        while data.len() < len {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
        data.truncate(len);
        let mut u = Unstructured::new(&data);
        let mut module = match Module::new(cfg, &mut u) {
            Ok(m) => m,
            Err(_) => {
                smith_errors += 1;
                continue;
            }
        };
        if module.ensure_termination(opts.fuel).is_err() {
            smith_errors += 1;
            continue;
        }
        let wasm = module.to_bytes();
        match check(&wasm, opts.allow) {
            None => {
                return Generated { wasm: Some(wasm), tries: t + 1, rejected, smith_errors };
            }
            Some(why) => {
                let cat = category(&why);
                let cat = if cat == "other" { why.as_str() } else { cat };
                bump(cat, &mut rejected);
            }
        }
    }
    Generated { wasm: None, tries: opts.max_tries, rejected, smith_errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_validate() {
        let mut v = wasmparser::Validator::new();
        v.validate_all(&imports_module()).unwrap();
        for s in 0..3 {
            wasmparser::Validator::new().validate_all(&exports_module(s)).unwrap();
        }
    }

    #[test]
    fn deterministic_and_accepted() {
        let o = GenOptions::default();
        let a = generate(1, 7, &o);
        let b = generate(1, 7, &o);
        assert_eq!(a.wasm, b.wasm);
        assert_eq!(a.tries, b.tries);
        let w = a.wasm.expect("a module within the tries");
        assert!(check(&w, Allow::default()).is_none());
        wasmparser::Validator::new().validate_all(&w).unwrap();
    }
}

