//! isowasm-rust: an independent implementation of the isowasm machine
//! (spec/MACHINE.md), with a Python module (`isowasm_rust`, feature
//! `python`) and a command-line binary built on the same code.
//!
//! * [`parser`] — program files → [`parser::Program`], with located errors.
//! * [`machine`] — the machine itself, one handler per op; [`machine::run`].
//! * [`memory`] — linear memory, reused between runs on one thread.
//! * [`trace`] — canonical trace text, SHA-256 digest and checkpoints.
//! * [`spec`] — limits, opcodes and traps of spec/machine.yaml.

#![forbid(unsafe_code)]

pub mod machine;
pub mod memory;
pub mod parser;
pub mod spec;
pub mod trace;

#[cfg(feature = "python")]
mod python;

pub use machine::{run, RunOptions, RunOutcome, Status};
pub use parser::{parse_program, ParseError, Program};
pub use trace::TraceMode;
