//! Outside resources some tests need: Microsoft's EWS reference material beside the checkout
//! (`../shared/ews-reference`) and tools such as `xmllint`. Where one is missing, a test run on
//! a developer's machine prints a line saying what was skipped and why, and passes; under CI
//! (`CI` set, as CI services do, to anything but `false` or `0`) the test fails instead, so a CI
//! machine without them cannot go green while checking nothing. A test that found its
//! resource also says how much it checked ([`checked`]), and fails when that is nothing.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::PathBuf;

/// True under CI, where a missing resource is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"))
}

/// A missing resource: a printed line locally (the caller then returns), a failure under CI.
pub fn missing<T>(what: &str, fix: &str) -> Option<T> {
    if under_ci() {
        panic!("{what} is missing, and CI requires it: {fix}");
    }
    println!("skipped: {what} is missing ({fix})");
    None
}

/// A file or folder of Microsoft's EWS reference material, e.g. `samples` or `xsd/messages.xsd`.
pub fn reference(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/ews-reference")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        missing(
            &path.display().to_string(),
            "place Microsoft's EWS reference material beside the checkout",
        )
    }
}

/// Whether a program runs (`program --version` starts); a missing one as [`missing`] says.
pub fn tool(program: &str, install: &str) -> bool {
    let runs = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok();
    runs || missing::<()>(&format!("the program {program}"), install).is_some()
}

/// Whether `xmllint`, which the schema validation runs, is there.
pub fn xmllint() -> bool {
    tool("xmllint", "apt-get install libxml2-utils")
}

/// Fails when a test that had its resources checked nothing with them.
#[track_caller]
pub fn checked(count: usize, what: &str) {
    assert!(count > 0, "no {what} were checked");
    println!("checked {count} {what}");
}
