//! The command line (clap derive). No logic: each command calls into the library.
