//! CopyItem: copies items into another folder; each copy is a new item with its own ItemId,
//! returned in request order, and the original stays where it was. The request and answer are
//! MoveItem's (`move_item.rs`).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/copyitem-operation>

use super::move_item::MoveOrCopy;

/// `m:CopyItem`.
pub type CopyItem = MoveOrCopy<true>;
