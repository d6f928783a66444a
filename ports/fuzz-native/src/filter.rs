//! What the isowasm toolchain accepts (spec/MACHINE.md §8), checked cheaply
//! on the binary with wasmparser, and the wasm-level constructs a module
//! contains.
//!
//! `check` is deliberately a little stricter than the toolchain (every
//! function type must be in the subset, not only the reachable ones): a
//! module it passes must compile, so a rejection by the toolchain of a
//! module that passed here is a finding (a toolchain bug or a filter bug).

use std::collections::BTreeSet;

use wasmparser::{
    BlockType, CompositeInnerType, ConstExpr, DataKind, ExternalKind, Operator, Parser, Payload,
    TypeRef, ValType,
};

/// Machine limits the filter keeps clear of (spec/machine.yaml), with room
/// for the toolchain's own temporaries and reserved globals.
pub const MACHINE_PAGES: u64 = 160;
pub const MAX_FRAME_LOCALS: u64 = 240;
pub const MAX_GLOBALS: usize = 200;

/// Constructs beyond the i32 subset the filter lets through.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// i64 values, locals, globals, params and the integer i64 ops (for
    /// when the toolchain lowers i64).
    pub i64: bool,
}

impl Allow {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Allow, String> {
        let mut a = Allow::default();
        for n in names {
            match n {
                "i64" => a.i64 = true,
                "" => {}
                other => return Err(format!("unknown construct to allow: {other:?} (known: i64)")),
            }
        }
        Ok(a)
    }
}

fn valtype_ok(t: ValType, allow: Allow) -> bool {
    matches!(t, ValType::I32) || (allow.i64 && matches!(t, ValType::I64))
}

/// The category a rejected construct belongs to (the filter's statistics).
pub fn category(name: &str) -> &'static str {
    let n = name;
    if n.contains("v128") || n.contains("x16") || n.contains("x8") || n.contains("x4") || n.contains("x2") {
        "simd"
    } else if n.contains("atomic") || n.contains("shared") {
        "threads"
    } else if n.contains("f32") || n.contains("f64") {
        "float"
    } else if n.contains("i64") {
        "i64"
    } else if n.starts_with("ref") || n.starts_with("table") || n.contains("call_indirect") || n.contains("elem") {
        "reference-types"
    } else if n.starts_with("memory.copy") || n.starts_with("memory.fill") || n.starts_with("memory.init")
        || n.starts_with("data.drop") || n.contains("passive")
    {
        "bulk-memory"
    } else if n.starts_with("return_call") {
        "tail-call"
    } else if n.starts_with("try") || n.starts_with("throw") || n.starts_with("catch") || n.contains("tag")
        || n.starts_with("rethrow") || n.starts_with("delegate")
    {
        "exceptions"
    } else if n.starts_with("struct") || n.starts_with("array") || n.starts_with("i31") || n.starts_with("any")
        || n.starts_with("extern") || n.starts_with("br_on") || n.contains("gc")
    {
        "gc"
    } else {
        "other"
    }
}

/// The WAT-style name of an operator: `I64ExtendI32S` -> `i64.extend_i32_s`,
/// `BrIf` -> `br_if`, from its Debug name.
pub fn op_name(op: &Operator) -> String {
    if let Some(n) = static_name(op) {
        return n.to_string();
    }
    let dbg = format!("{op:?}");
    let ident = dbg.split(|c: char| c == ' ' || c == '{' || c == '(').next().unwrap_or("");
    wat_name(ident)
}

