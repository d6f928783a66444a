//! The machine's fixed vocabulary, written from spec/MACHINE.md and
//! spec/machine.yaml: limits, opcodes and traps.
//!
//! The conformance suite (conformance/test_rust_port.py) compares these
//! tables, as exposed to Python, against machine.yaml, so they cannot drift
//! from the written spec unnoticed.

/// Instructions between `{` and `}` (at least one, at most this many).
pub const MAX_INSTRUCTIONS: usize = 1_048_576;
/// Locals of one frame; `local.*` immediates must be below this.
pub const LOCALS_PER_FRAME: usize = 256;
/// Globals; `global.*` immediates must be below this.
pub const GLOBALS: usize = 256;
/// Active calls; a `call` with this many frames active traps `call_depth`.
pub const CALL_DEPTH: usize = 4096;
/// Operand stack depth; a push onto a full stack traps `stack_overflow`.
pub const OPERAND_STACK: usize = 65_536;
/// Linear memory size in bytes.
pub const MEMORY_BYTES: usize = 10_485_760;
/// Input bytes, excluding the terminating NUL.
pub const INPUT_BYTES: usize = 1_048_576;
/// The step budget when a caller names none.
pub const DEFAULT_MAX_STEPS: u64 = 100_000_000;
/// Steps between two trace checkpoints (MACHINE.md §5).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 16_384;

/// The 35 operations of MACHINE.md §4 plus the pseudo-op `input_base`, in
/// the order of machine.yaml's `ops` table (then `pseudo_ops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Halt,
    Return,
    Call,
    Br,
    BrIf,
    Drop,
    Select,
    LocalGet,
    LocalSet,
    LocalTee,
    GlobalGet,
    GlobalSet,
    Load,
    Load8S,
    Load8U,
    Load16S,
    Load16U,
    Store,
    Store8,
    Store16,
    Const,
    Eqz,
    Eq,
    Ne,
    LtS,
    LtU,
    GtS,
    GtU,
    LeS,
    LeU,
    GeS,
    GeU,
    Add,
    Sub,
    Output,
    InputBase,
}

impl Op {
    /// Every opcode, table order.
    pub const ALL: [Op; 36] = [
        Op::Halt,
        Op::Return,
        Op::Call,
        Op::Br,
        Op::BrIf,
        Op::Drop,
        Op::Select,
        Op::LocalGet,
        Op::LocalSet,
        Op::LocalTee,
        Op::GlobalGet,
        Op::GlobalSet,
        Op::Load,
        Op::Load8S,
        Op::Load8U,
        Op::Load16S,
        Op::Load16U,
        Op::Store,
        Op::Store8,
        Op::Store16,
        Op::Const,
        Op::Eqz,
        Op::Eq,
        Op::Ne,
        Op::LtS,
        Op::LtU,
        Op::GtS,
        Op::GtU,
        Op::LeS,
        Op::LeU,
        Op::GeS,
        Op::GeU,
        Op::Add,
        Op::Sub,
        Op::Output,
        Op::InputBase,
    ];

