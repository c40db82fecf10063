//! The tool contract's mechanics: the JSON Schemas `tools/list` publishes and the argument
//! check that enforces exactly those schemas.
//!
//! Schemas are generated from the argument and result types (schemars, draft 2020-12) and then
//! compacted: subschemas inlined (no `$defs`), no `$schema`, no numeric `format`s, no
//! `default: null`, and an optional field is typed `"string"`, not `["string", "null"]` (a
//! field that may be absent is not also nullable). A result field that is always written but
//! may be null keeps its null type, so `structuredContent` validates against `outputSchema`,
//! written as `anyOf` branches of one `type` each, never a `type` array.
//!
//! Invariant: the arguments a tool accepts are what its published `inputSchema` says, checked
//! here before serde sees them ([`parse`]): an unknown argument, a wrong type, a value outside
//! an `enum`, a `minimum`/`maximum` or a `maxLength` is refused with one sentence naming the
//! argument and what it accepts, which [`Parameters`] hands to the tool so it becomes an
//! `isError` result (not a JSON-RPC error). The tools in `super` are the only callers.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A tool's arguments, or the sentence that says why they were refused. Unlike rmcp's own
/// `Parameters` (whose deserialization failure is a JSON-RPC error), extraction never fails:
/// the tool returns the refusal as an `isError` result.
pub struct Parameters<T>(pub Result<T, String>);

impl<S, P> FromContextPart<ToolCallContext<'_, S>> for Parameters<P>
where
    P: DeserializeOwned + JsonSchema + 'static,
{
    fn from_context_part(cx: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let args = cx.arguments.take().unwrap_or_default();
        Ok(Parameters(parse::<P>(&cx.name, args)))
    }
}

/// The schema of the arguments themselves (rmcp's router asks; `tools/list` publishes
/// [`input`]).
impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

type Cache = Mutex<HashMap<(TypeId, bool), Arc<JsonObject>>>;
static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);

/// The compact input schema of `T` (what it accepts).
pub fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    cached::<T>(false)
}

/// The compact output schema of `T` (what it serializes to).
pub fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    cached::<T>(true)
}

fn cached<T: JsonSchema + 'static>(serialize: bool) -> Arc<JsonObject> {
    let key = (TypeId::of::<T>(), serialize);
    if let Some(s) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return s.clone();
    }
    let s = Arc::new(generate::<T>(serialize));
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, s.clone());
    s
}

fn generate<T: JsonSchema>(serialize: bool) -> JsonObject {
    let mut settings = SchemaSettings::draft2020_12();
    // Inputs are flat and what a model reads: everything inline. Outputs keep a `$defs`
    // entry only for a type used more than once.
    settings.inline_subschemas = !serialize;
    if serialize {
        settings = settings.for_serialize();
    }
    let mut v = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Value::Object(o) = &mut v {
        // The root's title and description are the Rust type's name and doc comment.
        o.remove("title");
        o.remove("description");
        o.remove("$schema");
        inline_single_use(o);
    }
    compact(&mut v);
    if serialize {
        split_type_unions(&mut v);
    }
    match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

const DEFS: &str = "#/$defs/";

/// Replaces each `$ref` to a definition used once by the definition itself, and drops
/// definitions no longer referenced.
fn inline_single_use(root: &mut JsonObject) {
    loop {
        let Some(Value::Object(defs)) = root.get("$defs") else {
            return;
        };
        let mut uses: HashMap<String, usize> = HashMap::new();
        count_refs(&Value::Object(root.clone()), &mut uses);
        let once: HashMap<String, Value> = defs
            .iter()
            .filter(|(k, _)| uses.get(*k).copied().unwrap_or(0) <= 1)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if once.is_empty() {
            return;
        }
        if let Some(Value::Object(defs)) = root.get_mut("$defs") {
            defs.retain(|k, _| !once.contains_key(k));
            if defs.is_empty() {
                root.remove("$defs");
            }
        }
        for v in root.values_mut() {
            replace_refs(v, &once);
        }
    }
}

fn count_refs(v: &Value, uses: &mut HashMap<String, usize>) {
    match v {
        Value::Object(o) => {
            if let Some(name) = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(DEFS))
            {
                *uses.entry(name.to_string()).or_default() += 1;
            }
            o.values().for_each(|v| count_refs(v, uses));
        }
        Value::Array(a) => a.iter().for_each(|v| count_refs(v, uses)),
        _ => {}
    }
}

