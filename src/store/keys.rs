//! The key layout of every tree. Variable parts are joined with `\0` (never inside an address
//! or an EWS id); seen items key on short hashes, since EWS ItemIds run to ~150 bytes; outbox
//! ids are big-endian so the tree iterates oldest first.

use sha2::{Digest, Sha256};

/// `mailbox \0 folder_id`: the folders tree; a mailbox's folders share the prefix.
pub fn folder(mailbox: &str, folder_id: &str) -> Vec<u8> {
    join(&[mailbox, folder_id])
}

/// `mailbox \0`: the prefix of a mailbox's folders and mappings.
pub fn mailbox_prefix(mailbox: &str) -> Vec<u8> {
    join(&[mailbox, ""])
}

/// `mailbox \0 mapping name`: the mappings tree.
pub fn mapping(mailbox: &str, name: &str) -> Vec<u8> {
    join(&[mailbox, name])
}

/// 8 bytes of the folder, 16 of the item: the seen tree.
pub fn seen(mailbox: &str, folder_id: &str, item_id: &str) -> Vec<u8> {
    let mut key = seen_prefix(mailbox, folder_id);
    key.extend_from_slice(&Sha256::digest(item_id.as_bytes())[..16]);
    key
}

/// 8 bytes of the folder, 16 of the InternetMessageId: the baseline tree (a mail that was in
/// the folder when its mapping started, R10).
pub fn baseline(mailbox: &str, folder_id: &str, message_id: &str) -> Vec<u8> {
    seen(mailbox, folder_id, message_id)
}

/// The prefix of every seen key of one folder.
pub fn seen_prefix(mailbox: &str, folder_id: &str) -> Vec<u8> {
    Sha256::digest(folder(mailbox, folder_id))[..8].to_vec()
}

pub fn outbox(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn outbox_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// `subscription \0 mailbox \0 id` in the meta tree: a notification subscription held.
pub fn subscription(mailbox: &str, id: &str) -> Vec<u8> {
    join(&[SUBSCRIPTION, mailbox, id])
}

/// The prefix of every [`subscription`] key.
pub fn subscriptions_prefix() -> Vec<u8> {
    join(&[SUBSCRIPTION, ""])
}

/// Mailbox and id of a [`subscription`] key.
pub fn parse_subscription(key: &[u8]) -> Option<(String, String)> {
    let rest = key.strip_prefix(subscriptions_prefix().as_slice())?;
    let (mailbox, id) = std::str::from_utf8(rest).ok()?.split_once('\0')?;
    Some((mailbox.to_owned(), id.to_owned()))
}

const SUBSCRIPTION: &str = "subscription";

fn join(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_keys_read_back() {
        let key = subscription("a@x", "id==");
        assert!(key.starts_with(&subscriptions_prefix()));
        assert_eq!(
            parse_subscription(&key),
            Some(("a@x".into(), "id==".into()))
        );
        assert_eq!(parse_subscription(b"outbox_seq"), None);
    }

    #[test]
    fn outbox_keys_sort_in_sequence_order() {
        assert!(outbox(255) < outbox(256));
        assert_eq!(outbox_seq(&outbox(42)), Some(42));
        assert_eq!(outbox_seq(b"short"), None);
    }

    #[test]
    fn seen_keys_are_short_and_grouped_by_folder() {
        let k = seen("a@x", "F1", &"A".repeat(150));
        assert_eq!(k.len(), 24);
        assert!(k.starts_with(&seen_prefix("a@x", "F1")));
        assert!(!k.starts_with(&seen_prefix("a@x", "F2")));
        assert_ne!(seen("a@x", "F1", "i1"), seen("a@x", "F1", "i2"));
    }

    #[test]
    fn a_mailbox_prefix_does_not_match_a_longer_address() {
        assert!(folder("a@x", "F").starts_with(&mailbox_prefix("a@x")));
        assert!(!folder("a@xy", "F").starts_with(&mailbox_prefix("a@x")));
    }
}
