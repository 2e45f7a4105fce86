//! Where in the file a problem is: validation speaks of field paths
//! (`mailbox[0].folder[1].path`), people look for lines. The file is parsed once more with
//! spans, and each problem gets the line of its value, or of the nearest section that holds
//! it when the value is not in the file (a default, a missing field). A mailbox or folder is
//! then named by its address and path, as the file's reader knows them, not by its index.

use toml::de::{DeTable, DeValue};

/// The problems (`field: message`), each prefixed with `line N: ` when the field is found.
pub fn locate(text: &str, problems: Vec<String>) -> Vec<String> {
    let Ok(root) = DeTable::parse(text) else {
        return problems;
    };
    problems
        .into_iter()
        .map(|p| {
            let (field, named) = match p.split_once(": ") {
                Some((field, what)) => (field, format!("{}: {what}", human(root.get_ref(), field))),
                None => (p.as_str(), human(root.get_ref(), &p)),
            };
            match offset(root.get_ref(), field) {
                Some(at) => format!("line {}: {named}", position(text, at).0),
                None => named,
            }
        })
        .collect()
}

/// `mailbox[1].folder[0].path` → `mailbox b@x.com, folder "Inbox/X", path`; other fields as
/// they are. A mailbox or folder without a usable name keeps its 1-based position.
fn human(root: &DeTable<'_>, field: &str) -> String {
    let Some((index, rest)) = indexed(field, "mailbox") else {
        return field.to_owned();
    };
    let mailbox = array_item(root, "mailbox", index);
    let mut named = match mailbox.and_then(|m| string(m, "address")) {
        Some(address) => format!("mailbox {address}"),
        None => format!("mailbox #{}", index + 1),
    };
    let mut rest = rest;
    if let Some((index, after)) = rest.and_then(|r| indexed(r, "folder")) {
        let folder = mailbox.and_then(|m| array_item(m, "folder", index));
        match folder.and_then(|f| string(f, "path").or_else(|| string(f, "id"))) {
            Some(name) => named.push_str(&format!(", folder {name:?}")),
            None => named.push_str(&format!(", folder #{}", index + 1)),
        }
        rest = after;
    }
    match rest {
        Some(rest) => format!("{named}, {rest}"),
        None => named,
    }
}

/// `name[i]` or `name[i].rest` → `(i, rest)`.
fn indexed<'f>(field: &'f str, name: &str) -> Option<(usize, Option<&'f str>)> {
    let after = field.strip_prefix(name)?.strip_prefix('[')?;
    let (index, rest) = after.split_once(']')?;
    Some((index.parse().ok()?, rest.strip_prefix('.')))
}

fn array_item<'a, 't>(table: &'a DeTable<'t>, name: &str, index: usize) -> Option<&'a DeTable<'t>> {
    match table.get(name)?.get_ref() {
        DeValue::Array(items) => match items.get(index)?.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn string<'a>(table: &'a DeTable<'_>, key: &str) -> Option<&'a str> {
    match table.get(key)?.get_ref() {
        DeValue::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// The byte offset of the deepest part of `field` present in the file.
fn offset(root: &DeTable<'_>, field: &str) -> Option<usize> {
    let mut table = root;
    let mut found = None;
    for part in field.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((key, value)) = table.get_key_value(name) else {
            break;
        };
        found = Some(key.span().start);
        let value = match (value.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => {
                let item = items.get(i)?;
                found = Some(item.span().start);
                item.get_ref()
            }
            (v, _) => v,
        };
        match value {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    found
}

/// 1-based line and column of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The name of the `[section]` (or `[[section]]`) header on the line at `offset`, if any.
pub fn section_at(text: &str, offset: usize) -> Option<&str> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let name = line.strip_prefix('[')?.trim_start_matches('[');
    Some(name.split(']').next()?.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[exchange]\nurl = \"x\"\n\n[cadence]\nbusy_secs = 5\n\n[[mailbox]]\naddress = \"a@x.com\"\n[[mailbox]]\naddress = \"b@x.com\"\n[[mailbox.folder]]\npath = \"Inbox/X\"\n";

    #[test]
    fn problems_name_the_line_of_their_value_or_section() {
        let got = locate(
            TEXT,
            vec![
                "cadence.busy_secs: too big".into(),
                "cadence: out of order".into(),
                "cadence.jitter: not in the file".into(),
                "mailbox[1].folder[0].path: bad".into(),
                "mailbox[1].address: twice".into(),
                "health: absent section".into(),
            ],
        );
        assert_eq!(
            got,
            [
                "line 5: cadence.busy_secs: too big",
                "line 4: cadence: out of order",
                "line 4: cadence.jitter: not in the file",
                "line 12: mailbox b@x.com, folder \"Inbox/X\", path: bad",
                "line 10: mailbox b@x.com, address: twice",
                "health: absent section",
            ]
        );
    }

    #[test]
    fn a_header_names_its_section() {
        let at = TEXT.find("[[mailbox.folder]]").unwrap();
        assert_eq!(section_at(TEXT, at), Some("mailbox.folder"));
        assert_eq!(section_at(TEXT, 0), Some("exchange"));
        assert_eq!(section_at(TEXT, TEXT.find("url").unwrap()), None);
    }
}
