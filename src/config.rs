//! The configuration file: one serde tree, validated as a whole.
