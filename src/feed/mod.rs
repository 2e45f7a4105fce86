//! A folder's changes, protocol-neutral: the watcher's only view of a mailbox.
