//! The simulator's identifiers: ItemIds, FolderIds, ChangeKeys, sync states, subscription ids
//! and watermarks. Each is base64 of a few numbers plus a checksum, so it looks like an
//! Exchange id, is unique, is case-sensitive, costs no memory per item (it is computed on the
//! way out) and can be told apart from a forged or truncated one on the way in.
//! Owns the encodings only; what the numbers mean lives in `mailbox.rs` and `notify.rs`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Bytes every id starts with; base64 of them begins like an Exchange id (`AAMkA…`).
const ITEM_PREFIX: [u8; 4] = [0x00, 0x03, 0x24, 0x00];
const FOLDER_PREFIX: [u8; 4] = [0x01, 0x03, 0x24, 0x00];

/// What an id encodes; the tag byte keeps kinds apart (a FolderId is never an ItemId).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Item = 1,
    Folder = 2,
    ItemSync = 3,
    HierarchySync = 4,
    Subscription = 5,
    Watermark = 6,
    ChangeKey = 7,
    Immutable = 8,
    GraphDelta = 9,
    Attachment = 10,
}

fn checksum(bytes: &[u8]) -> u16 {
    // FNV-1a folded to 16 bits: enough to reject typos and truncation, not a secret.
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 16)) as u16
}

fn encode(prefix: [u8; 4], kind: Kind, numbers: &[u64]) -> String {
    let mut bytes = Vec::with_capacity(4 + 1 + numbers.len() * 8 + 2);
    bytes.extend_from_slice(&prefix);
    bytes.push(kind as u8);
    for n in numbers {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    STANDARD.encode(bytes)
}

fn decode<const N: usize>(prefix: [u8; 4], kind: Kind, text: &str) -> Option<[u64; N]> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    if bytes.len() != 4 + 1 + N * 8 + 2 || bytes[..4] != prefix || bytes[4] != kind as u8 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 2);
    if checksum(body).to_le_bytes() != sum {
        return None;
    }
    let mut out = [0u64; N];
    for (i, chunk) in body[5..].chunks_exact(8).enumerate() {
        out[i] = u64::from_le_bytes(chunk.try_into().ok()?);
    }
    Some(out)
}

/// An item: its mailbox, its folder and its number (new on every move).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub mailbox: u32,
    pub folder: u32,
    pub item: u64,
}

pub fn item_id(k: ItemKey) -> String {
    encode(
        ITEM_PREFIX,
        Kind::Item,
        &[u64::from(k.mailbox) << 32 | u64::from(k.folder), k.item],
    )
}

pub fn parse_item_id(text: &str) -> Option<ItemKey> {
    let [mf, item] = decode::<2>(ITEM_PREFIX, Kind::Item, text)?;
    Some(ItemKey {
        mailbox: (mf >> 32) as u32,
        folder: mf as u32,
        item,
    })
}

/// The `index`th attachment of an item: it changes with the ItemId, as in Exchange.
pub fn attachment_id(k: ItemKey, index: usize) -> String {
    encode(
        ITEM_PREFIX,
        Kind::Attachment,
        &[
            u64::from(k.mailbox) << 32 | u64::from(k.folder),
            k.item,
            index as u64,
        ],
    )
}

pub fn parse_attachment_id(text: &str) -> Option<(ItemKey, usize)> {
    let [mf, item, index] = decode::<3>(ITEM_PREFIX, Kind::Attachment, text)?;
    let key = ItemKey {
        mailbox: (mf >> 32) as u32,
        folder: mf as u32,
        item,
    };
    Some((key, usize::try_from(index).ok()?))
}

pub fn folder_id(mailbox: u32, folder: u32) -> String {
    encode(
        FOLDER_PREFIX,
        Kind::Folder,
        &[u64::from(mailbox) << 32 | u64::from(folder)],
    )
}

pub fn parse_folder_id(text: &str) -> Option<(u32, u32)> {
    let [mf] = decode::<1>(FOLDER_PREFIX, Kind::Folder, text)?;
    Some(((mf >> 32) as u32, mf as u32))
}

