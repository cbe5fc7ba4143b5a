//! A parsed TOML file that remembers where every key and value came from.
//!
//! Files are parsed once into plain `toml` values (what the rest of nightjar
//! works with) plus a [`SpanIndex`] from key paths (`task[2].retries`) to
//! positions. Deserialization errors carry a key path (serde_path_to_error),
//! which the index turns back into `file:line:column`.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

use super::diagnostic::{Diagnostic, unknown_name_hint};
use super::source::{Origin, SourceFile};

/// Key path -> (span of the key, span of the value).
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    spans: HashMap<String, (Range<usize>, Range<usize>)>,
}

/// A TOML document with its source and span index.
#[derive(Debug, Clone)]
pub struct Doc {
    pub source: SourceFile,
    pub table: Table,
    spans: SpanIndex,
    /// Lines holding a TOML syntax error.
    syntax_lines: Vec<usize>,
}

impl Doc {
    /// Parses a file, recovering from syntax errors so that all of them are
    /// reported at once.
    pub fn parse(source: SourceFile) -> (Doc, Vec<Diagnostic>) {
        let text = source.text.clone();
        let (root, errors) = DeTable::parse_recoverable(&text);
        let mut diags = Vec::new();
        let mut syntax_lines = Vec::new();
        for e in errors {
            let origin = e.span().map(|s| source.origin(&s)).unwrap_or_else(|| source.start());
            syntax_lines.push(origin.line);
            diags.push(
                Diagnostic::error(origin, format!("invalid TOML: {}", e.message().trim()))
                    .with_hint("see https://toml.io for the syntax"),
            );
        }
        let mut spans = SpanIndex::default();
        index_table(root.get_ref(), "", &mut spans);
        let span = root.span();
        let root = Spanned::new(span, DeValue::Table(root.into_inner()));
        let table = match value_from_de(root) {
            Ok(Value::Table(t)) => t,
            _ => Table::new(),
        };
        (
            Doc {
                source,
                table,
                spans,
                syntax_lines,
            },
            diags,
        )
    }

    /// Drops the problems found on a line with a TOML syntax error, except
    /// the first `keep` (the syntax errors themselves): what the parser
    /// recovered there is a guess (`schedule = ` reads as an empty string),
    /// so "bad cron expression ``" next to "invalid TOML" is only noise.
    pub fn drop_cascading(&self, diags: &mut Vec<Diagnostic>, keep: usize) {
        let mut i = 0;
        diags.retain(|d| {
            i += 1;
            i <= keep || *d.origin.file != *self.source.path || !self.syntax_lines.contains(&d.origin.line)
        });
    }

    /// Where the key at `path` sits (falls back to the nearest parent).
    pub fn key_origin(&self, path: &str) -> Origin {
        self.lookup(path, |(k, _)| k.clone())
    }

    /// Where the value at `path` sits (falls back to the nearest parent).
    pub fn value_origin(&self, path: &str) -> Origin {
        self.lookup(path, |(_, v)| v.clone())
    }

    fn lookup(&self, path: &str, pick: impl Fn(&(Range<usize>, Range<usize>)) -> Range<usize>) -> Origin {
        let mut p = path;
        loop {
            if let Some(s) = self.spans.spans.get(p) {
                return self.source.origin(&pick(s));
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.source.start(),
            }
        }
    }

    /// Reports every key of `table` (found at `path`) that is not in
    /// `allowed`, each with a did-you-mean hint.
    pub fn check_keys(&self, path: &str, table: &Table, allowed: &[&str], diags: &mut Vec<Diagnostic>) {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                let full = join(path, key);
                diags.push(
                    Diagnostic::error(self.key_origin(&full), format!("unknown key `{full}`"))
                        .with_hint(unknown_name_hint(key, allowed)),
                );
            }
        }
    }

    /// Deserializes `value` (found at `path`) into `T`; a failure points at
    /// the offending key.
    pub fn deserialize<T: DeserializeOwned>(&self, path: &str, value: Value) -> Result<T, Diagnostic> {
        deserialize_at(value).map_err(|(sub, msg)| self.key_error(path, &sub, &msg))
    }

    /// Like [`Doc::deserialize`], but reports every bad value, not just the
    /// first: serde stops at the first error, so each failing key is reported,
    /// dropped, and the rest deserialized again (a bad `retry_delay` must not
    /// hide a bad `schedule`). `None` when `T` cannot be built even so (a
    /// required key is missing or wrong).
    pub fn deserialize_all<T: DeserializeOwned>(
        &self,
        path: &str,
        mut value: Value,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<T> {
        let mut removed: Vec<String> = Vec::new();
        // Each round removes one key, so this ends; the cap is a safeguard.
        for _ in 0..256 {
            let (sub, msg) = match deserialize_at(value.clone()) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            // "missing field `x`" after `x` was dropped for a bad value: that
            // value was already reported.
            let dropped_required = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
                .is_some_and(|f| removed.contains(&join_path(&sub, f)));
            if dropped_required {
                return None;
            }
            diags.push(self.key_error(path, &sub, &msg));
            match remove_at(&mut value, &sub) {
                Some(key) => removed.push(key),
                None => return None,
            }
        }
        None
    }

    fn key_error(&self, path: &str, sub: &str, msg: &str) -> Diagnostic {
        let full = join_path(path, sub);
        let at = if full.is_empty() {
            String::new()
        } else {
            format!("`{full}`: ")
        };
        let mut d = Diagnostic::error(self.value_origin(&full), format!("{at}{msg}"));
        if let Some(h) = hint_for_serde_message(msg) {
            d = d.with_hint(h);
        }
        d
    }
}

