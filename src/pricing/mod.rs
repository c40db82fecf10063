//! Cost of one Claude API response, in integer pico-USD, computed the way
//! ccusage v20 computes it.
//!
//! Why: blueplane's cost figures must agree with `ccusage --mode calculate` on
//! the same transcripts, and they are summed over millions of responses in any
//! order (fast path, slow path, `metrics rebuild`). Floating-point sums depend
//! on order; integer sums do not. So every per-token price is converted once,
//! when the table is loaded, into an exact integer number of pico-USD
//! (1 USD = 10^12 pUSD; the smallest Claude price, 1e-8 USD, is 10^4 pUSD), and
//! the cost arithmetic below never touches a float. A price that is not a whole
//! number of pico-USD is a load error, not a rounding.
//!
//! What (formats.md §E1/§E2):
//! - Prices come from `schemas/pricing/models.json`, Anthropic entries of the
//!   LiteLLM price list with LiteLLM field names (its `"source"` object says
//!   which release and what was added). The file is embedded in the binary.
//! - Missing prices default like ccusage: 5-minute cache write = 1.25 × input,
//!   cache read = 0.1 × input, 1-hour cache write = 2 × input (and 2 × the
//!   above-200k input price for its tier).
//! - The 200k tier applies to each token field of one response separately:
//!   the first 200 000 tokens of a field at the base price, the rest at the
//!   `*_above_200k_tokens` price when the model has one.
//! - Fast mode (`usage.speed == "fast"`) multiplies the whole cost by the
//!   model's `provider_specific_entry.fast` (1 when absent).
//! - Model lookup: exact key, else ccusage's fuzzy match (a key and the model
//!   name contain one another on word boundaries, `.`/`@` read as `-`, a
//!   `-YYYYMMDD` date suffix is an alias but `-1` is another version), longest
//!   key wins. `anthropic/claude-opus-4-6`, `claude-opus-4-6-20990101` and
//!   `claude-sonnet-4-5@20250929` all resolve; `claude-opus-4-9` does not.
//! - `<synthetic>` (messages Claude Code writes itself) is known and free.
//!   ccusage charges it 0 and never reports it as missing pricing (it still
//!   counts its tokens, but leaves it out of `modelsUsed`).
//! - An unknown model gives `None`: callers flag it instead of pricing it at 0.
//! - Costs saturate at `i64::MAX` pUSD (9.2 million USD) instead of
//!   overflowing on absurd token counts.
//!
//! Which lines to price (the `"usage":{` filter, de-duplication, sidechain
//! replays) is the caller's business; see formats.md §A11 and
//! `tests/data/ccusage-oracle/README.md`.
//!
//! Only Anthropic first-party keys are in the table. ccusage also embeds
//! Bedrock keys (`us.anthropic.…`), so Bedrock-style model ids can resolve to
//! a different (regional) price there; models newer than ccusage's own
//! snapshot are unknown to ccusage but priced here.

pub mod cursor;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Number, Value};

/// Pico-USD in one US dollar.
pub const PUSD_PER_USD: i64 = 1_000_000_000_000;

/// Model name Claude Code gives to messages it generates locally.
pub const SYNTHETIC_MODEL: &str = "<synthetic>";

/// Token count above which a field is billed at its `*_above_200k_tokens` price.
const TIER_THRESHOLD: u64 = 200_000;

/// Decimal places of pico-USD in one USD.
const PUSD_DECIMALS: i32 = 12;

/// The fast multiplier is kept in thousandths.
const MILLI: i64 = 1_000;

/// Date suffixes (`-20250514`) have this many digits.
const DATE_SUFFIX_DIGITS: usize = 8;

const EMBEDDED_JSON: &str = include_str!("../../schemas/pricing/models.json");

/// Token counts of one API response, as read from `message.usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_creation_5m: u64,
    pub cache_creation_1h: u64,
    pub cache_read: u64,
    pub fast: bool,
}

impl TokenUsage {
    /// No tokens of any kind.
    pub fn is_zero(&self) -> bool {
        self.input == 0
            && self.output == 0
            && self.cache_creation_5m == 0
            && self.cache_creation_1h == 0
            && self.cache_read == 0
    }

    /// Reads a `message.usage` object the way ccusage does: the 5m/1h split
    /// comes from `cache_creation.ephemeral_*` when that object is present,
    /// otherwise all of `cache_creation_input_tokens` counts as 5-minute
    /// writes; `speed: "fast"` sets `fast`. Missing, null or non-integer
    /// counts read as 0 (ccusage skips a line whose counters are `null`; that
    /// filter belongs to the line reader).
    #[must_use]
    pub fn from_api_usage(usage: &Value) -> Self {
        let count = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
        let (cache_creation_5m, cache_creation_1h) = match usage.get("cache_creation") {
            Some(split @ Value::Object(_)) => (
                count(split, "ephemeral_5m_input_tokens"),
                count(split, "ephemeral_1h_input_tokens"),
            ),
            _ => (count(usage, "cache_creation_input_tokens"), 0),
        };
        Self {
            input: count(usage, "input_tokens"),
            output: count(usage, "output_tokens"),
            cache_creation_5m,
            cache_creation_1h,
            cache_read: count(usage, "cache_read_input_tokens"),
            fast: usage.get("speed").and_then(Value::as_str) == Some("fast"),
        }
    }

    /// All tokens of the response (ccusage's "total tokens", also the measure
    /// its de-duplication keeps the larger copy by).
    #[must_use]
    pub fn total_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_creation_5m)
            .saturating_add(self.cache_creation_1h)
            .saturating_add(self.cache_read)
    }
}

/// A price in pico-USD per token, with its optional above-200k tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TieredPrice {
    pub base: i64,
    pub above_200k: Option<i64>,
}

