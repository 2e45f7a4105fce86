//! Microsoft's published EWS samples and schema (../shared/ews-reference, read in place, never
//! copied): every response, fault and fragment sample decodes, every request sample of an
//! operation foldertrack implements decodes, every request foldertrack builds validates, and
//! the response codes and distinguished folder names are the schema's. Without the material
//! (or xmllint) each test says it was skipped; under CI it fails (see tests/required).

mod required;

use foldertrack::ews::{DistinguishedFolder, ResponseCode};

/// Every `.xml` and `.http` sample, by file name; `None` when the samples are missing.
fn samples() -> Option<Vec<(String, String)>> {
    let dir = required::reference("samples")?;
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
    Some(out)
}

fn is_request(name: &str) -> bool {
    name.contains("-request")
}

#[test]
fn every_response_fault_and_fragment_sample_decodes() {
    let Some(samples) = samples() else { return };
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, text) in samples.iter().filter(|(n, _)| !is_request(n)) {
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
    required::checked(count, "response, fault and fragment samples");
}

#[test]
fn every_request_sample_of_an_implemented_operation_decodes() {
    let Some(samples) = samples() else { return };
    let implemented = foldertrack::ews::decode::operation_names();
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, text) in samples.iter().filter(|(n, _)| is_request(n)) {
        let op = name
            .split(['-', '.'])
            .find(|part| implemented.contains(part));
        let Some(op) = op else { continue };
        count += 1;
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
    required::checked(count, "request samples of implemented operations");
}

#[test]
fn every_request_foldertrack_builds_validates_against_the_official_schema() {
    let Some(validate) = required::reference("validate") else {
        return;
    };
    if !required::xmllint() {
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
    required::checked(files.len(), "requests foldertrack builds");
}

/// The values of the enumeration `type_name` in the reference schema `xsd/<file>`, in schema
/// order; `None` when the reference is missing.
fn enumeration(file: &str, type_name: &str) -> Option<Vec<String>> {
    let xsd = required::reference(&format!("xsd/{file}"))?;
    let text = std::fs::read_to_string(&xsd).expect("the schema is readable UTF-8");
    let start = text
        .find(&format!("name=\"{type_name}\""))
        .unwrap_or_else(|| panic!("{type_name} is not in {file}"));
    let end = start + text[start..].find("</xs:simpleType>").expect("end");
    Some(
        text[start..end]
            .split("<xs:enumeration value=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn response_codes_are_the_official_schemas() {
    let Some(schema) = enumeration("messages.xsd", "ResponseCodeType") else {
        return;
    };
    let ours: Vec<&str> = ResponseCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(ours, schema);
    required::checked(schema.len(), "response codes");
}

#[test]
fn distinguished_folder_names_are_the_official_schemas() {
    let Some(schema) = enumeration("types.xsd", "DistinguishedFolderIdNameType") else {
        return;
    };
    let ours: Vec<&str> = DistinguishedFolder::ALL
        .iter()
        .map(|d| d.as_str())
        .collect();
    assert_eq!(ours, schema);
    required::checked(schema.len(), "distinguished folder names");
}