/// The names of the subset's operators without formatting (the coverage
/// of every generated program goes through here).
fn static_name(op: &Operator) -> Option<&'static str> {
    use Operator as O;
    Some(match op {
        O::Unreachable => "unreachable", O::Nop => "nop", O::Block { .. } => "block",
        O::Loop { .. } => "loop", O::If { .. } => "if", O::Else => "else", O::End => "end",
        O::Br { .. } => "br", O::BrIf { .. } => "br_if", O::BrTable { .. } => "br_table",
        O::Return => "return", O::Call { .. } => "call", O::Drop => "drop", O::Select => "select",
        O::TypedSelect { .. } => "select", O::LocalGet { .. } => "local.get",
        O::LocalSet { .. } => "local.set", O::LocalTee { .. } => "local.tee",
        O::GlobalGet { .. } => "global.get", O::GlobalSet { .. } => "global.set",
        O::MemorySize { .. } => "memory.size", O::MemoryGrow { .. } => "memory.grow",
        O::I32Const { .. } => "i32.const", O::I32Load { .. } => "i32.load",
        O::I32Load8S { .. } => "i32.load8_s", O::I32Load8U { .. } => "i32.load8_u",
        O::I32Load16S { .. } => "i32.load16_s", O::I32Load16U { .. } => "i32.load16_u",
        O::I32Store { .. } => "i32.store", O::I32Store8 { .. } => "i32.store8",
        O::I32Store16 { .. } => "i32.store16", O::I32Eqz => "i32.eqz", O::I32Eq => "i32.eq",
        O::I32Ne => "i32.ne", O::I32LtS => "i32.lt_s", O::I32LtU => "i32.lt_u", O::I32GtS => "i32.gt_s",
        O::I32GtU => "i32.gt_u", O::I32LeS => "i32.le_s", O::I32LeU => "i32.le_u", O::I32GeS => "i32.ge_s",
        O::I32GeU => "i32.ge_u", O::I32Clz => "i32.clz", O::I32Ctz => "i32.ctz",
        O::I32Popcnt => "i32.popcnt", O::I32Add => "i32.add", O::I32Sub => "i32.sub",
        O::I32Mul => "i32.mul", O::I32DivS => "i32.div_s", O::I32DivU => "i32.div_u",
        O::I32RemS => "i32.rem_s", O::I32RemU => "i32.rem_u", O::I32And => "i32.and",
        O::I32Or => "i32.or", O::I32Xor => "i32.xor", O::I32Shl => "i32.shl", O::I32ShrS => "i32.shr_s",
        O::I32ShrU => "i32.shr_u", O::I32Rotl => "i32.rotl", O::I32Rotr => "i32.rotr",
        O::I32Extend8S => "i32.extend8_s", O::I32Extend16S => "i32.extend16_s",
        _ => return None,
    })
}

fn wat_name(camel: &str) -> String {
    if camel == "TypedSelect" || camel == "TypedSelectMulti" {
        return "select".into();
    }
    let mut words: Vec<String> = Vec::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() || words.is_empty() {
            words.push(c.to_ascii_lowercase().to_string());
        } else {
            words.last_mut().unwrap().push(c);
        }
    }
    // digits stay with the word before them (I32 Load8 S), so "x4" etc. too
    const PREFIXES: &[&str] = &[
        "i32", "i64", "f32", "f64", "v128", "i8x16", "i16x8", "i32x4", "i64x2", "f32x4", "f64x2",
        "local", "global", "memory", "table", "ref", "data", "elem", "struct", "array", "any",
        "extern", "i31",
    ];
    let joined = words.join("_");
    for p in PREFIXES {
        if let Some(rest) = joined.strip_prefix(p) {
            if let Some(rest) = rest.strip_prefix('_') {
                return format!("{p}.{rest}");
            }
        }
    }
    joined
}