/// A Graph immutable id (`Prefer: IdType="ImmutableId"`): the mailbox and the number the
/// message got when it was created, which a move inside the mailbox keeps.
pub fn immutable_id(mailbox: u32, origin: u64) -> String {
    encode(ITEM_PREFIX, Kind::Immutable, &[u64::from(mailbox), origin])
}

pub fn parse_immutable_id(text: &str) -> Option<(u32, u64)> {
    let [m, origin] = decode::<2>(ITEM_PREFIX, Kind::Immutable, text)?;
    Some((u32::try_from(m).ok()?, origin))
}

/// Where a Graph delta round stands: mailbox, folder (0 for the folder tree), the position in
/// the change sequence, the `$select` (a bit per property) and the mailbox's delta epoch (a
/// token of an older epoch has expired). URL-safe, so it goes into a link as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaToken {
    pub mailbox: u32,
    pub folder: u32,
    pub seq: u64,
    pub select: u64,
    pub epoch: u64,
}

pub fn delta_token(t: DeltaToken) -> String {
    let text = encode(
        FOLDER_PREFIX,
        Kind::GraphDelta,
        &[
            u64::from(t.mailbox) << 32 | u64::from(t.folder),
            t.seq,
            t.select,
            t.epoch,
        ],
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

pub fn parse_delta_token(text: &str) -> Option<DeltaToken> {
    let inner = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()?;
    let [mf, seq, select, epoch] = decode::<4>(
        FOLDER_PREFIX,
        Kind::GraphDelta,
        std::str::from_utf8(&inner).ok()?,
    )?;
    Some(DeltaToken {
        mailbox: (mf >> 32) as u32,
        folder: mf as u32,
        seq,
        select,
        epoch,
    })
}

/// A ChangeKey: the object's number and version; a new version on every change.
pub fn change_key(object: u64, version: u32) -> String {
    encode(
        ITEM_PREFIX,
        Kind::ChangeKey,
        &[object << 16 ^ u64::from(version)],
    )
}

/// A SyncFolderItems state: the folder it belongs to and the change sequence it has seen.
pub fn item_sync_state(mailbox: u32, folder: u32, seq: u64) -> String {
    encode(
        ITEM_PREFIX,
        Kind::ItemSync,
        &[u64::from(mailbox) << 32 | u64::from(folder), seq],
    )
}

pub fn parse_item_sync_state(text: &str) -> Option<(u32, u32, u64)> {
    let [mf, seq] = decode::<2>(ITEM_PREFIX, Kind::ItemSync, text)?;
    Some(((mf >> 32) as u32, mf as u32, seq))
}

/// A SyncFolderHierarchy state: the mailbox, the sync root and the sequence seen.
pub fn hierarchy_sync_state(mailbox: u32, root: u32, seq: u64) -> String {
    encode(
        FOLDER_PREFIX,
        Kind::HierarchySync,
        &[u64::from(mailbox) << 32 | u64::from(root), seq],
    )
}

pub fn parse_hierarchy_sync_state(text: &str) -> Option<(u32, u32, u64)> {
    let [mr, seq] = decode::<2>(FOLDER_PREFIX, Kind::HierarchySync, text)?;
    Some(((mr >> 32) as u32, mr as u32, seq))
}

pub fn subscription_id(n: u64) -> String {
    encode(FOLDER_PREFIX, Kind::Subscription, &[n])
}

pub fn parse_subscription_id(text: &str) -> Option<u64> {
    decode::<1>(FOLDER_PREFIX, Kind::Subscription, text).map(|[n]| n)
}

pub fn watermark(subscription: u64, event: u64) -> String {
    encode(FOLDER_PREFIX, Kind::Watermark, &[subscription, event])
}

pub fn parse_watermark(text: &str) -> Option<(u64, u64)> {
    decode::<2>(FOLDER_PREFIX, Kind::Watermark, text).map(|[s, e]| (s, e))
}

/// An item or folder id in one of ConvertId's formats (`IdFormatType`), converted to another;
/// `None` when `text` is no id of `from` the simulator handed out. EwsId is the id as the
/// simulator hands it out; the others carry the same bytes framed as each format is (EntryId:
/// four flag bytes first; HexEntryId: that in hex; EwsLegacyId, StoreId, OwaId: a tag byte),
/// so every format converts back exactly.
pub fn convert_id(text: &str, from: &str, to: &str) -> Option<String> {
    const ENTRY_FLAGS: [u8; 4] = [0; 4];
    let tag = |format: &str| match format {
        "EwsLegacyId" => Some(b'L'),
        "StoreId" => Some(b'S'),
        "OwaId" => Some(b'O'),
        _ => None,
    };
    let text = text.trim();
    let raw = match from {
        "EwsId" => STANDARD.decode(text).ok()?,
        "EntryId" => STANDARD
            .decode(text)
            .ok()?
            .strip_prefix(&ENTRY_FLAGS)?
            .to_vec(),
        "HexEntryId" => hex::decode(text).ok()?.strip_prefix(&ENTRY_FLAGS)?.to_vec(),
        other => {
            let bytes = STANDARD.decode(text).ok()?;
            let (first, rest) = bytes.split_first()?;
            (Some(*first) == tag(other)).then(|| rest.to_vec())?
        }
    };
    let ews = STANDARD.encode(&raw);
    if parse_item_id(&ews).is_none() && parse_folder_id(&ews).is_none() {
        return None;
    }
    let entry = [&ENTRY_FLAGS[..], &raw].concat();
    Some(match to {
        "EwsId" => ews,
        "EntryId" => STANDARD.encode(entry),
        "HexEntryId" => hex::encode_upper(entry),
        other => STANDARD.encode([&[tag(other)?][..], &raw].concat()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_forgeries() {
        let k = ItemKey {
            mailbox: 7,
            folder: 3,
            item: 123_456,
        };
        let id = item_id(k);
        assert!(id.starts_with("AAMkA"), "{id}");
        assert_eq!(parse_item_id(&id), Some(k));
        assert_eq!(parse_item_id(&id[..id.len() - 4]), None);
        assert_eq!(parse_item_id(&id.to_lowercase()), None);
        assert_eq!(parse_folder_id(&id), None);
        assert_eq!(parse_folder_id(&folder_id(7, 3)), Some((7, 3)));
        assert_eq!(
            parse_item_sync_state(&item_sync_state(1, 2, 99)),
            Some((1, 2, 99))
        );
        assert_eq!(parse_hierarchy_sync_state(&item_sync_state(1, 2, 99)), None);
        assert_ne!(change_key(5, 1), change_key(5, 2));
        assert_eq!(parse_immutable_id(&immutable_id(7, 9)), Some((7, 9)));
        assert_eq!(parse_item_id(&immutable_id(7, 9)), None);
        let t = DeltaToken {
            mailbox: 1,
            folder: 2,
            seq: 3,
            select: 0b101,
            epoch: 4,
        };
        let text = delta_token(t);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(parse_delta_token(&text), Some(t));
        assert_eq!(parse_delta_token(&text[1..]), None);
    }

    #[test]
    fn ids_convert_between_formats_and_back() {
        let id = item_id(ItemKey {
            mailbox: 2,
            folder: 3,
            item: 44,
        });
        for format in [
            "EwsId",
            "EwsLegacyId",
            "EntryId",
            "HexEntryId",
            "StoreId",
            "OwaId",
        ] {
            let other = convert_id(&id, "EwsId", format).unwrap();
            assert_eq!(
                convert_id(&other, format, "EwsId").as_deref(),
                Some(id.as_str())
            );
        }
        assert_ne!(convert_id(&id, "EwsId", "EntryId").unwrap(), id);
        assert_eq!(convert_id("DUMMY", "EwsId", "EntryId"), None);
        let folder = folder_id(2, 3);
        let hex = convert_id(&folder, "EwsId", "HexEntryId").unwrap();
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{hex}");
        assert_eq!(convert_id(&hex, "EntryId", "EwsId"), None);
    }
}
