//! foldertrack watches designated Exchange folders over EWS and turns every message a person
//! moves into one of them into a tracking request, delivered exactly once to a sink.
//!
//! # Layout
//!
//! - [`ews`]: the EWS protocol — requests written, responses read — with no I/O.
//! - [`client`]: the transport to Exchange: HTTP, authentication, the call gate, retry decisions.
//! - [`tracking`]: the tracking request every sink receives, and the record kept per message.
//! - [`feed`]: a folder's changes, protocol-neutral (EWS now, Microsoft Graph later).
//! - [`store`]: durable state; the only code that touches sled.
//! - [`watch`]: pure decisions (classify, cadence) and the per-mailbox tasks.
//! - [`deliver`]: sinks for tracking requests and the write-back to the mailbox.
//! - [`sim`]: a stateful Exchange simulator for tests, the demo and the benchmarks.
//! - [`admin`]: the admin HTTP API — health, metrics, status, track-now, items.
//! - [`demo`]: `foldertrack demo`, the agent against the simulator with a scripted office.
//! - [`bench`]: `foldertrack bench e2e`, the agent end to end against the simulator.
//! - [`app`]: wiring — the config becomes a client, feed, watchers and the outbox drain.
//! - [`config`], [`cli`]: the configuration file and the command line.

pub mod admin;
pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod error;
pub mod ews;
pub mod feed;
pub mod oauth;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod watch;

pub use error::{Error, Result};

/// The JSON schemas generated from the code, as `(file name under schemas/, text)`.
pub fn schemas() -> Vec<(&'static str, String)> {
    vec![
        ("config.v1.json", config::schema_json()),
        ("tracking_request.v1.json", tracking::schema_json()),
    ]
}
