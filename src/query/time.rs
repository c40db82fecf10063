//! Time zones, period keys and `since`/`until` parsing for reports and tools.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};

use super::QueryError;

/// How `get_metrics` groups rows (as an MCP argument: the lowercase names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Week,
    Month,
    Model,
    Project,
    Platform,
    Session,
}

impl GroupBy {
    /// # Errors
    /// [`QueryError::Invalid`] naming the accepted values.
    pub fn parse(s: &str) -> Result<GroupBy, QueryError> {
        Ok(match s {
            "day" => GroupBy::Day,
            "week" => GroupBy::Week,
            "month" => GroupBy::Month,
            "model" => GroupBy::Model,
            "project" => GroupBy::Project,
            "platform" => GroupBy::Platform,
            "session" => GroupBy::Session,
            other => {
                return Err(QueryError::Invalid(format!(
                    "unknown group_by '{other}': use day, week, month, model, project, platform or session"
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
            GroupBy::Model => "model",
            GroupBy::Project => "project",
            GroupBy::Platform => "platform",
            GroupBy::Session => "session",
        }
    }

    pub fn is_time(self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Week | GroupBy::Month)
    }
}

/// An IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tz(chrono_tz::Tz);

impl Tz {
    /// The named zone, or the machine's zone (`TZ`, then the system setting, else UTC).
    ///
    /// # Errors
    /// [`QueryError::Invalid`] for a name that is not an IANA zone.
    pub fn parse(name: Option<&str>) -> Result<Tz, QueryError> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.parse::<chrono_tz::Tz>().map(Tz).map_err(|_| {
                QueryError::Invalid(format!(
                    "unknown time zone '{n}': use an IANA name such as 'UTC', 'Europe/Berlin' or 'Asia/Kathmandu'"
                ))
            }),
            None => Ok(Tz::local()),
        }
    }

    pub fn local() -> Tz {
        let from_env = std::env::var("TZ")
            .ok()
            .map(|t| t.trim_start_matches(':').to_string())
            .and_then(|t| t.parse::<chrono_tz::Tz>().ok());
        let sys = || {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
        };
        Tz(from_env.or_else(sys).unwrap_or(chrono_tz::UTC))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The period key of an instant: `YYYY-MM-DD`, the Monday `YYYY-MM-DD`, or `YYYY-MM`.
    pub fn key(&self, ms: i64, g: GroupBy) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
            return String::new();
        };
        date_key(t.with_timezone(&self.0).date_naive(), g)
    }

    /// This zone's UTC offset at the start of quarter-hour `bucket`, in quarter hours (every
    /// IANA offset is a whole number of them).
    pub fn offset_buckets(&self, bucket: i64) -> i64 {
        use chrono::Offset;
        let Some(t) = chrono::DateTime::from_timestamp_millis(bucket.saturating_mul(900_000))
        else {
            return 0;
        };
        let secs = self
            .0
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc();
        i64::from(secs).div_euclid(900)
    }

    /// Runs of buckets with one UTC offset covering `lo..=hi`: `(first, end exclusive,
    /// offset in quarter hours)`. A bucket's local day is then `(bucket + offset) / 96`.
    pub fn offset_segments(&self, lo: i64, hi: i64) -> Vec<(i64, i64, i64)> {
        let mut out = Vec::new();
        if lo > hi {
            return out;
        }
        let (mut start, mut off) = (lo, self.offset_buckets(lo));
        let mut at = lo;
        while at < hi {
            // Offsets change a few times a year, never twice in a day: probe day by day, then
            // find the first bucket of the new offset.
            let next = (at + 96).min(hi);
            if self.offset_buckets(next) != off {
                let (mut a, mut b) = (at, next);
                while b - a > 1 {
                    let m = a + (b - a) / 2;
                    if self.offset_buckets(m) == off {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                out.push((start, b, off));
                (start, off) = (b, self.offset_buckets(b));
            }
            at = next;
        }
        out.push((start, hi + 1, off));
        out
    }

    /// The local day that holds the instant `ms`: `[midnight, next midnight)` in epoch ms
    /// (23 or 25 hours long on a DST change).
    pub fn day_span(&self, ms: i64) -> Option<(i64, i64)> {
        let d = chrono::DateTime::from_timestamp_millis(ms)?
            .with_timezone(&self.0)
            .date_naive();
        Some((self.local_midnight(d)?, self.local_midnight(d.succ_opt()?)?))
    }

    /// The instant `ms` in this zone, formatted with a chrono `strftime` pattern ("" when
    /// `ms` is out of range).
    pub fn format(&self, ms: i64, pattern: &str) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&self.0).format(pattern).to_string())
            .unwrap_or_default()
    }

    fn local_midnight(&self, d: NaiveDate) -> Option<i64> {
        let naive = d.and_hms_opt(0, 0, 0)?;
        self.local_ms(naive)
    }

    fn local_ms(&self, naive: NaiveDateTime) -> Option<i64> {
        // A gap (DST jump) resolves to the later instant, a fold to the earlier one.
        match self.0.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                Some(t.timestamp_millis())
            }
            chrono::LocalResult::None => self
                .0
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
                .map(|t| t.timestamp_millis()),
        }
    }

    /// Parses a `since` (inclusive start) or `until` bound: a date (`YYYY-MM-DD` or
    /// `YYYYMMDD`, in this zone; as `until` the whole day is included), an RFC 3339
    /// date-time, or a date-time without offset (in this zone). Returns epoch ms; an `until`
    /// is exclusive.
    ///
    /// # Errors
    /// [`QueryError::Invalid`] naming the accepted forms.
    pub fn parse_bound(&self, s: &str, is_until: bool) -> Result<i64, QueryError> {
        let s = s.trim();
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"));
        let ms = if let Ok(d) = date {
            let d = if is_until { d.succ_opt() } else { Some(d) };
            d.and_then(|d| self.local_midnight(d))
        } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            Some(t.timestamp_millis())
        } else {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
                .ok()
                .and_then(|n| self.local_ms(n))
        };
        ms.ok_or_else(|| {
            QueryError::Invalid(format!(
                "cannot read '{s}' as a date or time: use YYYY-MM-DD, YYYYMMDD or an ISO 8601 date-time such as 2026-01-09T10:00:00Z"
            ))
        })
    }
}

