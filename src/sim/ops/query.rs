//! Evaluating FindItem's and FindFolder's restrictions, sort orders and views against the
//! simulator's messages and folders. A property path the simulator cannot evaluate is a
//! per-message `ErrorUnsupportedPathForQuery` / `ErrorUnsupportedPathForSortGroup` naming it,
//! never a silent match. String comparisons are exact (`IsEqualTo`), or as `Contains` asks.

use super::context::fault;
use crate::ews::ResponseCode;
use crate::ews::find_item::ItemView;
use crate::ews::restriction::{Comparison, FieldOrder, FieldPath, Operand, Restriction};
use crate::sim::respond::MessageError;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A property value, typed as the comparison needs it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value<'a> {
    Text(Cow<'a, str>),
    /// A multi-valued string property (categories): a comparison holds when it holds for one.
    Texts(Vec<&'a str>),
    Number(i64),
    /// Seconds since the epoch.
    Time(i64),
    Bool(bool),
    /// The object does not have the property.
    Missing,
}

/// Something restrictions run against: a message or a folder.
pub(super) trait Props {
    /// Whether the simulator can evaluate this path for this kind of object at all.
    fn supports(path: &FieldPath) -> bool;
    /// The value of a supported path.
    fn prop(&self, path: &FieldPath) -> Value<'_>;
}

/// Checks that every path in `r` can be evaluated, before any object is looked at.
pub(super) fn check<P: Props>(r: &Restriction) -> Result<(), MessageError> {
    let unsupported = |path: &FieldPath| {
        Err(fault(
            ResponseCode::ErrorUnsupportedPathForQuery,
            format!(
                "The simulator cannot evaluate a restriction on {}.",
                path.describe()
            ),
        )
        .with("PropertyPath", path.describe()))
    };
    match r {
        Restriction::Compare { field, value, .. } => {
            if !P::supports(field) {
                return unsupported(field);
            }
            match value {
                Operand::Field(other) if !P::supports(other) => unsupported(other),
                _ => Ok(()),
            }
        }
        Restriction::Contains { field, .. }
        | Restriction::Excludes { field, .. }
        | Restriction::Exists(field) => {
            if P::supports(field) {
                Ok(())
            } else {
                unsupported(field)
            }
        }
        Restriction::And(parts) | Restriction::Or(parts) => parts.iter().try_for_each(check::<P>),
        Restriction::Not(inner) => check::<P>(inner),
    }
}

/// Checks a sort order the same way.
pub(super) fn check_sort<P: Props>(orders: &[FieldOrder]) -> Result<(), MessageError> {
    match orders.iter().find(|o| !P::supports(&o.field)) {
        None => Ok(()),
        Some(o) => Err(fault(
            ResponseCode::ErrorUnsupportedPathForSortGroup,
            format!("The simulator cannot sort by {}.", o.field.describe()),
        )
        .with("PropertyPath", o.field.describe())),
    }
}

/// Does the object satisfy the (checked) restriction?
pub(super) fn matches<P: Props>(r: &Restriction, p: &P) -> bool {
    match r {
        Restriction::Compare { op, field, value } => {
            let left = p.prop(field);
            let right = match value {
                Operand::Constant(c) => constant(&left, c),
                Operand::Field(other) => p.prop(other),
            };
            compare_with(*op, &left, &right)
        }
        Restriction::Contains {
            field,
            value,
            mode,
            comparison,
        } => contains(
            &p.prop(field),
            value,
            mode.as_deref(),
            comparison.as_deref(),
        ),
        Restriction::Excludes { field, bitmask } => match (p.prop(field), number(bitmask)) {
            (Value::Number(n), Some(mask)) => n & mask == 0,
            _ => false,
        },
        Restriction::Exists(field) => p.prop(field) != Value::Missing,
        Restriction::And(parts) => parts.iter().all(|x| matches(x, p)),
        Restriction::Or(parts) => parts.iter().any(|x| matches(x, p)),
        Restriction::Not(inner) => !matches(inner, p),
    }
}

/// Orders two objects by a (checked) sort order.
pub(super) fn order<P: Props>(orders: &[FieldOrder], a: &P, b: &P) -> Ordering {
    for o in orders {
        let ord = ordering(&a.prop(&o.field), &b.prop(&o.field)).unwrap_or(Ordering::Equal);
        let ord = if o.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A constant read as the type of the property it is compared with.
fn constant<'a>(like: &Value<'_>, text: &'a str) -> Value<'a> {
    let parsed = match like {
        Value::Number(_) => number(text).map(Value::Number),
        Value::Time(_) => time(text).map(Value::Time),
        Value::Bool(_) => match text.trim() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    parsed.unwrap_or(Value::Text(Cow::Borrowed(text)))
}

fn number(text: &str) -> Option<i64> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// An xs:dateTime as seconds; one without a zone is UTC.
pub(super) fn time(text: &str) -> Option<i64> {
    crate::ews::item::parse_time(text.trim()).map(|t| t.as_second())
}

/// The ordering of two values of the same type; `None` when they cannot be compared.
fn ordering(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    Some(match (a, b) {
        (Value::Missing, Value::Missing) => Ordering::Equal,
        (Value::Missing, _) => Ordering::Less,
        (_, Value::Missing) => Ordering::Greater,
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) | (Value::Time(x), Value::Time(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Texts(x), Value::Texts(y)) => x.cmp(y),
        _ => return None,
    })
}

fn compare_with(op: Comparison, left: &Value<'_>, right: &Value<'_>) -> bool {
    if *left == Value::Missing || *right == Value::Missing {
        return false;
    }
    if let Value::Texts(values) = left {
        let any = values
            .iter()
            .any(|v| compare_with(Comparison::IsEqualTo, &Value::Text(Cow::Borrowed(v)), right));
        return match op {
            Comparison::IsEqualTo => any,
            Comparison::IsNotEqualTo => !any,
            _ => values.iter().any(|v| {
                ordering(&Value::Text(Cow::Borrowed(v)), right).is_some_and(|o| op.holds(o))
            }),
        };
    }
    ordering(left, right).is_some_and(|o| op.holds(o))
}

/// `t:Contains` with its ContainmentMode (default FullString) and ContainmentComparison
/// (default Exact; the IgnoreCase and Loose variants ignore case).
fn contains(value: &Value<'_>, needle: &str, mode: Option<&str>, comparison: Option<&str>) -> bool {
    let fold = comparison.is_some_and(|c| c.contains("IgnoreCase") || c.contains("Loose"));
    let norm = |s: &str| {
        if fold { s.to_lowercase() } else { s.to_owned() }
    };
    let needle = norm(needle);
    let one = |hay: &str| {
        let hay = norm(hay);
        match mode.unwrap_or("FullString") {
            "Prefixed" => hay.starts_with(&needle),
            "Substring" | "ExactPhrase" => hay.contains(&needle),
            "PrefixOnWords" => hay.split_whitespace().any(|w| w.starts_with(&needle)),
            _ => hay == needle,
        }
    };
    match value {
        Value::Text(t) => one(t),
        Value::Texts(list) => list.iter().any(|t| one(t)),
        _ => false,
    }
}

/// EWSFindCountLimit: what one FindItem or FindFolder returns at most.
const FIND_COUNT_LIMIT: usize = 1000;

/// The page a view asks for: `(start, end)` in a list of `total`.
pub(super) fn page_of(view: Option<&ItemView>, total: usize) -> (usize, usize) {
    let limit = |max: Option<u32>| {
        max.map_or(FIND_COUNT_LIMIT, |m| m as usize)
            .min(FIND_COUNT_LIMIT)
    };
    let (start, max) = match view {
        Some(ItemView::Indexed {
            max_entries,
            offset,
            from_end,
        }) => {
            let max = limit(*max_entries);
            let offset = *offset as usize;
            let start = if *from_end {
                total.saturating_sub(offset + max)
            } else {
                offset.min(total)
            };
            (start, max)
        }
        Some(ItemView::Fractional {
            max_entries,
            numerator,
            denominator,
        }) => {
            let start = (total * *numerator as usize)
                .checked_div(*denominator as usize)
                .unwrap_or(0)
                .min(total);
            (start, limit(*max_entries))
        }
        _ => (0, FIND_COUNT_LIMIT),
    };
    (start, (start + max).min(total))
}

/// A bool as a value.
pub(super) fn flag(b: bool) -> Value<'static> {
    Value::Bool(b)
}

/// Text as a value.
pub(super) fn text(s: &str) -> Value<'_> {
    Value::Text(Cow::Borrowed(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Doc {
        subject: &'static str,
        size: i64,
        categories: Vec<&'static str>,
    }

    impl Props for Doc {
        fn supports(path: &FieldPath) -> bool {
            matches!(path, FieldPath::Field(u) if ["item:Subject", "item:Size", "item:Categories"].contains(&u.as_str()))
        }
        fn prop(&self, path: &FieldPath) -> Value<'_> {
            match path {
                FieldPath::Field(u) if u == "item:Subject" => text(self.subject),
                FieldPath::Field(u) if u == "item:Size" => Value::Number(self.size),
                FieldPath::Field(u) if u == "item:Categories" && !self.categories.is_empty() => {
                    Value::Texts(self.categories.clone())
                }
                _ => Value::Missing,
            }
        }
    }

    fn field(uri: &str) -> FieldPath {
        FieldPath::Field(uri.into())
    }

    fn is(op: Comparison, uri: &str, value: &str) -> Restriction {
        Restriction::Compare {
            op,
            field: field(uri),
            value: Operand::Constant(value.into()),
        }
    }

    #[test]
    fn comparisons_contains_and_logic_follow_the_schema() {
        let d = Doc {
            subject: "Quote request 1001",
            size: 600,
            categories: vec!["Customer", "Urgent"],
        };
        assert!(matches(
            &is(Comparison::IsEqualTo, "item:Subject", "Quote request 1001"),
            &d
        ));
        assert!(!matches(
            &is(Comparison::IsEqualTo, "item:Subject", "quote request 1001"),
            &d
        ));
        assert!(matches(
            &is(Comparison::IsGreaterThan, "item:Size", "512"),
            &d
        ));
        assert!(matches(
            &is(Comparison::IsEqualTo, "item:Categories", "Urgent"),
            &d
        ));
        let contains = Restriction::Contains {
            field: field("item:Subject"),
            value: "QUOTE".into(),
            mode: Some("Substring".into()),
            comparison: Some("IgnoreCase".into()),
        };
        assert!(matches(&contains, &d));
        let none = Doc {
            categories: vec![],
            ..d
        };
        assert!(!matches(
            &Restriction::Exists(field("item:Categories")),
            &none
        ));
        assert!(matches(
            &Restriction::Not(Box::new(Restriction::Or(vec![
                Restriction::Exists(field("item:Categories")),
                is(Comparison::IsLessThan, "item:Size", "100"),
            ]))),
            &none
        ));
        let e = check::<Doc>(&is(Comparison::IsEqualTo, "item:Body", "x")).unwrap_err();
        assert_eq!(e.code, ResponseCode::ErrorUnsupportedPathForQuery);
        assert!(e.text.contains("item:Body"), "{}", e.text);
    }
}