impl TieredPrice {
    fn cost(&self, tokens: u64) -> i128 {
        let base = i128::from(self.base);
        match self.above_200k {
            Some(above) if tokens > TIER_THRESHOLD => (i128::from(TIER_THRESHOLD) * base)
                .saturating_add(
                    i128::from(tokens - TIER_THRESHOLD).saturating_mul(i128::from(above)),
                ),
            _ => i128::from(tokens).saturating_mul(base),
        }
    }
}

/// Resolved prices of one model, all in pico-USD per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPrice {
    pub input: TieredPrice,
    pub output: TieredPrice,
    pub cache_creation_5m: TieredPrice,
    pub cache_creation_1h: TieredPrice,
    pub cache_read: TieredPrice,
    /// Fast-mode multiplier in thousandths (1000 = ×1).
    pub fast_multiplier_milli: i64,
}

impl ModelPrice {
    /// A model that costs nothing (used for `<synthetic>`).
    const FREE: Self = {
        let zero = TieredPrice {
            base: 0,
            above_200k: None,
        };
        Self {
            input: zero,
            output: zero,
            cache_creation_5m: zero,
            cache_creation_1h: zero,
            cache_read: zero,
            fast_multiplier_milli: MILLI,
        }
    };

    /// Cost of `usage` in pico-USD, saturating at `i64::MAX`.
    #[must_use]
    pub fn cost_pusd(&self, usage: &TokenUsage) -> i64 {
        let sum = [
            self.input.cost(usage.input),
            self.output.cost(usage.output),
            self.cache_creation_5m.cost(usage.cache_creation_5m),
            self.cache_creation_1h.cost(usage.cache_creation_1h),
            self.cache_read.cost(usage.cache_read),
        ]
        .into_iter()
        .fold(0_i128, i128::saturating_add);
        let total = if usage.fast {
            round_div(
                sum.saturating_mul(i128::from(self.fast_multiplier_milli)),
                i128::from(MILLI),
            )
        } else {
            sum
        };
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

/// Why a price table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("price table is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model {model}: {field} is missing")]
    Missing { model: String, field: &'static str },
    #[error("model {model}: {field} = {value} is not a non-negative decimal number")]
    Invalid {
        model: String,
        field: &'static str,
        value: String,
    },
    #[error("model {model}: {field} = {value} is not a whole number of pico-USD per token")]
    Inexact {
        model: String,
        field: &'static str,
        value: String,
    },
    #[error("model {model}: fast multiplier {value} is not a multiple of 0.001")]
    InexactMultiplier { model: String, value: String },
}

/// `models.json`: a free-form `source` note and LiteLLM-style entries.
#[derive(Deserialize)]
struct RawTable {
    models: HashMap<String, RawModel>,
}

/// The LiteLLM fields ccusage reads; other fields of an entry are ignored.
#[derive(Deserialize)]
struct RawModel {
    input_cost_per_token: Option<Number>,
    output_cost_per_token: Option<Number>,
    cache_creation_input_token_cost: Option<Number>,
    cache_creation_input_token_cost_above_1hr: Option<Number>,
    cache_read_input_token_cost: Option<Number>,
    input_cost_per_token_above_200k_tokens: Option<Number>,
    output_cost_per_token_above_200k_tokens: Option<Number>,
    cache_creation_input_token_cost_above_200k_tokens: Option<Number>,
    cache_creation_input_token_cost_above_1hr_above_200k_tokens: Option<Number>,
    cache_read_input_token_cost_above_200k_tokens: Option<Number>,
    provider_specific_entry: Option<RawProviderEntry>,
}

#[derive(Deserialize)]
struct RawProviderEntry {
    fast: Option<Number>,
}

/// Per-token prices of Claude models, keyed by LiteLLM model name.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
}

impl PriceTable {
    /// The table embedded in the binary (`include_str!` of `schemas/pricing/models.json`, parsed once via `std::sync::OnceLock`).
    ///
    /// # Panics
    ///
    /// Only if the compiled-in file does not load, which the unit tests rule out.
    #[must_use]
    pub fn embedded() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            PriceTable::from_json(EMBEDDED_JSON)
                .expect("schemas/pricing/models.json is compiled in and must load")
        })
    }

    /// Parses a table in the `models.json` format.
    ///
    /// # Errors
    ///
    /// Invalid JSON, a model without input or output price, a price that is
    /// negative, malformed or not a whole number of pico-USD (also when
    /// derived: 1.25 × or 0.1 × input), or a fast multiplier finer than 0.001.
    pub fn from_json(json: &str) -> Result<PriceTable, PricingError> {
        let raw: RawTable = serde_json::from_str(json)?;
        let models = raw
            .models
            .into_iter()
            .map(|(name, entry)| {
                let price = model_price(&name, &entry)?;
                Ok((name, price))
            })
            .collect::<Result<HashMap<_, _>, PricingError>>()?;
        Ok(PriceTable { models })
    }

    /// Cost in pico-USD, or None when the model is unknown (callers flag it; never silently 0).
    #[must_use]
    pub fn cost_pusd(&self, model: &str, usage: &TokenUsage) -> Option<i64> {
        self.price(model).map(|price| price.cost_pusd(usage))
    }

    /// The canonical table key a model name resolves to (None = unknown).
    #[must_use]
    pub fn resolve(&self, model: &str) -> Option<&str> {
        if model == SYNTHETIC_MODEL {
            return Some(SYNTHETIC_MODEL);
        }
        if let Some((key, _)) = self.models.get_key_value(model) {
            return Some(key.as_str());
        }
        if model.is_empty() {
            return None;
        }
        let normalized = normalize(model);
        // Longest matching key; on equal length the alphabetically first.
        self.models
            .keys()
            .filter(|key| key_matches(key, model, &normalized))
            .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
            .map(String::as_str)
    }

    /// The prices a model name resolves to (None = unknown).
    #[must_use]
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        let key = self.resolve(model)?;
        if key == SYNTHETIC_MODEL {
            return Some(&ModelPrice::FREE);
        }
        self.models.get(key)
    }

    /// Number of models in the table.
    #[must_use]
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// True when the table has no models.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The table keys, in no particular order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }
}

