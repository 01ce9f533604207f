//! The Engine API's data types (service specs, tasks, nodes, ...), as the rest of twip sees
//! them. The desired state and the plan are written in the engine's own vocabulary, so that
//! what twip computes is exactly what it sends and what it reads back; this module is the one
//! door through which those types leave `engine/` (only `engine/` imports the API client).
pub use bollard::models::*;
