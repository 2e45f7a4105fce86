//! Where in the file a problem is: validation speaks of field paths
//! (`mailbox[0].folder[1].path`), people look for lines. The file is parsed once more with
//! spans, and each problem gets the line of its value, or of the nearest section that holds
//! it when the value is not in the file (a default, a missing field).

use toml::de::{DeTable, DeValue};

/// The problems (`field: message`), each prefixed with `line N: ` when the field is found.
pub fn locate(text: &str, problems: Vec<String>) -> Vec<String> {
    let Ok(root) = DeTable::parse(text) else {
        return problems;
    };
    problems
        .into_iter()
        .map(|p| {
            let field = p.split(": ").next().unwrap_or("");
            match offset(root.get_ref(), field) {
                Some(at) => format!("line {}: {p}", position(text, at).0),
                None => p,
            }
        })
        .collect()
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
                "line 12: mailbox[1].folder[0].path: bad",
                "line 10: mailbox[1].address: twice",
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
