//! Prices for Cursor's model names (`claude-4.5-opus-high-thinking`, `gpt-5-codex`,
//! `composer-1`, `default`, ...), which are Cursor's own and not API model ids.
//!
//! Owns the mapping from a Cursor name to a LiteLLM key, and the small embedded table of the
//! non-Anthropic models Cursor offers (`schemas/pricing/cursor_models.json`); Claude models
//! resolve in the main table ([`PriceTable::embedded`]). Invariant: a name is priced only
//! when the mapping is sound — the same model at the same per-token price. Effort and mode
//! suffixes (`-thinking`, `-high`, `-low`, `-medium`, `-xhigh`, `-minimal`, `-max`) do not
//! change the per-token price and are dropped; `-fast` (priority tiers billed at a multiple)
//! is not. `default`, `auto`, `composer-*` (Cursor's own models, no public price) and
//! anything unknown resolve to `None`, which callers flag as unpriced (never $0 silently).
//! Called by the Cursor deriver (`slow_path::derive::cursor`).

use std::sync::OnceLock;

use super::{PriceTable, TokenUsage};

const CURSOR_JSON: &str = include_str!("../../schemas/pricing/cursor_models.json");

/// Suffixes that name an effort level or Cursor's context mode, not another model.
const NEUTRAL_SUFFIXES: &[&str] = &[
    "-thinking",
    "-high",
    "-low",
    "-medium",
    "-xhigh",
    "-minimal",
    "-max",
];

/// The non-Anthropic models Cursor offers.
///
/// # Panics
/// Only if the compiled-in file does not load, which the unit tests rule out.
#[must_use]
pub fn cursor_table() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        PriceTable::from_json(CURSOR_JSON)
            .expect("schemas/pricing/cursor_models.json is compiled in and must load")
    })
}

/// Claude's API name for Cursor's version-first spelling: `claude-4.5-sonnet` ->
/// `claude-sonnet-4-5`, `claude-3.7-sonnet` -> `claude-3-7-sonnet` (Claude 3 names keep the
/// version first). Other names are returned with `.` read as `-`.
fn claude_api_name(name: &str) -> String {
    let rest = &name["claude-".len()..];
    let mut parts = rest.splitn(3, '-');
    let (Some(version), Some(family)) = (parts.next(), parts.next()) else {
        return name.replace('.', "-");
    };
    let tail = parts.next();
    let is_version = version
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !is_version || !matches!(family, "opus" | "sonnet" | "haiku") {
        return name.replace('.', "-");
    }
    let v = version.replace('.', "-");
    let major3 = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m < 4);
    let mut out = if major3 {
        format!("claude-{v}-{family}")
    } else {
        format!("claude-{family}-{v}")
    };
    if let Some(t) = tail {
        out.push('-');
        out.push_str(&t.replace('.', "-"));
    }
    out
}

/// The price-table key a Cursor model name resolves to, or None (unpriced).
#[must_use]
pub fn price_key(model: &str) -> Option<String> {
    let mut name = model.trim().to_ascii_lowercase();
    if name.is_empty() || name == "default" || name == "auto" || name.starts_with("composer") {
        return None;
    }
    loop {
        let before = name.len();
        for s in NEUTRAL_SUFFIXES {
            if let Some(stripped) = name.strip_suffix(s) {
                name = stripped.to_string();
            }
        }
        if name.len() == before {
            break;
        }
    }
    if name.starts_with("claude-") {
        let api = claude_api_name(&name);
        // Exact keys and the ccusage rules for Claude names (dates are aliases, `-1` is
        // another version).
        return PriceTable::embedded().resolve(&api).map(str::to_string);
    }
    let table = cursor_table();
    table.models().find(|k| *k == name).map(str::to_string)
}

/// Cost in pico-USD of `usage` under a Cursor model name, or None when unpriced.
#[must_use]
pub fn cost_pusd(model: &str, usage: &TokenUsage) -> Option<i64> {
    let key = price_key(model)?;
    PriceTable::embedded()
        .price(&key)
        .filter(|_| key.starts_with("claude-"))
        .or_else(|| cursor_table().price(&key))
        .map(|p| p.cost_pusd(usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_names_map_to_litellm_keys() {
        let cases = [
            ("claude-4.5-sonnet", Some("claude-sonnet-4-5")),
            ("claude-4.5-sonnet-thinking", Some("claude-sonnet-4-5")),
            ("claude-4-sonnet", Some("claude-sonnet-4")),
            ("claude-4.5-opus-high-thinking", Some("claude-opus-4-5")),
            ("claude-4.1-opus", Some("claude-opus-4-1")),
            ("claude-4.5-haiku", Some("claude-haiku-4-5")),
            ("Claude-4.5-Opus-Max", Some("claude-opus-4-5")),
            ("claude-sonnet-4-5", Some("claude-sonnet-4-5")),
            ("gpt-5", Some("gpt-5")),
            ("gpt-5-high", Some("gpt-5")),
            ("gpt-5-codex", Some("gpt-5-codex")),
            ("gpt-5.1-codex-max", Some("gpt-5.1-codex")),
            ("gemini-2.5-pro", Some("gemini-2.5-pro")),
            ("grok-code-fast-1", Some("grok-code-fast-1")),
            ("default", None),
            ("auto", None),
            ("composer-1", None),
            ("composer-2-fast", None),
            ("gpt-5-fast", None),
            ("claude-4.9-opus", None),
            ("cheetah", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(price_key(name).as_deref(), want, "{name}");
        }
        // Claude 3 names keep the version first; any dated alias has the same price.
        let k = price_key("claude-3.7-sonnet").expect("priced");
        assert!(k.starts_with("claude-3-7-sonnet"), "{k}");
    }

    #[test]
    fn cursor_costs_use_the_mapped_prices() {
        let u = TokenUsage {
            input: 100_000,
            output: 100_000,
            ..TokenUsage::default()
        };
        // Sonnet 4.5: $3 + $15 per million (below the 200k tier).
        assert_eq!(cost_pusd("claude-4.5-sonnet", &u), Some(1_800_000_000_000));
        // GPT-5: $1.25 + $10 per million.
        assert_eq!(cost_pusd("gpt-5", &u), Some(1_125_000_000_000));
        assert_eq!(cost_pusd("composer-1", &u), None);
        assert_eq!(cost_pusd("default", &u), None);
        assert!(cursor_table().len() >= 10);
    }
}
