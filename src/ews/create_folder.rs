//! CreateFolder: new folders under a parent, each answered with its FolderId in request order
//! (`ErrorFolderExists` for a name its parent already has).
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createfolder-operation>

use super::folder::{Folder, read_wrapped_selector, write_selector};
use super::get_folder::{GetFolderMessage, read_folders_field};
use super::ids::FolderSelector;
use super::xml::{Element, XmlReader, XmlWriter};
use super::{Error, Operation};
use serde::Serialize;

/// `m:CreateFolder`: the folders as the request describes them (element kind, class, name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateFolder {
    pub parent: FolderSelector,
    pub folders: Vec<Folder>,
}

impl Operation for CreateFolder {
    const NAME: &'static str = "CreateFolder";
    type Message = GetFolderMessage;

    fn write_body(&self, w: &mut XmlWriter) {
        w.element("m:CreateFolder").open();
        w.element("m:ParentFolderId").open();
        write_selector(w, &self.parent);
        w.close("m:ParentFolderId");
        w.element("m:Folders").open();
        for f in &self.folders {
            f.write_new(w);
        }
        w.close("m:Folders");
        w.close("m:CreateFolder");
    }

    fn read_body<'i>(r: &mut XmlReader<'i>, el: &Element<'i>) -> Result<Self, Error> {
        let mut parent = None;
        let mut folders = Vec::new();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ParentFolderId" => parent = read_wrapped_selector(r, &child)?,
                "Folders" => folders = Folder::read_all(r, &child)?,
                _ => r.skip(&child)?,
            }
        }
        let parent = parent.ok_or_else(|| r.error("CreateFolder without a ParentFolderId"))?;
        Ok(CreateFolder { parent, folders })
    }

    fn read_field<'i>(
        r: &mut XmlReader<'i>,
        el: &Element<'i>,
        m: &mut GetFolderMessage,
    ) -> Result<bool, Error> {
        read_folders_field(r, el, m)
    }
}