/// The i32 operators of the machine's subset (native or lowered), with
/// their immediates in range. `None`: not in the subset.
fn subset_op(op: &Operator, allow: Allow) -> Option<bool> {
    use Operator as O;
    let blk = |b: &BlockType| match b {
        BlockType::Empty => true,
        BlockType::Type(t) => valtype_ok(*t, allow),
        BlockType::FuncType(_) => false,
    };
    Some(match op {
        O::Unreachable | O::Nop | O::Else | O::End | O::Br { .. } | O::BrIf { .. } | O::BrTable { .. }
        | O::Return | O::Call { .. } | O::Drop | O::Select | O::LocalGet { .. } | O::LocalSet { .. }
        | O::LocalTee { .. } | O::GlobalGet { .. } | O::GlobalSet { .. } | O::I32Const { .. } => true,
        O::Block { blockty } | O::Loop { blockty } | O::If { blockty } => blk(blockty),
        O::TypedSelect { ty } => valtype_ok(*ty, allow),
        O::MemorySize { mem } | O::MemoryGrow { mem } => *mem == 0,
        O::I32Load { memarg } | O::I32Load8S { memarg } | O::I32Load8U { memarg } | O::I32Load16S { memarg }
        | O::I32Load16U { memarg } | O::I32Store { memarg } | O::I32Store8 { memarg }
        | O::I32Store16 { memarg } => mem0(memarg),
        O::I32Eqz | O::I32Eq | O::I32Ne | O::I32LtS | O::I32LtU | O::I32GtS | O::I32GtU | O::I32LeS
        | O::I32LeU | O::I32GeS | O::I32GeU | O::I32Clz | O::I32Ctz | O::I32Popcnt | O::I32Add
        | O::I32Sub | O::I32Mul | O::I32DivS | O::I32DivU | O::I32RemS | O::I32RemU | O::I32And
        | O::I32Or | O::I32Xor | O::I32Shl | O::I32ShrS | O::I32ShrU | O::I32Rotl | O::I32Rotr
        | O::I32Extend8S | O::I32Extend16S => true,
        O::I64Load { memarg } | O::I64Load8S { memarg } | O::I64Load8U { memarg } | O::I64Load16S { memarg }
        | O::I64Load16U { memarg } | O::I64Load32S { memarg } | O::I64Load32U { memarg }
        | O::I64Store { memarg } | O::I64Store8 { memarg } | O::I64Store16 { memarg }
        | O::I64Store32 { memarg } => allow.i64 && mem0(memarg),
        O::I64Const { .. } | O::I64Eqz | O::I64Eq | O::I64Ne | O::I64LtS | O::I64LtU | O::I64GtS
        | O::I64GtU | O::I64LeS | O::I64LeU | O::I64GeS | O::I64GeU | O::I64Clz | O::I64Ctz
        | O::I64Popcnt | O::I64Add | O::I64Sub | O::I64Mul | O::I64DivS | O::I64DivU | O::I64RemS
        | O::I64RemU | O::I64And | O::I64Or | O::I64Xor | O::I64Shl | O::I64ShrS | O::I64ShrU
        | O::I64Rotl | O::I64Rotr | O::I32WrapI64 | O::I64ExtendI32S | O::I64ExtendI32U
        | O::I64Extend8S | O::I64Extend16S | O::I64Extend32S => allow.i64,
        _ => return None,
    })
}

fn mem0(m: &wasmparser::MemArg) -> bool {
    m.target == wasmparser::MemArgTarget::Memory(0) && m.ordering.is_none()
}

fn const_ok(e: &ConstExpr, allow: Allow) -> bool {
    let mut r = e.get_operators_reader();
    let first = match r.read() {
        Ok(op) => op,
        Err(_) => return false,
    };
    let ok = match first {
        Operator::I32Const { .. } => true,
        Operator::I64Const { .. } => allow.i64,
        _ => false,
    };
    ok && matches!(r.read(), Ok(Operator::End)) && r.eof()
}

fn reject(what: impl Into<String>) -> Result<(), String> {
    Err(what.into())
}

/// None when the toolchain takes `wasm`, else the first construct it does
/// not (e.g. "i64.add", "f32 local", "table", "import env.foo").
pub fn check(wasm: &[u8], allow: Allow) -> Option<String> {
    check_inner(wasm, allow).err()
}