fn replace_refs(v: &mut Value, inline: &HashMap<String, Value>) {
    match v {
        Value::Object(o) => {
            let target = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(DEFS))
                .and_then(|name| inline.get(name));
            if let Some(Value::Object(def)) = target {
                // The referring node's own keywords (a field's description) win.
                let mut merged = def.clone();
                o.remove("$ref");
                for (k, x) in std::mem::take(o) {
                    merged.insert(k, x);
                }
                *o = merged;
            }
            o.values_mut().for_each(|v| replace_refs(v, inline));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| replace_refs(v, inline)),
        _ => {}
    }
}

/// Formats schemars writes for Rust integer and float types; no validator checks them.
const NUMERIC_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float",
    "double",
];

fn compact(node: &mut Value) {
    let Value::Object(o) = node else { return };
    o.remove("title");
    if o.get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        o.remove("format");
    }
    if o.get("default") == Some(&Value::Null) {
        o.remove("default");
    }
    let required: Vec<String> = o
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        for (k, p) in props.iter_mut() {
            compact(p);
            if !required.contains(k) {
                drop_null(p);
            }
        }
    }
    if let Some(Value::Object(defs)) = o.get_mut("$defs") {
        defs.values_mut().for_each(compact);
    }
    if let Some(Value::String(d)) = o.get_mut("description") {
        // Doc comments are wrapped at 100 columns; a description is one paragraph.
        *d = d.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub @ Value::Object(_)) = o.get_mut(key) {
            compact(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = o.get_mut(key) {
            subs.iter_mut().for_each(compact);
        }
    }
}

/// Keywords whose values are data, not schemas.
const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples", "required"];

/// Every `"type": [A, B]` (a result field that is always written but may be null) as
/// `"anyOf": [{"type": A}, {"type": B}]`: the same values, in the single-`type` spelling that
/// clients mapping schemas onto a dialect without type arrays can read (MCP Inspector
/// `--strict` warns `type-union` otherwise). The other keywords stay beside the `anyOf`: each
/// applies to one type only, so the schema accepts exactly what it did.
fn split_type_unions(node: &mut Value) {
    match node {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if !DATA_KEYWORDS.contains(&k.as_str()) {
                    split_type_unions(v);
                }
            }
            if o.contains_key("anyOf") {
                return;
            }
            if let Some(Value::Array(types)) = o.get("type")
                && types.len() > 1
            {
                let branches = types
                    .iter()
                    .map(|t| serde_json::json!({ "type": t }))
                    .collect();
                o.remove("type");
                o.insert("anyOf".into(), Value::Array(branches));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(split_type_unions),
        _ => {}
    }
}

/// An optional field's schema without its null alternative.
fn drop_null(p: &mut Value) {
    let Value::Object(o) = p else { return };
    if let Some(Value::Array(types)) = o.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types.remove(0);
            o.insert("type".into(), t);
        }
    }
    if let Some(Value::Array(values)) = o.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    let any_of = o.get("anyOf").and_then(Value::as_array).cloned();
    if let Some(subs) = any_of {
        let rest: Vec<Value> = subs
            .into_iter()
            .filter(|s| s.get("type") != Some(&Value::from("null")))
            .collect();
        if let [Value::Object(only)] = rest.as_slice() {
            o.remove("anyOf");
            for (k, v) in only {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        } else {
            o.insert("anyOf".into(), Value::Array(rest));
        }
    }
}

