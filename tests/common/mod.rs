//! The agent against the simulator: a simulator with mailboxes, a temporary folder holding the
//! config, the store and the JSONL sink, and one-call sync passes.
#![allow(dead_code)]

use foldertrack::admin::client::AdminClient;
use foldertrack::agent::{self, Summary, delivery};
use foldertrack::config::Config;
use foldertrack::deliver::{AnySink, Deliverer};
use foldertrack::feed::AnyFeed;
use foldertrack::sim::{MessageView, NewMessage, SimControl, SimHandle, SimOptions, Simulator};
use foldertrack::store::{SledStore, Store};
use foldertrack::tracking::TrackingRequest;
use foldertrack::watch::cadence::CadenceSettings;
use foldertrack::watch::health::HealthPolicy;
use foldertrack::watch::notify::Hints;
use foldertrack::watch::supervisor::Supervisor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const SVC: &str = "svc-tracking@example.com";
pub const SVC_PW: &str = "svc-secret-Pw1";
pub const CONTOSO: &str = "00000000-0000-0000-0000-00000000c050";
pub const FABRIKAM: &str = "00000000-0000-0000-0000-0000000fab00";
/// The Entra app of the Graph back-end; it acts as SVC (and so reaches SVC's mailboxes).
pub const APP_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const APP_SECRET: &str = "app-secret-Pw1";

/// The back-end a scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Ews,
    Graph,
}

impl Api {
    /// The operation a folder's sync shows as in the simulator's call log.
    pub fn sync_op(self) -> &'static str {
        match self {
            Api::Ews => "SyncFolderItems",
            Api::Graph => "messages.delta",
        }
    }

    /// The call that reads new mail's details: GetItem over EWS; Graph's delta pages carry
    /// them, so there it is the delta call.
    pub fn read_op(self) -> &'static str {
        match self {
            Api::Ews => "GetItem",
            Api::Graph => "messages.delta",
        }
    }

    /// The `[exchange]` section for this back-end against `sim`, its secret written to `dir`.
    pub fn exchange_toml(self, dir: &Path, sim: &SimHandle) -> String {
        match self {
            Api::Ews => {
                std::fs::write(dir.join("svc.pw"), SVC_PW).unwrap();
                format!(
                    "[exchange]\nurl = \"{}\"\nauth = {{ kind = \"basic\", username = \"{SVC}\", password_file = \"{}\" }}\n",
                    sim.ews_url(),
                    dir.join("svc.pw").display()
                )
            }
            Api::Graph => {
                write_secret(&dir.join("app.secret"), APP_SECRET);
                format!(
                    "[exchange]\napi = \"graph\"\nurl = \"{}\"\nauth = {{ kind = \"oauth\", tenant_id = \"contoso\", client_id = \"{APP_ID}\", client_secret_file = \"{}\", token_url = \"{}\" }}\n",
                    sim.graph_url(),
                    dir.join("app.secret").display(),
                    sim.token_url("contoso")
                )
            }
        }
    }
}

/// Runs each scenario `name(api: Api)` over both back-ends, as the tests `name::ews` and
/// `name::graph`.
#[macro_export]
macro_rules! over_both_apis {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test]
            async fn ews() {
                super::$name(super::Api::Ews).await
            }
            #[tokio::test]
            async fn graph() {
                super::$name(super::Api::Graph).await
            }
        })*
    };
}

/// A simulator with alice and bob, a service account that may act as both, and an app
/// registration (for Graph) acting as that account.
pub async fn simulator() -> SimHandle {
    simulator_with(SimOptions::default()).await
}

/// [`simulator`] with these options.
pub async fn simulator_with(options: SimOptions) -> SimHandle {
    let sim = Simulator::start(options).await.unwrap();
    let c = sim.control();
    c.create_mailbox(ALICE).unwrap();
    c.create_mailbox(BOB).unwrap();
    c.create_service_account(SVC, SVC_PW).unwrap();
    c.impersonate_all(SVC, true).unwrap();
    c.add_oauth_client(APP_ID, APP_SECRET, SVC).unwrap();
    sim
}

/// A mapped folder: path, regarding id, extra TOML lines.
pub type Folder<'a> = (&'a str, Option<&'a str>, &'a str);

