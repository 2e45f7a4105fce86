//! The search expressions of FindItem and FindFolder (`m:Restriction`: comparisons, `Contains`,
//! `Excludes`, `Exists`, `And`, `Or`, `Not`) and their sort order (`m:SortOrder`), read and
//! written as the schema defines them. Evaluating them is the server's business.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/restriction>

use super::Error;
use super::property::ExtendedFieldUri;
use super::xml::{Element, XmlReader, XmlWriter};
use serde::Serialize;

/// A property a restriction or sort names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum FieldPath {
    /// `t:FieldURI FieldURI="item:Subject"`.
    Field(String),
    /// `t:IndexedFieldURI FieldURI=".." FieldIndex=".."`.
    Indexed { uri: String, index: String },
    /// `t:ExtendedFieldURI`.
    Extended(ExtendedFieldUri),
}

impl FieldPath {
    /// Reads a path element; `None` for an element that is not one.
    fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Option<Self>, Error> {
        let path = match el.name() {
            "FieldURI" => Self::Field(required(r, el, "FieldURI")?),
            "IndexedFieldURI" => Self::Indexed {
                uri: required(r, el, "FieldURI")?,
                index: required(r, el, "FieldIndex")?,
            },
            "ExtendedFieldURI" => Self::Extended(ExtendedFieldUri::read(el)),
            _ => return Ok(None),
        };
        r.skip(el)?;
        Ok(Some(path))
    }

    pub fn write(&self, w: &mut XmlWriter) {
        match self {
            Self::Field(uri) => w.element("t:FieldURI").attr("FieldURI", uri).empty(),
            Self::Indexed { uri, index } => w
                .element("t:IndexedFieldURI")
                .attr("FieldURI", uri)
                .attr("FieldIndex", index)
                .empty(),
            Self::Extended(e) => e.write(w),
        }
    }

    /// How a message names it: the URI, `uri[index]`, or the extended property's attributes.
    pub fn describe(&self) -> String {
        match self {
            Self::Field(uri) => uri.clone(),
            Self::Indexed { uri, index } => format!("{uri}[{index}]"),
            Self::Extended(e) => format!("{e:?}"),
        }
    }
}

fn required(r: &XmlReader<'_>, el: &Element<'_>, attr: &str) -> Result<String, Error> {
    el.attr(attr)
        .ok_or_else(|| r.error(&format!("<{}> without {attr}", el.name())))
}

/// The comparison of a two-operand expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Comparison {
    IsEqualTo,
    IsNotEqualTo,
    IsGreaterThan,
    IsGreaterThanOrEqualTo,
    IsLessThan,
    IsLessThanOrEqualTo,
}

impl Comparison {
    const ALL: [Self; 6] = [
        Self::IsEqualTo,
        Self::IsNotEqualTo,
        Self::IsGreaterThan,
        Self::IsGreaterThanOrEqualTo,
        Self::IsLessThan,
        Self::IsLessThanOrEqualTo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IsEqualTo => "IsEqualTo",
            Self::IsNotEqualTo => "IsNotEqualTo",
            Self::IsGreaterThan => "IsGreaterThan",
            Self::IsGreaterThanOrEqualTo => "IsGreaterThanOrEqualTo",
            Self::IsLessThan => "IsLessThan",
            Self::IsLessThanOrEqualTo => "IsLessThanOrEqualTo",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether `ordering` (the property against the operand) satisfies the comparison.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::IsEqualTo => ordering == Equal,
            Self::IsNotEqualTo => ordering != Equal,
            Self::IsGreaterThan => ordering == Greater,
            Self::IsGreaterThanOrEqualTo => ordering != Less,
            Self::IsLessThan => ordering == Less,
            Self::IsLessThanOrEqualTo => ordering != Greater,
        }
    }
}

/// What a property is compared with (`t:FieldURIOrConstant`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Operand {
    Constant(String),
    Field(FieldPath),
}

/// One search expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Restriction {
    Compare {
        op: Comparison,
        field: FieldPath,
        value: Operand,
    },
    /// `t:Contains`: a substring, prefix or whole-string match, by `ContainmentMode` and
    /// `ContainmentComparison` (kept as sent; absent means FullString / Exact).
    Contains {
        field: FieldPath,
        value: String,
        mode: Option<String>,
        comparison: Option<String>,
    },
    /// `t:Excludes`: the bitwise AND of the property and the mask is zero.
    Excludes {
        field: FieldPath,
        bitmask: String,
    },
    Exists(FieldPath),
    And(Vec<Restriction>),
    Or(Vec<Restriction>),
    Not(Box<Restriction>),
}