/// Checks `args` against `T`'s input schema, then deserializes them.
///
/// # Errors
/// One sentence naming the tool, the argument and what it accepts.
pub fn parse<T: DeserializeOwned + JsonSchema + 'static>(
    tool: &str,
    mut args: JsonObject,
) -> Result<T, String> {
    let schema = input::<T>();
    check(tool, &mut args, &schema)?;
    serde_json::from_value(Value::Object(args))
        .map_err(|e| format!("invalid arguments for {tool}: {e}; see its inputSchema"))
}

/// The argument check (see the module doc). Null, and `""` for an optional enum, count as
/// absent and are removed.
fn check(tool: &str, args: &mut JsonObject, schema: &JsonObject) -> Result<(), String> {
    let empty = JsonObject::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    let unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| !props.contains_key(*k))
        .collect();
    if !unknown.is_empty() {
        let what = if unknown.len() == 1 {
            format!("unknown argument '{}'", unknown[0])
        } else {
            format!("unknown arguments '{}'", unknown.join("', '"))
        };
        return Err(if names.is_empty() {
            format!("{what}: {tool} takes no arguments")
        } else {
            format!(
                "{what} for {tool}: it takes {} (see its inputSchema)",
                names.join(", ")
            )
        });
    }
    for r in &required {
        if args.get(*r).is_none_or(Value::is_null) {
            let hint = props
                .get(*r)
                .and_then(|p| p.get("description"))
                .and_then(Value::as_str)
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(format!("missing argument '{r}' for {tool}{hint}"));
        }
    }
    let mut absent: Vec<String> = Vec::new();
    for (name, value) in args.iter() {
        let Some(p) = props.get(name) else { continue };
        let optional = !required.contains(&name.as_str());
        if optional && (value.is_null() || (value == "" && p.get("enum").is_some())) {
            absent.push(name.clone());
            continue;
        }
        check_value(name, value, p)?;
    }
    for a in absent {
        args.remove(&a);
    }
    Ok(())
}

fn check_value(name: &str, v: &Value, p: &Value) -> Result<(), String> {
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(v, t)) {
        return Err(format!(
            "argument '{name}' must be {}, not {}",
            types
                .iter()
                .map(|t| article(t))
                .collect::<Vec<_>>()
                .join(" or "),
            describe(v)
        ));
    }
    if let Some(Value::Array(allowed)) = p.get("enum")
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        return Err(format!(
            "argument '{name}' is {}: use one of {}",
            describe(v),
            list.join(", ")
        ));
    }
    if let Some(n) = as_integer(v) {
        let lo = p.get("minimum").and_then(Value::as_i64);
        let hi = p.get("maximum").and_then(Value::as_i64);
        if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
            let range = match (lo, hi) {
                (Some(lo), Some(hi)) => format!("use {lo} to {hi}"),
                (Some(lo), None) => format!("use at least {lo}"),
                (None, Some(hi)) => format!("use at most {hi}"),
                (None, None) => String::new(),
            };
            return Err(format!("argument '{name}' is {n}, out of range: {range}"));
        }
    }
    if let (Value::String(s), Some(max)) = (v, p.get("maxLength").and_then(Value::as_u64)) {
        let n = s.chars().count() as u64;
        if n > max {
            return Err(format!(
                "argument '{name}' has {n} characters, more than the {max} allowed: shorten it"
            ));
        }
    }
    Ok(())
}

/// Whether `v` is of JSON Schema type `t`; an integer may also be written as a numeric string
/// (some clients send every argument as a string).
fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => as_integer(v).is_some(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// An integer argument's value: a JSON integer, a float with no fraction (`5.0`), or a
/// numeric string.
pub fn as_integer(v: &Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < EXACT)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" => "a whole number".into(),
        "object" => "an object".into(),
        "array" => "an array".into(),
        "null" => "null".into(),
        t => format!("a {t}"),
    }
}

