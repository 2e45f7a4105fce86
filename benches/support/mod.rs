//! Fixtures shared by the benchmarks: what a page of moved-in mail looks like to the store,
//! with ids of realistic length.

use foldertrack::feed::ItemRef;
use foldertrack::store::{Arrival, Cause, FolderRecord, PageCommit};
use foldertrack::tracking::{Address, Identity, MessageInfo, Place, Regarding, Sighting};
use jiff::Timestamp;

/// EWS ItemIds are ~150 characters.
pub fn item_id(n: u64) -> String {
    format!("AAMkAGI2TG93AAA{n:0>20}{}", "A".repeat(112))
}

/// EWS FolderIds are ~120 characters.
pub fn folder_id() -> String {
    format!("AAMkAGI2TG93AAEuAAAAAAAaQAAB{}", "Q".repeat(92))
}

/// What GetItem would return for a candidate.
pub fn fetched(item: &ItemRef, n: u64) -> Arrival {
    let imid = format!("<{n}.CAKx3bQ@mail.contoso.com>");
    Arrival {
        identity: Identity::MessageId(imid.clone()),
        message: MessageInfo {
            internet_message_id: Some(imid),
            item_id: item.id.clone(),
            change_key: item.version.clone(),
            subject: Some(format!("RE: Quote {n} for the spring order")),
            from: Some(Address {
                name: Some("Buyer".into()),
                address: "buyer@contoso.com".into(),
            }),
            to: vec![Address {
                name: None,
                address: "alice@example.com".into(),
            }],
            size: Some(24_576),
            ..MessageInfo::default()
        },
        sighting: Sighting {
            place: Place {
                mailbox: "alice@example.com".into(),
                folder_id: folder_id(),
                path: "Inbox/Customers/Contoso".into(),
            },
            mapping: "Inbox/Customers/Contoso".into(),
            regarding: Some(Regarding {
                entity: "account".into(),
                id: "00000000-0000-0000-0000-00000000c050".into(),
            }),
            at: Timestamp::now(),
        },
        cause: Cause::Appeared,
    }
}

/// The folder's record with a cursor after the page starting at `first`.
pub fn folder_record(first: u64) -> FolderRecord {
    FolderRecord {
        mailbox: "alice@example.com".into(),
        folder_id: folder_id(),
        path: "Inbox/Customers/Contoso".into(),
        mapping: "Inbox/Customers/Contoso".into(),
        cursor: Some(format!("H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/{first}")),
        baselined: true,
        since: None,
    }
}

/// A page of `arrived` mail starting at `first`, as one commit.
pub fn page(first: u64, arrived: Vec<Arrival>) -> PageCommit {
    PageCommit {
        folder: folder_record(first),
        seen: Vec::new(),
        baselined: Vec::new(),
        arrived,
        left: Vec::new(),
        mapping: None,
        unreadable: Vec::new(),
        gone: Vec::new(),
        at: Timestamp::now(),
    }
}
