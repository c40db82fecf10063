//! Interim pricing (replaced by the embedded LiteLLM table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage { pub input: u64, pub output: u64, pub cache_creation_5m: u64, pub cache_creation_1h: u64, pub cache_read: u64, pub fast: bool }
pub struct PriceTable;
static T: PriceTable = PriceTable;
impl PriceTable {
    pub fn embedded() -> &'static PriceTable { &T }
    pub fn cost_pusd(&self, _model: &str, _u: &TokenUsage) -> Option<i64> { None }
}
pub fn pusd_to_usd(p: i64) -> f64 { p as f64 / 1e12 }
