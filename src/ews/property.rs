//! Extended properties (`t:ExtendedFieldURI`, `t:ExtendedProperty`): MAPI properties by tag
//! and named properties, which items and folders both carry and shapes both ask for.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/extendedfielduri>

use super::Error;
use super::xml::{Element, XmlReader, XmlWriter};
use serde::{Deserialize, Serialize};

/// `t:ExtendedFieldURI`: a MAPI property by tag, or a named property by set and name or id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtendedFieldUri {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinguished_property_set_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_set_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_id: Option<String>,
    pub property_type: String,
}

const EXTENDED_ATTRS: [&str; 6] = [
    "DistinguishedPropertySetId",
    "PropertySetId",
    "PropertyTag",
    "PropertyName",
    "PropertyId",
    "PropertyType",
];

impl ExtendedFieldUri {
    fn fields(&self) -> [Option<&str>; 6] {
        [
            self.distinguished_property_set_id.as_deref(),
            self.property_set_id.as_deref(),
            self.property_tag.as_deref(),
            self.property_name.as_deref(),
            self.property_id.as_deref(),
            Some(self.property_type.as_str()),
        ]
    }

    pub fn read(el: &Element<'_>) -> Self {
        let [dps, ps, tag, name, id, ty] = EXTENDED_ATTRS.map(|a| el.attr(a));
        Self {
            distinguished_property_set_id: dps,
            property_set_id: ps,
            property_tag: tag,
            property_name: name,
            property_id: id,
            property_type: ty.unwrap_or_default(),
        }
    }

    pub fn write(&self, w: &mut XmlWriter) {
        let mut e = w.element("t:ExtendedFieldURI");
        for (attr, value) in EXTENDED_ATTRS.iter().zip(self.fields()) {
            e = e.attr_opt(attr, value);
        }
        e.empty();
    }

    /// Same property, whatever the spelling of a numeric tag (`0x1035` vs `4149`).
    pub fn same_property(&self, other: &Self) -> bool {
        let tag = |t: &Option<String>| t.as_deref().and_then(parse_tag);
        tag(&self.property_tag) == tag(&other.property_tag)
            && self.property_set_id.as_deref().map(str::to_ascii_lowercase)
                == other
                    .property_set_id
                    .as_deref()
                    .map(str::to_ascii_lowercase)
            && self.distinguished_property_set_id == other.distinguished_property_set_id
            && self.property_name == other.property_name
            && self.property_id == other.property_id
    }
}

fn parse_tag(t: &str) -> Option<u32> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// `t:ExtendedProperty`: a property and its value (or values, for multi-valued types).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedProperty {
    pub field: ExtendedFieldUri,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl ExtendedProperty {
    /// Reads a `t:ExtendedProperty`.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut p = Self::default();
        while let Some(child) = r.next_child(el)? {
            match child.name() {
                "ExtendedFieldURI" => {
                    p.field = ExtendedFieldUri::read(&child);
                    r.skip(&child)?;
                }
                "Value" => p.value = Some(r.text(&child)?),
                "Values" => {
                    while let Some(v) = r.next_child(&child)? {
                        p.values.push(r.text(&v)?);
                    }
                }
                _ => r.skip(&child)?,
            }
        }
        Ok(p)
    }

    pub fn write(&self, w: &mut XmlWriter) {
        w.element("t:ExtendedProperty").open();
        self.field.write(w);
        if let Some(v) = &self.value {
            w.leaf("t:Value", v);
        } else {
            w.element("t:Values").open();
            for v in &self.values {
                w.leaf("t:Value", v);
            }
            w.close("t:Values");
        }
        w.close("t:ExtendedProperty");
    }
}
