//! foldertrack watches designated Exchange folders over EWS and turns every message a person
//! moves into one of them into a tracking request, delivered exactly once to a sink.
//!
//! # Layout
//!
//! From the bottom up; a module imports only modules listed above it (`tests/layering.rs`
//! checks this).
//!
//! - [`ews`]: the EWS protocol — requests written, responses read — with no I/O.
//! - [`graph`]: the Microsoft Graph mail API as data — paths, JSON, delta pages, `$batch` —
//!   with no I/O.
//! - [`tracking`]: the tracking request every sink receives, and the record kept per message.
//! - [`telemetry`]: logs and the metrics registry.
//! - [`http`]: what every outbound HTTP connection shares — TLS, timeouts, `Retry-After`, OAuth.
//! - [`client`]: the transport to Exchange: EWS and Microsoft Graph over HTTP,
//!   authentication, the call gate, the retry decision table.
//! - [`feed`]: a folder's changes, protocol-neutral; [`feed::ews`] implements it over EWS,
//!   [`feed::graph`] over Microsoft Graph.
//! - [`store`]: durable state; the only code that touches sled.
//! - [`watch`]: pure decisions (classify, cadence, health, mappings) and the tasks: per
//!   mailbox, and the notifiers (EWS streaming, Graph change notifications).
//! - [`deliver`]: sinks, the outbox drain, problem items, and the write-back to the mailbox.
//! - [`admin`]: the admin HTTP API — its server, and the client the CLI uses.
//! - [`config`]: the configuration file, validated, turned into each component's settings.
//! - [`agent`]: wiring — the config becomes a feed, watchers, a delivery loop and the admin API.
//! - [`sim`]: a stateful Exchange simulator for tests, the demo and the benchmarks (feature `sim`).
//! - [`harness`]: `foldertrack demo` and `foldertrack bench`, the agent against the simulator
//!   (feature `sim`).
//!
//! The binary (`src/main.rs` and `src/cli/`) parses the command line and calls into these.

pub mod admin;
pub mod agent;
pub mod client;
pub mod config;
pub mod deliver;
pub mod ews;
pub mod feed;
pub mod graph;
#[cfg(feature = "sim")]
pub mod harness;
pub mod http;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod watch;

/// The JSON schemas generated from the code, as `(file name under schemas/, text)`.
pub fn schemas() -> Vec<(&'static str, String)> {
    vec![
        ("config.v1.json", config::schema_json()),
        ("tracking_request.v1.json", tracking::schema_json()),
    ]
}
