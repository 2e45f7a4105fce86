//! Microsoft's published EWS samples (shared/ews-reference/samples, read in place, never copied)
//! decode without error: every response, fault and fragment, and every request of an operation
//! foldertrack implements. Skipped, with a line saying so, when the folder is absent.

use std::path::PathBuf;

fn samples_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ews-reference/samples");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: {} is not present", dir.display());
        None
    }
}

fn samples() -> Vec<(String, String)> {
    let Some(dir) = samples_dir() else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("samples folder readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("xml" | "http")))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("sample is UTF-8");
            (name, text)
        })
        .collect();
    out.sort();
    out
}

fn is_request(name: &str) -> bool {
    name.contains("-request")
}

#[test]
fn every_response_fault_and_fragment_sample_decodes() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, text) in samples().iter().filter(|(n, _)| !is_request(n)) {
        count += 1;
        if let Err(e) = foldertrack::ews::decode::decode(text) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_request_sample_of_an_implemented_operation_decodes() {
    let implemented = foldertrack::ews::decode::operation_names();
    let mut failures = Vec::new();
    for (name, text) in samples().iter().filter(|(n, _)| is_request(n)) {
        let op = name
            .split(['-', '.'])
            .find(|part| implemented.contains(part));
        let Some(op) = op else { continue };
        match foldertrack::ews::decode::decode(text) {
            Ok(v) if v["operation"] == *op && v["kind"] == "request" => {}
            Ok(v) => failures.push(format!(
                "{name}: decoded as {} {}",
                v["kind"], v["operation"]
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_request_foldertrack_builds_validates_against_the_official_schema() {
    let validate =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ews-reference/validate");
    if !validate.exists() {
        println!("skipped: {} is not present", validate.display());
        return;
    }
    if std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: xmllint is not installed (apt-get install libxml2-utils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, xml) in foldertrack::ews::examples::requests() {
        let path = dir.path().join(name);
        std::fs::write(&path, xml).unwrap();
        files.push(path);
    }
    let out = std::process::Command::new("python3")
        .arg(&validate)
        .args(&files)
        .output()
        .expect("python3 runs the validator");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", files.len())),
        "{report}"
    );
}