/// The period key of a local day (days since 1970-01-01 in the zone): `YYYY-MM-DD`, the
/// Monday `YYYY-MM-DD`, or `YYYY-MM`; the same as [`Tz::key`] of any instant of that day.
pub fn day_key(local_day: i64, g: GroupBy) -> String {
    let d = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::try_days(local_day)?));
    d.map(|d| date_key(d, g)).unwrap_or_default()
}

/// The period key of a local date.
fn date_key(d: NaiveDate, g: GroupBy) -> String {
    match g {
        GroupBy::Week => {
            let monday = d - chrono::Duration::days(d.weekday().num_days_from_monday() as i64);
            monday.format("%Y-%m-%d").to_string()
        }
        GroupBy::Month => format!("{:04}-{:02}", d.year(), d.month()),
        _ => d.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_half_and_quarter_hour_zones() {
        // 2026-01-09T18:20Z is 23:50 in Kolkata (+05:30) and 00:05 next day in Kathmandu (+05:45).
        let ms = chrono::DateTime::parse_from_rfc3339("2026-01-09T18:20:00Z")
            .unwrap()
            .timestamp_millis();
        let kolkata = Tz::parse(Some("Asia/Kolkata")).unwrap();
        let kathmandu = Tz::parse(Some("Asia/Kathmandu")).unwrap();
        assert_eq!(kolkata.key(ms, GroupBy::Day), "2026-01-09");
        assert_eq!(kathmandu.key(ms, GroupBy::Day), "2026-01-10");
        // 2026-01-10 is a Saturday: its week starts Monday 2026-01-05.
        assert_eq!(kathmandu.key(ms, GroupBy::Week), "2026-01-05");
        assert_eq!(kathmandu.key(ms, GroupBy::Month), "2026-01");
        // Day boundaries fall on quarter hours, so a 15-minute bucket never straddles one.
        let midnight = kathmandu.parse_bound("2026-01-10", false).unwrap();
        assert_eq!(midnight % (15 * 60 * 1000), 0);
    }

    #[test]
    fn day_spans_and_formatting() {
        let ktm = Tz::parse(Some("Asia/Kathmandu")).unwrap();
        // 2026-01-09T18:20Z is 00:05 on 2026-01-10 in Kathmandu (+05:45).
        let ms = chrono::DateTime::parse_from_rfc3339("2026-01-09T18:20:00Z")
            .unwrap()
            .timestamp_millis();
        let (a, b) = ktm.day_span(ms).unwrap();
        assert_eq!(a, ktm.parse_bound("2026-01-10", false).unwrap());
        assert_eq!(b - a, 86_400_000);
        assert_eq!(ktm.format(ms, "%H:%M"), "00:05");
        // A DST day in Berlin has 23 hours.
        let berlin = Tz::parse(Some("Europe/Berlin")).unwrap();
        let spring = chrono::DateTime::parse_from_rfc3339("2026-03-29T12:00:00Z")
            .unwrap()
            .timestamp_millis();
        let (a, b) = berlin.day_span(spring).unwrap();
        assert_eq!(b - a, 23 * 3_600_000);
    }

    #[test]
    fn local_days_from_offset_segments_match_keys() {
        // Berlin across both 2026 DST changes, Kathmandu (+05:45) and UTC: for every quarter
        // hour, (bucket + offset) / 96 names the same day, week and month as `key`.
        for zone in ["Europe/Berlin", "Asia/Kathmandu", "UTC", "America/St_Johns"] {
            let tz = Tz::parse(Some(zone)).unwrap();
            let lo = tz.parse_bound("2026-03-27", false).unwrap() / 900_000;
            let hi = tz.parse_bound("2026-11-02", false).unwrap() / 900_000;
            let segs = tz.offset_segments(lo, hi);
            assert_eq!(segs.first().unwrap().0, lo);
            assert_eq!(segs.last().unwrap().1, hi + 1);
            // Berlin: summer time from 29 March to 25 October; St. John's: until 1 November.
            let changes = match zone {
                "Europe/Berlin" => 3,
                "America/St_Johns" => 2,
                _ => 1,
            };
            assert_eq!(segs.len(), changes, "{zone}: {segs:?}");
            for (a, b, off) in segs {
                for bucket in (a..b).step_by(7).chain([b - 1]) {
                    for g in [GroupBy::Day, GroupBy::Week, GroupBy::Month] {
                        assert_eq!(
                            day_key((bucket + off).div_euclid(96), g),
                            tz.key(bucket * 900_000, g),
                            "{zone} bucket {bucket}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bounds() {
        let utc = Tz::parse(Some("UTC")).unwrap();
        let a = utc.parse_bound("2026-01-09", false).unwrap();
        let b = utc.parse_bound("20260109", true).unwrap();
        assert_eq!(b - a, 86_400_000);
        assert_eq!(
            utc.parse_bound("2026-01-09T10:00:00Z", false).unwrap(),
            a + 36_000_000
        );
        assert!(utc.parse_bound("yesterday", false).is_err());
        assert!(Tz::parse(Some("Mars/Olympus")).is_err());
    }
}