impl Restriction {
    /// Reads `m:Restriction`: exactly one expression.
    pub fn read_wrapper(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut found = None;
        while let Some(child) = r.next_child(el)? {
            let e = Self::read(r, &child)?;
            if found.replace(e).is_some() {
                return Err(r.error("a Restriction holds one expression; combine them with And"));
            }
        }
        found.ok_or_else(|| r.error("an empty Restriction"))
    }

    /// Reads one expression element.
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let name = el.name();
        if let Some(op) = Comparison::parse(name) {
            let (field, value) = read_two_operands(r, el)?;
            return Ok(Self::Compare { op, field, value });
        }
        match name {
            "And" | "Or" => {
                let mut parts = Vec::new();
                while let Some(child) = r.next_child(el)? {
                    parts.push(Self::read(r, &child)?);
                }
                Ok(if name == "And" {
                    Self::And(parts)
                } else {
                    Self::Or(parts)
                })
            }
            "Not" => Ok(Self::Not(Box::new(Self::read_wrapper(r, el)?))),
            "Exists" => {
                let (field, _) = read_parts(r, el, "Exists")?;
                Ok(Self::Exists(field))
            }
            "Contains" => {
                let mode = el.attr("ContainmentMode");
                let comparison = el.attr("ContainmentComparison");
                let (field, value) = read_parts(r, el, "Contains")?;
                let value = value.ok_or_else(|| r.error("Contains without a Constant"))?;
                Ok(Self::Contains {
                    field,
                    value,
                    mode,
                    comparison,
                })
            }
            "Excludes" => {
                let (field, bitmask) = read_parts(r, el, "Excludes")?;
                let bitmask = bitmask.ok_or_else(|| r.error("Excludes without a Bitmask"))?;
                Ok(Self::Excludes { field, bitmask })
            }
            other => Err(r.error(&format!("<{other}> is not a search expression"))),
        }
    }

    /// Writes the expression (without the `m:Restriction` wrapper).
    pub fn write(&self, w: &mut XmlWriter) {
        match self {
            Self::Compare { op, field, value } => {
                let name = format!("t:{}", op.as_str());
                w.element(&name).open();
                field.write(w);
                w.element("t:FieldURIOrConstant").open();
                match value {
                    Operand::Constant(v) => w.element("t:Constant").attr("Value", v).empty(),
                    Operand::Field(f) => f.write(w),
                }
                w.close("t:FieldURIOrConstant");
                w.close(&name);
            }
            Self::Contains {
                field,
                value,
                mode,
                comparison,
            } => {
                w.element("t:Contains")
                    .attr_opt("ContainmentMode", mode.as_deref())
                    .attr_opt("ContainmentComparison", comparison.as_deref())
                    .open();
                field.write(w);
                w.element("t:Constant").attr("Value", value).empty();
                w.close("t:Contains");
            }
            Self::Excludes { field, bitmask } => {
                w.element("t:Excludes").open();
                field.write(w);
                w.element("t:Bitmask").attr("Value", bitmask).empty();
                w.close("t:Excludes");
            }
            Self::Exists(field) => {
                w.element("t:Exists").open();
                field.write(w);
                w.close("t:Exists");
            }
            Self::And(parts) | Self::Or(parts) => {
                let name = if matches!(self, Self::And(_)) {
                    "t:And"
                } else {
                    "t:Or"
                };
                w.element(name).open();
                for p in parts {
                    p.write(w);
                }
                w.close(name);
            }
            Self::Not(inner) => {
                w.element("t:Not").open();
                inner.write(w);
                w.close("t:Not");
            }
        }
    }

    /// Writes `m:Restriction` around the expression.
    pub fn write_wrapper(&self, w: &mut XmlWriter) {
        w.element("m:Restriction").open();
        self.write(w);
        w.close("m:Restriction");
    }
}

