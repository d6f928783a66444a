//! isowasm_fuzz_native: the Rust half of `isowasm fuzz --generator wasm-smith`
//! and of the `wasmi` oracle backend.
//!
//! * `generate(seed, index, opts)`: program `index` of a campaign, a pure
//!   function of (seed, index, opts): wasm-smith driven by bytes from a seeded
//!   generator, configured to the machine's ABI (spec/MACHINE.md §8), and
//!   filtered with wasmparser (`check`) until one passes or the tries run out.
//! * `check(wasm, allow)`: why a module is outside what the toolchain takes,
//!   or None.
//! * `constructs(wasm)`: the wasm-level ops and constructs a module contains
//!   (the coverage vocabulary shared by both generators).
//! * `to_wat(wasm)`: the module as WAT text (wasmprinter).
//! * `shrink(wasm, predicate, ...)`: wasm-shrink, the predicate a Python
//!   callable; `reduce(wasm, predicate, allow)`: our own instruction-level
//!   delta debugging (src/reduce.rs).
//! * `wasmi_run(...)`: the module on the wasmi interpreter.
//!
//! The core lives in plain Rust functions (tested by `cargo test` without
//! Python); the `python` feature adds the pyo3 module on top.

pub mod filter;
pub mod gen;
pub mod oracle;
pub mod reduce;
#[cfg(feature = "python")]
mod python;

pub use filter::{check, constructs, Allow};
pub use gen::{generate, GenOptions, Generated};
pub use oracle::{wasmi_run, OracleRun};

/// The module as WAT text.
pub fn to_wat(wasm: &[u8]) -> Result<String, String> {
    wasmprinter::print_bytes(wasm).map_err(|e| format!("{e:#}"))
}
