//! I/O to Exchange: the HTTP transport, authentication, the call gate and retry decisions.
//! Uses [`crate::ews`] for every byte on the wire; never touches the store.