    /// The opcode's name in program files.
    pub fn name(self) -> &'static str {
        match self {
            Op::Halt => "halt",
            Op::Return => "return",
            Op::Call => "call",
            Op::Br => "br",
            Op::BrIf => "br_if",
            Op::Drop => "drop",
            Op::Select => "select",
            Op::LocalGet => "local.get",
            Op::LocalSet => "local.set",
            Op::LocalTee => "local.tee",
            Op::GlobalGet => "global.get",
            Op::GlobalSet => "global.set",
            Op::Load => "i32.load",
            Op::Load8S => "i32.load8_s",
            Op::Load8U => "i32.load8_u",
            Op::Load16S => "i32.load16_s",
            Op::Load16U => "i32.load16_u",
            Op::Store => "i32.store",
            Op::Store8 => "i32.store8",
            Op::Store16 => "i32.store16",
            Op::Const => "i32.const",
            Op::Eqz => "i32.eqz",
            Op::Eq => "i32.eq",
            Op::Ne => "i32.ne",
            Op::LtS => "i32.lt_s",
            Op::LtU => "i32.lt_u",
            Op::GtS => "i32.gt_s",
            Op::GtU => "i32.gt_u",
            Op::LeS => "i32.le_s",
            Op::LeU => "i32.le_u",
            Op::GeS => "i32.ge_s",
            Op::GeU => "i32.ge_u",
            Op::Add => "i32.add",
            Op::Sub => "i32.sub",
            Op::Output => "output",
            Op::InputBase => "input_base",
        }
    }

    /// The opcode named `name` (exact, case-sensitive), if any.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// Operands the op pops (machine.yaml's `pops`; select: 3).
    pub const fn pops(self) -> u8 {
        match self {
            Op::BrIf | Op::Drop | Op::LocalSet | Op::LocalTee | Op::GlobalSet => 1,
            Op::Load | Op::Load8S | Op::Load8U | Op::Load16S | Op::Load16U => 1,
            Op::Eqz | Op::Output => 1,
            Op::Store | Op::Store8 | Op::Store16 => 2,
            Op::Eq | Op::Ne | Op::LtS | Op::LtU | Op::GtS | Op::GtU => 2,
            Op::LeS | Op::LeU | Op::GeS | Op::GeU | Op::Add | Op::Sub => 2,
            Op::Select => 3,
            _ => 0,
        }
    }

    /// `br`, `br_if` and `call`: the immediate is a signed offset from the
    /// next instruction, checked at load time to land inside the program.
    pub fn is_branch(self) -> bool {
        matches!(self, Op::Br | Op::BrIf | Op::Call)
    }

    /// Ops that never continue at pc + 1, so may end a program.
    pub fn ends_program(self) -> bool {
        matches!(self, Op::Halt | Op::Br | Op::Return)
    }

    pub fn uses_local(self) -> bool {
        matches!(self, Op::LocalGet | Op::LocalSet | Op::LocalTee)
    }

    pub fn uses_global(self) -> bool {
        matches!(self, Op::GlobalGet | Op::GlobalSet)
    }
}

/// The traps of MACHINE.md §6, in machine.yaml's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trap {
    Unreachable,
    DivZero,
    IntOverflow,
    Oob,
    CallDepth,
    StackOverflow,
    StackUnderflow,
    ReturnOutside,
    MemoryLimit,
}

impl Trap {
    pub const ALL: [Trap; 9] = [
        Trap::Unreachable,
        Trap::DivZero,
        Trap::IntOverflow,
        Trap::Oob,
        Trap::CallDepth,
        Trap::StackOverflow,
        Trap::StackUnderflow,
        Trap::ReturnOutside,
        Trap::MemoryLimit,
    ];

    /// The name used in `trap(NAME)` and in statuses.
    pub fn name(self) -> &'static str {
        match self {
            Trap::Unreachable => "unreachable",
            Trap::DivZero => "div_zero",
            Trap::IntOverflow => "int_overflow",
            Trap::Oob => "oob",
            Trap::CallDepth => "call_depth",
            Trap::StackOverflow => "stack_overflow",
            Trap::StackUnderflow => "stack_underflow",
            Trap::ReturnOutside => "return_outside",
            Trap::MemoryLimit => "memory_limit",
        }
    }

    /// The `halt` immediate that raises this trap explicitly, if any.
    pub fn code(self) -> Option<u32> {
        match self {
            Trap::Unreachable => Some(1),
            Trap::DivZero => Some(2),
            Trap::IntOverflow => Some(3),
            Trap::Oob => Some(4),
            Trap::MemoryLimit => Some(5),
            _ => None,
        }
    }

    /// The trap a `halt code` raises (`code` non-zero).
    pub fn from_code(code: u32) -> Option<Trap> {
        Trap::ALL.iter().copied().find(|t| t.code() == Some(code))
    }

    /// Resource traps: wasmtime's own limits differ (MACHINE.md §6).
    pub fn is_resource(self) -> bool {
        matches!(self, Trap::CallDepth | Trap::StackOverflow | Trap::MemoryLimit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Op::from_name("i32.mul"), None);
        assert_eq!(Op::from_name("HALT"), None);
        assert_eq!(Op::ALL.len(), 36);
    }

    #[test]
    fn trap_codes() {
        assert_eq!(Trap::from_code(1), Some(Trap::Unreachable));
        assert_eq!(Trap::from_code(4), Some(Trap::Oob));
        assert_eq!(Trap::from_code(0), None);
        assert_eq!(Trap::from_code(5), Some(Trap::MemoryLimit));
        assert_eq!(Trap::from_code(6), None);
    }
}
