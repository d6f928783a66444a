//! The machine (MACHINE.md §3–§7): state, one handler per op, the step
//! loop, statuses and the budget.
//!
//! Each handler performs its op and reports its tokens to the sink, or
//! returns the trap it raises; a trapping step then writes `trap(NAME)`
//! instead (the handler has written nothing when it traps). Token counts are
//! kept here, independently of the sink, so an untraced run counts them too.

use crate::memory::Memory;
use crate::parser::{Instr, Program};
use crate::spec::{
    Op, Trap, CALL_DEPTH, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_STEPS, GLOBALS, LOCALS_PER_FRAME, MEMORY_BYTES,
    OPERAND_STACK,
};
use crate::trace::{self, NoTrace, Sink, TextTrace, TraceMode};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Halted,
    Trapped { trap: Trap, pc: usize },
    BudgetExhausted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Halted => "halted",
            Status::Trapped { .. } => "trapped",
            Status::BudgetExhausted => "budget-exhausted",
        }
    }
}

/// One active call: where it returns to and the call's immediate. The
/// caller's locals sit below the callee's in `Machine::locals`.
#[derive(Clone, Copy, Debug)]
struct Frame {
    return_pc: usize,
    call_imm: u32,
}

type Step = Result<(), Trap>;

/// Machine state between steps.
pub struct Machine<'a> {
    code: &'a [Instr],
    input: &'a [u8],
    pc: usize,
    stack: Vec<u32>,
    /// Locals of every active frame, `LOCALS_PER_FRAME` each; the current
    /// frame's are the last `LOCALS_PER_FRAME`, starting at `base`.
    locals: Vec<u32>,
    base: usize,
    frames: Vec<Frame>,
    globals: Vec<u32>,
    mem: Memory,
    output: Vec<u8>,
    steps: u64,
    tokens: u64,
    stop: Option<Status>,
}

