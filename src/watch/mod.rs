//! The domain loop: pure decisions (classify, cadence) and the per-mailbox tasks that apply them.

pub mod cadence;
pub mod classify;
pub mod health;
pub mod mailbox;
pub mod mappings;
pub mod supervisor;
