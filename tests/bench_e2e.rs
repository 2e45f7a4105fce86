//! `foldertrack bench e2e` runs the agent end to end; its small preset, shortened, loses and
//! duplicates nothing and reports every figure; its burst preset reports the track-now latency
//! beside a filing burst.

/// Runs `foldertrack bench e2e` with `args`: its JSON report and the table it printed.
fn bench(args: &[&str]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["bench", "e2e"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (report, stderr)
}

#[test]
fn the_small_preset_loses_nothing_and_duplicates_nothing() {
    let (report, stderr) = bench(&["--preset", "small", "--duration", "3", "--idle", "2"]);
    assert!(report["moved_in"].as_u64().unwrap() >= 10, "{report}");
    assert_eq!(report["tracked"], report["moved_in"]);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicated"], 0);
    for figure in ["p50", "p95", "p99", "max"] {
        assert!(
            report["latency"][figure].as_f64().unwrap() > 0.0,
            "{figure}"
        );
    }
    for figure in [
        "ews_calls_per_tracked",
        "bytes_per_tracked",
        "agent_peak_rss_mib",
    ] {
        assert!(report[figure].as_f64().unwrap() > 0.0, "{figure}: {report}");
    }
    // Notifications (the default) wake every mailbox: a mail is in the sink well before the
    // 2-second busy interval would have polled it.
    assert_eq!(report["notified_mailboxes"], 10, "{report}");
    assert!(report["latency"]["p50"].as_f64().unwrap() < 1.0, "{report}");
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    // w11: the report states every setting it changed from the defaults.
    let changed: Vec<&str> = report["non_default_settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for setting in [
        "limits.calls_per_second = 2000 (default 20)",
        "limits.max_concurrent_calls = 16 (default 8)",
        "writeback.enabled = false (default true)",
    ] {
        assert!(changed.contains(&setting), "{setting}: {changed:?}");
    }
    assert!(
        changed.iter().any(|s| s.starts_with("cadence.normal_secs")),
        "{changed:?}"
    );
    assert!(stderr.contains("lost / duplicated"), "the table: {stderr}");
}

#[test]
fn polling_only_counts_the_idle_calls_of_each_cycle() {
    let args = [
        "--preset",
        "small",
        "--duration",
        "2",
        "--idle",
        "6",
        "--polling",
    ];
    let (report, stderr) = bench(&args);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["notified_mailboxes"], 0, "{report}");
    assert!(
        report["idle_calls_per_mailbox_cycle"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(stderr.contains("off (polling only)"), "{stderr}");
}

/// Notification trouble during the drags (subscriptions expiring or losing their events,
/// connections dropping): every mail still arrives once, the trouble is reported.
#[test]
fn notification_trouble_during_the_drags_loses_and_duplicates_nothing() {
    let args = [
        "--preset",
        "small",
        "--duration",
        "4",
        "--idle",
        "2",
        "--chaos-every",
        "0.3",
    ];
    let (report, stderr) = bench(&args);
    assert!(report["moved_in"].as_u64().unwrap() >= 10, "{report}");
    assert_eq!(
        (&report["lost"], &report["duplicated"]),
        (&0.into(), &0.into()),
        "{report}"
    );
    let made: u64 = report["notification_chaos"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(made >= 3, "{report}");
    assert!(stderr.contains("notification trouble made"), "{stderr}");
}

#[test]
fn the_burst_preset_reports_the_track_now_latency_beside_a_filing_burst() {
    let (report, stderr) = bench(&["--preset", "burst", "--rounds", "2"]);
    assert_eq!(report["moved_in"], 82, "two rounds of 40 + 1: {report}");
    assert_eq!(report["tracked"], 82);
    assert_eq!(report["duplicated"], 0);
    assert!(report["track_now_latency"]["max"].as_f64().unwrap() > 0.0);
    assert!(
        report["burst_marks_pending_min"].as_u64().is_some(),
        "{report}"
    );
    assert!(
        stderr.contains("settings changed from the defaults     none"),
        "default limits, write-back on: {stderr}"
    );
}
