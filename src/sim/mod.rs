//! A stateful Exchange simulator: EWS over HTTP on loopback, plus a control API, for tests,
//! the demo and the benchmarks. Reads requests with [`crate::ews`]; writes its own responses.
