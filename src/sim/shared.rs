//! What the simulator's parts share: its options, its error type, the state behind one mutex
//! (`Inner`: accounts and mailboxes, subscriptions, fault rules, unreadable items, call log,
//! response style) and
//! that mutex with the options beside it (`Shared`). Kept apart from `mod.rs` so the parts can
//! import it without importing the module that starts them.

use super::respond::ResponseStyle;
use super::{calls, faults, notify, state};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The path of the EWS endpoint, as on a real server.
pub const EWS_PATH: &str = "/EWS/Exchange.asmx";
/// The prefix of the control API.
pub const CONTROL_PATH: &str = "/_sim";

/// What the simulator answers when an account has more calls in flight than its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverBudget {
    /// A SOAP fault `ErrorServerBusy` with `BackOffMilliseconds` (HTTP 500).
    #[default]
    ServerBusy,
    /// A response message `ErrorTooManyObjectsOpened` (HTTP 200).
    TooManyObjectsOpened,
}

/// How to run the simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub style: ResponseStyle,
    /// Concurrent EWS calls per account before it is answered as busy (Exchange: 27).
    pub concurrency_limit: u32,
    /// Open GetStreamingEvents connections per budget before ErrorExceededConnectionCount
    /// (HangingConnectionLimit: 10 on 2016, 2019 and Online, as the simulator's version says;
    /// 3 on 2013). An impersonated connection is charged to the mailbox it acts as.
    pub hanging_connection_limit: u32,
    /// The server offers streaming notifications (Exchange 2010 SP1 and later); `false` plays
    /// an older one: streaming Subscribe and GetStreamingEvents are refused with
    /// ErrorInvalidServerVersion, pull subscriptions work.
    pub streaming: bool,
    pub over_budget: OverBudget,
    /// BackOffMilliseconds sent when over budget.
    pub over_budget_back_off: Duration,
    /// How long one EWS "minute" lasts (ConnectionTimeout, pull Timeout); shorten in tests.
    pub minute: Duration,
    /// Interval of `ConnectionStatus OK` keep-alives on streaming connections.
    pub keep_alive: Duration,
    /// A JSON snapshot file: loaded at start when present, written on change and at shutdown.
    pub persist: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            style: ResponseStyle::default(),
            concurrency_limit: 27,
            hanging_connection_limit: 10,
            streaming: true,
            over_budget: OverBudget::ServerBusy,
            over_budget_back_off: Duration::from_millis(1000),
            minute: Duration::from_secs(60),
            keep_alive: Duration::from_secs(30),
            persist: None,
        }
    }
}

/// A simulator failure a user sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("simulator: cannot listen on {addr}: {source}; pick another address or port")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("simulator: snapshot {path}: {message}; fix or move the file away")]
    Snapshot { path: PathBuf, message: String },
    #[error("simulator: {0}")]
    State(#[from] state::StateError),
}

/// Everything the request handlers share.
pub struct Inner {
    pub state: state::State,
    pub subs: notify::Subscriptions,
    pub faults: faults::Faults,
    pub calls: calls::Calls,
    pub style: ResponseStyle,
    pub concurrency_limit: u32,
    pub hanging_connection_limit: u32,
    pub streaming: bool,
    /// Open streaming connections by the budget they are charged to.
    pub streams_open: std::collections::HashMap<String, u32>,
    /// Items GetItem answers with an error of their own, by ItemId (a corrupt item).
    pub unreadable: std::collections::HashMap<String, crate::ews::ResponseCode>,
    pub(super) dirty: bool,
}

impl Inner {
    /// Marks the state as changed, for the snapshot writer.
    pub fn changed(&mut self) {
        self.dirty = true;
    }
}

pub(crate) struct Shared {
    pub(super) inner: Mutex<Inner>,
    pub(super) options: SimOptions,
    pub(super) persist_wake: tokio::sync::Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