fn check_inner(wasm: &[u8], allow: Allow) -> Result<(), String> {
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut num_imported = 0u32;
    let mut compute: Option<u32> = None;
    let mut globals = 0usize;
    let mut code_index = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("malformed module: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if encoding != wasmparser::Encoding::Module {
                    return reject("component");
                }
            }
            Payload::TypeSection(r) => {
                for t in r.into_iter_err_on_gc_types() {
                    let t = t.map_err(|_| "gc type".to_string())?;
                    let (p, res) = (t.params().to_vec(), t.results().to_vec());
                    if let Some(bad) = p.iter().chain(res.iter()).find(|v| !valtype_ok(**v, allow)) {
                        return reject(format!("{} in a function type", valtype_name(*bad)));
                    }
                    if res.len() > 1 {
                        return reject("multi-value function result");
                    }
                    types.push((p, res));
                }
            }
            Payload::ImportSection(r) => {
                for imp in r {
                    let imp = imp.map_err(|e| format!("malformed import: {e}"))?;
                    let (m, n, ty) = match imp {
                        wasmparser::Imports::Single(_, i) => (i.module, i.name, i.ty),
                        _ => return reject("compact import group"),
                    };
                    let ok = match ty {
                        TypeRef::Func(t) => {
                            (m, n) == ("env", "output_byte")
                                && types.get(t as usize).map(|(p, r)| p == &[ValType::I32] && r.is_empty())
                                    == Some(true)
                        }
                        _ => false,
                    };
                    if !ok {
                        return reject(format!("import {m}.{n}"));
                    }
                    num_imported += 1;
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    func_types.push(t.map_err(|e| e.to_string())?);
                }
            }
            Payload::TableSection(_) => return reject("table"),
            Payload::ElementSection(_) => return reject("element segment"),
            Payload::TagSection(_) => return reject("tag"),
            Payload::MemorySection(r) => {
                if r.count() > 1 {
                    return reject("multiple memories");
                }
                for m in r {
                    let m = m.map_err(|e| e.to_string())?;
                    if m.memory64 {
                        return reject("memory64");
                    }
                    if m.shared {
                        return reject("shared memory");
                    }
                    if m.page_size_log2.is_some() {
                        return reject("custom page size");
                    }
                    if m.initial > MACHINE_PAGES {
                        return reject("memory larger than the machine's");
                    }
                }
            }
            Payload::GlobalSection(r) => {
                for g in r {
                    let g = g.map_err(|e| e.to_string())?;
                    if !valtype_ok(g.ty.content_type, allow) {
                        return reject(format!("{} global", valtype_name(g.ty.content_type)));
                    }
                    if g.ty.shared {
                        return reject("shared global");
                    }
                    if !const_ok(&g.init_expr, allow) {
                        return reject("global initialiser other than a constant");
                    }
                    globals += 1;
                }
                if globals > MAX_GLOBALS {
                    return reject("too many globals");
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(|e| e.to_string())?;
                    if e.name == "compute" {
                        if e.kind != ExternalKind::Func {
                            return reject("compute is not a function");
                        }
                        compute = Some(e.index);
                    }
                }
            }
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(|e| e.to_string())?;
                    match d.kind {
                        DataKind::Passive => return reject("passive data segment"),
                        DataKind::Active { memory_index, offset_expr } => {
                            if memory_index != 0 {
                                return reject("data segment of memory 1+");
                            }
                            let mut rd = offset_expr.get_operators_reader();
                            let ok = matches!(rd.read(), Ok(Operator::I32Const { .. }))
                                && matches!(rd.read(), Ok(Operator::End));
                            if !ok {
                                return reject("data segment offset other than i32.const");
                            }
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let ti = *func_types.get(code_index).ok_or("code without function")?;
                code_index += 1;
                let nparams = types.get(ti as usize).map(|t| t.0.len()).unwrap_or(0) as u64;
                let mut nlocals = nparams;
                for l in body.get_locals_reader().map_err(|e| e.to_string())? {
                    let (n, t) = l.map_err(|e| e.to_string())?;
                    if !valtype_ok(t, allow) {
                        return reject(format!("{} local", valtype_name(t)));
                    }
                    nlocals += n as u64;
                }
                if nlocals > MAX_FRAME_LOCALS {
                    return reject("too many locals");
                }
                let mut ops = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !ops.eof() {
                    let op = ops.read().map_err(|e| e.to_string())?;
                    match subset_op(&op, allow) {
                        Some(true) => {}
                        _ => {
                            let bt = match &op {
                                Operator::Block { blockty } | Operator::Loop { blockty }
                                | Operator::If { blockty } => Some(*blockty),
                                _ => None,
                            };
                            return reject(match bt {
                                Some(BlockType::Type(t)) => format!("{} {}", op_name(&op), valtype_name(t)),
                                Some(BlockType::FuncType(_)) => format!("{} multi-value", op_name(&op)),
                                _ => match &op {
                                    Operator::TypedSelect { ty } => format!("select {}", valtype_name(*ty)),
                                    _ => op_name(&op),
                                },
                            });
                        }
                    }
                }
            }
            Payload::StartSection { .. }
            | Payload::DataCountSection { .. }
            | Payload::CodeSectionStart { .. }
            | Payload::CustomSection(_)
            | Payload::End(_) => {}
            other => {
                let s = format!("{other:?}");
                return reject(s.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("section").to_string());
            }
        }
    }
    let c = compute.ok_or("no compute export")?;
    if c < num_imported {
        return reject("compute is an import");
    }
    let ti = func_types.get((c - num_imported) as usize).ok_or("compute out of range")?;
    let (p, r) = &types[*ti as usize];
    if !(p.is_empty() || p == &[ValType::I32]) || r.len() > 1 {
        return reject("compute's signature");
    }
    Ok(())
}