/// USD (f64) from pico-USD, for display.
#[must_use]
pub fn pusd_to_usd(p: i64) -> f64 {
    // Whole dollars and the remainder separately, so large sums keep their cents.
    (p / PUSD_PER_USD) as f64 + (p % PUSD_PER_USD) as f64 / PUSD_PER_USD as f64
}

/// Pico-USD from a USD figure another program reported (Claude Code's `totalCostUSD`),
/// rounded to the nearest pico-dollar; None when it is not a finite amount in 0..=1e6 USD.
#[must_use]
pub fn usd_to_pusd(usd: f64) -> Option<i64> {
    (usd.is_finite() && (0.0..=1e6).contains(&usd))
        .then(|| (usd * PUSD_PER_USD as f64).round() as i64)
}

fn model_price(name: &str, raw: &RawModel) -> Result<ModelPrice, PricingError> {
    let price =
        |field: &'static str, value: &Option<Number>| -> Result<Option<i64>, PricingError> {
            value
                .as_ref()
                .map(|number| price_to_pusd(name, field, number))
                .transpose()
        };
    let required = |field: &'static str, value: &Option<Number>| -> Result<i64, PricingError> {
        price(field, value)?.ok_or_else(|| PricingError::Missing {
            model: name.to_owned(),
            field,
        })
    };

    let input = required("input_cost_per_token", &raw.input_cost_per_token)?;
    let output = required("output_cost_per_token", &raw.output_cost_per_token)?;
    let input_above = price(
        "input_cost_per_token_above_200k_tokens",
        &raw.input_cost_per_token_above_200k_tokens,
    )?;

    let cache_5m = match price(
        "cache_creation_input_token_cost",
        &raw.cache_creation_input_token_cost,
    )? {
        Some(p) => p,
        None => derived(name, "cache_creation_input_token_cost", input, 5, 4)?,
    };
    let cache_read = match price(
        "cache_read_input_token_cost",
        &raw.cache_read_input_token_cost,
    )? {
        Some(p) => p,
        None => derived(name, "cache_read_input_token_cost", input, 1, 10)?,
    };
    let cache_1h = match price(
        "cache_creation_input_token_cost_above_1hr",
        &raw.cache_creation_input_token_cost_above_1hr,
    )? {
        Some(p) => p,
        None => derived(
            name,
            "cache_creation_input_token_cost_above_1hr",
            input,
            2,
            1,
        )?,
    };
    let cache_1h_above = match price(
        "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
        &raw.cache_creation_input_token_cost_above_1hr_above_200k_tokens,
    )? {
        Some(p) => Some(p),
        None => input_above
            .map(|above| {
                derived(
                    name,
                    "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
                    above,
                    2,
                    1,
                )
            })
            .transpose()?,
    };

    let fast_multiplier_milli = match raw
        .provider_specific_entry
        .as_ref()
        .and_then(|entry| entry.fast.as_ref())
    {
        Some(number) => {
            let text = number.to_string();
            match parse_scaled_decimal(&text, 3) {
                Some(Scaled::Exact(milli)) => milli,
                Some(Scaled::Inexact) => {
                    return Err(PricingError::InexactMultiplier {
                        model: name.to_owned(),
                        value: text,
                    });
                }
                None => {
                    return Err(PricingError::Invalid {
                        model: name.to_owned(),
                        field: "provider_specific_entry.fast",
                        value: text,
                    });
                }
            }
        }
        None => MILLI,
    };

    Ok(ModelPrice {
        input: TieredPrice {
            base: input,
            above_200k: input_above,
        },
        output: TieredPrice {
            base: output,
            above_200k: price(
                "output_cost_per_token_above_200k_tokens",
                &raw.output_cost_per_token_above_200k_tokens,
            )?,
        },
        cache_creation_5m: TieredPrice {
            base: cache_5m,
            above_200k: price(
                "cache_creation_input_token_cost_above_200k_tokens",
                &raw.cache_creation_input_token_cost_above_200k_tokens,
            )?,
        },
        cache_creation_1h: TieredPrice {
            base: cache_1h,
            above_200k: cache_1h_above,
        },
        cache_read: TieredPrice {
            base: cache_read,
            above_200k: price(
                "cache_read_input_token_cost_above_200k_tokens",
                &raw.cache_read_input_token_cost_above_200k_tokens,
            )?,
        },
        fast_multiplier_milli,
    })
}

/// `base × numerator / denominator`, which must come out whole.
fn derived(
    name: &str,
    field: &'static str,
    base: i64,
    numerator: i64,
    denominator: i64,
) -> Result<i64, PricingError> {
    let scaled = base
        .checked_mul(numerator)
        .filter(|scaled| scaled % denominator == 0);
    scaled
        .map(|scaled| scaled / denominator)
        .ok_or_else(|| PricingError::Inexact {
            model: name.to_owned(),
            field,
            value: format!("{numerator}/{denominator} of {base} pUSD"),
        })
}

fn price_to_pusd(name: &str, field: &'static str, number: &Number) -> Result<i64, PricingError> {
    // serde_json prints a float as the shortest decimal that reads back as the
    // same f64, i.e. the digits written in the JSON file; those digits are
    // scaled exactly, without float arithmetic.
    let text = number.to_string();
    match parse_scaled_decimal(&text, PUSD_DECIMALS) {
        Some(Scaled::Exact(pusd)) => Ok(pusd),
        Some(Scaled::Inexact) => Err(PricingError::Inexact {
            model: name.to_owned(),
            field,
            value: text,
        }),
        None => Err(PricingError::Invalid {
            model: name.to_owned(),
            field,
            value: text,
        }),
    }
}

enum Scaled {
    Exact(i64),
    Inexact,
}

