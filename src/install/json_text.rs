//! Editing JSON config files as text, so that everything an edit does not touch keeps its
//! bytes: key order, indentation, spacing, number spelling, escapes.
//!
//! [`parse`] reads a document into a tree of byte spans ([`Node`]); the edit functions
//! ([`insert_member`], [`append_item`], [`replace_value`], [`remove_member`],
//! [`remove_item`]) each splice one piece of text into or out of the document and return the
//! new text. Callers re-parse after every edit (config files are small), so spans are never
//! stale. New values are pretty-printed with the indentation the container already uses
//! (or its line's indentation plus the file's indent unit), the way Claude Code's
//! `JSON.stringify(v, null, 2)` lays them out.
//!
//! Invariant: removing what an insertion added gives back the bytes from before the insertion
//! (an inserted element takes the separator before it, and removal takes that same
//! separator), which is what makes `install --uninstall` restore files exactly. The one
//! exception: the whitespace inside an empty container is not kept (`{ }` comes back `{}`,
//! the way Claude Code writes it).

use serde::Serialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonTextError {
    #[error("not valid JSON: {0}")]
    Invalid(String),
}

/// A value and where it is: `start..end` are the byte offsets of the value's own text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    String(String),
    /// Numbers, `true`, `false`, `null`.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    /// Offset of the key's opening quote.
    pub key_start: usize,
    pub value: Node,
}

impl Node {
    pub fn members(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.members()?
            .iter()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    /// Index of member `key` of an object.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.members()?.iter().position(|m| m.key == key)
    }

    /// Follows a path of object keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    fn is_container(&self) -> bool {
        matches!(self.kind, Kind::Object(_) | Kind::Array(_))
    }

    /// The spans of the container's children: (start of the element's text, end).
    fn child_spans(&self) -> Vec<(usize, usize)> {
        match &self.kind {
            Kind::Object(m) => m.iter().map(|m| (m.key_start, m.value.end)).collect(),
            Kind::Array(a) => a.iter().map(|n| (n.start, n.end)).collect(),
            _ => Vec::new(),
        }
    }
}

/// Parses a complete JSON document (one value, surrounded by whitespace only).
///
/// # Errors
/// [`JsonTextError::Invalid`] with the line and column of the first problem.
pub fn parse(text: &str) -> Result<Node, JsonTextError> {
    // serde_json is the judge of validity (and gives good messages); the span parser below
    // then only has to find where things are.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(JsonTextError::Invalid(e.to_string()));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(v)
}

/// Nesting deeper than this is refused rather than risk the stack.
const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> JsonTextError {
        JsonTextError::Invalid(format!("{what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), JsonTextError> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", char::from(b))))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, JsonTextError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let start = self.i;
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        let key = self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        let value = self.value(depth + 1)?;
                        members.push(Member {
                            key,
                            key_start,
                            value,
                        });
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}'")),
                        }
                    }
                }
                Ok(Node {
                    start,
                    end: self.i,
                    kind: Kind::Object(members),
                })
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                Ok(Node {
                    start,
                    end: self.i,
                    kind: Kind::Array(items),
                })
            }
            Some(b'"') => {
                let s = self.string()?;
                Ok(Node {
                    start,
                    end: self.i,
                    kind: Kind::String(s),
                })
            }
            Some(_) => {
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
                Ok(Node {
                    start,
                    end: self.i,
                    kind: Kind::Other,
                })
            }
            None => Err(self.err("unexpected end")),
        }
    }

    /// A string token, decoded (serde_json does the unescaping).
    fn string(&mut self) -> Result<String, JsonTextError> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => self.i += 2,
                Some(_) => self.i += 1,
                None => return Err(self.err("unterminated string")),
            }
        }
        let raw = self
            .text
            .get(start..self.i)
            .ok_or_else(|| self.err("bad string"))?;
        serde_json::from_str(raw).map_err(|e| JsonTextError::Invalid(e.to_string()))
    }
}

/// The indentation of the line `pos` is on (its leading spaces and tabs).
fn line_indent(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let rest = &text[line_start..];
    let n = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    &rest[..n]
}

/// The file's indent unit: the indentation of the first indented line, else two spaces.
pub fn indent_unit(text: &str) -> String {
    for line in text.lines().skip(1) {
        let n = line.len() - line.trim_start_matches([' ', '\t']).len();
        if n > 0 && n < line.len() {
            return line[..n].to_string();
        }
    }
    "  ".to_string()
}

