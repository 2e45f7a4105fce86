//! The tracking request: the contract between the watcher and every sink.