fn valtype_name(t: ValType) -> String {
    match t {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        ValType::V128 => "v128".into(),
        ValType::Ref(_) => "ref".into(),
    }
}

/// The wasm-level ops and constructs `wasm` contains: operator names
/// (`i32.add`, `br_table`, `call output_byte`), `<memop> offset` for a
/// non-zero static offset, `block/loop/if result`, and module-level aspects
/// (`memory`, `memory max`, `data`, `globals`, `global mutable`, `start`,
/// `funcs 2+`, `func params`, `func result`, `compute param`, `compute
/// result`, `locals`).
pub fn constructs(wasm: &[u8]) -> Result<BTreeSet<String>, String> {
    let mut seen = BTreeSet::new();
    let mut fast_seen: std::collections::HashSet<&'static str> = std::collections::HashSet::new();
    let mut types: Vec<(usize, usize)> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut num_imported = 0u32;
    let mut compute = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(r) => {
                for g in r {
                    for st in g.map_err(|e| e.to_string())?.into_types() {
                        if let CompositeInnerType::Func(f) = &st.composite_type.inner {
                            types.push((f.params().len(), f.results().len()));
                        } else {
                            types.push((0, 0));
                        }
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if let Ok(i) = imp {
                        if matches!(i.ty, TypeRef::Func(_)) {
                            num_imported += 1;
                        }
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    func_types.push(t.map_err(|e| e.to_string())?);
                }
                if func_types.len() > 1 {
                    seen.insert("funcs 2+".into());
                }
            }
            Payload::MemorySection(r) => {
                for m in r.into_iter().flatten() {
                    seen.insert("memory".into());
                    if m.maximum.is_some() {
                        seen.insert("memory max".into());
                    }
                    if m.initial == 0 {
                        seen.insert("memory 0 pages".into());
                    } else if m.initial >= MACHINE_PAGES {
                        seen.insert("memory full".into());
                    }
                }
            }
            Payload::GlobalSection(r) => {
                for g in r.into_iter().flatten() {
                    seen.insert("globals".into());
                    if g.ty.mutable {
                        seen.insert("global mutable".into());
                    }
                }
            }
            Payload::ExportSection(r) => {
                for e in r.into_iter().flatten() {
                    if e.name == "compute" && e.kind == ExternalKind::Func {
                        compute = Some(e.index);
                    }
                }
            }
            Payload::StartSection { .. } => {
                seen.insert("start".into());
            }
            Payload::DataSection(r) => {
                if r.count() > 0 {
                    seen.insert("data".into());
                }
            }
            Payload::CodeSectionEntry(body) => {
                let i = seen.len(); // any change below is fine; locals first
                let _ = i;
                if let Ok(lr) = body.get_locals_reader() {
                    if lr.into_iter().flatten().any(|(n, _)| n > 0) {
                        seen.insert("locals".into());
                    }
                }
                let mut ops = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !ops.eof() {
                    let op = ops.read().map_err(|e| e.to_string())?;
                    // the subset's names without allocating (every program's coverage)
                    let fast = match &op {
                        Operator::Call { function_index } if *function_index < num_imported => {
                            Some("call output_byte")
                        }
                        Operator::End => continue,
                        _ => static_name(&op),
                    };
                    if let Some(n) = fast {
                        fast_seen.insert(n);
                        if memarg_offset(&op).is_some_and(|o| o != 0) {
                            fast_seen.insert(offset_name(n));
                        }
                        match &op {
                            Operator::Block { blockty: BlockType::Type(_) } => fast_seen.insert("block result"),
                            Operator::Loop { blockty: BlockType::Type(_) } => fast_seen.insert("loop result"),
                            Operator::If { blockty: BlockType::Type(_) } => fast_seen.insert("if result"),
                            _ => false,
                        };
                        continue;
                    }
                    let name = op_name(&op);
                    match &op {
                        Operator::Block { blockty: BlockType::Type(_) } => {
                            seen.insert("block result".into());
                        }
                        Operator::Loop { blockty: BlockType::Type(_) } => {
                            seen.insert("loop result".into());
                        }
                        Operator::If { blockty: BlockType::Type(_) } => {
                            seen.insert("if result".into());
                        }
                        _ => {}
                    }
                    if let Some(off) = memarg_offset(&op) {
                        if off != 0 {
                            seen.insert(format!("{name} offset"));
                        }
                    }
                    seen.insert(name);
                }
            }
            _ => {}
        }
    }
    seen.extend(fast_seen.into_iter().map(String::from));
    for (i, t) in func_types.iter().enumerate() {
        let (p, r) = types.get(*t as usize).copied().unwrap_or((0, 0));
        let is_compute = compute == Some(i as u32 + num_imported);
        if is_compute {
            if p > 0 {
                seen.insert("compute param".into());
            }
            if r > 0 {
                seen.insert("compute result".into());
            }
        } else {
            if p > 0 {
                seen.insert("func params".into());
            }
            if r > 0 {
                seen.insert("func result".into());
            }
        }
    }
    Ok(seen)
}

