//! The EWS protocol as foldertrack speaks it: requests written, responses read, no I/O.
//!
//! One file per operation, named after it. Parsers match namespace + local name (prefixes vary
//! by server), skip what they do not know, keep text exactly, and parse each response message on
//! its own so one bad item never loses a batch.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-reference-for-exchange>

pub mod ids;

/// A document that could not be read as what it should be.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not well-formed XML, or well-formed but not the expected shape.
    #[error("line {line}, column {column}: {message}")]
    Malformed {
        line: u64,
        column: u64,
        message: String,
    },
}
