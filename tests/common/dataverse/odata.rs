//! The OData side of the fake: query options read the way the service reads them
//! (`+` is a space, `%XX` a byte, `''` a quote inside a literal), `$filter` conditions of the
//! form `a eq 'x' and b eq 0`, and error answers in Dataverse's body shape
//! (`{"error":{"code":…,"message":…}}`).
//! <https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors>

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// An answer: status, extra headers, JSON body (or none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap();
        let mut response = match &self.body {
            Some(body) => (
                status,
                [("content-type", "application/json; odata.metadata=minimal")],
                body.to_string(),
            )
                .into_response(),
            None => status.into_response(),
        };
        for (k, v) in self.headers {
            response.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(&v).unwrap(),
            );
        }
        response
    }
}

/// A Dataverse error answer.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    Answer::json(
        status,
        json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// 400 for a structural property a type does not declare.
pub fn undeclared(entity: &str, property: &str) -> Answer {
    error(
        400,
        "0x0",
        format!(
            "An error occurred while validating input parameters: Microsoft.Crm.CrmException: Invalid property '{property}' was found in entity 'Microsoft.Dynamics.CRM.{entity}'. ---> Microsoft.OData.ODataException: Does not support untyped value in non-open type."
        ),
    )
}

/// 400 for a navigation property a type does not declare (`x@odata.bind`).
pub fn undeclared_nav(set: &str, nav: &str) -> Answer {
    error(
        400,
        "0x80048d19",
        format!(
            "Error identified in Payload provided by the user for Entity :'{set}'  ---->  InnerException : Microsoft.OData.ODataException: An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
        ),
    )
}

/// 400 for an unknown property in `$select` or `$filter`.
pub fn unknown_query_property(entity: &str, property: &str) -> Answer {
    error(
        400,
        "0x0",
        format!(
            "Could not find a property named '{property}' on type 'Microsoft.Dynamics.CRM.{entity}'."
        ),
    )
}

/// 404 for an unknown URL segment.
pub fn no_segment(segment: &str) -> Answer {
    error(
        404,
        "0x8006088a",
        format!("Resource not found for the segment '{segment}'."),
    )
}

/// 404 for a row that does not exist.
pub fn no_row(entity: &str, id: &str) -> Answer {
    error(
        404,
        "0x80040217",
        format!("{entity} With Id = {id} Does Not Exist"),
    )
}

/// Percent-decodes a query component the way ASP.NET does: `+` is a space.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 3 <= bytes.len())
            .then(|| u8::from_str_radix(&s[i + 1..i + 3], 16).ok())
            .flatten();
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query options of a URL, decoded.
#[derive(Debug, Default)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
    pub top: Option<usize>,
    /// Parameter aliases (`@tid=…`) and anything else.
    pub other: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Self {
        let mut q = Query::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k), decode(v));
            match k.as_str() {
                "$select" => q.select = Some(v.split(',').map(|s| s.trim().to_owned()).collect()),
                "$filter" => q.filter = Some(v),
                "$top" => q.top = v.parse().ok(),
                _ => q.other.push((k, v)),
            }
        }
        q
    }

    pub fn alias(&self, name: &str) -> Option<&str> {
        self.other
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `$select`ed and `$filter`ed properties that `known` does not declare.
    pub fn unknown_property(&self, known: &[&str]) -> Result<Option<String>, String> {
        let mut names: Vec<String> = self.select.clone().unwrap_or_default();
        if let Some(f) = &self.filter {
            names.extend(parse_filter(f)?.into_iter().map(|c| c.field));
        }
        Ok(names.into_iter().find(|n| !known.contains(&n.as_str())))
    }
}

/// One `field eq literal` condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: String,
    pub value: Value,
}

/// Reads `a eq 'x' and b eq true and c eq 3`.
pub fn parse_filter(filter: &str) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    let mut rest = filter.trim();
    loop {
        let (field, after) = rest
            .split_once(' ')
            .ok_or_else(|| format!("Syntax error at position {} in '{filter}'.", filter.len()))?;
        let after = after
            .trim_start()
            .strip_prefix("eq ")
            .ok_or_else(|| format!("Syntax error: this fake reads only 'eq' in '{filter}'."))?
            .trim_start();
        let (value, tail) = literal(after, filter)?;
        out.push(Condition {
            field: field.to_owned(),
            value,
        });
        let tail = tail.trim_start();
        if tail.is_empty() {
            return Ok(out);
        }
        rest = tail
            .strip_prefix("and ")
            .ok_or_else(|| format!("Syntax error at '{tail}' in '{filter}'."))?
            .trim_start();
    }
}

fn literal<'a>(s: &'a str, filter: &str) -> Result<(Value, &'a str), String> {
    if let Some(body) = s.strip_prefix('\'') {
        let mut text = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                text.push(c);
                continue;
            }
            if chars.peek().map(|(_, c)| *c) == Some('\'') {
                chars.next();
                text.push('\'');
                continue;
            }
            return Ok((Value::String(text), &body[i + 1..]));
        }
        return Err(format!(
            "There is an unterminated literal at position {} in '{filter}'.",
            filter.len()
        ));
    }
    let end = s.find(' ').unwrap_or(s.len());
    let (word, tail) = s.split_at(end);
    let value = match word {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        w => match w.parse::<i64>() {
            Ok(n) => Value::from(n),
            // A bare GUID literal.
            Err(_) if w.len() == 36 && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => {
                Value::String(w.to_owned())
            }
            Err(_) => return Err(format!("Syntax error at '{w}' in '{filter}'.")),
        },
    };
    Ok((value, tail))
}

/// Whether a row satisfies every condition. String comparisons ignore case, as the service's do.
pub fn matches(row: &Map<String, Value>, conditions: &[Condition]) -> bool {
    conditions.iter().all(|c| {
        let have = row.get(&c.field).unwrap_or(&Value::Null);
        match (have, &c.value) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    })
}

/// The row with only the `$select`ed columns (and an etag), as a query answers it.
pub fn project(row: &Map<String, Value>, select: &Option<Vec<String>>) -> Value {
    let mut out = Map::new();
    out.insert("@odata.etag".into(), json!("W/\"1001\""));
    match select {
        Some(cols) => {
            for c in cols {
                out.insert(c.clone(), row.get(c).cloned().unwrap_or(Value::Null));
            }
        }
        None => out.extend(row.clone()),
    }
    Value::Object(out)
}