fn offset_name(n: &'static str) -> &'static str {
    match n {
        "i32.load" => "i32.load offset",
        "i32.load8_s" => "i32.load8_s offset",
        "i32.load8_u" => "i32.load8_u offset",
        "i32.load16_s" => "i32.load16_s offset",
        "i32.load16_u" => "i32.load16_u offset",
        "i32.store" => "i32.store offset",
        "i32.store8" => "i32.store8 offset",
        "i32.store16" => "i32.store16 offset",
        _ => "offset",
    }
}

fn memarg_offset(op: &Operator) -> Option<u64> {
    use Operator as O;
    match op {
        O::I32Load { memarg } | O::I32Load8S { memarg } | O::I32Load8U { memarg } | O::I32Load16S { memarg }
        | O::I32Load16U { memarg } | O::I32Store { memarg } | O::I32Store8 { memarg }
        | O::I32Store16 { memarg } | O::I64Load { memarg } | O::I64Load8S { memarg }
        | O::I64Load8U { memarg } | O::I64Load16S { memarg } | O::I64Load16U { memarg }
        | O::I64Load32S { memarg } | O::I64Load32U { memarg } | O::I64Store { memarg }
        | O::I64Store8 { memarg } | O::I64Store16 { memarg } | O::I64Store32 { memarg } => Some(memarg.offset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_names_agree_with_debug_names() {
        use wasmparser::{BlockType, MemArg};
        let m = MemArg { align: 0, max_align: 0, offset: 0, target: Default::default(), ordering: None };
        for op in [Operator::I32Add, Operator::I32Extend16S, Operator::BrIf { relative_depth: 0 },
                   Operator::I32Load16U { memarg: m }, Operator::MemoryGrow { mem: 0 },
                   Operator::Block { blockty: BlockType::Empty }, Operator::LocalTee { local_index: 0 }] {
            let dbg = format!("{op:?}");
            let ident = dbg.split(|c: char| c == ' ' || c == '{' || c == '(').next().unwrap();
            assert_eq!(static_name(&op).unwrap(), wat_name(ident));
        }
    }

    #[test]
    fn names() {
        assert_eq!(wat_name("I64ExtendI32S"), "i64.extend_i32_s");
        assert_eq!(wat_name("I32Load8U"), "i32.load8_u");
        assert_eq!(wat_name("BrIf"), "br_if");
        assert_eq!(wat_name("MemoryGrow"), "memory.grow");
        assert_eq!(wat_name("I32TruncSatF32S"), "i32.trunc_sat_f32_s");
        assert_eq!(wat_name("LocalTee"), "local.tee");
        assert_eq!(wat_name("Unreachable"), "unreachable");
        assert_eq!(category("i64.add"), "i64");
        assert_eq!(category("f32.add"), "float");
        assert_eq!(category("i32.trunc_f32_s"), "float");
    }
}
