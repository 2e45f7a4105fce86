//! Downstream: sinks for tracking requests and the write-back of the result to the mailbox.

pub mod dynamics;
pub mod jsonl;
pub mod policy;
pub mod webhook;
