//! `foldertrack bench soak`, shortened: under Exchange faults, sink outages, SIGKILLs (and a full
//! disk where a tmpfs can be mounted) every mail filed reaches the receiver exactly once, and
//! the report carries what happened and the memory samples. A mailbox that failed several
//! times in a row waits its back-off (10 s doubling) before its next sync, hence the long
//! settle window.

#[test]
fn a_short_soak_loses_and_duplicates_nothing_under_every_kind_of_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["bench", "soak", "--seconds", "24", "--chaos-every", "1"])
        .args(["--settle", "300"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["filed"].as_u64().unwrap() >= 40, "{r}");
    assert_eq!(r["delivered"], r["filed"], "{r}");
    assert_eq!(
        (r["lost"].as_u64(), r["duplicated"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(r["bad_signatures"], 0);
    // Each kind of trouble came at least once (they are taken in turn).
    let faults: u64 = r["exchange_faults"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(faults >= 1, "{r}");
    assert!(r["sink_outages"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["kills"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        r["disk_fulls"].as_u64().unwrap() >= 1 || r["disk_full_unavailable"].is_string(),
        "{r}"
    );
    for figure in ["rss_first_mib", "rss_last_mib", "rss_peak_mib"] {
        assert!(r[figure].as_f64().unwrap() > 1.0, "{figure}: {r}");
    }
    let changed = r["non_default_settings"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("cadence.busy_secs")),
        "{changed:?}"
    );
    assert!(stderr.contains("lost / duplicated"), "{stderr}");
}