/// How children of a container are laid out: each on its own line with `indent`, or inline.
enum Layout {
    Lines { indent: String },
    Inline,
}

fn layout_of(text: &str, container: &Node, unit: &str) -> Layout {
    match container.child_spans().first() {
        Some(&(first, _)) => {
            let between = &text[container.start + 1..first];
            match between.rfind('\n') {
                Some(i) => Layout::Lines {
                    indent: between[i + 1..].to_string(),
                },
                None => Layout::Inline,
            }
        }
        None => Layout::Lines {
            indent: format!("{}{unit}", line_indent(text, container.start)),
        },
    }
}

/// `v` as JSON text laid out for `layout` (pretty with the file's unit, continuation lines
/// indented to the element's indentation; compact when inline).
fn render<T: Serialize + ?Sized>(v: &T, layout: &Layout, unit: &str) -> String {
    match layout {
        Layout::Inline => serde_json::to_string(v).unwrap_or_else(|_| "null".into()),
        Layout::Lines { indent } => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            if v.serialize(&mut ser).is_err() {
                return "null".into();
            }
            String::from_utf8_lossy(&buf).replace('\n', &format!("\n{indent}"))
        }
    }
}

fn splice(text: &str, from: usize, to: usize, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..from]);
    out.push_str(with);
    out.push_str(&text[to..]);
    out
}

/// Adds an element (`body` already laid out) at the end of `container`.
fn append_element(text: &str, container: &Node, layout: &Layout, body: &str) -> String {
    let spans = container.child_spans();
    match (spans.last(), layout) {
        (Some(&(_, end)), Layout::Lines { indent }) => {
            splice(text, end, end, &format!(",\n{indent}{body}"))
        }
        (Some(&(_, end)), Layout::Inline) => splice(text, end, end, &format!(", {body}")),
        (None, Layout::Lines { indent }) => {
            let closing = line_indent(text, container.start);
            splice(
                text,
                container.start + 1,
                container.end - 1,
                &format!("\n{indent}{body}\n{closing}"),
            )
        }
        (None, Layout::Inline) => splice(text, container.start + 1, container.end - 1, body),
    }
}

/// Adds member `key: value` at the end of object `obj`.
pub fn insert_member<T: Serialize + ?Sized>(
    text: &str,
    obj: &Node,
    key: &str,
    value: &T,
) -> String {
    let unit = indent_unit(text);
    let layout = layout_of(text, obj, &unit);
    let key_text = serde_json::to_string(key).unwrap_or_else(|_| "\"\"".into());
    let body = format!("{key_text}: {}", render(value, &layout, &unit));
    append_element(text, obj, &layout, &body)
}

/// Adds `value` at the end of array `arr`.
pub fn append_item<T: Serialize + ?Sized>(text: &str, arr: &Node, value: &T) -> String {
    let unit = indent_unit(text);
    let layout = layout_of(text, arr, &unit);
    let body = render(value, &layout, &unit);
    append_element(text, arr, &layout, &body)
}

/// Replaces the text of `node` with `value`, laid out at the indentation of the line it is on.
pub fn replace_value<T: Serialize + ?Sized>(text: &str, node: &Node, value: &T) -> String {
    let unit = indent_unit(text);
    let layout = Layout::Lines {
        indent: line_indent(text, node.start).to_string(),
    };
    splice(text, node.start, node.end, &render(value, &layout, &unit))
}

/// Replaces the text of `node` with `raw` as it is (used to put back a value's exact
/// original text).
pub fn replace_raw(text: &str, node: &Node, raw: &str) -> String {
    splice(text, node.start, node.end, raw)
}

/// Removes element `index` of a container with its separator (the one before it, or for
/// the first element the one after it); the last element leaves `{}` / `[]`.
fn remove_element(text: &str, container: &Node, index: usize) -> String {
    let spans = container.child_spans();
    let Some(&(start, end)) = spans.get(index) else {
        return text.to_string();
    };
    if spans.len() == 1 {
        return splice(text, container.start + 1, container.end - 1, "");
    }
    if index > 0 {
        let prev_end = spans[index - 1].1;
        splice(text, prev_end, end, "")
    } else {
        let next_start = spans[1].0;
        splice(text, start, next_start, "")
    }
}

/// Removes member `index` of object `obj`.
pub fn remove_member(text: &str, obj: &Node, index: usize) -> String {
    debug_assert!(obj.members().is_some());
    remove_element(text, obj, index)
}

