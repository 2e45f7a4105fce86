//! R21/R22, acceptance scenario 15: `foldertrack run` is killed with SIGKILL at random moments
//! while people move mail into a mapped folder, and restarted each time. Every mail moved in
//! becomes exactly one tracking request: none lost, none duplicated — in the outbox and in the
//! JSONL sink.

mod common;

use common::*;
use foldertrack::store::{SledStore, Store};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const FOLDER: &str = "Inbox/Customers";

fn foldertrack(config: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_foldertrack"));
    cmd.arg("--config").arg(config).args(args);
    cmd.env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Moves `mails` into the mapped folder while `foldertrack run` is killed `kills` times;
/// returns the InternetMessageIds moved in, the folder, and the seed.
async fn kill_and_restart(
    api: Api,
    sim: &foldertrack::sim::SimHandle,
    dir: &std::path::Path,
    sink: &str,
    kills: usize,
    mails: usize,
) -> (Vec<String>, std::path::PathBuf, u64) {
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let c = sim.control();
    c.create_folder(ALICE, FOLDER).unwrap();
    let config = write_config_on(
        api,
        dir,
        sim,
        &mailboxes(&[(ALICE, &[(FOLDER, Some(CONTOSO), "")])]),
        &format!(
            "{sink}\n[cadence]\nbusy_secs = 1\nnormal_secs = 1\nquiet_secs = 1\njitter = 0.0\n"
        ),
    );
    // The baseline first: what is moved in after it must all be tracked.
    assert!(foldertrack(&config, &["once"]).status().unwrap().success());

    // People move mail in while the agent is killed and restarted.
    let mover = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut moved = Vec::new();
            for i in 0..mails {
                let d = c
                    .deliver(ALICE, "Inbox", &mail(&format!("crash {i}")))
                    .unwrap();
                c.move_message(ALICE, &d.item_id, FOLDER).unwrap();
                moved.push(d.internet_message_id);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            moved
        })
    };
    for _ in 0..kills {
        let mut child = foldertrack(&config, &["run"]).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.u64(30..400))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let moved = mover.await.unwrap();
    (moved, config, seed)
}

/// The clean pass after the kills picks up whatever the last kill interrupted.
fn finish(config: &std::path::Path) {
    let out = foldertrack(config, &["once"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_killed_at_random_moments_every_mail_is_tracked_exactly_once() {
    killed_at_random_moments(Api::Ews).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r22_over_graph_killed_at_random_moments_every_mail_is_tracked_exactly_once() {
    killed_at_random_moments(Api::Graph).await;
}

async fn killed_at_random_moments(api: Api) {
    const MAILS: usize = 220;
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (moved, config, seed) = kill_and_restart(api, &sim, dir.path(), "", 55, MAILS).await;
    // The killed agents did work, not only the clean pass below. (How much depends on the
    // machine's load — about half on an idle 2-core machine — so only "some" is asserted.)
    let before = read_jsonl(&dir.path().join("tracked.jsonl")).len();
    println!("{before} of {MAILS} tracked by agents that were then killed");
    assert!(
        before > 0,
        "seed {seed}: only {before} tracked while being killed"
    );
    finish(&config);

    let lines = read_jsonl(&dir.path().join("tracked.jsonl"));
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        *per_message
            .entry(line.message.internet_message_id.clone().unwrap())
            .or_default() += 1;
    }
    let lost: Vec<_> = moved
        .iter()
        .filter(|m| !per_message.contains_key(*m))
        .collect();
    let duplicated: Vec<_> = per_message.iter().filter(|(_, n)| **n > 1).collect();
    assert!(lost.is_empty(), "seed {seed}: lost {lost:?}");
    assert!(
        duplicated.is_empty(),
        "seed {seed}: duplicated {duplicated:?}"
    );
    assert_eq!(lines.len(), MAILS, "seed {seed}");

    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.outbox, 0, "everything delivered left the outbox");
    assert_eq!(stats.messages, MAILS, "one record per message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r21_killed_during_delivery_dataverse_never_gets_a_second_activity() {
    const MAILS: usize = 80;
    let dv = common::dataverse::Dataverse::start().await;
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = dv.sink_toml(dir.path(), false);
    let (moved, config, seed) =
        kill_and_restart(Api::Ews, &sim, dir.path(), &sink, 25, MAILS).await;
    finish(&config);
    let creates = dv.creates();
    let lost: Vec<_> = moved.iter().filter(|m| !creates.contains_key(*m)).collect();
    let twice: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    assert!(lost.is_empty(), "seed {seed}: lost {lost:?}");
    assert!(twice.is_empty(), "seed {seed}: created twice {twice:?}");
    assert_eq!(creates.len(), MAILS);
}