/// A value as a message shows it: its kind and, shortened, itself.
fn describe(v: &Value) -> String {
    let shown = match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    };
    match v {
        Value::String(_) => format!("the string {shown}"),
        Value::Number(_) => format!("the number {shown}"),
        Value::Bool(_) => format!("the boolean {shown}"),
        Value::Null => "null".into(),
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// A word.
        word: String,
        /// How many.
        #[schemars(range(min = 1, max = 5))]
        n: Option<i64>,
        /// Which.
        kind: Option<Kind>,
        /// Short text.
        #[schemars(length(max = 3))]
        short: Option<String>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct NoArgs {}

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Red,
        DarkBlue,
    }

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => JsonObject::new(),
        }
    }

    fn refusal(v: Value) -> String {
        parse::<Args>("t", obj(v)).unwrap_err()
    }

    #[test]
    fn compact_schema_has_plain_optional_types_and_inlined_enums() {
        let s = Value::Object(input::<Args>().as_ref().clone());
        assert_eq!(
            s,
            serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["word"],
                "properties": {
                    "word": {"type": "string", "description": "A word."},
                    "n": {"type": "integer", "minimum": 1, "maximum": 5, "description": "How many."},
                    "kind": {"type": "string", "enum": ["red", "dark_blue"], "description": "Which."},
                    "short": {"type": "string", "maxLength": 3, "description": "Short text."},
                }
            })
        );
    }

    #[derive(serde::Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Out {
        /// Always written, maybe null.
        at: Option<String>,
        n: Option<u32>,
        /// Absent when unknown.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        list: Vec<Option<i64>>,
    }

    #[test]
    fn output_schemas_have_no_type_arrays() {
        let s = Value::Object(output::<Out>().as_ref().clone());
        assert_eq!(
            s,
            serde_json::json!({
                "type": "object",
                "required": ["at", "n", "list"],
                "properties": {
                    "at": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Always written, maybe null."},
                    "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "minimum": 0},
                    "note": {"type": "string", "description": "Absent when unknown."},
                    "list": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
                }
            })
        );
        assert!(!s.to_string().contains("\"type\":["), "{s}");
    }

    #[test]
    fn refusals_name_the_argument_and_what_it_accepts() {
        let m = refusal(serde_json::json!({"word": "a", "session_id": "x"}));
        assert_eq!(
            m,
            "unknown argument 'session_id' for t: it takes kind, n, short, word (see its inputSchema)"
        );
        let m = parse::<NoArgs>("u", obj(serde_json::json!({"x": 1}))).unwrap_err();
        assert_eq!(m, "unknown argument 'x': u takes no arguments");
        let m = refusal(serde_json::json!({}));
        assert!(
            m.contains("missing argument 'word'") && m.contains("A word."),
            "{m}"
        );
        let m = refusal(serde_json::json!({"word": 5}));
        assert_eq!(m, "argument 'word' must be a string, not the number 5");
        let m = refusal(serde_json::json!({"word": "a", "n": 9}));
        assert_eq!(m, "argument 'n' is 9, out of range: use 1 to 5");
        let m = refusal(serde_json::json!({"word": "a", "n": 2.5}));
        assert!(m.contains("must be a whole number"), "{m}");
        assert_eq!(as_integer(&serde_json::json!(5.0)), Some(5));
        assert_eq!(as_integer(&serde_json::json!(" 7 ")), Some(7));
        let m = refusal(serde_json::json!({"word": "a", "n": "ten"}));
        assert!(m.contains("must be a whole number"), "{m}");
        let m = refusal(serde_json::json!({"word": "a", "kind": "green"}));
        assert_eq!(
            m,
            "argument 'kind' is the string 'green': use one of red, dark_blue"
        );
        let m = refusal(serde_json::json!({"word": "a", "short": "abcd"}));
        assert!(
            m.contains("'short' has 4 characters, more than the 3 allowed"),
            "{m}"
        );
    }

    #[test]
    fn null_and_empty_enums_are_absent() {
        let a: Args = parse(
            "t",
            obj(serde_json::json!({"word": "a", "n": null, "kind": ""})),
        )
        .unwrap();
        assert!(a.n.is_none() && a.kind.is_none());
        let a: Args = parse(
            "t",
            obj(serde_json::json!({"word": "a", "kind": "dark_blue"})),
        )
        .unwrap();
        assert!(matches!(a.kind, Some(Kind::DarkBlue)));
    }
}
