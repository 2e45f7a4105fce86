//! Past one machine (issue 21): agents that share the mailboxes by rendezvous hashing, each
//! with its own store, and a mailbox handed over from one to another while mail is being
//! filed — nothing lost, nothing tracked twice.

mod common;

use common::*;
use foldertrack::admin::client::AdminClient;
use foldertrack::agent;
use foldertrack::config::Config;
use foldertrack::store::SledStore;
use foldertrack::watch::cluster::owner;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const FOLDER: &str = "Inbox/Customers";
const CADENCE: &str = "[cadence]\nnormal_secs = 1\nbusy_secs = 1\nquiet_secs = 1\njitter = 0.0\n";

fn addresses() -> Vec<String> {
    (0..8).map(|i| format!("user{i}@example.com")).collect()
}

/// One agent of the group, running in this process.
struct Member {
    dir: tempfile::TempDir,
    admin: AdminClient,
    reload: tokio::sync::mpsc::UnboundedSender<Config>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The config of a member with `cluster` as its `[cluster]` section, written into `dir`.
fn config(sim: &foldertrack::sim::SimHandle, dir: &Path, cluster: &str) -> Config {
    let all = addresses();
    let list: Vec<(&str, &[Folder<'_>])> = all
        .iter()
        .map(|a| (a.as_str(), &[(FOLDER, None, "")][..]))
        .collect();
    let extra = format!("{CADENCE}[cluster]\n{cluster}\n");
    let path = write_config_on(Api::Ews, dir, sim, &mailboxes(&list), &extra);
    Config::load(&path).unwrap()
}

impl Member {
    async fn start(sim: &foldertrack::sim::SimHandle, cluster: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config(sim, dir.path(), cluster);
        let feed = Arc::new(agent::feed(&config).unwrap());
        let store = Arc::new(SledStore::open(&config.store.path).unwrap());
        let stop = CancellationToken::new();
        let (reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let (listening, addr) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let run = agent::run(config, feed, store, stop, reloads, move |a| {
                    let _ = listening.send(a);
                });
                run.await.unwrap();
            }
        });
        let addr = addr.await.unwrap();
        let admin = AdminClient::new(&addr.to_string(), None).unwrap();
        Self {
            dir,
            admin,
            reload,
            stop,
            task,
        }
    }

    fn reconfigure(&self, sim: &foldertrack::sim::SimHandle, cluster: &str) {
        let config = config(sim, self.dir.path(), cluster);
        self.reload.send(config).unwrap();
    }

    fn delivered(&self) -> Vec<foldertrack::tracking::TrackingRequest> {
        read_jsonl(&self.dir.path().join("tracked.jsonl"))
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// Files a mail into a mapped folder of each mailbox in turn until stopped; returns the
/// subjects filed.
fn keep_filing(
    sim: foldertrack::sim::SimControl,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let all = addresses();
        let mut filed = Vec::new();
        while !stop.is_cancelled() {
            let subject = format!("mail {}", filed.len());
            drag(&sim, &all[filed.len() % all.len()], &subject, FOLDER);
            filed.push(subject);
            // The pace of people filing mail, not a wait for a condition.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        filed
    })
}

/// The member count before and after of the `[cluster]` sections.
fn count(cluster: &str) -> u32 {
    cluster
        .lines()
        .find_map(|l| l.strip_prefix("members = "))
        .map_or(1, |n| n.parse().unwrap())
}

/// Every subject in the members' sinks, with how often it arrived.
fn arrivals(members: &[Member]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in members.iter().flat_map(Member::delivered) {
        *seen
            .entry(r.message.subject.unwrap_or_default())
            .or_default() += 1;
    }
    seen
}

/// Members with these `[cluster]` sections, once each watched mailbox had its first sync.
async fn start_all(sim: &foldertrack::sim::SimHandle, clusters: &[&str]) -> Vec<Member> {
    let mut members = Vec::new();
    for cluster in clusters {
        members.push(Member::start(sim, cluster).await);
    }
    let synced = async || {
        let mut watched = 0;
        for m in &members {
            let Ok(s) = m.admin.status().await else {
                return false;
            };
            if s.mailboxes.iter().any(|m| m.status.syncs == 0) {
                return false;
            }
            watched += s.mailboxes.len();
        }
        watched == 8
    };
    assert!(eventually_async(Duration::from_secs(15), synced).await);
    members
}

/// Hands each of `moving` over from its owner among `old` members to its owner among `new`,
/// then waits until no member waits for one.
async fn hand_over(members: &[Member], moving: &[String], old: u32, new: u32) {
    for mailbox in moving {
        let (from, to) = (owner(mailbox, old) as usize, owner(mailbox, new) as usize);
        let mut state = None;
        let exported = async || {
            state = members[from].admin.handover_export(mailbox).await.ok();
            state.is_some()
        };
        assert!(
            eventually_async(Duration::from_secs(15), exported).await,
            "{mailbox}"
        );
        members[to]
            .admin
            .handover_import(&state.unwrap())
            .await
            .unwrap();
    }
    let settled = async || {
        let mut owned = 0;
        for m in members {
            let Ok(s) = m.admin.status().await else {
                return false;
            };
            let c = s.cluster.unwrap();
            if !c.awaiting_handover.is_empty() {
                return false;
            }
            owned += c.owned;
        }
        owned == 8
    };
    assert!(eventually_async(Duration::from_secs(15), settled).await);
}

/// Members with the `before` sections run while mail is filed all along; then they take the
/// `after` sections (members past `before` start new), every mailbox that moved is handed
/// over from its old owner to its new one, and every mail filed must reach exactly one sink.
async fn resize(before: &[&str], after: &[&str]) {
    let sim = simulator().await;
    let c = sim.control();
    for a in addresses() {
        c.create_mailbox(&a).unwrap();
        c.create_folder(&a, FOLDER).unwrap();
    }
    let (old, new) = (count(before[0]), count(after[0]));
    let moving: Vec<String> = addresses()
        .into_iter()
        .filter(|a| owner(a, old) != owner(a, new))
        .collect();
    assert!(!moving.is_empty() && moving.len() < 8, "{moving:?}");

    let mut members = start_all(&sim, before).await;
    let filing = CancellationToken::new();
    let filer = keep_filing(c.clone(), filing.clone());
    let some = async || arrivals(&members).len() > 5;
    assert!(eventually_async(Duration::from_secs(15), some).await);
    for (i, cluster) in after.iter().enumerate() {
        match members.get(i) {
            Some(m) => m.reconfigure(&sim, cluster),
            None => members.push(Member::start(&sim, cluster).await),
        }
    }
    // Each member waits for exactly the mailboxes that moved to it.
    for (i, m) in members.iter().enumerate() {
        let want: Vec<&String> = moving
            .iter()
            .filter(|a| owner(a, new) == i as u32)
            .collect();
        let waits = async || {
            m.admin.status().await.is_ok_and(|s| {
                let c = s.cluster.unwrap();
                c.awaiting_handover.iter().collect::<Vec<_>>() == want && c.members == new
            })
        };
        let waited = eventually_async(Duration::from_secs(15), waits).await;
        assert!(waited, "member {i}");
    }
    let at_handover = arrivals(&members).len();
    hand_over(&members, &moving, old, new).await;

    // More mail after the handover, then every mail filed is in one sink, once.
    let more = async || arrivals(&members).len() > at_handover + 10;
    assert!(eventually_async(Duration::from_secs(15), more).await);
    filing.cancel();
    let filed: BTreeSet<String> = filer.await.unwrap().into_iter().collect();
    let all_in = async || arrivals(&members).keys().cloned().collect::<BTreeSet<_>>() == filed;
    let arrived = eventually_async(Duration::from_secs(30), all_in).await;
    let seen = arrivals(&members);
    let lost: Vec<&String> = filed.iter().filter(|s| !seen.contains_key(*s)).collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(arrived && lost.is_empty(), "lost {lost:?}");
    assert!(twice.is_empty(), "tracked twice: {twice:?}");
    for m in members {
        m.stop().await;
    }
}

/// What a refused handover said.
fn refusal<T: std::fmt::Debug>(answer: Result<T, impl std::fmt::Display>) -> String {
    answer.expect_err("refused").to_string()
}

#[tokio::test]
async fn growing_from_one_member_to_two_while_mail_is_filed_loses_and_duplicates_nothing() {
    resize(
        &["members = 1"],
        &[
            "members = 2\nmember = 0",
            "members = 2\nmember = 1\nprevious_members = 1",
        ],
    )
    .await;
}

#[tokio::test]
async fn shrinking_from_three_members_to_two_while_mail_is_filed_loses_and_duplicates_nothing() {
    resize(
        &[
            "members = 3\nmember = 0",
            "members = 3\nmember = 1",
            "members = 3\nmember = 2",
        ],
        &[
            "members = 2\nmember = 0\nprevious_members = 3",
            "members = 2\nmember = 1\nprevious_members = 3",
            "members = 2\nmember = 2\nprevious_members = 3",
        ],
    )
    .await;
}

#[tokio::test]
async fn handovers_are_refused_with_the_reason_and_a_stale_copy_waits_when_its_mailbox_comes_back()
{
    let sim = simulator().await;
    let c = sim.control();
    for a in addresses() {
        c.create_mailbox(&a).unwrap();
        c.create_folder(&a, FOLDER).unwrap();
    }
    let kept = addresses().into_iter().find(|a| owner(a, 2) == 0).unwrap();
    let moving = addresses().into_iter().find(|a| owner(a, 2) == 1).unwrap();
    let first = Member::start(&sim, "members = 1").await;
    let refused = refusal(first.admin.handover_export(&kept).await);
    assert!(
        refused.contains("409") && refused.contains("is still watched by this agent"),
        "{refused}"
    );
    first.reconfigure(&sim, "members = 2\nmember = 0");
    let given_up = async || first.admin.handover_export(&moving).await.is_ok();
    assert!(eventually_async(Duration::from_secs(15), given_up).await);
    let state = first.admin.handover_export(&moving).await.unwrap();
    // The first owns `kept`: it waits for nothing, so an import there is refused.
    let refused = refusal(first.admin.handover_import(&state).await);
    assert!(
        refused.contains("is not waiting for a handover here"),
        "{refused}"
    );
    // A member that never watched a mailbox has nothing to give.
    let second = Member::start(&sim, "members = 2\nmember = 1").await;
    let refused = refusal(second.admin.handover_export(&kept).await);
    assert!(
        refused.contains("404") && refused.contains("this store holds nothing of it"),
        "{refused}"
    );
    second.stop().await;
    // Should the mailbox come back, the copy left here is stale: it waits for the newer state.
    first.reconfigure(&sim, "members = 1\nprevious_members = 2");
    let waits = async || {
        first
            .admin
            .status()
            .await
            .is_ok_and(|s| s.cluster.unwrap().awaiting_handover == [moving.clone()])
    };
    assert!(eventually_async(Duration::from_secs(15), waits).await);
    let metrics = reqwest::get(format!("{}/metrics", first.admin.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nfoldertrack_awaiting_handover 1\n"),
        "{metrics}"
    );
    // Not ready while a mailbox it owns waits: a rollout waits for the handover.
    let ready = reqwest::get(format!("{}/readyz", first.admin.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(
        why.contains(&format!("awaiting a handover for {moving}")),
        "{why}"
    );
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_through_the_cli_between_stopped_agents_goes_on_from_the_old_cursor() {
    let sim = simulator().await;
    let c = sim.control();
    for a in addresses() {
        c.create_mailbox(&a).unwrap();
        c.create_folder(&a, FOLDER).unwrap();
    }
    let moving = addresses().into_iter().find(|a| owner(a, 2) == 1).unwrap();
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config_at = |dir: &Path, cluster: &str| {
        config(&sim, dir, cluster);
        dir.join("foldertrack.toml")
    };
    let old_config = config_at(old.path(), "members = 1");
    let (code, out) = cli(&old_config, &["once"]);
    assert_eq!(code, 0, "{out}");
    // Filed after the old owner's last pass: only its cursor knows the mail is new.
    drag(&c, &moving, "filed between owners", FOLDER);

    let (code, out) = cli(&old_config, &["handover", "export", "--mailbox", &moving]);
    assert_eq!(code, 1);
    assert!(
        out.trim().ends_with(&format!("{moving} is owned by this member (0 of cluster.members = 1): set the new member count here first (and reload), so that this agent stops watching it")),
        "{out}"
    );
    let old_config = config_at(old.path(), "members = 2\nmember = 0");
    let (code, state) = cli(&old_config, &["handover", "export", "--mailbox", &moving]);
    assert_eq!(code, 0, "{state}");
    let file = new.path().join("handover.json");
    std::fs::write(&file, state).unwrap();

    let new_config = config_at(new.path(), "members = 2\nmember = 1\nprevious_members = 1");
    let wrong = config_at(old.path(), "members = 2\nmember = 0");
    let (code, out) = cli(&wrong, &["handover", "import", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "{moving} is owned by member 1, not this one (0); import it there"
        )),
        "{out}"
    );
    let (code, out) = cli(&new_config, &["handover", "import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("entries handed over"), "{out}");
    let (code, out) = cli(&new_config, &["once"]);
    assert_eq!(code, 0, "{out}");
    let tracked = read_jsonl(&new.path().join("tracked.jsonl"));
    let subjects: Vec<_> = tracked
        .iter()
        .filter_map(|r| r.message.subject.as_deref())
        .collect();
    assert_eq!(subjects, ["filed between owners"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_number_that_does_not_fit_is_one_line_that_says_what_to_set() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "members = 3",
            "cluster.member: with members = 3, set member (0 to 2) or member_from_hostname = true",
        ),
        (
            "members = 2\nmember = 2",
            "cluster.member: member 2 does not exist with members = 2; use 0 to 1",
        ),
    ];
    for (cluster, want) in cases {
        let list = mailboxes(&[(ALICE, &[(FOLDER, None, "")])]);
        let extra = format!("[cluster]\n{cluster}\n");
        let path = write_config_on(Api::Ews, dir.path(), &sim, &list, &extra);
        let (code, out) = cli(&path, &["check-config", "--offline"]);
        assert_ne!(code, 0);
        let line = out
            .lines()
            .find(|l| l.contains("cluster.member"))
            .unwrap_or_default();
        assert!(line.ends_with(want) && line.contains("line "), "{out}");
    }
}
