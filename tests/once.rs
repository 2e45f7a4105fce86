//! `foldertrack once` as a user runs it: against the simulator, the expected requests in the
//! sink and a one-line summary; failures named per mailbox with a non-zero exit.

mod common;

use common::*;
use std::process::Command;

fn once(config: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(config)
        .arg("once")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_tracks_what_was_dragged_in_since_the_baseline_and_summarises() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    c.create_folder(BOB, "Inbox/Partners").unwrap();
    c.deliver(ALICE, "Inbox/Customers", &mail("already there"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[
            (ALICE, &[("Inbox/Customers", Some(CONTOSO), "")]),
            (BOB, &[("Inbox/Partners", None, "")]),
        ]),
        "",
    );
    let (ok, stdout, _) = once(&config);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("0 tracking requests"), "{stdout}");
    assert!(
        stdout
            .contains("1 mails were already in mapped folders at their first sync (the baseline)"),
        "the first once says it was the baseline: {stdout}"
    );

    for subject in ["one", "two", "three"] {
        drag(&c, ALICE, subject, "Inbox/Customers");
    }
    let (ok, stdout, _) = once(&config);
    assert!(ok);
    assert!(stdout.contains("2 mailboxes (0 failed)"), "{stdout}");
    assert!(
        !stdout.contains("baseline"),
        "later passes are no baseline: {stdout}"
    );
    assert!(stdout.contains("3 tracking requests"), "{stdout}");
    assert!(stdout.contains("3 delivered"), "{stdout}");
    let lines = read_jsonl(&dir.path().join("tracked.jsonl"));
    let subjects: Vec<_> = lines
        .iter()
        .map(|r| r.message.subject.clone().unwrap())
        .collect();
    assert_eq!(subjects, ["one", "two", "three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_names_a_missing_folder_as_check_config_does_and_exits_non_zero() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(BOB, &[("Inbox/Missing", None, "")])]),
        "",
    );
    let problem = "bob@example.com Inbox/Missing: no such folder; fix the path (`foldertrack folders bob@example.com` lists them) or create the folder";
    let (ok, stdout, _) = once(&config);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains(&format!("not watched: {problem}")),
        "{stdout}"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&check.stdout);
    assert!(
        !check.status.success() && checked.contains(problem),
        "{checked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_names_a_failing_mailbox_and_exits_non_zero() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[("Inbox/Customers", None, "")])]),
        "",
    );
    std::fs::write(dir.path().join("svc.pw"), "wrong password").unwrap();
    let (ok, stdout, stderr) = once(&config);
    assert!(!ok);
    assert!(stdout.contains("FAIL alice@example.com"), "{stdout}");
    assert!(!stdout.contains("wrong password") && !stderr.contains("wrong password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_reach_the_log_only_with_log_subjects_on() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]),
        "",
    );
    let (ok, stdout, _) = once(&config);
    assert!(ok, "the baseline: {stdout}");
    drag(
        &c,
        ALICE,
        "Quarterly figures for Contoso",
        "Inbox/Customers",
    );
    let (ok, _, stderr) = once(&config);
    assert!(ok && stderr.contains("item_tracked"), "{stderr}");
    assert!(
        !stderr.contains("Quarterly figures"),
        "off by default: {stderr}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("log_subjects = true\n{text}")).unwrap();
    drag(&c, ALICE, "Renewal for Contoso", "Inbox/Customers");
    let (ok, _, stderr) = once(&config);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("item_tracked") && stderr.contains("Renewal for Contoso"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_and_retry_say_how_many_requests_wait_when_the_sink_cannot_be_reached() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(dir.path().join("hook.secret"), "webhook-secret").unwrap();
    let sink = format!(
        "[sink]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/track\"\nsecret_file = \"{}\"\n",
        dir.path().join("hook.secret").display()
    );
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]),
        &sink,
    );
    let (ok, stdout, _) = once(&config);
    assert!(ok, "the baseline: {stdout}");
    drag(&c, ALICE, "for an absent receiver", "Inbox/Customers");
    let (_, stdout, _) = once(&config);
    assert!(stdout.contains("0 delivered"), "{stdout}");
    assert!(
        stdout.contains("the sink is unavailable since")
            && stdout.contains("1 requests wait in the outbox"),
        "the waiting request is named: {stdout}"
    );
    // retry is for problem items; asked anyway, it still points at the waiting request.
    let (code, out) = cli(&config, &["retry", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("would re-queue 0 item(s)")
            && out.contains("1 request(s) wait in the outbox: the agent sends them by itself"),
        "{out}"
    );
}
