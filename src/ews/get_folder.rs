//! GetFolder: confirm a known folder still exists and read its name and parent.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getfolder-operation>

use super::folder::{self, Folder, FolderShape};
use super::ids::FolderSelector;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:GetFolder`: one response message per folder asked for, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GetFolder {
    pub shape: FolderShape,
    pub folders: Vec<FolderSelector>,
}

/// One `m:GetFolderResponseMessage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GetFolderMessage {
    pub folders: Vec<Folder>,
}

impl Operation for GetFolder {
    const NAME: &'static str = "GetFolder";
    type Message = GetFolderMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:GetFolder").open();
        self.shape.write(w);
        folder::write_selectors(w, "m:FolderIds", &self.folders);
        w.close("m:GetFolder");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut op = GetFolder {
            shape: FolderShape::default(),
            folders: Vec::new(),
        };
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "FolderShape" => op.shape = FolderShape::read(r, &child)?,
                "FolderIds" => op.folders = folder::read_selectors(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        Ok(op)
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        message: &mut GetFolderMessage,
    ) -> Result<bool, Error> {
        read_folders_field(r, el, message)
    }
}

/// Reads `m:Folders`, the payload GetFolder and CreateFolder messages share.
pub fn read_folders_field<'i>(
    r: &mut XmlReader<'i>,
    el: &Element<'i>,
    message: &mut GetFolderMessage,
) -> Result<bool, Error> {
    if el.name() != "Folders" {
        return Ok(false);
    }
    message.folders = Folder::read_all(r, el)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::{self, DistinguishedFolder, RequestHeader, ResponseCode};

    #[test]
    fn request_round_trips() {
        let op = GetFolder {
            shape: FolderShape::for_resolution(),
            folders: vec![DistinguishedFolder::Inbox.into()],
        };
        let xml = ews::write_request(&op, &RequestHeader::default());
        let (_, back) = ews::read_request::<GetFolder>(&xml).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn mixed_messages_keep_their_own_outcome() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
 <s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
    xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <m:ResponseMessages>
   <m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
    <m:Folders><t:Folder><t:FolderId Id="AAA=" ChangeKey="AQ=="/><t:DisplayName> Deals &amp; Quotes </t:DisplayName>
     <t:Unknown>x</t:Unknown><t:ChildFolderCount>2</t:ChildFolderCount></t:Folder></m:Folders>
   </m:GetFolderResponseMessage>
   <m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>Id is malformed.</m:MessageText>
    <m:ResponseCode>ErrorInvalidIdMalformed</m:ResponseCode><m:Folders/></m:GetFolderResponseMessage>
  </m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#;
        let resp = ews::read_response::<GetFolder>(xml).unwrap();
        let ok = resp.messages[0].as_ref().unwrap();
        assert_eq!(
            ok.folders[0].display_name.as_deref(),
            Some(" Deals & Quotes ")
        );
        assert_eq!(ok.folders[0].child_folder_count, Some(2));
        let err = resp.messages[1].as_ref().unwrap_err();
        assert_eq!(err.code, ResponseCode::ErrorInvalidIdMalformed);
    }
}