/// A comparison's property and `t:FieldURIOrConstant`.
fn read_two_operands(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
) -> Result<(FieldPath, Operand), Error> {
    let mut field = None;
    let mut value = None;
    while let Some(child) = r.next_child(el)? {
        if child.name() == "FieldURIOrConstant" {
            while let Some(v) = r.next_child(&child)? {
                if v.name() == "Constant" {
                    value = Some(Operand::Constant(v.attr("Value").unwrap_or_default()));
                    r.skip(&v)?;
                } else if let Some(path) = FieldPath::read(r, &v)? {
                    value = Some(Operand::Field(path));
                }
            }
        } else if let Some(path) = FieldPath::read(r, &child)? {
            field = Some(path);
        }
    }
    let what = el.name();
    let field = field.ok_or_else(|| r.error(&format!("{what} without a property path")))?;
    let value = value.ok_or_else(|| r.error(&format!("{what} without a FieldURIOrConstant")))?;
    Ok((field, value))
}

/// The property path and the `Value` of a `t:Constant` or `t:Bitmask`, if any.
fn read_parts(
    r: &mut XmlReader<'_>,
    el: &Element<'_>,
    what: &str,
) -> Result<(FieldPath, Option<String>), Error> {
    let mut field = None;
    let mut value = None;
    while let Some(child) = r.next_child(el)? {
        match child.name() {
            "Constant" | "Bitmask" => {
                value = child.attr("Value");
                r.skip(&child)?;
            }
            _ => {
                if let Some(path) = FieldPath::read(r, &child)? {
                    field = Some(path);
                }
            }
        }
    }
    let field = field.ok_or_else(|| r.error(&format!("{what} without a property path")))?;
    Ok((field, value))
}

/// One `t:FieldOrder` of `m:SortOrder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldOrder {
    pub field: FieldPath,
    pub descending: bool,
}

/// Reads `m:SortOrder`.
pub fn read_sort_order(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Vec<FieldOrder>, Error> {
    let mut out = Vec::new();
    while let Some(order) = r.next_child(el)? {
        let descending = order.attr("Order").as_deref() == Some("Descending");
        let mut field = None;
        while let Some(child) = r.next_child(&order)? {
            if let Some(path) = FieldPath::read(r, &child)? {
                field = Some(path);
            }
        }
        let field = field.ok_or_else(|| r.error("a FieldOrder without a property path"))?;
        out.push(FieldOrder { field, descending });
    }
    Ok(out)
}

/// Writes `m:SortOrder` (nothing when `orders` is empty).
pub fn write_sort_order(w: &mut XmlWriter, orders: &[FieldOrder]) {
    if orders.is_empty() {
        return;
    }
    w.element("m:SortOrder").open();
    for o in orders {
        w.element("t:FieldOrder")
            .attr(
                "Order",
                if o.descending {
                    "Descending"
                } else {
                    "Ascending"
                },
            )
            .open();
        o.field.write(w);
        w.close("t:FieldOrder");
    }
    w.close("m:SortOrder");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::NS_TYPES;

    #[test]
    fn a_written_restriction_reads_back() {
        let subject = FieldPath::Field("item:Subject".into());
        let r = Restriction::And(vec![
            Restriction::Compare {
                op: Comparison::IsGreaterThan,
                field: FieldPath::Field("item:DateTimeReceived".into()),
                value: Operand::Constant("2026-11-24T00:00:00Z".into()),
            },
            Restriction::Not(Box::new(Restriction::Contains {
                field: subject.clone(),
                value: "spam & eggs".into(),
                mode: Some("Substring".into()),
                comparison: Some("IgnoreCase".into()),
            })),
            Restriction::Or(vec![
                Restriction::Exists(subject),
                Restriction::Excludes {
                    field: FieldPath::Indexed {
                        uri: "contacts:EmailAddress".into(),
                        index: "EmailAddress1".into(),
                    },
                    bitmask: "0x1".into(),
                },
            ]),
        ]);
        let mut w = XmlWriter::new();
        w.element("m:Restriction").attr("xmlns:t", NS_TYPES).open();
        r.write(&mut w);
        w.close("m:Restriction");
        let xml = w.finish();
        let mut reader = XmlReader::new(&xml);
        let root = reader.root().unwrap();
        assert_eq!(Restriction::read_wrapper(&mut reader, &root).unwrap(), r);
    }

    #[test]
    fn an_unknown_expression_is_named_with_its_position() {
        let xml = r#"<Restriction><Near/></Restriction>"#;
        let mut reader = XmlReader::new(xml);
        let root = reader.root().unwrap();
        let e = Restriction::read_wrapper(&mut reader, &root)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("<Near>"), "{e}");
    }
}