impl<'a> Machine<'a> {
    /// A machine at pc 0 with zeroed state, about to run `code` on `input`.
    pub fn new(code: &'a [Instr], input: &'a [u8]) -> Machine<'a> {
        Machine {
            code,
            input,
            pc: 0,
            stack: Vec::with_capacity(1024),
            locals: vec![0; LOCALS_PER_FRAME],
            base: 0,
            frames: Vec::new(),
            globals: vec![0; GLOBALS],
            mem: Memory::new(),
            output: Vec::new(),
            steps: 0,
            // The input section: one token per byte, `00`, its commit.
            tokens: input.len() as u64 + 2,
            stop: None,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// `Some` once the machine halted or trapped.
    pub fn stopped(&self) -> Option<Status> {
        self.stop
    }

    /// `run`, counting each step in `cov` (see `coverage`): its op and the
    /// classes of the operands it is about to pop, and how the run ends.
    pub fn run_covered<S: Sink>(&mut self, limit: u64, sink: &mut S, cov: &mut [u64]) {
        while self.stop.is_none() && self.steps < limit {
            let pc = self.pc;
            let ins = self.code[pc];
            let n = self.stack.len();
            let pops = coverage::POPS[ins.op as usize];
            // the top of the stack is the last operand (b of a, b; select's condition)
            let (a, b) = match pops {
                0 => (0, 0),
                1 | 3 => (n.checked_sub(1).map_or(0, |i| coverage::class(self.stack[i])), 0),
                _ => (
                    n.checked_sub(2).map_or(0, |i| coverage::class(self.stack[i])),
                    n.checked_sub(1).map_or(0, |i| coverage::class(self.stack[i])),
                ),
            };
            cov[coverage::cell(ins.op as usize, a, b)] += 1;
            self.steps += 1;
            if let Err(trap) = self.step(ins, sink) {
                self.tokens += 1;
                sink.trap(trap);
                self.stop = Some(Status::Trapped { trap, pc });
                cov[coverage::trap_cell(trap)] += 1;
            }
        }
    }

    /// Execute steps until `steps == limit` or the machine stops.
    pub fn run<S: Sink>(&mut self, limit: u64, sink: &mut S) {
        while self.stop.is_none() && self.steps < limit {
            let pc = self.pc;
            let ins = self.code[pc];
            self.steps += 1;
            if let Err(trap) = self.step(ins, sink) {
                self.tokens += 1;
                sink.trap(trap);
                self.stop = Some(Status::Trapped { trap, pc });
            }
        }
    }

    #[inline(always)]
    fn step<S: Sink>(&mut self, ins: Instr, s: &mut S) -> Step {
        let imm = ins.imm;
        match ins.op {
            Op::Halt => self.halt(imm, s),
            Op::Return => self.ret(imm, s),
            Op::Call => self.call(imm, s),
            Op::Br => self.br(imm, s),
            Op::BrIf => self.br_if(imm, s),
            Op::Drop => self.drop_(s),
            Op::Select => self.select(s),
            Op::LocalGet => self.local_get(imm, s),
            Op::LocalSet => self.local_set(imm, s),
            Op::LocalTee => self.local_tee(imm, s),
            Op::GlobalGet => self.global_get(imm, s),
            Op::GlobalSet => self.global_set(imm, s),
            // Sign-extending loads flag the bytes they extend into when the
            // loaded value is negative (sign8: all 4, sign16: bytes 1..3).
            Op::Load => self.load(imm, 4, |m| (u32::from_le_bytes([m[0], m[1], m[2], m[3]]), 0), s),
            Op::Load8U => self.load(imm, 1, |m| (m[0] as u32, 0), s),
            Op::Load8S => self.load(
                imm,
                1,
                |m| (m[0] as i8 as i32 as u32, if m[0] >= 0x80 { 0b1111 } else { 0 }),
                s,
            ),
            Op::Load16U => self.load(imm, 2, |m| (u16::from_le_bytes([m[0], m[1]]) as u32, 0), s),
            Op::Load16S => self.load(
                imm,
                2,
                |m| {
                    (
                        i16::from_le_bytes([m[0], m[1]]) as i32 as u32,
                        if m[1] >= 0x80 { 0b1110 } else { 0 },
                    )
                },
                s,
            ),
            Op::Store => self.store(imm, 4, s),
            Op::Store8 => self.store(imm, 1, s),
            Op::Store16 => self.store(imm, 2, s),
            Op::Const => self.i32_const(imm, s),
            Op::Eqz => self.eqz(s),
            Op::Eq => self.compare(|a, b| a == b, s),
            Op::Ne => self.compare(|a, b| a != b, s),
            Op::LtS => self.compare(|a, b| (a as i32) < (b as i32), s),
            Op::LtU => self.compare(|a, b| a < b, s),
            Op::GtS => self.compare(|a, b| (a as i32) > (b as i32), s),
            Op::GtU => self.compare(|a, b| a > b, s),
            Op::LeS => self.compare(|a, b| (a as i32) <= (b as i32), s),
            Op::LeU => self.compare(|a, b| a <= b, s),
            Op::GeS => self.compare(|a, b| (a as i32) >= (b as i32), s),
            Op::GeU => self.compare(|a, b| a >= b, s),
            Op::Add => self.add(s),
            Op::Sub => self.sub(s),
            Op::Output => self.output_(s),
            Op::InputBase => self.input_base(imm),
        }
    }

    // ---- stack helpers ------------------------------------------------

    #[inline(always)]
    fn pop(&mut self) -> Result<u32, Trap> {
        self.stack.pop().ok_or(Trap::StackUnderflow)
    }

    #[inline(always)]
    fn top(&mut self) -> Result<&mut u32, Trap> {
        self.stack.last_mut().ok_or(Trap::StackUnderflow)
    }

    #[inline(always)]
    fn push(&mut self, v: u32) -> Step {
        if self.stack.len() >= OPERAND_STACK {
            return Err(Trap::StackOverflow);
        }
        self.stack.push(v);
        Ok(())
    }

    /// Pops b, then a; returns (a, b).
    #[inline(always)]
    fn pop2(&mut self) -> Result<(u32, u32), Trap> {
        let b = self.pop()?;
        let a = self.pop()?;
        Ok((a, b))
    }

    /// An ordinary step's end: `n` tokens, continue at pc + 1.
    #[inline(always)]
    fn next(&mut self, tokens: u64) -> Step {
        self.tokens += tokens;
        self.pc += 1;
        Ok(())
    }

    /// `pc + 1 + s32(imm)` (in range: checked at load time).
    #[inline(always)]
    fn target(&self, imm: u32) -> usize {
        (self.pc as isize + 1 + imm as i32 as isize) as usize
    }

    /// `ea = pop() + off` without wrapping (as wasm); trap `oob` unless `ea + w <= memory_bytes`.
    #[inline(always)]
    fn address(&mut self, off: u32, w: usize) -> Result<usize, Trap> {
        let ea = self.pop()? as usize + off as usize;
        if ea + w > MEMORY_BYTES {
            return Err(Trap::Oob);
        }
        Ok(ea)
    }

    // ---- handlers, one per op ----------------------------------------

    fn halt<S: Sink>(&mut self, code: u32, s: &mut S) -> Step {
        if code != 0 {
            // Load-time checks admit only trap codes here.
            return Err(Trap::from_code(code).unwrap_or(Trap::Unreachable));
        }
        self.tokens += 1;
        s.line(trace::HALT);
        self.stop = Some(Status::Halted);
        Ok(())
    }

    #[inline(always)]
    fn ret<S: Sink>(&mut self, imm: u32, s: &mut S) -> Step {
        let frame = self.frames.pop().ok_or(Trap::ReturnOutside)?;
        self.locals.truncate(self.base);
        self.base -= LOCALS_PER_FRAME;
        let v = (frame.return_pc as u32).wrapping_sub(self.pc as u32).wrapping_sub(1);
        let flags = if S::ACTIVE { borrows(imm, frame.call_imm) } else { 0 };
        s.branch(v, flags, trace::RETURN);
        self.tokens += 6;
        self.pc = frame.return_pc;
        Ok(())
    }

    #[inline(always)]
    fn call<S: Sink>(&mut self, imm: u32, s: &mut S) -> Step {
        if self.frames.len() >= CALL_DEPTH {
            return Err(Trap::CallDepth);
        }
        self.frames.push(Frame {
            return_pc: self.pc + 1,
            call_imm: imm,
        });
        self.base += LOCALS_PER_FRAME;
        self.locals.resize(self.base + LOCALS_PER_FRAME, 0);
        s.branch(imm, 0, trace::CALL);
        self.tokens += 6;
        self.pc = self.target(imm);
        Ok(())
    }

    #[inline(always)]
    fn br<S: Sink>(&mut self, imm: u32, s: &mut S) -> Step {
        s.branch(imm, 0, trace::BR);
        self.tokens += 6;
        self.pc = self.target(imm);
        Ok(())
    }

    #[inline(always)]
    fn br_if<S: Sink>(&mut self, imm: u32, s: &mut S) -> Step {
        if self.pop()? != 0 {
            s.branch(imm, 0, trace::BR_IF_TAKEN);
            self.tokens += 6;
            self.pc = self.target(imm);
            Ok(())
        } else {
            s.line(trace::BR_IF_NOT_TAKEN);
            self.next(1)
        }
    }

    #[inline(always)]
    fn drop_<S: Sink>(&mut self, s: &mut S) -> Step {
        self.pop()?;
        s.line(trace::POP1);
        self.next(1)
    }

    #[inline(always)]
    fn select<S: Sink>(&mut self, s: &mut S) -> Step {
        let c = self.pop()?;
        let b = self.pop()?;
        let top = self.top()?;
        if c == 0 {
            *top = b;
        }
        let v = *top;
        s.value(v, 0, 4, trace::SELECT);
        self.next(5)
    }

    #[inline(always)]
    fn local_get<S: Sink>(&mut self, i: u32, s: &mut S) -> Step {
        let v = self.locals[self.base + i as usize];
        self.push(v)?;
        s.value(v, 0, 4, trace::PUSH);
        self.next(5)
    }

    #[inline(always)]
    fn local_set<S: Sink>(&mut self, i: u32, s: &mut S) -> Step {
        let v = self.pop()?;
        self.locals[self.base + i as usize] = v;
        s.value(v, 0, 4, trace::POP1);
        self.next(5)
    }

    #[inline(always)]
    fn local_tee<S: Sink>(&mut self, i: u32, s: &mut S) -> Step {
        let v = *self.top()?;
        self.locals[self.base + i as usize] = v;
        s.value(v, 0, 4, trace::KEEP);
        self.next(5)
    }

    #[inline(always)]
    fn global_get<S: Sink>(&mut self, i: u32, s: &mut S) -> Step {
        let v = self.globals[i as usize];
        self.push(v)?;
        s.value(v, 0, 4, trace::PUSH);
        self.next(5)
    }

    #[inline(always)]
    fn global_set<S: Sink>(&mut self, i: u32, s: &mut S) -> Step {
        self.globals[i as usize] = self.pop()?;
        s.line(trace::POP1);
        self.next(1)
    }

    /// Loads: the address is popped, the loaded value pushed in its place.
    #[inline(always)]
    /// `read` gives the value and its flags from the `w` bytes at `ea`.
    fn load<S: Sink>(&mut self, off: u32, w: usize, read: impl Fn(&[u8]) -> (u32, u8), s: &mut S) -> Step {
        let ea = self.address(off, w)?;
        let (v, flags) = read(self.mem.read(ea, w));
        self.stack.push(v); // cannot overflow: the address was just popped
        s.value(v, flags, 4, trace::UNARY);
        self.next(5)
    }

    /// Stores: the value is popped first, then the address.
    #[inline(always)]
    fn store<S: Sink>(&mut self, off: u32, w: usize, s: &mut S) -> Step {
        let v = self.pop()?;
        let ea = self.address(off, w)?;
        self.mem.write(ea, &v.to_le_bytes()[..w]);
        s.value(v, 0, w, trace::STORE);
        self.next(w as u64 + 1)
    }

    #[inline(always)]
    fn i32_const<S: Sink>(&mut self, k: u32, s: &mut S) -> Step {
        self.push(k)?;
        s.value(k, 0, 4, trace::PUSH);
        self.next(5)
    }

    #[inline(always)]
    fn eqz<S: Sink>(&mut self, s: &mut S) -> Step {
        let top = self.top()?;
        *top = (*top == 0) as u32;
        let v = *top;
        s.value(v, 0, 4, trace::UNARY);
        self.next(5)
    }

    #[inline(always)]
    fn compare<S: Sink>(&mut self, rel: impl Fn(u32, u32) -> bool, s: &mut S) -> Step {
        let (a, b) = self.pop2()?;
        let v = rel(a, b) as u32;
        self.stack.push(v);
        s.value(v, 0, 4, trace::BINARY);
        self.next(5)
    }

    #[inline(always)]
    fn add<S: Sink>(&mut self, s: &mut S) -> Step {
        let (a, b) = self.pop2()?;
        let v = a.wrapping_add(b);
        self.stack.push(v);
        s.value(v, if S::ACTIVE { carries(a, b) } else { 0 }, 4, trace::BINARY);
        self.next(5)
    }

    #[inline(always)]
    fn sub<S: Sink>(&mut self, s: &mut S) -> Step {
        let (a, b) = self.pop2()?;
        let v = a.wrapping_sub(b);
        self.stack.push(v);
        s.value(v, if S::ACTIVE { borrows(a, b) } else { 0 }, 4, trace::BINARY);
        self.next(5)
    }

    #[inline(always)]
    fn output_<S: Sink>(&mut self, s: &mut S) -> Step {
        let c = self.pop()? as u8;
        self.output.push(c);
        s.out(c);
        self.next(1)
    }

    /// Copy the input and its NUL to memory at `addr`. Its trace tokens are
    /// the input section, already written when the run began.
    fn input_base(&mut self, addr: u32) -> Step {
        let a = addr as usize;
        let n = self.input.len();
        if a + n + 1 > MEMORY_BYTES {
            return Err(Trap::Oob);
        }
        self.mem.write(a, self.input);
        self.mem.write(a + n, &[0]);
        self.next(0)
    }
}

/// Flags of `a + b`: bit i set when the byte-wise addition with incoming
/// carry overflows 255 at byte i.
pub fn carries(a: u32, b: u32) -> u8 {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    let mut carry = 0u16;
    let mut flags = 0u8;
    for i in 0..4 {
        let sum = a[i] as u16 + b[i] as u16 + carry;
        carry = sum >> 8;
        flags |= (carry as u8) << i;
    }
    flags
}

/// Flags of `a - b`: bit i set when the byte-wise subtraction with incoming
/// borrow goes below 0 at byte i.
pub fn borrows(a: u32, b: u32) -> u8 {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    let mut borrow = 0i16;
    let mut flags = 0u8;
    for i in 0..4 {
        let diff = a[i] as i16 - b[i] as i16 - borrow;
        borrow = (diff < 0) as i16;
        flags |= (borrow as u8) << i;
    }
    flags
}

/// What to run and how to record it.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub max_steps: u64,
    pub trace: TraceMode,
    pub checkpoint_interval: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_steps: DEFAULT_MAX_STEPS,
            trace: TraceMode::None,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

/// The result of one run (the fields of spec/result.py's RunResult that a
/// machine produces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: Status,
    pub output: Vec<u8>,
    pub steps: u64,
    pub tokens: u64,
    /// Canonical trace text (trace mode "text").
    pub trace: Option<String>,
    /// SHA-256 hex of the canonical trace text (modes "digest" and "text").
    pub digest: Option<String>,
    /// (steps, digest so far) pairs (modes "digest" and "text").
    pub checkpoints: Option<Vec<(u64, String)>>,
}

