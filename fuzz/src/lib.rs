//! The fuzz targets' bodies. `entries.rs` is also compiled into tests/fuzz_regressions.rs (by
//! path), so every input kept in fuzz/regressions/ replays through the same code on stable.

pub mod entries;
