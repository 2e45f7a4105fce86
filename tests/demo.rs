//! `foldertrack demo` as a new user runs it: it ends by itself with every mail moved in tracked
//! once; and its logs — at debug level, as JSON — hold no password, token or message body (R36).

use std::process::Command;

#[test]
fn the_demo_tracks_every_mail_once_and_logs_no_secret() {
    demo("ews");
}

#[test]
fn the_demo_over_graph_tracks_every_mail_once_and_logs_no_secret() {
    demo("graph");
}

fn demo(api: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["demo", "--api", api, "-v", "--log-format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect("a summary");
    assert!(
        summary.contains("moved in 7, tracked 7, re-linked 1, duplicates 0, failures 0"),
        "{summary}"
    );
    assert!(stdout.contains("track-now for bob: synced in"), "{stdout}");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON logs"
    );

    let config = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("config"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .expect("the config path is printed");
    let dir = config.parent().unwrap();
    let secrets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("secrets-for-the-log-check.json")).unwrap(),
    )
    .unwrap();
    let mut needles: Vec<String> = vec![
        secrets["client_secret"].as_str().unwrap().to_owned(),
        secrets["service_password"].as_str().unwrap().to_owned(),
        secrets["body_marker"].as_str().unwrap().to_owned(),
    ];
    let tokens: Vec<String> = secrets["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(!tokens.is_empty(), "the agent signed in with OAuth");
    needles.extend(tokens);
    for needle in &needles {
        assert!(
            !stderr.contains(needle.as_str()),
            "the logs hold a secret or a body"
        );
        assert!(
            !stdout.contains(needle.as_str()),
            "the output holds a secret or a body"
        );
    }
    let output = std::fs::read_to_string(dir.join("tracked.jsonl")).unwrap();
    assert_eq!(output.lines().count(), 8, "7 moved in and 1 re-linked");
    let _ = std::fs::remove_dir_all(dir);
}