/// Parses a non-negative decimal (`3e-6`, `0.000003`, `1.875E-05`, `6`) and
/// multiplies it by 10^`scale`. `None` if the text is not such a number or the
/// result does not fit an i64.
fn parse_scaled_decimal(text: &str, scale: i32) -> Option<Scaled> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    // value = digits × 10^shift
    let shift = exponent.checked_add(scale)?.checked_sub(fraction_digits)?;
    if digits.is_empty() {
        return Some(Scaled::Exact(0));
    }
    if shift >= 0 {
        let mut value = digits.parse::<i64>().ok()?;
        for _ in 0..shift {
            value = value.checked_mul(10)?;
        }
        Some(Scaled::Exact(value))
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        if cut >= digits.len() {
            return Some(Scaled::Inexact);
        }
        let (kept, dropped) = digits.split_at(digits.len() - cut);
        if dropped.bytes().any(|b| b != b'0') {
            return Some(Scaled::Inexact);
        }
        Some(Scaled::Exact(kept.parse::<i64>().ok()?))
    }
}

/// Division rounding half away from zero (exact for every multiplier in use).
fn round_div(value: i128, divisor: i128) -> i128 {
    let quotient = value / divisor;
    let remainder = value % divisor;
    if remainder.abs() * 2 >= divisor.abs() {
        quotient + value.signum() * divisor.signum()
    } else {
        quotient
    }
}

/// Reads `.` and `@` as `-` (`claude-sonnet-4.5`, `claude-sonnet-4-5@20250929`).
fn normalize(model: &str) -> String {
    model.replace(['.', '@'], "-")
}

/// ccusage's fuzzy rule: one name contains the other on word boundaries,
/// as written or after [`normalize`].
fn key_matches(key: &str, model: &str, normalized_model: &str) -> bool {
    if contains_on_boundary(model, key) || contains_on_boundary(key, model) {
        return true;
    }
    let normalized_key = normalize(key);
    contains_on_boundary(normalized_model, &normalized_key)
        || contains_on_boundary(&normalized_key, normalized_model)
}

fn is_boundary(byte: u8) -> bool {
    !byte.is_ascii_alphanumeric()
}

/// `needle` occurs in `haystack` with a non-alphanumeric byte (or the edge)
/// on both sides, and is not followed by another version number
/// (`claude-opus-4` does not occur in `claude-opus-4-1`, but does in
/// `claude-opus-4-20250514`).
fn contains_on_boundary(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before_ok = at == 0 || is_boundary(haystack.as_bytes()[at - 1]);
        let suffix = &haystack[at + needle.len()..];
        let after_ok = match suffix.as_bytes().first() {
            None => true,
            Some(&next) => is_boundary(next) && !starts_with_version(needle, suffix),
        };
        before_ok && after_ok
    })
}