/// Removes the key at `path` (as serde_path_to_error writes it: `a.b[2].c`)
/// from `value`. A path ending in an array index removes the whole array
/// instead, so that the indices (and positions) of other items stay right.
/// Returns the path of the key removed.
fn remove_at(value: &mut Value, path: &str) -> Option<String> {
    let mut segs: Vec<&str> = path.split(['.', '[']).filter(|s| !s.is_empty()).collect();
    while segs.last()?.ends_with(']') {
        segs.pop();
    }
    let (last, parents) = segs.split_last()?;
    let mut cur = value;
    for seg in parents {
        cur = match seg.strip_suffix(']') {
            Some(i) => cur.as_array_mut()?.get_mut(i.parse::<usize>().ok()?)?,
            None => cur.as_table_mut()?.get_mut(*seg)?,
        };
    }
    cur.as_table_mut()?.remove(*last)?;
    // Rebuild the path up to the removed key, in the same notation.
    let mut out = String::new();
    for seg in &segs {
        if seg.ends_with(']') {
            out.push('[');
        } else if !out.is_empty() {
            out.push('.');
        }
        out.push_str(seg);
    }
    Some(out)
}

/// A failure at a key inside a config: (key path, message).
pub type KeyError = (String, String);

/// Deserializes a plain value, returning the failing key path and message.
pub fn deserialize_at<T: DeserializeOwned>(value: Value) -> Result<T, KeyError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().message().trim().to_string())
    })
}

/// serde says "unknown field `x`, expected one of `a`, `b`": turn the list
/// into a did-you-mean. "missing field `x`" gets "add `x = ...`".
pub fn hint_for_serde_message(msg: &str) -> Option<String> {
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next()?;
        return Some(format!("add `{field} = ...`"));
    }
    let rest = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    if expected.is_empty() {
        return None;
    }
    Some(unknown_name_hint(word, &expected))
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn join_path(path: &str, sub: &str) -> String {
    match (path.is_empty(), sub.is_empty()) {
        (true, _) => sub.to_string(),
        (_, true) => path.to_string(),
        _ if sub.starts_with('[') => format!("{path}{sub}"),
        _ => format!("{path}.{sub}"),
    }
}

fn index_table(t: &DeTable<'_>, path: &str, out: &mut SpanIndex) {
    for (k, v) in t.iter() {
        let p = join(path, k.get_ref());
        out.spans.insert(p.clone(), (k.span(), v.span()));
        index_value(v.get_ref(), &p, out);
    }
}

fn index_value(v: &DeValue<'_>, path: &str, out: &mut SpanIndex) {
    match v {
        DeValue::Table(t) => index_table(t, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.spans.insert(p.clone(), (item.span(), item.span()));
                index_value(item.get_ref(), &p, out);
            }
        }
        _ => {}
    }
}

/// Converts the spanned parse tree into a plain `toml::Value`.
fn value_from_de(v: Spanned<DeValue<'_>>) -> Result<Value, toml::de::Error> {
    use serde::Deserialize;
    Value::deserialize(toml::de::ValueDeserializer::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> (Doc, Vec<Diagnostic>) {
        Doc::parse(SourceFile::new("t.toml", text))
    }

    #[test]
    fn positions_of_nested_keys() {
        let (d, errs) = doc("name = 'x'\n\n[[task]]\nid = 'a'\n\n[[task]]\nid = 'b'\nretries = 3\n");
        assert!(errs.is_empty());
        assert_eq!(d.key_origin("task[1].retries").line, 8);
        assert_eq!(d.value_origin("task[1].retries").col, 11);
        // Unknown paths fall back to the parent.
        assert_eq!(d.key_origin("task[1].nope").line, 6);
    }

    #[test]
    fn all_syntax_errors_are_reported() {
        let (_, errs) = doc("a = \nb = 'x'\nc = [1,\n");
        assert!(!errs.is_empty());
        assert!(errs.iter().all(|e| e.origin.line >= 1));
    }

    #[test]
    fn type_errors_point_at_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            retries: u32,
        }
        let (d, _) = doc("\n\nretries = 'two'\n");
        let err = d.deserialize::<T>("", Value::Table(d.table.clone())).unwrap_err();
        assert_eq!(err.origin.line, 3, "{err}");
        assert!(err.message.contains("retries"), "{err}");
    }
}