impl RunOutcome {
    pub fn trap(&self) -> Option<Trap> {
        match self.status {
            Status::Trapped { trap, .. } => Some(trap),
            _ => None,
        }
    }

    pub fn trap_pc(&self) -> Option<usize> {
        match self.status {
            Status::Trapped { pc, .. } => Some(pc),
            _ => None,
        }
    }
}

/// Machine coverage: which op ran on which operand classes, which traps
/// and statuses were reached. A run's counts are a flat vector of `SIZE`
/// cells: op × class of its first operand × class of its second (see
/// `run_covered`), then one cell per trap, then one per final status.
pub mod coverage {
    use crate::spec::{Op, Trap};

    /// zero, one, a sign boundary (0x7fffffff, 0x80000000), max (0xffffffff), any other
    pub const CLASSES: usize = 5;
    pub const OPS: usize = Op::ALL.len();
    pub const TRAPS: usize = Trap::ALL.len();
    pub const STATUSES: usize = 3; // halted, trapped, budget_exhausted
    pub const SIZE: usize = OPS * CLASSES * CLASSES + TRAPS + STATUSES;

    /// Operands each op pops, table order (select: its condition is classified).
    pub const POPS: [u8; OPS] = {
        let mut p = [0u8; OPS];
        let mut i = 0;
        while i < OPS {
            p[i] = Op::ALL[i].pops();
            i += 1;
        }
        p
    };

