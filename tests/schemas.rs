//! schemas/*.json are what the code generates; a stale file fails with the command that fixes it.

use std::path::PathBuf;

#[test]
fn schemas_are_up_to_date() {
    for (file, generated) in foldertrack::schemas() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "schemas/{file} is stale; run `foldertrack schema --write` and commit the result"
        );
    }
}
