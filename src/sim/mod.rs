//! A stateful Exchange simulator: EWS over HTTP on loopback, plus a control API, for tests,
//! the demo and the benchmarks. Reads requests with [`crate::ews`]; writes its own responses.
//!
//! Start it in-process with [`Simulator::start`] (or [`serve_until`] for the CLI); drive it with
//! [`SimControl`] (Rust) or the JSON control API under `/_sim/` on the same listener (see
//! docs/simulator.md). It keeps users, mailboxes shaped like Exchange 2016 ones (the standard
//! folders, hidden and system folders, a non-IPM subtree), folders and messages in memory
//! behind one mutex, answers the EWS operations a typical client uses the way Exchange does
//! (new ItemIds on moves, coalesced sync changes, per-item errors in request order, ServerBusy
//! under load), reports what it cannot read or does not implement by name, and injects faults
//! on request. Owns everything under `src/sim/`; never touches the agent.
//!
//! Layout: `state.rs` accounts and mailboxes, `mailbox.rs` folders and change tracking,
//! `layout.rs` the standard folders of a new mailbox, `message.rs` compact messages, `ids.rs`
//! id encodings, `ops/` the operations (folders, items, notifications, directory), `respond/`
//! response writing and styles, `notify.rs` subscriptions, `graph.rs` Microsoft Graph and
//! `graph_notify.rs` its change notifications, `faults.rs` fault rules, `calls.rs`
//! call log and statistics, `server.rs` the EWS endpoint, `control.rs` the control API,
//! `persist.rs` snapshots, `shared.rs` the options and the state behind the mutex that all of
//! them use.

pub mod calls;
pub mod control;
pub mod faults;
pub mod graph;
pub mod graph_notify;
pub mod ids;
pub mod layout;
pub mod mailbox;
pub mod message;
pub mod notify;
pub mod ops;
pub mod persist;
pub mod respond;
pub mod server;
mod shared;
pub mod state;

pub use calls::{CallRecord, Concurrency, Stats};
pub use control::{HELP as CONTROL_HELP, SimControl};
pub use faults::{FaultKind, FaultRule};
pub use graph::GRAPH_PATH;
pub use message::{Address, MessageView, NewAttachment, NewMessage};
pub use respond::{NotificationNs, Prefixes, ResponseStyle};
pub use shared::{CONTROL_PATH, EWS_PATH, Error, Inner, OverBudget, SimOptions};

use shared::Shared;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

// Here rather than in shared.rs, which control.rs imports.
impl SimOptions {
    /// The control API reference, for `foldertrack sim --help`.
    pub fn help_text() -> &'static str {
        control::HELP
    }
}

/// The simulator's entry point.
pub struct Simulator;

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    control: SimControl,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator on `options.listen` and returns once it accepts connections.
    pub async fn start(options: SimOptions) -> Result<SimHandle, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (handle, task) = launch(options, async {
            let _ = rx.await;
        })
        .await?;
        Ok(SimHandle {
            addr: handle.0,
            control: handle.1,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

async fn launch(
    options: SimOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<((SocketAddr, SimControl), tokio::task::JoinHandle<()>), Error> {
    let state = match &options.persist {
        Some(path) => persist::load(path)?.unwrap_or_default(),
        None => state::State::default(),
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: options.listen,
        source,
    })?;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            state,
            subs: Default::default(),
            faults: Default::default(),
            calls: Default::default(),
            style: options.style,
            concurrency_limit: options.concurrency_limit,
            hanging_connection_limit: options.hanging_connection_limit,
            streaming: options.streaming,
            streams_open: Default::default(),
            unreadable: Default::default(),
            dirty: false,
        }),
        options,
        persist_wake: tokio::sync::Notify::new(),
    });
    let control = SimControl {
        shared: shared.clone(),
    };
    let router = server::router(shared.clone()).merge(graph::router(shared.clone()));
    let persister = shared
        .options
        .persist
        .clone()
        .map(|path| tokio::spawn(persist::run(shared.clone(), path)));
    let notifier = tokio::spawn(graph::deliver_notifications(shared.clone()));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        notifier.abort();
        if let Some(p) = persister {
            p.abort();
        }
        if let Some(path) = &shared.options.persist {
            let _ = persist::write_now(&shared, path);
        }
    });
    Ok(((addr, control), task))
}

impl SimHandle {
    /// `http://127.0.0.1:PORT/EWS/Exchange.asmx`
    pub fn ews_url(&self) -> String {
        format!("http://{}{EWS_PATH}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1.0`: the Graph root.
    pub fn graph_url(&self) -> String {
        format!("http://{}{GRAPH_PATH}", self.addr)
    }

    /// `http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    /// `http://127.0.0.1:PORT/_sim`
    pub fn control_url(&self) -> String {
        format!("http://{}{CONTROL_PATH}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Rust control API (cheap to clone).
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops accepting calls, lets running ones finish, writes the snapshot.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where a simulator started by [`serve_until`] listens.
#[derive(Clone, Debug)]
pub struct Served {
    pub ews_url: String,
    /// The Graph root, `http://…/v1.0`.
    pub graph_url: String,
    /// The token endpoint, with `{tenant}` standing for any tenant id.
    pub token_url: String,
    pub control_url: String,
    pub control: SimControl,
    /// Resolves once the simulator has stopped (after `shutdown` fired) and saved its snapshot.
    pub done: Arc<tokio::sync::Notify>,
}

/// Starts a simulator on `listen` that serves until `shutdown` resolves; prints nothing. Returns
/// its URLs at once; await `done.notified()` to wait for the end.
pub async fn serve_until(
    mut options: SimOptions,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Served, Error> {
    options.listen = listen;
    let ((addr, control), task) = launch(options, shutdown).await?;
    let done = Arc::new(tokio::sync::Notify::new());
    let signal = done.clone();
    tokio::spawn(async move {
        let _ = task.await;
        signal.notify_waiters();
        signal.notify_one();
    });
    Ok(Served {
        ews_url: format!("http://{addr}{EWS_PATH}"),
        graph_url: format!("http://{addr}{GRAPH_PATH}"),
        token_url: format!("http://{addr}/{{tenant}}/oauth2/v2.0/token"),
        control_url: format!("http://{addr}{CONTROL_PATH}"),
        control,
        done,
    })
}
