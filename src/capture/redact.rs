//! Interim secret redaction (replaced by the full pattern set).
use std::borrow::Cow;
use std::sync::LazyLock;
static RE: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"sk-ant-[A-Za-z0-9_-]{20,}").expect("regex"));
pub fn redact(text: &str) -> Cow<'_, str> { RE.replace_all(text, "[REDACTED:anthropic_api_key]") }
pub fn contains_secret(text: &str) -> bool { RE.is_match(text) }
