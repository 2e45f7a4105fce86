//! ResolveNames: which mailboxes (and contacts) an ambiguous name such as `alice` or an
//! address prefix stands for. One response message: the resolutions (`Success`), several of
//! them (`Warning` ErrorNameResolutionMultipleResults) or none (ErrorNameResolutionNoResults).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/resolvenames-operation>

use super::folder::{read_selectors, write_selectors};
use super::ids::FolderSelector;
use super::item::EmailAddress;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:ResolveNames`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolveNames {
    /// `m:UnresolvedEntry`: a name, an address or a prefix of either (`smtp:` allowed).
    pub entry: String,
    pub return_full_contact_data: bool,
    /// `SearchScope`: `ActiveDirectory`, `Contacts`, … (kept as sent).
    pub search_scope: Option<String>,
    /// `m:ParentFolderIds`: contact folders to search.
    pub parent_folders: Vec<FolderSelector>,
}

/// One `m:ResolveNamesResponseMessage`: the mailboxes found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResolveNamesMessage {
    pub total_items_in_view: Option<u32>,
    pub resolutions: Vec<EmailAddress>,
}

impl Operation for ResolveNames {
    const NAME: &'static str = "ResolveNames";
    type Message = ResolveNamesMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:ResolveNames")
            .attr(
                "ReturnFullContactData",
                if self.return_full_contact_data {
                    "true"
                } else {
                    "false"
                },
            )
            .attr_opt("SearchScope", self.search_scope.as_deref())
            .open();
        if !self.parent_folders.is_empty() {
            write_selectors(w, "m:ParentFolderIds", &self.parent_folders);
        }
        w.leaf("m:UnresolvedEntry", &self.entry);
        w.close("m:ResolveNames");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = ResolveNames {
            entry: String::new(),
            return_full_contact_data: el.attr("ReturnFullContactData").as_deref() == Some("true"),
            search_scope: el.attr("SearchScope"),
            parent_folders: Vec::new(),
        };
        let mut entry = None;
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "UnresolvedEntry" => entry = Some(r.text(&child)?),
                "ParentFolderIds" => op.parent_folders = read_selectors(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        op.entry = entry.ok_or_else(|| r.error("ResolveNames without an UnresolvedEntry"))?;
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut ResolveNamesMessage,
    ) -> Result<bool, Error> {
        if el.name() != "ResolutionSet" {
            return Ok(false);
        }
        m.total_items_in_view = el
            .attr("TotalItemsInView")
            .and_then(|v| v.trim().parse().ok());
        while let Some(resolution) = r.next_child(el)? {
            while let Some(child) = r.next_child(&resolution)? {
                if child.name() == "Mailbox" {
                    m.resolutions.push(EmailAddress::read(r, &child)?);
                } else {
                    r.skip(&child)?;
                }
            }
        }
        Ok(true)
    }
}