/// Removes item `index` of array `arr`.
pub fn remove_item(text: &str, arr: &Node, index: usize) -> String {
    debug_assert!(arr.items().is_some());
    remove_element(text, arr, index)
}

/// Whether `node` is an empty object or array.
pub fn is_empty_container(node: &Node) -> bool {
    node.is_container() && node.child_spans().is_empty()
}

/// The text of `node`.
pub fn raw<'a>(text: &'a str, node: &Node) -> &'a str {
    &text[node.start..node.end]
}

/// The value of `node` as a `serde_json::Value`.
pub fn value(text: &str, node: &Node) -> serde_json::Value {
    serde_json::from_str(raw(text, node)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_and_keys() {
        let t = "{\n  \"a\": [1, {\"b\": \"x\\\"y\"}],\n  \"c\": null\n}";
        let n = parse(t).unwrap();
        assert_eq!(n.start, 0);
        assert_eq!(n.end, t.len());
        assert_eq!(raw(t, n.get("c").unwrap()), "null");
        let b = &n.get("a").unwrap().items().unwrap()[1];
        assert_eq!(b.get("b").unwrap().as_str(), Some("x\"y"));
        assert_eq!(n.index_of("c"), Some(1));
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(parse("{\"a\": 1,}").is_err());
        assert!(parse("{\"a\": 1} x").is_err());
        assert!(parse("").is_err());
        assert!(parse("// c\n{}").is_err());
    }

    #[test]
    fn insert_then_remove_restores_bytes() {
        let cases = [
            "{\n  \"a\": 1\n}",
            "{}",
            "{\n    \"a\": {\"x\": 1},\n    \"b\": []\n}\n",
            "{\"a\":1}",
            "{\n\t\"a\": true\n}",
        ];
        for t in cases {
            let n = parse(t).unwrap();
            let added = insert_member(t, &n, "new", &json!({"k": [1, 2]}));
            let m = parse(&added).unwrap();
            let i = m.index_of("new").unwrap();
            assert_eq!(value(&added, m.get("new").unwrap()), json!({"k": [1, 2]}));
            let back = remove_member(&added, &m, i);
            assert_eq!(back, t, "round trip of {t:?} via {added:?}");
        }
    }

    #[test]
    fn append_to_arrays_matches_stringify_layout() {
        let t = "{\n  \"h\": [\n    {\n      \"x\": 1\n    }\n  ]\n}";
        let n = parse(t).unwrap();
        let out = append_item(t, n.get("h").unwrap(), &json!({"y": 2}));
        assert_eq!(
            out,
            "{\n  \"h\": [\n    {\n      \"x\": 1\n    },\n    {\n      \"y\": 2\n    }\n  ]\n}"
        );
        let e = "{\n  \"h\": []\n}";
        let n = parse(e).unwrap();
        let out = append_item(e, n.get("h").unwrap(), &json!({"y": 2}));
        assert_eq!(out, "{\n  \"h\": [\n    {\n      \"y\": 2\n    }\n  ]\n}");
        let m = parse(&out).unwrap();
        assert_eq!(remove_item(&out, m.get("h").unwrap(), 0), e);
    }

    #[test]
    fn removing_the_first_of_several_takes_the_following_separator() {
        let t = "[\n  1,\n  2,\n  3\n]";
        let n = parse(t).unwrap();
        assert_eq!(remove_item(t, &n, 0), "[\n  2,\n  3\n]");
        assert_eq!(remove_item(t, &n, 1), "[\n  1,\n  3\n]");
        assert_eq!(remove_item(t, &n, 2), "[\n  1,\n  2\n]");
    }

    #[test]
    fn replace_keeps_the_rest() {
        let t = "{\n  \"s\": {\"type\": \"command\"},\n  \"z\": 1\n}";
        let n = parse(t).unwrap();
        let out = replace_value(t, n.get("s").unwrap(), &json!({"a": 1}));
        assert_eq!(out, "{\n  \"s\": {\n    \"a\": 1\n  },\n  \"z\": 1\n}");
        let m = parse(&out).unwrap();
        assert_eq!(
            replace_raw(&out, m.get("s").unwrap(), "{\"type\": \"command\"}"),
            t
        );
    }

    #[test]
    fn indent_unit_is_detected() {
        assert_eq!(indent_unit("{\n    \"a\": 1\n}"), "    ");
        assert_eq!(indent_unit("{\"a\": 1}"), "  ");
        assert_eq!(indent_unit("{\n\t\"a\": 1\n}"), "\t");
    }
}
