//! The application layer: what a command does to a stack, as plans converged through the
//! engine. Commands are wiring; this is where `up`, `scale`, `update`, `rollback` and `down`
//! meet the engine.

pub mod converge;
pub mod images;

pub use converge::{converge, converge_to, desired, make_plan, record_release};
