//! Fast exact inference for the isowasm analytic transformer (transformer/ENGINE.md).

// Index loops over parallel vectors read clearer here; `!(x <= t)` is meant
// to be true for NaN.
#![allow(
    clippy::needless_range_loop,
    clippy::manual_range_contains,
    clippy::neg_cmp_op_on_partial_ord
)]
#![allow(clippy::type_complexity)]

pub mod engine;
pub mod generic;
pub mod hull;
pub mod model;
#[cfg(feature = "python")]
mod python;
