//! Durable state: sync cursors, seen messages, the outbox. The only code that touches sled.