/// `suffix` starts with `-<digits>`/`.<digits>` continuing a key that ends in
/// a digit, unless the digits are an 8-digit date.
fn starts_with_version(needle: &str, suffix: &str) -> bool {
    if !needle.as_bytes().last().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let bytes = suffix.as_bytes();
    if !matches!(bytes.first(), Some(b'-' | b'.')) {
        return false;
    }
    let digits = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let after = bytes.get(1 + digits).copied();
    !(digits == DATE_SUFFIX_DIGITS && after.is_none_or(is_boundary))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: i64 = PUSD_PER_USD;

    fn usage(input: u64, output: u64, c5m: u64, c1h: u64, read: u64, fast: bool) -> TokenUsage {
        TokenUsage {
            input,
            output,
            cache_creation_5m: c5m,
            cache_creation_1h: c1h,
            cache_read: read,
            fast,
        }
    }

    fn inline_table(models: &str) -> PriceTable {
        PriceTable::from_json(&format!(r#"{{"source":"test","models":{models}}}"#))
            .expect("test table loads")
    }

    /// Nearest pico-USD of a ccusage USD figure.
    fn to_pusd(usd: f64) -> i64 {
        (usd * USD as f64).round() as i64
    }

    /// ccusage sums f64s; allow float noise only (1 pUSD or 1e-12 relative).
    fn assert_close(label: &str, pusd: i64, ccusage_usd: f64) {
        let expected = to_pusd(ccusage_usd);
        let tolerance = (expected.abs() / 1_000_000_000_000).max(1);
        assert!(
            (pusd - expected).abs() <= tolerance,
            "{label}: blueplane {pusd} pUSD, ccusage {ccusage_usd} USD ({expected} pUSD)"
        );
    }

    #[test]
    fn embedded_table_loads_with_the_claude_models() {
        let table = PriceTable::embedded();
        assert!(table.len() > 30, "only {} models", table.len());
        for key in [
            "claude-opus-4-6",
            "claude-sonnet-4-5-20250929",
            "claude-haiku-4-5-20251001",
            "claude-sonnet-4-20250514",
            "claude-opus-4-20250514",
            "claude-3-sonnet",
        ] {
            assert_eq!(table.resolve(key), Some(key));
        }
    }

    #[test]
    fn every_price_in_the_table_converts_exactly() {
        let raw: Value = serde_json::from_str(EMBEDDED_JSON).expect("embedded JSON parses");
        let models = raw["models"].as_object().expect("models object");
        let mut checked = 0;
        for (name, entry) in models {
            let entry = entry.as_object().expect("model entry is an object");
            for (field, value) in entry {
                if !field.contains("cost") {
                    continue;
                }
                let number = value.as_number().expect("price is a number");
                let pusd = price_to_pusd(name, "test", number)
                    .unwrap_or_else(|err| panic!("{name}.{field}: {err}"));
                // Round trip through the f64 the JSON literal denotes.
                let usd = value.as_f64().expect("price is finite");
                assert_eq!(pusd as f64 / USD as f64, usd, "{name}.{field}");
                assert_eq!(to_pusd(usd), pusd, "{name}.{field}");
                checked += 1;
            }
            let fast = entry
                .get("provider_specific_entry")
                .and_then(|p| p.get("fast"))
                .and_then(Value::as_f64);
            if let Some(fast) = fast {
                let price = PriceTable::embedded().models[name.as_str()];
                assert_eq!(price.fast_multiplier_milli as f64 / 1000.0, fast, "{name}");
            }
        }
        assert!(checked > 150, "only {checked} prices checked");
    }

    #[test]
    fn one_hour_cache_is_twice_input_everywhere_like_ccusage() {
        // ccusage ignores `cache_creation_input_token_cost_above_1hr` and
        // always charges 2 × input; the table must not disagree with that.
        for (name, price) in &PriceTable::embedded().models {
            assert_eq!(price.cache_creation_1h.base, 2 * price.input.base, "{name}");
            assert_eq!(
                price.cache_creation_1h.above_200k,
                price.input.above_200k.map(|p| 2 * p),
                "{name}"
            );
        }
    }

    #[test]
    fn decimal_parsing_is_exact() {
        let pusd = |s: &str| match parse_scaled_decimal(s, PUSD_DECIMALS) {
            Some(Scaled::Exact(v)) => Some(v),
            _ => None,
        };
        assert_eq!(pusd("3e-6"), Some(3_000_000));
        assert_eq!(pusd("3E-06"), Some(3_000_000));
        assert_eq!(pusd("0.000003"), Some(3_000_000));
        assert_eq!(pusd("1.875e-5"), Some(18_750_000));
        assert_eq!(pusd("2.75e-7"), Some(275_000));
        assert_eq!(pusd("1e-12"), Some(1));
        assert_eq!(pusd("0"), Some(0));
        assert_eq!(pusd("0.0"), Some(0));
        assert_eq!(pusd("6"), Some(6 * USD));
        assert!(matches!(
            parse_scaled_decimal("1e-13", PUSD_DECIMALS),
            Some(Scaled::Inexact)
        ));
        assert!(matches!(
            parse_scaled_decimal("1.5e-12", PUSD_DECIMALS),
            Some(Scaled::Inexact)
        ));
        for bad in ["", ".", "-1e-6", "abc", "1e", "1e999999", "99999999999"] {
            assert!(
                !matches!(
                    parse_scaled_decimal(bad, PUSD_DECIMALS),
                    Some(Scaled::Exact(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn inexact_or_invalid_prices_fail_to_load() {
        let err = PriceTable::from_json(
            r#"{"models":{"m":{"input_cost_per_token":1e-13,"output_cost_per_token":1e-6}}}"#,
        )
        .expect_err("sub-pico price");
        assert!(matches!(err, PricingError::Inexact { .. }), "{err}");

        let err = PriceTable::from_json(
            r#"{"models":{"m":{"input_cost_per_token":-1e-6,"output_cost_per_token":1e-6}}}"#,
        )
        .expect_err("negative price");
        assert!(matches!(err, PricingError::Invalid { .. }), "{err}");

        let err = PriceTable::from_json(r#"{"models":{"m":{"output_cost_per_token":1e-6}}}"#)
            .expect_err("no input price");
        assert!(matches!(err, PricingError::Missing { .. }), "{err}");

        // 1.25 × 1 pUSD is not whole.
        let err = PriceTable::from_json(
            r#"{"models":{"m":{"input_cost_per_token":1e-12,"output_cost_per_token":1e-6}}}"#,
        )
        .expect_err("inexact default");
        assert!(matches!(err, PricingError::Inexact { .. }), "{err}");

        assert!(matches!(
            PriceTable::from_json("{"),
            Err(PricingError::Json(_))
        ));
    }

    #[test]
    fn plain_cost_without_tiers() {
        // claude-opus-4-6: in 5, out 25, 5m write 6.25, 1h write 10, read 0.5 USD/MTok.
        let table = PriceTable::embedded();
        let million = 1_000_000;
        let cost = table.cost_pusd(
            "claude-opus-4-6",
            &usage(million, million, million, million, million, false),
        );
        // 5 + 25 + 6.25 + 10 + 0.5
        assert_eq!(cost, Some(46 * USD + 3 * USD / 4));
    }

    #[test]
    fn tiering_applies_per_field_above_200k() {
        // claude-sonnet-4-20250514: in 3 / 6 above 200k, out 15 / 22.5,
        // 5m write 3.75 / 7.5, read 0.3 / 0.6 USD per million tokens.
        let table = PriceTable::embedded();
        let at = |price_pusd: i64, tokens: i64| price_pusd * tokens;
        let cost = |u: TokenUsage| table.cost_pusd("claude-sonnet-4-20250514", &u);

        // Exactly 200k in every field: all at the base price.
        let at_threshold = usage(200_000, 200_000, 200_000, 0, 200_000, false);
        assert_eq!(
            cost(at_threshold),
            Some(
                at(3_000_000, 200_000)
                    + at(15_000_000, 200_000)
                    + at(3_750_000, 200_000)
                    + at(300_000, 200_000)
            )
        );
        // One token more in one field: only that token at the higher price.
        let one_over = usage(200_001, 200_000, 200_000, 0, 200_000, false);
        assert_eq!(cost(one_over), cost(at_threshold).map(|c| c + 6_000_000));

        // 300k input, 250k output, 210k 5m writes, 220k 1h writes, 400k reads.
        let big = usage(300_000, 250_000, 210_000, 220_000, 400_000, false);
        let expected = at(3_000_000, 200_000)
            + at(6_000_000, 100_000)
            + at(15_000_000, 200_000)
            + at(22_500_000, 50_000)
            + at(3_750_000, 200_000)
            + at(7_500_000, 10_000)
            + at(6_000_000, 200_000)
            + at(12_000_000, 20_000)
            + at(300_000, 200_000)
            + at(600_000, 200_000);
        assert_eq!(cost(big), Some(expected));
        assert_eq!(expected, 7_770_000_000_000); // 7.77 USD

        // A model without tiers charges the base price throughout.
        assert_eq!(
            table.cost_pusd("claude-opus-4-6", &usage(300_000, 0, 0, 0, 0, false)),
            Some(at(5_000_000, 300_000))
        );
    }

    #[test]
    fn one_hour_cache_writes_cost_twice_input() {
        let table = PriceTable::embedded();
        // spotter/short.jsonl: all cache writes are 1-hour writes.
        let short = usage(3, 13, 0, 13_835, 11_515, false);
        assert_eq!(
            table.cost_pusd("claude-opus-4-6", &short),
            Some(3 * 5_000_000 + 13 * 25_000_000 + 13_835 * 10_000_000 + 11_515 * 500_000)
        );
        // The same tokens as 5-minute writes are cheaper.
        let as_5m = usage(3, 13, 13_835, 0, 11_515, false);
        assert!(
            table.cost_pusd("claude-opus-4-6", &as_5m) < table.cost_pusd("claude-opus-4-6", &short)
        );
    }

    #[test]
    fn missing_cache_prices_default_from_input() {
        let table = inline_table(
            r#"{"plain":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05},
                "tiered":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05,
                          "input_cost_per_token_above_200k_tokens":8e-06}}"#,
        );
        let plain = table.price("plain").copied().expect("plain is known");
        assert_eq!(plain.cache_creation_5m.base, 5_000_000); // 1.25 × input
        assert_eq!(plain.cache_read.base, 400_000); // 0.1 × input
        assert_eq!(plain.cache_creation_1h.base, 8_000_000); // 2 × input
        assert_eq!(plain.fast_multiplier_milli, 1_000);
        assert_eq!(plain.cache_creation_1h.above_200k, None);
        let tiered = table.price("tiered").copied().expect("tiered is known");
        assert_eq!(tiered.cache_creation_1h.above_200k, Some(16_000_000));
        // Tiers of other fields are not invented.
        assert_eq!(tiered.cache_creation_5m.above_200k, None);
        assert_eq!(tiered.cache_read.above_200k, None);
        assert_eq!(
            table.cost_pusd("plain", &usage(1, 1, 1, 1, 1, false)),
            Some(4_000_000 + 20_000_000 + 5_000_000 + 8_000_000 + 400_000)
        );
    }

    #[test]
    fn fast_mode_multiplies_the_whole_cost() {
        let table = PriceTable::embedded();
        let slow = usage(1_000, 2_000, 3_000, 4_000, 5_000, false);
        let fast = TokenUsage { fast: true, ..slow };
        let cost = |model: &str, u: &TokenUsage| table.cost_pusd(model, u).expect("known model");
        for (model, multiplier) in [
            ("claude-opus-4-6", 6),
            ("claude-opus-4-6-20260205", 6),
            ("claude-opus-4-7", 6),
            ("claude-opus-4-8", 2),
            ("claude-opus-4-20250514", 1),
            ("claude-sonnet-4-5-20250929", 1),
        ] {
            assert_eq!(
                cost(model, &fast),
                multiplier * cost(model, &slow),
                "{model}"
            );
        }
        // Fractional multipliers are exact in thousandths.
        let table = inline_table(
            r#"{"m":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,
                     "provider_specific_entry":{"fast":2.5,"us":1.1}}}"#,
        );
        let u = TokenUsage {
            input: 3,
            fast: true,
            ..TokenUsage::default()
        };
        assert_eq!(table.cost_pusd("m", &u), Some(7_500_000));
    }

    #[test]
    fn unknown_models_are_none() {
        let table = PriceTable::embedded();
        let u = usage(10, 10, 0, 0, 0, false);
        for model in [
            "",
            "gpt-4o",
            "claude-unknown-model-9",
            "claude-opus-4-9",
            "claude-opus-4-61",
        ] {
            assert_eq!(table.resolve(model), None, "{model:?}");
            assert_eq!(table.cost_pusd(model, &u), None, "{model:?}");
        }
    }

    #[test]
    fn absurd_token_counts_saturate_instead_of_overflowing() {
        let table = PriceTable::embedded();
        let huge = usage(u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX, true);
        assert_eq!(table.cost_pusd("claude-opus-4-6", &huge), Some(i64::MAX));
        assert_eq!(
            table.cost_pusd("claude-sonnet-4-20250514", &huge),
            Some(i64::MAX)
        );
        assert_eq!(huge.total_tokens(), u64::MAX);
    }

    #[test]
    fn synthetic_model_is_known_and_free() {
        let table = PriceTable::embedded();
        assert_eq!(table.resolve(SYNTHETIC_MODEL), Some(SYNTHETIC_MODEL));
        assert_eq!(
            table.cost_pusd(SYNTHETIC_MODEL, &usage(7, 3, 0, 0, 0, true)),
            Some(0)
        );
    }

    #[test]
    fn aliases_resolve_like_ccusage() {
        let table = PriceTable::embedded();
        for (model, key) in [
            // Exact keys win, dated or not.
            ("claude-opus-4-6", "claude-opus-4-6"),
            ("claude-opus-4-6-20260205", "claude-opus-4-6-20260205"),
            // An unseen date suffix is an alias of the undated key.
            ("claude-opus-4-6-20990101", "claude-opus-4-6"),
            ("claude-sonnet-4-6-20260101", "claude-sonnet-4-6"),
            ("claude-3-sonnet-20240229", "claude-3-sonnet"),
            // Provider prefixes and other suffixes.
            ("anthropic/claude-opus-4-6", "claude-opus-4-6"),
            (
                "anthropic/claude-sonnet-4-5-20250929",
                "claude-sonnet-4-5-20250929",
            ),
            ("claude-opus-4-6-v1", "claude-opus-4-6"),
            ("claude-sonnet-4-6[1m]", "claude-sonnet-4-6"),
            ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
            // `.` and `@` read as `-`.
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
            ("claude-opus-4.6", "claude-opus-4-6-20260205"),
            // Another version number is not an alias.
            ("claude-opus-4-1", "claude-opus-4-1"),
        ] {
            assert_eq!(table.resolve(model), Some(key), "{model}");
        }
    }

    #[test]
    fn token_usage_reads_message_usage_like_ccusage() {
        let split: Value = serde_json::from_str(
            r#"{"input_tokens":3,"cache_creation_input_tokens":13835,"cache_read_input_tokens":11515,
                "cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":13830},
                "output_tokens":13,"service_tier":"standard","speed":"fast"}"#,
        )
        .expect("valid JSON");
        assert_eq!(
            TokenUsage::from_api_usage(&split),
            usage(3, 13, 5, 13_830, 11_515, true)
        );

        let flat: Value = serde_json::from_str(
            r#"{"input_tokens":100,"output_tokens":50,"cache_creation_input_tokens":25,
                "cache_read_input_tokens":10,"cache_creation":null,"speed":"standard"}"#,
        )
        .expect("valid JSON");
        let flat = TokenUsage::from_api_usage(&flat);
        assert_eq!(flat, usage(100, 50, 25, 0, 10, false));
        assert_eq!(flat.total_tokens(), 185);

        let bare: Value =
            serde_json::from_str(r#"{"input_tokens":10,"output_tokens":5}"#).expect("valid JSON");
        assert_eq!(
            TokenUsage::from_api_usage(&bare),
            usage(10, 5, 0, 0, 0, false)
        );
        assert_eq!(
            TokenUsage::from_api_usage(&Value::Null),
            TokenUsage::default()
        );
    }

    #[test]
    fn pusd_to_usd_for_display() {
        assert_eq!(pusd_to_usd(0), 0.0);
        assert_eq!(pusd_to_usd(USD), 1.0);
        assert_eq!(pusd_to_usd(144_447_500_000), 0.1444475);
        assert_eq!(pusd_to_usd(-USD / 2), -0.5);
        assert_eq!(pusd_to_usd(1_234_567 * USD + USD / 100), 1_234_567.01);
    }

    /// One de-duplicated response of each fixture tree (the copy ccusage
    /// keeps), our exact cost in pUSD, and ccusage 20.0.24's `--mode calculate`
    /// cost for that line in USD (from the probe: one line per day, see
    /// tests/data/ccusage-oracle/README.md). ccusage counts the `ccl-spaced`
    /// lines only once re-serialized without spaces (its `ccl-compact` tree).
    /// Columns: tree, message id, model, input, output, 5m writes, 1h writes,
    /// reads, speed, blueplane pUSD, ccusage USD.
    const FIXTURE_LINES: &str = "\
    ccusage     msg-alpha-1                   claude-sonnet-4-20250514    100   50   25     0      10      -     1146750000    0.0011467500000000002
    ccusage     msg-alpha-2                   claude-opus-4-20250514      200   75   50     0      20      fast  9592500000    0.009592500000000002
    ccusage     msg-alpha-3                   claude-sonnet-4-20250514    300   125  0      0      40      -     2787000000    0.002787
    ccusage     msg-beta-1                    claude-haiku-4-5-20251001   50    25   5      0      15      -     182750000     0.00018275
    ccusage     msg-beta-2                    claude-haiku-4-5-20251001   80    35   10     0      25      -     270000000     0.00027
    ccl-dag     msg_a1                        claude-sonnet-4-20250514    10    5    0      0      0       -     105000000     0.000105
    ccl-dag     msg_b1a                       claude-sonnet-4-20250514    10    5    0      0      0       -     105000000     0.000105
    ccl-dag     msg_b2a                       claude-sonnet-4-20250514    10    5    0      0      0       -     105000000     0.000105
    ccl-dag     msg_b2a2                      claude-sonnet-4-20250514    10    5    0      0      0       -     105000000     0.000105
    ccl-dag     msg_p1a                       claude-sonnet-4-20250514    10    5    0      0      0       -     105000000     0.000105
    ccl-spaced  msg_sc-a1                     claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_sc-a2                     claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_sc-a3                     claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_sc-a4                     claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_sc-a5                     claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_showcol1-a1               claude-haiku-4-5-20251001   120   40   0      0      0       -     320000000     0.00031999999999999997
    ccl-spaced  msg_002                       claude-3-sonnet-20240229    25    120  0      0      0       -     1875000000    0.001875
    ccl-spaced  msg_004                       claude-3-sonnet-20240229    45    85   0      0      0       -     1410000000    0.00141
    ccl-spaced  msg_006                       claude-3-sonnet-20240229    78    95   0      0      0       -     1659000000    0.001659
    ccl-spaced  msg_008                       claude-3-sonnet-20240229    25    35   0      0      0       -     600000000     0.0006
    ccl-spaced  msg_010                       claude-3-sonnet-20240229    45    110  0      0      0       -     1785000000    0.001785
    spotter     msg_013a13makKr7N19Xg6cuFoeK  claude-opus-4-6             3     8    8681   0      164830  -     136886250000  0.13688625000000001
    spotter     msg_01XnP8V9m3LNbxPnXbuinNKs  claude-sonnet-4-5-20250929  3     3    13838  0      0       -     51946500000   0.0519465
    spotter     msg_01QUWJL4JqVhaSxqh4fsVEw3  claude-sonnet-4-5-20250929  2326  3    1598   0      13838   -     17166900000   0.0171669
    spotter     msg_01QGx4ZWACvqLdKD387cHH6u  claude-sonnet-4-5-20250929  79    1    3378   0      15436   -     17550300000   0.0175503
    spotter     msg_01MKH1ccEGrZGNPvu8pYiiQa  claude-opus-4-6             3     13   0      13835  11515   -     144447500000  0.1444475
    spotter     msg_0167kgZUrgcT7dg7uZK7hVSg  claude-opus-4-6             3     27   0      7883   17915   -     88477500000   0.08847750000000001
    spotter     msg_01NUXWeNeduGBJVib8gyo9kz  claude-opus-4-6             1     1    0      208    25798   -     15009000000   0.015009
    spotter     msg_01LbyjvsALGe2gMsTgDSj7e6  claude-opus-4-6             3     11   0      8490   18014   -     94197000000   0.094197
    spotter     msg_019BN3FRqb7NU4DgBN5jdsym  claude-opus-4-6             47    173  0      1115   26504   -     28962000000   0.028962
";

    struct FixtureLine {
        tree: &'static str,
        id: &'static str,
        model: &'static str,
        usage: TokenUsage,
        pusd: i64,
        ccusage_usd: f64,
    }

    fn fixture_lines() -> Vec<FixtureLine> {
        FIXTURE_LINES
            .lines()
            .map(|line| {
                let f: Vec<&'static str> = line.split_whitespace().collect();
                assert_eq!(f.len(), 11, "{line}");
                let n = |i: usize| f[i].parse::<u64>().expect("token count");
                FixtureLine {
                    tree: f[0],
                    id: f[1],
                    model: f[2],
                    usage: usage(n(3), n(4), n(5), n(6), n(7), f[8] == "fast"),
                    pusd: f[9].parse().expect("pUSD"),
                    ccusage_usd: f[10].parse().expect("USD"),
                }
            })
            .collect()
    }

    #[test]
    fn fixture_lines_match_ccusage_calculate_mode() {
        let table = PriceTable::embedded();
        let lines = fixture_lines();
        assert_eq!(lines.len(), 30);
        for line in lines {
            let cost = table.cost_pusd(line.model, &line.usage);
            assert_eq!(cost, Some(line.pusd), "{} {}", line.tree, line.id);
            assert_close(line.id, line.pusd, line.ccusage_usd);
        }
    }

    fn oracle_total_cost(json: &str) -> f64 {
        let report: Value = serde_json::from_str(json).expect("oracle file is JSON");
        report["totals"]["totalCost"]
            .as_f64()
            .expect("totals.totalCost")
    }

    #[test]
    fn fixture_tree_totals_match_saved_ccusage_reports() {
        let table = PriceTable::embedded();
        let sum = |trees: &[&str]| -> i64 {
            fixture_lines()
                .into_iter()
                .filter(|line| trees.contains(&line.tree))
                .map(|line| {
                    table
                        .cost_pusd(line.model, &line.usage)
                        .expect("known model")
                })
                .sum()
        };
        let reports = [
            (
                &["ccusage"][..],
                include_str!("../../tests/data/ccusage-oracle/ccusage-daily-UTC-calculate.json"),
            ),
            (
                &["spotter"][..],
                include_str!(
                    "../../tests/data/ccusage-oracle/spotter-daily-Asia-Kathmandu-calculate.json"
                ),
            ),
            (
                &["ccl-dag"][..],
                include_str!("../../tests/data/ccusage-oracle/ccl-session-UTC-calculate.json"),
            ),
            (
                &["ccl-dag", "ccl-spaced"][..],
                include_str!(
                    "../../tests/data/ccusage-oracle/ccl-compact-monthly-UTC-calculate.json"
                ),
            ),
        ];
        for (trees, json) in reports {
            assert_close(&trees.join("+"), sum(trees), oracle_total_cost(json));
        }
        // In auto mode ccusage takes the legacy `costUSD` of the ccusage fixture lines.
        let auto = include_str!("../../tests/data/ccusage-oracle/ccusage-daily-UTC.json");
        assert_eq!(oracle_total_cost(auto), 1.09);
    }

    /// Model names whose ccusage 20.0.24 price differs on purpose; see the
    /// module doc and tests/data/ccusage-oracle/README.md.
    const KNOWN_DIFFERENCES: [&str; 6] = [
        // Newer than ccusage 20.0.24's LiteLLM snapshot: ccusage prices them at 0.
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        // Retired from LiteLLM before ccusage's snapshot; ccusage prices it at 0.
        "claude-3-5-sonnet-latest",
        // ccusage resolves these to a longer Bedrock key that is not in our table.
        "claude-sonnet-4-5@20250929",
        "sonnet",
    ];

    #[test]
    fn probe_lines_match_ccusage_calculate_mode() {
        let transcript =
            include_str!("../../tests/data/ccusage-oracle/probe/projects/probe/probe.jsonl");
        let report: Value = serde_json::from_str(include_str!(
            "../../tests/data/ccusage-oracle/probe-daily-UTC-calculate.json"
        ))
        .expect("probe report is JSON");
        let by_date: HashMap<&str, f64> = report["daily"]
            .as_array()
            .expect("daily rows")
            .iter()
            .map(|row| {
                let date = row["date"].as_str().expect("date");
                (date, row["totalCost"].as_f64().expect("totalCost"))
            })
            .collect();
        let table = PriceTable::embedded();
        let mut compared = 0;
        let mut still_different = Vec::new();
        for line in transcript.lines() {
            let line: Value = serde_json::from_str(line).expect("probe line is JSON");
            let model = line["message"]["model"].as_str().expect("model");
            let date = &line["timestamp"].as_str().expect("timestamp")[..10];
            let u = TokenUsage::from_api_usage(&line["message"]["usage"]);
            let ccusage_usd = by_date[date];
            if let Some(&known) = KNOWN_DIFFERENCES.iter().find(|&&k| k == model) {
                let ours = table.cost_pusd(model, &u).unwrap_or(0);
                if ours.abs_diff(to_pusd(ccusage_usd)) > 1 && !still_different.contains(&known) {
                    still_different.push(known);
                }
                continue;
            }
            match table.cost_pusd(model, &u) {
                Some(cost) => assert_close(&format!("{date} {model}"), cost, ccusage_usd),
                None => assert_eq!(
                    ccusage_usd, 0.0,
                    "{date} {model}: unknown here, priced by ccusage"
                ),
            }
            compared += 1;
        }
        assert!(compared > 150, "only {compared} probe lines compared");
        // A name that agrees again belongs back in the comparison.
        let mut known = KNOWN_DIFFERENCES;
        known.sort_unstable();
        still_different.sort_unstable();
        assert_eq!(still_different, known);
    }
}