    #[inline(always)]
    pub fn class(v: u32) -> usize {
        match v {
            0 => 0,
            1 => 1,
            0x7fff_ffff | 0x8000_0000 => 2,
            0xffff_ffff => 3,
            _ => 4,
        }
    }

    #[inline(always)]
    pub fn cell(op: usize, a: usize, b: usize) -> usize {
        (op * CLASSES + a) * CLASSES + b
    }

    pub fn trap_cell(t: Trap) -> usize {
        OPS * CLASSES * CLASSES + Trap::ALL.iter().position(|&x| x == t).unwrap_or(0)
    }

    pub fn status_cell(status_index: usize) -> usize {
        OPS * CLASSES * CLASSES + TRAPS + status_index
    }
}

/// Run `program` on `input` (its own input section when `None`).
///
/// A checkpoint is taken after every `checkpoint_interval` steps at which
/// the machine is still running (none where it halts or traps, none at a
/// budget's end that falls between two).
pub fn run(program: &Program, input: Option<&[u8]>, opts: &RunOptions) -> RunOutcome {
    run_with(program, input, opts, None)
}

/// `run`, with machine coverage counted into `cov` (`coverage::SIZE` cells)
/// when it is given.
pub fn run_with(program: &Program, input: Option<&[u8]>, opts: &RunOptions, mut cov: Option<&mut [u64]>) -> RunOutcome {
    let input = input.unwrap_or(&program.input);
    let mut m = Machine::new(&program.code, input);
    let (digest, checkpoints, text) = match opts.trace {
        TraceMode::None => {
            match cov.as_deref_mut() {
                Some(c) => m.run_covered(opts.max_steps, &mut NoTrace, c),
                None => m.run(opts.max_steps, &mut NoTrace),
            }
            (None, None, None)
        }
        TraceMode::Digest | TraceMode::Text => {
            let interval = opts.checkpoint_interval.max(1);
            let mut sink = TextTrace::new(opts.trace == TraceMode::Text);
            sink.input_section(input);
            while m.stopped().is_none() && m.steps() < opts.max_steps {
                let next = (m.steps() / interval).saturating_add(1).saturating_mul(interval);
                match cov.as_deref_mut() {
                    Some(c) => m.run_covered(next.min(opts.max_steps), &mut sink, c),
                    None => m.run(next.min(opts.max_steps), &mut sink),
                }
                if m.stopped().is_none() && m.steps().is_multiple_of(interval) {
                    sink.checkpoint(m.steps());
                }
            }
            let (digest, cps, text) = sink.finish();
            (Some(digest), Some(cps), text)
        }
    };
    let status = m.stopped().unwrap_or(Status::BudgetExhausted);
    if let Some(c) = cov {
        let i = match status {
            Status::Halted => 0,
            Status::Trapped { .. } => 1,
            Status::BudgetExhausted => 2,
        };
        c[coverage::status_cell(i)] += 1;
    }
    RunOutcome {
        status,
        steps: m.steps,
        tokens: m.tokens,
        output: m.output,
        trace: text,
        digest,
        checkpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_program;
    use crate::trace::{count_tokens, digest_text};

    const INPUT_LINE: &str = "00 commit(+0,sts=0,bt=0)\n";

    /// Parse `body` (instruction lines) with `input`, run it traced.
    fn exec(body: &str, input: &[u8], max_steps: u64) -> RunOutcome {
        let mut text = format!("{{\n{body}\n}}\n");
        for &b in input {
            text.push_str(&format!("{b:02x} "));
        }
        text.push_str("00 commit(+0,sts=0,bt=0)\n");
        let p = parse_program(&text, "t").unwrap();
        let opts = RunOptions {
            max_steps,
            trace: TraceMode::Text,
            checkpoint_interval: 4,
        };
        let r = run(&p, None, &opts);
        // Invariants every run keeps: the digest is of the text, the token
        // count matches the text, an untraced run agrees.
        let t = r.trace.as_deref().unwrap();
        assert_eq!(r.digest.as_deref().unwrap(), digest_text(t));
        assert_eq!(r.tokens, count_tokens(t));
        let plain = run(
            &p,
            None,
            &RunOptions {
                trace: TraceMode::None,
                ..opts
            },
        );
        assert_eq!(
            (plain.status, plain.steps, plain.tokens, &plain.output),
            (r.status, r.steps, r.tokens, &r.output)
        );
        r
    }

    /// The trace after the input section.
    fn steps_text(body: &str) -> String {
        let r = exec(body, b"", 1000);
        r.trace.unwrap().strip_prefix(INPUT_LINE).unwrap().to_string()
    }

    #[test]
    fn coverage_counts_ops_on_operand_classes_traps_and_statuses() {
        use super::coverage::{cell, class, status_cell, trap_cell, SIZE};
        let body = [
            c(0),
            c(1),
            "i32.add 00 00 00 00".into(),
            c(0xffff_ffff),
            c(0x7fff_ffff),
            "i32.sub 00 00 00 00".into(),
            "drop 00 00 00 00".into(),
            c(0xffff_ffff),
            "i32.load 00 00 00 00".into(),
            "halt 00 00 00 00".into(),
        ];
        let text = format!("{{\n{}\n}}\n{INPUT_LINE}", body.join("\n"));
        let p = parse_program(&text, "t").unwrap();
        for trace in [TraceMode::None, TraceMode::Digest] {
            let mut cov = vec![0u64; SIZE];
            let opts = RunOptions {
                max_steps: 100,
                trace,
                checkpoint_interval: 4,
            };
            let r = run_with(&p, None, &opts, Some(&mut cov));
            assert_eq!(r.trap(), Some(Trap::Oob));
            let op = |o: Op| o as usize;
            assert_eq!(cov[cell(op(Op::Const), 0, 0)], 5, "five constants, operand-less");
            assert_eq!(cov[cell(op(Op::Add), 0, 1)], 1, "0 + 1: zero, one");
            assert_eq!(cov[cell(op(Op::Sub), 3, 2)], 1, "-1 - 0x7fffffff: max, sign");
            assert_eq!(cov[cell(op(Op::Drop), 2, 0)], 1, "drop of 0x80000000: sign");
            assert_eq!(cov[cell(op(Op::Load), 3, 0)], 1, "a load from 0xffffffff: max");
            assert_eq!(cov[trap_cell(Trap::Oob)], 1);
            assert_eq!(cov[status_cell(1)], 1);
            assert_eq!(
                cov.iter().sum::<u64>(),
                9 + 2,
                "one cell per step, plus trap and status"
            );
            assert_eq!((class(0x8000_0000), class(0xffff_fffe)), (2, 4));
        }
    }

    fn c(v: u32) -> String {
        let b = v.to_le_bytes();
        format!("i32.const {:02x} {:02x} {:02x} {:02x}", b[0], b[1], b[2], b[3])
    }

    fn result_of(prelude: &[u32], op: &str) -> String {
        let mut body: Vec<String> = prelude.iter().map(|&v| c(v)).collect();
        body.push(format!("{op} 00 00 00 00"));
        body.push("halt 00 00 00 00".into());
        let t = steps_text(&body.join("\n"));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.last(), Some(&"halt"));
        lines[lines.len() - 2].to_string()
    }

    #[test]
    fn const_and_halt() {
        let r = exec(&format!("{}\nhalt 00 00 00 00", c(0x1234_5678)), b"", 10);
        assert_eq!(
            r.trace.unwrap(),
            format!("{INPUT_LINE}78 56 34 12 commit(+1,sts=1,bt=0)\nhalt\n")
        );
        assert_eq!(r.status, Status::Halted);
        assert_eq!((r.steps, r.tokens), (2, 2 + 5 + 1));
    }

    #[test]
    fn arithmetic_tokens_and_flags() {
        assert_eq!(result_of(&[0xff, 1], "i32.add"), "00' 01 00 00 commit(-1,sts=1,bt=0)");
        assert_eq!(
            result_of(&[0xffff_ffff, 1], "i32.add"),
            "00' 00' 00' 00' commit(-1,sts=1,bt=0)"
        );
        assert_eq!(
            result_of(&[0x0100, 0x00ff], "i32.add"),
            "ff 01 00 00 commit(-1,sts=1,bt=0)"
        );
        assert_eq!(result_of(&[0, 1], "i32.sub"), "ff' ff' ff' ff' commit(-1,sts=1,bt=0)");
        assert_eq!(result_of(&[0x100, 1], "i32.sub"), "ff' 00 00 00 commit(-1,sts=1,bt=0)");
        assert_eq!(result_of(&[5, 5], "i32.sub"), "00 00 00 00 commit(-1,sts=1,bt=0)");
        assert_eq!(result_of(&[0], "i32.eqz"), "01 00 00 00 commit(+0,sts=1,bt=0)");
        assert_eq!(result_of(&[7], "i32.eqz"), "00 00 00 00 commit(+0,sts=1,bt=0)");
    }

    #[test]
    fn comparisons() {
        let neg = 0xffff_ffff; // -1
        let cases: [(&str, [u32; 2], u32); 20] = [
            ("i32.eq", [3, 3], 1),
            ("i32.eq", [3, 4], 0),
            ("i32.ne", [3, 4], 1),
            ("i32.ne", [3, 3], 0),
            ("i32.lt_s", [neg, 1], 1),
            ("i32.lt_u", [neg, 1], 0),
            ("i32.gt_s", [neg, 1], 0),
            ("i32.gt_u", [neg, 1], 1),
            ("i32.le_s", [neg, neg], 1),
            ("i32.le_s", [1, neg], 0),
            ("i32.le_u", [1, neg], 1),
            ("i32.le_u", [2, 1], 0),
            ("i32.ge_s", [neg, 0], 0),
            ("i32.ge_s", [0, 0], 1),
            ("i32.ge_u", [neg, 0], 1),
            ("i32.ge_u", [0, 1], 0),
            ("i32.lt_s", [0x8000_0000, 0x7fff_ffff], 1),
            ("i32.gt_s", [0x8000_0000, 0x7fff_ffff], 0),
            ("i32.lt_u", [1, 2], 1),
            ("i32.gt_u", [1, 2], 0),
        ];
        for (op, [a, b], want) in cases {
            assert_eq!(
                result_of(&[a, b], op),
                format!("{want:02x} 00 00 00 commit(-1,sts=1,bt=0)"),
                "{op} {a:#x} {b:#x}"
            );
        }
    }

    #[test]
    fn locals_globals_select_drop() {
        let t = steps_text(
            &[
                c(9),
                "local.tee 03 00 00 00".into(),
                "local.set 04 00 00 00".into(),
                "local.get 03 00 00 00".into(),
                "global.set 07 00 00 00".into(),
                "global.get 07 00 00 00".into(),
                "local.get 05 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(1),
                c(2),
                c(0),
                "select 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
            ]
            .join("\n"),
        );
        let want = [
            "09 00 00 00 commit(+1,sts=1,bt=0)",
            "09 00 00 00 commit(+0,sts=0,bt=0)",
            "09 00 00 00 commit(-1,sts=0,bt=0)",
            "09 00 00 00 commit(+1,sts=1,bt=0)",
            "commit(-1,sts=0,bt=0)",
            "09 00 00 00 commit(+1,sts=1,bt=0)",
            "00 00 00 00 commit(+1,sts=1,bt=0)",
            "commit(-1,sts=0,bt=0)",
            "01 00 00 00 commit(+1,sts=1,bt=0)",
            "02 00 00 00 commit(+1,sts=1,bt=0)",
            "00 00 00 00 commit(+1,sts=1,bt=0)",
            "02 00 00 00 commit(-2,sts=1,bt=0)",
            "halt",
        ];
        assert_eq!(t.lines().collect::<Vec<_>>(), want);
        assert_eq!(result_of(&[1, 2, 5], "select"), "01 00 00 00 commit(-2,sts=1,bt=0)");
    }

    #[test]
    fn memory_ops() {
        let t = steps_text(
            &[
                c(100),
                c(0xfedc_ba98),
                "i32.store 04 00 00 00".into(), // mem[104..108]
                c(104),
                "i32.load 00 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(100),
                "i32.load8_s 04 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(100),
                "i32.load8_u 04 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(100),
                "i32.load16_s 06 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(100),
                "i32.load16_u 06 00 00 00".into(),
                "drop 00 00 00 00".into(),
                c(200),
                c(0x1234_7f80),
                "i32.store16 00 00 00 00".into(),
                c(200),
                "i32.load16_s 00 00 00 00".into(),
                c(300),
                c(0x41),
                "i32.store8 00 00 00 00".into(),
                c(299),
                "i32.load 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
            ]
            .join("\n"),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "98 ba dc fe commit(-2,sts=0,bt=0)");
        assert_eq!(lines[4], "98 ba dc fe commit(+0,sts=1,bt=0)");
        assert_eq!(lines[7], "98' ff' ff' ff' commit(+0,sts=1,bt=0)");
        assert_eq!(lines[10], "98 00 00 00 commit(+0,sts=1,bt=0)");
        assert_eq!(lines[13], "dc fe' ff' ff' commit(+0,sts=1,bt=0)");
        assert_eq!(lines[16], "dc fe 00 00 commit(+0,sts=1,bt=0)");
        assert_eq!(lines[20], "80 7f commit(-2,sts=0,bt=0)");
        assert_eq!(lines[22], "80 7f 00 00 commit(+0,sts=1,bt=0)");
        assert_eq!(lines[25], "41 commit(-2,sts=0,bt=0)");
        assert_eq!(lines[27], "00 41 00 00 commit(+0,sts=1,bt=0)");
    }

    #[test]
    fn load8_s_positive_is_unflagged() {
        let t = steps_text(
            &[
                c(0),
                c(0x7f),
                "i32.store8 00 00 00 00".into(),
                c(0),
                "i32.load8_s 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
            ]
            .join("\n"),
        );
        assert_eq!(t.lines().nth(4), Some("7f 00 00 00 commit(+0,sts=1,bt=0)"));
    }

    #[test]
    fn branches() {
        // 0: const 2; 1: br_if +1 (taken) -> 3; 2: halt; 3: const 0; 4: br_if (not taken); 5: br -4 -> 2
        let t = steps_text(
            &[
                c(2),
                "br_if 01 00 00 00".into(),
                "halt 00 00 00 00".into(),
                c(0),
                "br_if 00 00 00 00".into(),
                "br fc ff ff ff".into(),
            ]
            .join("\n"),
        );
        let want = [
            "02 00 00 00 commit(+1,sts=1,bt=0)",
            "branch_taken",
            "01 00 00 00 commit(-1,sts=0,bt=1)",
            "00 00 00 00 commit(+1,sts=1,bt=0)",
            "commit(-1,sts=0,bt=0)",
            "branch_taken",
            "fc ff ff ff commit(+0,sts=0,bt=1)",
            "halt",
        ];
        assert_eq!(t.lines().collect::<Vec<_>>(), want);
    }

    #[test]
    fn call_and_return() {
        // 0: const 5; 1: call +2 -> 4; 2: output; 3: halt
        // 4: local.set 0; 5: local.get 0; 6: return fb ff ff ff (-5: from 7 back to 2? no: to the entry 4 is -3)
        let t = steps_text(
            &[
                c(0x41),
                "call 02 00 00 00".into(),
                "output 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
                "local.set 00 00 00 00".into(),
                "local.get 00 00 00 00".into(),
                "return fd ff ff ff".into(),
            ]
            .join("\n"),
        );
        let want = [
            "41 00 00 00 commit(+1,sts=1,bt=0)",
            "branch_taken",
            "02 00 00 00 call_commit",
            "41 00 00 00 commit(-1,sts=0,bt=0)",
            "41 00 00 00 commit(+1,sts=1,bt=0)",
            // rpc - pc - 1 = 2 - 6 - 1 = -5; flags: borrows of (0xfffffffd - 2)
            "branch_taken",
            "fb ff ff ff return_commit",
            "out(A)",
            "halt",
        ];
        assert_eq!(t.lines().collect::<Vec<_>>(), want);
        assert_eq!(borrows(0xffff_fffd, 2), 0);
        assert_eq!(borrows(0, 1), 0b1111);
    }

    #[test]
    fn callee_locals_start_zero_and_caller_locals_survive() {
        let r = exec(
            &[
                c(7),
                "local.set 01 00 00 00".into(),
                "call 03 00 00 00".into(),
                "local.get 01 00 00 00".into(),
                "output 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
                "local.get 01 00 00 00".into(), // 6: callee, sees 0
                "output 00 00 00 00".into(),
                c(9),
                "local.set 01 00 00 00".into(),
                "return fb ff ff ff".into(),
            ]
            .join("\n"),
            b"",
            100,
        );
        assert_eq!(r.output, vec![0, 7]);
        assert_eq!(r.status, Status::Halted);
    }

    #[test]
    fn output_tokens() {
        let t = steps_text(
            &[
                c(0x141),
                "output 00 00 00 00".into(),
                c(10),
                "output 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
            ]
            .join("\n"),
        );
        assert_eq!(t.lines().nth(1), Some("out(A)"));
        assert_eq!(t.lines().nth(3), Some("out(0a)"));
    }

    #[test]
    fn input_base_copies_input_and_nul() {
        let r = exec(
            &[
                "input_base 10 00 00 00".into(),
                c(0x10),
                "i32.load 00 00 00 00".into(),
                c(0x12),
                "i32.load8_u 00 00 00 00".into(),
                "halt 00 00 00 00".into(),
            ]
            .join("\n"),
            b"hi!",
            100,
        );
        let t = r.trace.unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "h i ! 00 commit(+0,sts=0,bt=0)");
        assert_eq!(lines[2], "68 69 21 00 commit(+0,sts=1,bt=0)");
        assert_eq!(r.steps, 6);
        assert_eq!(r.tokens, 5 + 5 + 5 + 5 + 5 + 1);
    }

    fn trap_of(body: &str) -> (Trap, usize, RunOutcome) {
        let r = exec(body, b"", 1_000_000);
        match r.status {
            Status::Trapped { trap, pc } => {
                assert!(r
                    .trace
                    .as_deref()
                    .unwrap()
                    .ends_with(&format!("trap({})\n", trap.name())));
                (trap, pc, r)
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }

    #[test]
    fn traps() {
        for (code, want) in [
            (1, Trap::Unreachable),
            (2, Trap::DivZero),
            (3, Trap::IntOverflow),
            (4, Trap::Oob),
            (5, Trap::MemoryLimit),
        ] {
            let (t, pc, r) = trap_of(&format!("{}\nhalt {code:02x} 00 00 00", c(0)));
            assert_eq!((t, pc, r.steps, r.tokens), (want, 1, 2, 2 + 5 + 1));
        }
        assert_eq!(trap_of("drop 00 00 00 00\nhalt 00 00 00 00").0, Trap::StackUnderflow);
        assert_eq!(
            trap_of(&format!("{}\ni32.add 00 00 00 00\nhalt 00 00 00 00", c(1))).0,
            Trap::StackUnderflow
        );
        assert_eq!(
            trap_of("local.tee 00 00 00 00\nhalt 00 00 00 00").0,
            Trap::StackUnderflow
        );
        assert_eq!(
            trap_of(&format!("{}\n{}\nselect 00 00 00 00\nhalt 00 00 00 00", c(1), c(0))).0,
            Trap::StackUnderflow
        );
        assert_eq!(trap_of("output 00 00 00 00\nhalt 00 00 00 00").0, Trap::StackUnderflow);
        assert_eq!(trap_of("return 00 00 00 00").0, Trap::ReturnOutside);
        let (t, pc, r) = trap_of("call ff ff ff ff\nhalt 00 00 00 00");
        assert_eq!((t, pc, r.steps), (Trap::CallDepth, 0, CALL_DEPTH as u64 + 1));
        let (t, _, r) = trap_of(&format!("{}\nbr fe ff ff ff", c(1)));
        assert_eq!((t, r.steps), (Trap::StackOverflow, 2 * OPERAND_STACK as u64 + 1));
        // oob: ea + w > memory_bytes, where ea = address + offset does not wrap.
        let m = MEMORY_BYTES as u32;
        assert_eq!(
            trap_of(&format!("{}\ni32.load 00 00 00 00\nhalt 00 00 00 00", c(m - 3))).0,
            Trap::Oob
        );
        let ok = exec(
            &format!("{}\ni32.load 00 00 00 00\nhalt 00 00 00 00", c(m - 4)),
            b"",
            10,
        );
        assert_eq!(ok.status, Status::Halted);
        assert_eq!(
            trap_of(&format!("{}\ni32.load8_u 00 00 00 00\nhalt 00 00 00 00", c(m))).0,
            Trap::Oob
        );
        assert_eq!(
            exec(
                &format!("{}\ni32.load8_u 00 00 00 00\nhalt 00 00 00 00", c(m - 1)),
                b"",
                10
            )
            .status,
            Status::Halted
        );
        assert_eq!(
            trap_of(&format!("{}\ni32.load16_s ff ff ff ff\nhalt 00 00 00 00", c(0))).0,
            Trap::Oob
        );
        assert_eq!(
            trap_of(&format!("{}\ni32.load16_s ff ff ff ff\nhalt 00 00 00 00", c(1))).0,
            Trap::Oob
        );
        assert_eq!(
            trap_of(&format!(
                "{}\n{}\ni32.store 00 00 00 00\nhalt 00 00 00 00",
                c(m - 3),
                c(0)
            ))
            .0,
            Trap::Oob
        );
        assert_eq!(
            trap_of(&format!("{}\ni32.store8 00 00 00 00\nhalt 00 00 00 00", c(0))).0,
            Trap::StackUnderflow
        );
    }

    #[test]
    fn input_base_oob() {
        let big = MEMORY_BYTES - 3; // "ab" + NUL fits exactly at memory_bytes - 3
        let prog = |a: usize| {
            format!(
                "input_base {:02x} {:02x} {:02x} 00\nhalt 00 00 00 00",
                a & 255,
                (a >> 8) & 255,
                a >> 16
            )
        };
        assert_eq!(exec(&prog(big), b"ab", 10).status, Status::Halted);
        let r = exec(&prog(big + 1), b"ab", 10);
        assert_eq!(r.status, Status::Trapped { trap: Trap::Oob, pc: 0 });
        assert_eq!(r.trace.unwrap(), "a b 00 commit(+0,sts=0,bt=0)\ntrap(oob)\n");
        assert_eq!(r.tokens, 4 + 1);
    }

    #[test]
    fn budget_and_checkpoints() {
        // An endless loop: br -1.
        let r = exec("br ff ff ff ff", b"", 10);
        assert_eq!(r.status, Status::BudgetExhausted);
        assert_eq!((r.steps, r.tokens), (10, 2 + 60));
        // interval 4: checkpoints after steps 4 and 8, none at the budget's end.
        let cps = r.checkpoints.unwrap();
        assert_eq!(cps.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 8]);
        let text = r.trace.unwrap();
        let upto = |n: usize| {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            lines[..1 + 2 * n].concat()
        };
        assert_eq!(cps[0].1, digest_text(&upto(4)));
        assert_eq!(cps[1].1, digest_text(&upto(8)));
        assert_ne!(cps[1].1, r.digest.unwrap());
        // A budget of exactly 8: one checkpoint per boundary, none extra.
        let r = exec("br ff ff ff ff", b"", 8);
        assert_eq!(
            r.checkpoints.unwrap().iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![4, 8]
        );
        // Zero budget: nothing executes; the trace is the input section.
        let r = exec("br ff ff ff ff", b"", 0);
        assert_eq!((r.status, r.steps, r.tokens), (Status::BudgetExhausted, 0, 2));
        assert_eq!(r.trace.unwrap(), INPUT_LINE);
        assert!(r.checkpoints.unwrap().is_empty());
        // Halting exactly on a boundary takes no checkpoint there.
        let r = exec(&format!("{}\n{}\n{}\nhalt 00 00 00 00", c(1), c(2), c(3)), b"", 100);
        assert_eq!(r.steps, 4);
        assert!(r.checkpoints.unwrap().is_empty());
        // Halting as the budget's last step is halted, not budget-exhausted.
        let r = exec(&format!("{}\nhalt 00 00 00 00", c(1)), b"", 2);
        assert_eq!(r.status, Status::Halted);
        let r = exec(&format!("{}\nhalt 00 00 00 00", c(1)), b"", 1);
        assert_eq!(r.status, Status::BudgetExhausted);
    }

    #[test]
    fn explicit_input_overrides_the_section() {
        let p = parse_program("{ input_base 00 00 00 00 i32.const 00 00 00 00 i32.load8_u 00 00 00 00 output 00 00 00 00 halt 00 00 00 00 } a 00 commit(+0,sts=0,bt=0)", "t").unwrap();
        let r = run(
            &p,
            Some(b"z"),
            &RunOptions {
                trace: TraceMode::Text,
                ..RunOptions::default()
            },
        );
        assert_eq!(r.output, b"z");
        assert!(r.trace.unwrap().starts_with("z 00 commit"));
        let r = run(&p, None, &RunOptions::default());
        assert_eq!(r.output, b"a");
    }

    #[test]
    fn flag_helpers() {
        assert_eq!(carries(0xff, 1), 0b0001);
        assert_eq!(carries(0xffff_ffff, 1), 0b1111);
        assert_eq!(carries(0x00ff_00ff, 0x0001_0001), 0b0101);
        assert_eq!(carries(0x80, 0x80), 0b0001);
        assert_eq!(borrows(0, 1), 0b1111);
        assert_eq!(borrows(0x100, 1), 0b0001);
        assert_eq!(borrows(0x0100_0000, 1), 0b0111);
        assert_eq!(borrows(5, 5), 0);
        // Cross-check against the carry bits of the full-width operation.
        for (a, b) in [
            (0x1234_5678u32, 0x9abc_def0u32),
            (0xffff_0000, 0x0001_ffff),
            (7, 0xffff_fff9),
        ] {
            let sum = a as u64 + b as u64;
            let carry_in = (a as u64) ^ (b as u64) ^ sum; // bit k: carry into bit k
            let want: u8 = (0..4).map(|i| (((carry_in >> (8 * i + 8)) & 1) as u8) << i).sum();
            assert_eq!(carries(a, b), want);
            let diff = (a as u64).wrapping_sub(b as u64);
            let borrow_in = (a as u64) ^ (b as u64) ^ diff;
            let want: u8 = (0..4).map(|i| (((borrow_in >> (8 * i + 8)) & 1) as u8) << i).sum();
            assert_eq!(borrows(a, b), want);
        }
    }
}