/// `[[mailbox]]` sections: `(address, folders)`.
pub fn mailboxes(list: &[(&str, &[Folder<'_>])]) -> String {
    let mut out = String::new();
    for (address, folders) in list {
        out += &format!("[[mailbox]]\naddress = \"{address}\"\n");
        for (path, regarding, extra) in *folders {
            out += &format!("[[mailbox.folder]]\npath = \"{path}\"\n");
            if let Some(id) = regarding {
                out += &format!("regarding = {{ entity = \"account\", id = \"{id}\" }}\n");
            }
            out += extra;
            out += "\n";
        }
    }
    out
}

/// Writes a config for the simulator into `dir` and returns its path. The sink is the JSONL
/// file `tracked.jsonl` unless `extra` has a `[sink]` section; the admin API listens on a free
/// loopback port unless it has an `[admin]` one.
pub fn write_config(dir: &Path, ews_url: &str, mailboxes: &str, extra: &str) -> PathBuf {
    write_secret(&dir.join("svc.pw"), SVC_PW);
    let exchange = format!(
        "[exchange]\nurl = \"{ews_url}\"\nauth = {{ kind = \"basic\", username = \"{SVC}\", password_file = \"{}\" }}\n",
        dir.join("svc.pw").display()
    );
    write_config_with(dir, &exchange, mailboxes, extra)
}

/// [`write_config`] over the back-end `api`.
pub fn write_config_on(
    api: Api,
    dir: &Path,
    sim: &SimHandle,
    mailboxes: &str,
    extra: &str,
) -> PathBuf {
    write_config_with(dir, &api.exchange_toml(dir, sim), mailboxes, extra)
}

/// [`write_config`] with this `[exchange]` section.
pub fn write_config_with(dir: &Path, exchange: &str, mailboxes: &str, extra: &str) -> PathBuf {
    let sink = if extra.contains("[sink]") {
        String::new()
    } else {
        format!(
            "[sink]\nkind = \"jsonl\"\npath = \"{}\"\n",
            dir.join("tracked.jsonl").display()
        )
    };
    let admin = if extra.contains("[admin]") {
        ""
    } else {
        "[admin]\nlisten = \"127.0.0.1:0\"\n"
    };
    let text = format!(
        r#"{exchange}
[store]
path = "{store}"

{sink}
{admin}
[limits]
calls_per_second = 500
mailbox_calls_per_second = 100
{extra}
{mailboxes}"#,
        store = dir.join("store").display(),
    );
    let path = dir.join("foldertrack.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes a secret file readable by its owner only, as secret files should be (others get a
/// warning).
pub fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// The agent of one test: sim, folder, store, feed.
pub struct Agent {
    pub api: Api,
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    /// Extra config sections (e.g. a `[sink]`), kept across `reconfigure`.
    pub extra: String,
    pub config: Config,
    pub store: Arc<SledStore>,
    pub feed: Arc<AnyFeed>,
}

impl Agent {
    pub async fn start(mailboxes: &str) -> Self {
        Self::start_on(Api::Ews, mailboxes).await
    }

    /// An agent over the back-end `api`.
    pub async fn start_on(api: Api, mailboxes: &str) -> Self {
        let sim = simulator().await;
        Self::with_extra_on(api, sim, mailboxes, |_| String::new()).await
    }

    pub async fn with_sim(sim: SimHandle, mailboxes: &str) -> Self {
        Self::with_extra(sim, mailboxes, |_| String::new()).await
    }

    /// `extra` writes its files into the agent's folder and returns config sections.
    pub async fn with_extra(
        sim: SimHandle,
        mailboxes: &str,
        extra: impl FnOnce(&Path) -> String,
    ) -> Self {
        Self::with_extra_on(Api::Ews, sim, mailboxes, extra).await
    }

    /// [`Self::with_extra`] over the back-end `api`.
    pub async fn with_extra_on(
        api: Api,
        sim: SimHandle,
        mailboxes: &str,
        extra: impl FnOnce(&Path) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        let path = write_config_on(api, dir.path(), &sim, mailboxes, &extra);
        let config = Config::load(&path).unwrap();
        let feed = Arc::new(agent::feed(&config).unwrap());
        let store = Arc::new(SledStore::open(&config.store.path).unwrap());
        Self {
            api,
            sim,
            dir,
            extra,
            config,
            store,
            feed,
        }
    }

    pub fn sim(&self) -> SimControl {
        self.sim.control()
    }

    /// The id this agent's back-end knows the message by: its ItemId over EWS, its immutable
    /// id over Graph.
    pub fn id_of(&self, view: &MessageView) -> String {
        match self.api {
            Api::Ews => view.item_id.clone(),
            Api::Graph => view.immutable_id.clone(),
        }
    }

    /// Applies new mappings, as a reload does (R9).
    pub fn reconfigure(&mut self, mailboxes: &str) {
        let path = write_config_on(self.api, self.dir.path(), &self.sim, mailboxes, &self.extra);
        self.config = Config::load(&path).unwrap();
    }

    /// One sync pass over every mapping, then the outbox drained to the JSONL file.
    pub async fn pass(&self) -> Summary {
        agent::once(&self.config, self.feed.clone(), self.store.clone(), &|_| {})
            .await
            .unwrap()
    }

    /// Every line of the JSONL sink so far.
    pub fn delivered(&self) -> Vec<TrackingRequest> {
        read_jsonl(&self.dir.path().join("tracked.jsonl"))
    }

    /// A supervisor over every configured mailbox, with cadence (busy, normal, quiet) in
    /// seconds and no jitter. Cancel the token to stop it.
    pub fn supervise(
        &self,
        (busy, normal, quiet): (u64, u64, u64),
        health: HealthPolicy,
    ) -> (Arc<Supervisor<AnyFeed, SledStore>>, CancellationToken) {
        let secs = Duration::from_secs;
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(
            self.feed.clone(),
            self.store.clone(),
            CadenceSettings {
                busy: secs(busy),
                normal: secs(normal),
                quiet: secs(quiet),
                jitter: 0.0,
            },
            health,
            self.config.failed_category(),
            Arc::new(Hints::off("this supervisor runs no notifier")),
            shutdown.clone(),
        );
        supervisor.apply(&self.config.mailbox);
        (supervisor, shutdown)
    }

    /// [`Self::supervise`], with delivery to the configured sink and write-back running beside
    /// it as in `foldertrack run`.
    pub fn supervise_delivering(
        &self,
        cadence: (u64, u64, u64),
        health: HealthPolicy,
    ) -> (Arc<Supervisor<AnyFeed, SledStore>>, CancellationToken) {
        let (supervisor, stop) = self.supervise(cadence, health);
        let deliverer = Deliverer::new(
            AnySink::open(self.config.sink_settings().unwrap()).unwrap(),
            &self.config.delivery_settings(),
        );
        let signals = delivery::Signals {
            outbox: supervisor.outbox.clone(),
            delivered: supervisor.delivered.clone(),
        };
        tokio::spawn(delivery::run(
            deliverer,
            self.feed.clone(),
            self.store.clone(),
            signals,
            stop.clone(),
        ));
        (supervisor, stop)
    }

    /// `foldertrack run` in this process, over this agent's config, store and feed.
    pub async fn run(&self) -> Running {
        let stop = CancellationToken::new();
        let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let (listening, addr) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(agent::run(
            self.config.clone(),
            self.feed.clone(),
            self.store.clone(),
            stop.clone(),
            reloads,
            move |a| {
                let _ = listening.send(a);
            },
        ));
        let addr = addr.await.expect("the agent started");
        let token = self.config.admin_settings().unwrap().token;
        let admin = AdminClient::new(&addr.to_string(), token).unwrap();
        let running = Running { admin, stop, task };
        let n = self.config.mailbox.len();
        let synced = async || {
            running.admin.status().await.is_ok_and(|v| {
                v.mailboxes.len() == n && v.mailboxes.iter().all(|m| m.status.syncs >= 1)
            })
        };
        assert!(
            eventually_async(Duration::from_secs(10), synced).await,
            "every mailbox had its first sync"
        );
        running
    }

    /// The mailboxes of the tracking requests in the outbox.
    pub fn outbox_mailboxes(&self) -> Vec<String> {
        self.store
            .outbox(usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e.request.mailbox)
            .collect()
    }

    pub fn outbox_len(&self) -> usize {
        self.store.stats().unwrap().outbox
    }
}

/// An agent running in this process (see [`Agent::run`]).
pub struct Running {
    pub admin: AdminClient,
    pub stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<Arc<Supervisor<AnyFeed, SledStore>>, agent::Error>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Ends the agent as a crash would: nothing it would do at a clean stop is done.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
        // What runs on beside the agent's task (the admin API) ends too.
        self.stop.cancel();
    }
}

pub fn read_jsonl(path: &Path) -> Vec<TrackingRequest> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn mail(subject: &str) -> NewMessage {
    NewMessage {
        subject: subject.into(),
        from: "Buyer <buyer@contoso.com>".into(),
        to: vec![ALICE.into()],
        body: Some("the secret body text".into()),
        ..NewMessage::default()
    }
}

/// Delivers a mail to the Inbox and drags it into `folder`; returns its new ItemId.
pub fn drag(c: &SimControl, mailbox: &str, subject: &str, folder: &str) -> String {
    let delivered = c.deliver(mailbox, "Inbox", &mail(subject)).unwrap();
    c.move_message(mailbox, &delivered.item_id, folder).unwrap()
}

pub mod dataverse;
pub mod proxy;
pub mod receivers;
pub mod tls;

/// A deliverer over the agent's configured sink that lives across delivery rounds (its caches
/// too), retrying after 10 ms instead of seconds.
pub fn deliverer(agent: &Agent) -> foldertrack::deliver::Deliverer<foldertrack::deliver::AnySink> {
    let mut d = foldertrack::deliver::Deliverer::new(
        foldertrack::deliver::AnySink::open(agent.config.sink_settings().unwrap())
            .unwrap()
            .with_feed(agent.feed.clone()),
        &agent.config.delivery_settings(),
    );
    d.policy = foldertrack::deliver::policy::DeliveryPolicy {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(10),
        ..d.policy
    };
    d
}

/// Runs the foldertrack binary with `--config config` and `args`: its exit code, and its
/// stdout followed by its stderr.
pub fn cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A free loopback port (bound, read, released): nothing listens on it until someone binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 50 ms until it holds or `within` has passed; returns whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// [`eventually`] for a check that has to wait for something itself.
pub async fn eventually_async(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check().await
}

/// A health policy in seconds: retry after `retry` s (not doubling past it), park after
/// `park_after` failures, probe parked and disabled mailboxes every `probe` s.
pub fn quick_health(retry: u64, park_after: u32, probe: u64) -> HealthPolicy {
    let secs = Duration::from_secs;
    HealthPolicy {
        base: secs(retry),
        cap: secs(retry),
        park_after,
        parked_probe: secs(probe),
        disabled_probe: secs(probe),
    }
}
