//! The fuzz targets on stable: every input kept in fuzz/regressions/TARGET/ (crashes the fuzzer
//! found, once fixed) and every seed the targets start from (our fixtures) goes through the same
//! entry function as under cargo-fuzz, so a regression fails the normal suite.

#[path = "../fuzz/src/entries.rs"]
mod entries;

use std::path::{Path, PathBuf};

type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("ews_decode", entries::ews_decode),
    ("ews_responses", entries::ews_responses),
    ("ews_stream", entries::ews_stream),
    ("graph_json", entries::graph_json),
    ("config_toml", entries::config_toml),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Regular files under `dir`, recursively (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.file_name().is_some_and(|n| n != "README.md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn replay(target: &str, entry: Entry, inputs: &[PathBuf]) {
    for path in inputs {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| entry(&data)).is_err() {
            panic!("{target} panicked on {}", path.display());
        }
    }
}

#[test]
fn regressions_replay_without_a_panic() {
    let dir = root().join("fuzz/regressions");
    for sub in files(&dir) {
        let target = sub
            .strip_prefix(&dir)
            .unwrap()
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap()
            .to_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == target),
            "{}: fuzz/regressions/ holds one folder per target ({})",
            sub.display(),
            TARGETS
                .iter()
                .map(|(t, _)| *t)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (target, entry) in TARGETS {
        replay(target, *entry, &files(&dir.join(target)));
    }
}

#[test]
fn seeds_replay_without_a_panic() {
    let fixtures = root().join("fixtures");
    let ews = files(&fixtures.join("ews"));
    let graph = files(&fixtures.join("graph"));
    let config = files(&fixtures.join("config"));
    assert!(!ews.is_empty() && !graph.is_empty() && !config.is_empty());
    replay("ews_decode", entries::ews_decode, &ews);
    replay("ews_responses", entries::ews_responses, &ews);
    replay("graph_json", entries::graph_json, &graph);
    replay("config_toml", entries::config_toml, &config);
    for path in &ews {
        // As fuzz/run.sh seeds it: a chunk-size byte, then the document.
        let mut data = vec![7u8];
        data.extend(std::fs::read(path).unwrap());
        entries::ews_stream(&data);
    }
}
